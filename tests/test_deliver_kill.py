"""Kill -9 `pressreview send` at random moments, many times, on SQLite and PostgreSQL.

A real SMTP server (aiosmtpd) counts per subscriber what it accepted. The
sender runs in a subprocess, killed with SIGKILL a random number of messages
into its run, either a random few milliseconds after a message was accepted
(so the kill lands anywhere in the protocol: between two messages, during the
envelope, the body, the wait for 250, the commit) or by the server itself a
random instant after it read the last line of a message body, before the
final "." (where a database round trip used to sit). Then runs without kill
finish the issue.

Target: no subscriber gets two messages, none is missing, and no more rows are
left ``unconfirmed`` than there were kills (one connection: one message in
flight at each kill).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from pressreview.config import Config
from pressreview.deliver.campaign import deliveries_for, send_issue
from pressreview.store import Store
from pressreview.subscribers import import_subscribers
from tests.fixtures_deliver import SECRET, SinkHandler, free_port, publish_fixed_issue

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 300
KILLS = 12


class BodyEnd:
    """Kills the sender a random instant after the server read the end of the k-th body."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.bodies = 0
        self.pid: int | None = None
        self.at: int | None = None
        self.fired = False

    def seen(self) -> None:
        self.bodies += 1
        if self.pid is not None and self.at is not None and self.bodies >= self.at:
            time.sleep(self.rng.uniform(0, 0.002))
            os.kill(self.pid, signal.SIGKILL)
            self.fired = True
            self.at = None


class WatchingSMTP(SMTP):
    """Calls ``body_end.seen()`` when it reads the closing MIME boundary (before the ".")."""

    body_end: BodyEnd

    async def smtp_DATA(self, arg: str) -> None:
        reader = self._reader
        body_end = self.body_end

        class Reader:
            def __getattr__(self, name: str) -> Any:
                return getattr(reader, name)

            async def readuntil(self, separator: bytes = b"\n") -> bytes:
                line = await reader.readuntil(separator)
                if line.startswith(b"--") and line.endswith(b"--\r\n"):
                    body_end.seen()
                return line

        self._reader = Reader()  # type: ignore[assignment]
        try:
            await super().smtp_DATA(arg)
        finally:
            self._reader = reader


class WatchingController(Controller):
    def __init__(self, handler: SinkHandler, body_end: BodyEnd):
        super().__init__(handler, hostname="127.0.0.1", port=free_port())
        self.body_end = body_end

    def factory(self) -> SMTP:
        server = WatchingSMTP(self.handler, **self.SMTP_kwargs)
        server.body_end = self.body_end
        return server


def _sender(config: Config) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PRESSREVIEW_SECRET_KEY": SECRET}
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pressreview", "--config", str(config.path), "send", "12"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])
def test_random_kills_lose_nothing_and_send_nothing_twice(
    pipelining: bool,
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    seed = int(os.environ.get("PRESSREVIEW_TEST_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    addresses = [f"lecteur{i:03d}@example.fr" for i in range(SUBSCRIBERS)]
    csv = tmp_path / "abonnes.csv"
    csv.write_text("email\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    handler = SinkHandler(pipelining=pipelining)
    body_end = BodyEnd(rng)
    controller = WatchingController(handler, body_end)
    controller.start()
    try:
        delivery = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none"},
            "rate_per_second": 0,
            "pool_size": 1,
        }
        config = make_config(database_url=store_url, delivery=delivery)
        store = store_for(config)
        publish_fixed_issue(store)
        import_subscribers(store, csv, actor="test")
        received = handler.received
        kills = 0
        started = time.monotonic()
        while kills < KILLS and len(received) < SUBSCRIBERS - 10:
            target = len(received) + rng.randint(1, 20)
            proc = _sender(config)
            if rng.random() < 0.5:  # the server kills it right after a body, before the "."
                body_end.fired = False
                body_end.at = body_end.bodies + (target - len(received))
                body_end.pid = proc.pid
                while not body_end.fired and proc.poll() is None:
                    time.sleep(0.001)
                kills += body_end.fired
                body_end.at = body_end.pid = None
            else:
                while len(received) < target and proc.poll() is None:
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0, 0.004))
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
            _, stderr = proc.communicate(timeout=60)
            assert b"Traceback" not in stderr, stderr.decode()
        killed_runs = time.monotonic() - started
        report = send_issue(config, store, 12)
        rows = deliveries_for(store, 12)
        unconfirmed = [r["email"] for r in rows if r["status"] == "unconfirmed"]
        per_recipient = handler.per_recipient()
        twice = {a: n for a, n in per_recipient.items() if n > 1}
        missing = [a for a in addresses if a not in per_recipient]
        print(
            f"seed {seed}: {kills} kills in {killed_runs:.1f} s, {len(received)} messages, "
            f"{len(unconfirmed)} unconfirmed, {len(twice)} twice, {len(missing)} missing, "
            f"last run sent {report.sent}"
        )
        assert twice == {}, f"seed {seed}"
        assert missing == [], f"seed {seed}: {missing} (unconfirmed: {unconfirmed})"
        assert len(unconfirmed) <= kills, f"seed {seed}"
        assert {r["status"] for r in rows} <= {"sent", "unconfirmed"}
        # nothing left to do; every Message-ID arrived once
        assert send_issue(config, store, 12).sent == 0
        assert max(handler.message_ids().values()) == 1
        assert set(handler.pipelined) == {pipelining}
        assert len(received) == SUBSCRIBERS
        # the journals of the killed runs were read and removed
        journals = list(config.resolve(config.delivery.journal_dir).glob("*.log"))
        assert journals == []
    finally:
        controller.stop()
