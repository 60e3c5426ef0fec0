"""The sending loop of `send` (deliver/campaign.py): retries and their backoff, the
settings' lower limits, what a run reports (progress, --json) and when it stops.

Real SMTP server (aiosmtpd on a free port), real SQLite file and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event

from pressreview.config import Config
from pressreview.deliver import journal
from pressreview.deliver.campaign import deliveries_for, send_issue
from pressreview.errors import DeliveryError
from pressreview.store import Store
from pressreview.store import deliveries as db
from tests.fixtures_deliver import (
    Setup,
    Sink,
    delivery_env,
    free_port,
    store_setup,
)
from tests.test_deliveries import HangUpAfterData

ADDRESSES = [f"destinataire{i}@example.fr" for i in range(5)]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    delivery_env(monkeypatch)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
def setup(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], store_url: str
) -> Setup:
    return store_setup(make_config, store_for, store_url, ADDRESSES)


def _as_seconds(value: datetime) -> float:
    return value.timestamp() if value.tzinfo else value.replace(tzinfo=None).timestamp()


# -- temporary failures: backoff, then give up ---------------------------------------------


def test_a_greylisted_address_is_retried_after_the_backoff_doubled_each_time(
    setup: Setup, sink: Sink, store_for: Callable[[Config], Store]
) -> None:
    backoff = 0.3
    greylisted = ADDRESSES[0]
    config, store = setup(
        sink.delivery_config(max_attempts=3, retry_backoff_seconds=backoff, pool_size=1),
        ADDRESSES[:3],
    )
    sink.handler.rcpt_replies[greylisted] = "451 4.7.1 greylisted, try again later"
    attempts: list[float] = []
    deferred: list[tuple[str, int, float]] = []
    reader = store_for(config)

    def on_rcpt(address: str) -> None:
        if address == greylisted:
            attempts.append(time.monotonic())
        elif not deferred:  # the next message after the first 451: how was the row left?
            row = next(r for r in deliveries_for(reader, 12) if r["email"] == greylisted)
            wait = _as_seconds(row["not_before"]) - _as_seconds(row["updated_at"])
            deferred.append((row["status"], row["attempts"], wait))

    sink.handler.on_rcpt = on_rcpt
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed, report.deferred) == (2, 1, 2)
    (status, tries, wait) = deferred[0]
    assert (status, tries) == ("queued", 1)
    assert backoff - 0.05 <= wait <= backoff + 0.05, wait
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= backoff
    assert attempts[2] - attempts[1] >= 2 * backoff
    row = next(r for r in deliveries_for(store, 12) if r["email"] == greylisted)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["last_error"].startswith("gave up after 3 attempts: RCPT TO: 451 4.7.1 greylisted")
    assert report.errors == [(greylisted, row["last_error"])]


def test_settings_below_their_minimum_mean_one_attempt_and_no_wait(
    setup: Setup, sink: Sink
) -> None:
    config, store = setup(
        sink.delivery_config(max_attempts=0, retry_backoff_seconds=-5, max_connection_failures=0),
        ADDRESSES[:2],
    )
    sink.handler.rcpt_replies[ADDRESSES[0]] = "451 4.7.1 greylisted"
    report = send_issue(config, store, 12)
    assert (report.sent, report.failed, report.deferred) == (1, 1, 0)
    row = next(r for r in deliveries_for(store, 12) if r["email"] == ADDRESSES[0])
    assert (row["status"], row["attempts"]) == ("failed", 1)


# -- what a run reports ----------------------------------------------------------------------


def test_progress_reports_each_outcome_once(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(pool_size=2))
    sink.handler.rcpt_replies[ADDRESSES[1]] = "550 5.1.1 no such user"
    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def progress(outcome: str, done: int, total: int) -> None:
        with lock:
            seen.append((outcome, done, total))

    report = send_issue(config, store, 12, progress=progress)
    assert Counter(outcome for outcome, _, _ in seen) == {"sent": 4, "failed": 1}
    assert sorted(done for _, done, _ in seen) == [1, 2, 3, 4, 5]
    assert {total for _, _, total in seen} == {5}
    assert (report.sent, report.failed) == (4, 1)


def _dead_run_left(config: Config, store: Store) -> tuple[str, str]:
    """A run of this host that died: one row handed over (journal line), one not."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    run = f"{socket.gethostname()}/{proc.pid}/deadbeef"
    token = f"{run}/0.1"
    send_issue(config, store, 12, limit=0)
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, 12)
        assert issue_id is not None
        first, second = db.claim(conn, issue_id, token, 2)
        for row in (first, second):
            assert db.open_attempt(conn, row["id"], token, row["email"])
            conn.commit()
    dead = journal.HandoverJournal(config.resolve(config.delivery.journal_dir), run)
    dead.mark(second["id"], token)
    dead.close(remove=False)
    return first["email"], second["email"]


