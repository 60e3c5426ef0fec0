"""Whether a process recorded in the store still runs (one policy for every stage).

A send run's claim on delivery rows and a scheduler job run both record
their host and process id; a later run uses :func:`process_alive` to tell a
dead run's leftovers from a live run's work.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def process_alive(host: str, pid: int) -> bool | None:
    """Whether process ``pid`` of ``host`` still runs.

    None when it cannot be told: another host, or Windows (where
    ``os.kill(pid, 0)`` would end the process). A process of another user
    counts as running; a zombie (killed, not yet reaped) as dead.
    """
    if host != socket.gethostname() or sys.platform == "win32":
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): kill(0) said it exists
        return True
    return state != "Z"
