"""The handover journal: which message a `send` run was handing over when it died.

Each run appends one line ``<delivery id> <claim token>`` to its own file in
``delivery.journal_dir`` immediately before it writes the SMTP end of data
(the final "."). The write is a single ``write(2)`` on a local file, with no
database round trip between it and the ".": once it returns the line survives
a kill -9 of the process (it is in the kernel's page cache), and the next
system call writes the ".".

When a later run finds a row left ``sending`` by a dead run on this host, the
journal of that run tells whether the row's message reached the point of no
return (line present: the server may have accepted it, the row becomes
``unconfirmed``) or not (no line: the server dropped the unfinished message,
the row is queued again). The first line holds the kernel's boot id: after a
reboot (power cut) the last lines may never have reached the disk, so the
journal is not trusted and every opened attempt becomes ``unconfirmed``.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from pressreview.deliver.transports import TransportUnavailable

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot of the machine ("" where the kernel does not say)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def run_of(claim: str) -> str:
    """The run part ``host/pid/run`` of a claim token ``host/pid/run/batch``."""
    return "/".join(claim.split("/")[:3])


def journal_path(folder: Path, run: str) -> Path:
    return folder / (re.sub(r"[^A-Za-z0-9._-]", "_", run.replace("/", "-")) + ".log")


class HandoverJournal:
    """The append-only journal of one run (created when the run starts)."""

    def __init__(self, folder: Path, run: str):
        self.path = journal_path(folder, run)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self.fd, f"boot {boot_id() or '-'}\n".encode("ascii"))
        except OSError as exc:
            raise TransportUnavailable(
                f"cannot write the delivery journal {self.path}: {exc.strerror} "
                "(check delivery.journal_dir)"
            ) from None

    def mark(self, delivery_id: int, claim: str) -> None:
        """Called right before the end of data: from now on the message may be delivered."""
        assert self.fd is not None
        try:
            os.write(self.fd, f"{delivery_id} {claim}\n".encode())
        except OSError as exc:
            raise TransportUnavailable(
                f"cannot write the delivery journal {self.path}: {exc.strerror}"
            ) from None

    def close(self, *, remove: bool) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()


def handed_over(folder: Path, claim: str) -> set[int] | None:
    """Rows of ``claim`` that reached the end of data, or None when the journal cannot tell.

    None: no journal for that run (another host, or removed), or one written
    before the last reboot.
    """
    try:
        lines = journal_path(folder, run_of(claim)).read_text("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not lines or lines[0] != f"boot {boot_id() or '-'}" or not boot_id():
        return None
    ids: set[int] = set()
    for line in lines[1:]:
        number, _, token = line.partition(" ")
        if token == claim and number.isdigit():
            ids.add(int(number))
    return ids


def remove(folder: Path, run: str) -> None:
    """Drop the journal of a run whose rows are all settled."""
    with contextlib.suppress(OSError):
        journal_path(folder, run).unlink()