def test_json_report_of_a_run_after_a_crash(setup: Setup, cli: Callable[..., Any]) -> None:
    handler = HangUpAfterData(hang_up_for={ADDRESSES[4]})
    handler.rcpt_replies[ADDRESSES[3]] = "550 5.1.1 <destinataire3@example.fr>: unknown"
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        delivery = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none"},
            "rate_per_second": 0,
            "pool_size": 1,
        }
        config, store = setup(delivery)
        requeued, handed_over = _dead_run_left(config, store)
        result = cli(config, "send", "12", "--json")
    finally:
        controller.stop()
    assert result.exit_code == 1  # one failed
    report = json.loads(result.output)
    assert report == {
        "number": 12,
        "transport": f"SMTP server 127.0.0.1:{controller.port}",
        "sent": 2,
        "failed": 1,
        "skipped": 1,
        "unconfirmed": 1,
        "requeued_after_crash": 1,
        "marked_unconfirmed_after_crash": 1,
        "test_to": None,
        "dry_run": False,
        "recipients": [],
        "errors": [
            {
                "email": ADDRESSES[3],
                "error": "RCPT TO: 550 5.1.1 <destinataire3@example.fr>: unknown",
            },
            {
                "email": ADDRESSES[4],
                "error": report["errors"][1]["error"],
            },
        ],
        "totals": {"sent": 2, "failed": 1, "unconfirmed": 2},
    }
    assert report["errors"][1]["error"].startswith("connection lost waiting for the server")
    assert requeued in {m.recipients[0] for m in handler.received}
    assert handed_over not in {m.recipients[0] for m in handler.received}


def test_a_run_that_stops_says_how_many_were_sent_and_left(setup: Setup) -> None:
    sink = Sink()
    sink.controller.start()
    config, store = setup(sink.delivery_config(pool_size=1))

    def stop_after_two(count: int) -> None:
        if count == 2:
            threading.Thread(target=sink.controller.stop).start()

    sink.handler.on_data = stop_after_two
    with pytest.raises(DeliveryError) as caught:
        send_issue(config, store, 12)
    rows = deliveries_for(store, 12)
    queued = sum(1 for r in rows if r["status"] == "queued")
    assert queued == len(ADDRESSES) - 2
    message = str(caught.value)
    assert message.startswith(f"cannot connect to SMTP server 127.0.0.1:{sink.port}")
    assert message.endswith(
        f"; 2 sent in this run, {queued} still queued: run `pressreview send 12` again"
    )
    assert not [p for p in config.resolve(config.delivery.journal_dir).glob("*.log")]
    assert "sending" not in {r["status"] for r in rows}


def test_ctrl_c_lets_the_message_under_way_finish_and_gives_the_rest_back(
    setup: Setup, sink: Sink
) -> None:
    """Ctrl-C while the worker waits for its turn (the rate limit's pause) before its third
    message: when `send` returns, that message is sent and the rest is queued again."""
    config, store = setup(sink.delivery_config(pool_size=1, rate_per_second=1))
    main = threading.main_thread().ident
    assert main is not None

    def interrupt_after_the_second(count: int) -> None:
        if count == 2:  # 0.2 s after its 250, the worker is in the one-second pause
            threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()

    sink.handler.on_data = interrupt_after_the_second
    with pytest.raises(KeyboardInterrupt):
        send_issue(config, store, 12)
    rows = deliveries_for(store, 12)  # at once: the run has settled what it held
    sink.handler.on_data = None
    assert Counter(r["status"] for r in rows) == {"sent": 3, "queued": len(ADDRESSES) - 3}
    assert all(r["claimed_by"] is None for r in rows)
    report = send_issue(config, store, 12)
    assert (report.sent, report.skipped, report.requeued) == (len(ADDRESSES) - 3, 3, 0)
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES}


def test_a_test_copy_is_marked_and_recorded_for_nobody(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(), ADDRESSES[:1])
    report = send_issue(config, store, 12, test_to="Moi@Example.FR")
    assert (report.sent, report.test_to) == (1, "Moi@example.fr")
    (received,) = sink.handler.received
    assert received.recipients == ["Moi@example.fr"]
    assert received.message["Subject"].startswith("[TEST] ")
    assert re.fullmatch(r"<pr\.12\.test\.[0-9a-f]{12}@example\.org>", received.message_id)
    assert deliveries_for(store, 12) == []


def test_a_run_waiting_for_a_deferred_row_sleeps_instead_of_polling(
    setup: Setup, sink: Sink
) -> None:
    """Half a second of backoff costs a handful of queries, not a busy loop on the database."""
    config, store = setup(
        sink.delivery_config(max_attempts=2, retry_backoff_seconds=0.5, pool_size=1),
        ADDRESSES[:1],
    )
    sink.handler.data_replies = ["451 4.3.0 try again later"]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        report = send_issue(config, store, 12)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert (report.sent, report.deferred) == (1, 1)
    assert len(statements) < 100, len(statements)


def test_max_connection_failures_below_one_stops_at_the_first_failure(setup: Setup) -> None:
    from tests.fixtures_deliver import SinkHandler
    from tests.test_deliver_failures import Dropper, DroppingController

    handler = SinkHandler()
    controller = DroppingController(
        handler, Dropper(drops=1, after_bytes=0), hostname="127.0.0.1", port=free_port()
    )
    controller.start()
    try:
        delivery = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none"},
            "rate_per_second": 0,
            "pool_size": 1,
            "max_connection_failures": 0,
        }
        config, store = setup(delivery)
        with pytest.raises(DeliveryError, match=r"failed 1 times in a row"):
            send_issue(config, store, 12)
    finally:
        controller.stop()
    assert handler.received == []
    assert {r["status"] for r in deliveries_for(store, 12)} == {"queued"}


def test_a_server_down_at_the_start_leaves_no_journal_behind(setup: Setup) -> None:
    port = free_port()
    delivery = {
        "transport": "smtp",
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        "rate_per_second": 0,
    }
    config, store = setup(delivery, ADDRESSES[:2])
    with pytest.raises(DeliveryError, match=rf"cannot connect to SMTP server 127.0.0.1:{port}"):
        send_issue(config, store, 12)
    assert list(config.resolve(config.delivery.journal_dir).glob("*.log")) == []
    assert {r["status"] for r in deliveries_for(store, 12)} == {"queued"}
