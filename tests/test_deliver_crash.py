"""Kill -9 `pressreview send` at several points, run it again: exactly one message each.

A real SMTP server (aiosmtpd, in this process) counts what it accepted; the
sender runs in a subprocess that the server's hooks kill with SIGKILL at a
precise moment of the k-th message:

- ``rcpt``: while the server answers RCPT TO (envelope sent, no body yet);
- ``data``: after the server received the whole message, before it answers
  250 (the sender never learns the outcome: the ambiguous window);
- ``reply``: a few milliseconds after the 250 (between the reply and the commit,
  or just after the commit);
- ``pause``: from the test, between two messages (the rate limit's sleep).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pressreview.config import Config
from pressreview.deliver.campaign import deliveries_for, send_issue
from pressreview.store import Store
from pressreview.subscribers import add_subscriber
from tests.fixtures_deliver import SECRET, Sink, publish_fixed_issue

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ADDRESSES = [f"lecteur{i:02d}@example.fr" for i in range(10)]


def _start_sender(config: Config) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PRESSREVIEW_SECRET_KEY": SECRET}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pressreview", "--config", str(config.path), "send", "12"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_and_kill(config: Config, sink: Sink, point: str, k: int) -> None:
    proc: subprocess.Popen[bytes] | None = None
    killed = threading.Event()

    def kill() -> None:
        if proc is not None and not killed.is_set():
            killed.set()
            os.kill(proc.pid, signal.SIGKILL)

    rcpts = 0

    def on_rcpt(_: str) -> None:
        nonlocal rcpts
        rcpts += 1
        if point == "rcpt" and rcpts == k:
            kill()

    def on_data(count: int) -> None:
        if count == k and point == "data":
            kill()
        elif count == k and point == "reply":
            threading.Timer(0.002, kill).start()

    sink.handler.on_rcpt = on_rcpt
    sink.handler.on_data = on_data
    proc = _start_sender(config)
    if point == "pause":
        deadline = time.monotonic() + 60
        while (
            len(sink.handler.received) < k and time.monotonic() < deadline and proc.poll() is None
        ):
            time.sleep(0.005)
        time.sleep(0.05)  # into the rate limit's pause before the next message
        kill()
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        sink.handler.on_rcpt = sink.handler.on_data = None
    assert killed.is_set(), f"the sender ended before the kill point: {stderr.decode()}"
    assert proc.returncode == -signal.SIGKILL


def _setup(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    sink: Sink,
    pool_size: int,
    rate: float,
    database_url: str | None = None,
) -> tuple[Config, Store]:
    extra = {"database_url": database_url} if database_url else {}
    config = make_config(
        delivery=sink.delivery_config(pool_size=pool_size, rate_per_second=rate), **extra
    )
    store = store_for(config)
    publish_fixed_issue(store)
    for address in ADDRESSES:
        add_subscriber(store, address, actor="test")
    return config, store


CASES = [
    pytest.param("rcpt", 4, 1, id="killed-during-rcpt"),
    pytest.param("data", 5, 1, id="killed-before-250", marks=pytest.mark.slow),
    pytest.param("reply", 3, 1, id="killed-just-after-250", marks=pytest.mark.slow),
    pytest.param("pause", 6, 1, id="killed-between-messages", marks=pytest.mark.slow),
    pytest.param("rcpt", 1, 1, id="killed-at-the-first-message", marks=pytest.mark.slow),
    pytest.param("data", 7, 2, id="killed-before-250-two-connections", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("point", "k", "pool_size"), CASES)
def test_kill_then_rerun_gives_exactly_one_message_each(
    point: str,
    k: int,
    pool_size: int,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    monkeypatch: pytest.MonkeyPatch,
    store_url: str,
) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    with Sink() as sink:
        config, store = _setup(
            make_config, store_for, sink, pool_size, rate=20, database_url=store_url
        )
        _run_and_kill(config, sink, point, k)
        first_run = len(sink.handler.received)
        assert first_run < len(ADDRESSES)
        report = send_issue(config, store, 12)
        per_recipient = sink.handler.per_recipient()
        assert per_recipient == {a: 1 for a in ADDRESSES}, per_recipient
        assert sum(sink.handler.message_ids().values()) == len(ADDRESSES)
        rows = deliveries_for(store, 12)
        assert all(r["status"] in ("sent", "unconfirmed") for r in rows)
        assert report.sent == len(ADDRESSES) - first_run
        if point == "data":
            # the server had the message, the sender never heard back: not sent again
            assert report.marked_unconfirmed >= 1
            assert any(r["status"] == "unconfirmed" for r in rows)
        if point == "rcpt":
            assert report.requeued >= 1  # claimed but never handed over: sent by the re-run
        # and a third run has nothing left to do
        again = send_issue(config, store, 12)
        assert again.sent == 0 and len(sink.handler.received) == len(ADDRESSES)


@pytest.mark.slow
def test_two_kills_in_a_row(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    with Sink() as sink:
        config, store = _setup(make_config, store_for, sink, 1, rate=20)
        _run_and_kill(config, sink, "data", 3)
        _run_and_kill(config, sink, "rcpt", len(sink.handler.received) + 3)
        send_issue(config, store, 12)
        assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES}


def test_a_live_run_is_not_taken_for_a_dead_one(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second `send` while the first is still running leaves the first one's rows alone."""
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    with Sink() as sink:
        config, store = _setup(make_config, store_for, sink, 1, rate=8)
        proc = _start_sender(config)
        deadline = time.monotonic() + 60
        while not sink.handler.received and time.monotonic() < deadline:
            time.sleep(0.005)
        other: Any = send_issue(config, store, 12)  # concurrent run
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES}
        assert other.requeued == 0 and other.marked_unconfirmed == 0
