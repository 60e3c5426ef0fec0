"""Promises of the delivery log (store/deliveries.py) as `send` users see them.

Real SMTP server (aiosmtpd), real SQLite file and PostgreSQL database. Where a
test needs a state only a second run could make (rows of another run), it
drives the store functions in the order that run would.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from pressreview.config import Config
from pressreview.deliver.campaign import LEASE, claim_is_dead, deliveries_for, send_issue
from pressreview.store import Store
from pressreview.store import deliveries as db
from pressreview.store.schema import deliveries, now
from pressreview.subscribers import remove_subscriber
from tests.fixtures_deliver import (
    Received,
    Setup,
    Sink,
    SinkHandler,
    delivery_env,
    free_port,
    store_setup,
)

ADDRESSES = [f"abonnee{i}@example.fr" for i in range(4)]


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


def _issue_id(store: Store, number: int) -> int:
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, number)
    assert issue_id is not None
    return issue_id


def _rows(store: Store, number: int = 12) -> dict[str, dict[str, Any]]:
    return {r["email"]: r for r in deliveries_for(store, number)}


# -- --retry-failed / --retry-unconfirmed ------------------------------------------------


def test_retry_failed_gives_a_failed_row_its_attempts_back_and_touches_no_other_issue(
    setup: Setup, sink: Sink
) -> None:
    config, store = setup(sink.delivery_config(max_attempts=2, pool_size=1), issues=(11, 12))
    target = ADDRESSES[1]
    sink.handler.rcpt_replies[target] = "451 4.7.1 greylisted"
    for number in (11, 12):
        report = send_issue(config, store, number)
        assert (report.sent, report.failed) == (3, 1)
    assert _rows(store, 11)[target]["status"] == _rows(store, 12)[target]["status"] == "failed"

    # the address answers 451 once more, then accepts: with its attempts back the row
    # gets max_attempts tries again, so it is sent
    del sink.handler.rcpt_replies[target]
    sink.handler.data_replies = ["451 4.3.0 try again later"]
    report = send_issue(config, store, 12, retry_failed=True)
    assert (report.sent, report.failed, report.deferred) == (1, 0, 1)
    row = _rows(store, 12)[target]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    # issue 11's failed row stays failed until someone asks for it
    assert _rows(store, 11)[target]["status"] == "failed"
    assert sink.handler.per_recipient()[target] == 1


def test_a_row_queued_again_carries_no_trace_of_its_last_attempt(setup: Setup) -> None:
    """--retry-unconfirmed with nothing sent yet: the row is queued, without a sent_at."""
    handler = HangUpAfterData(hang_up_for={ADDRESSES[0]})
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config, store = setup(_smtp(controller.port))
        send_issue(config, store, 12)
        before = _rows(store)[ADDRESSES[0]]
        assert before["status"] == "unconfirmed" and before["sent_at"] is not None
        send_issue(config, store, 12, retry_unconfirmed=True, limit=0)
    finally:
        controller.stop()
    row = _rows(store)[ADDRESSES[0]]
    assert (row["status"], row["sent_at"], row["claimed_by"], row["attempts"]) == (
        "queued",
        None,
        None,
        0,
    )
    assert row["message_id"] == before["message_id"]


# -- a connection that ends after the end of data, before the answer ---------------------


class HangUpAfterData(SinkHandler):
    """Takes the message (the final "." was read), then hangs up without answering."""

    def __init__(self, hang_up_for: set[str]):
        super().__init__()
        self.hang_up_for = set(hang_up_for)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        (rcpt,) = envelope.rcpt_tos
        if rcpt not in self.hang_up_for:
            return await super().handle_DATA(server, session, envelope)
        self.hang_up_for.discard(rcpt)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, [rcpt], envelope.original_content, session.peer)
            )
        sock = server.transport.get_extra_info("socket")
        sock.shutdown(socket.SHUT_WR)  # a clean end of stream: no answer will come
        server.transport.close()
        return "250 never heard"


def _smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "transport": "smtp",
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5},
        "rate_per_second": 0,
        "retry_backoff_seconds": 0.01,
        "pool_size": 1,
        **extra,
    }


def test_no_answer_after_the_end_of_data_is_unconfirmed_and_not_sent_again(
    setup: Setup, cli: Callable[..., Any]
) -> None:
    handler = HangUpAfterData(hang_up_for={ADDRESSES[2]})
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config, store = setup(_smtp(controller.port))
        result = cli(config, "send", "12")
        assert result.exit_code == 0, result.output
        assert "3 sent, 0 failed, 0 skipped, 1 unconfirmed" in result.output
        assert f"{ADDRESSES[2]}: connection lost waiting for the server's answer" in result.output
        row = _rows(store)[ADDRESSES[2]]
        assert (row["status"], row["attempts"], row["claimed_by"]) == ("unconfirmed", 1, None)
        assert "connection lost waiting for the server's answer" in row["last_error"]
        assert handler.per_recipient() == {a: 1 for a in ADDRESSES}

        again = send_issue(config, store, 12)  # the server probably has it: not sent again
        assert (again.sent, again.skipped) == (0, 4)
        assert handler.per_recipient() == {a: 1 for a in ADDRESSES}

        retried = send_issue(config, store, 12, retry_unconfirmed=True)
        assert retried.sent == 1
        assert handler.per_recipient()[ADDRESSES[2]] == 2
        ids = {m.message_id for m in handler.received if m.recipients == [ADDRESSES[2]]}
        assert ids == {row["message_id"]}  # the same Message-ID: providers drop the copy
    finally:
        controller.stop()


# -- --dry-run ------------------------------------------------------------------------


def test_dry_run_counts_what_this_issue_has_delivered_or_may_have(setup: Setup, sink: Sink) -> None:
    config, store = setup(sink.delivery_config(pool_size=1), issues=(11, 12))
    assert send_issue(config, store, 11).sent == 4  # another issue: counts for nothing here
    send_issue(config, store, 12, limit=0)
    issue_id = _issue_id(store, 12)
    other_run = "autre-serveur.example.org/77/cafe0002/0.1"
    with store.connect() as conn:
        first, second, third = db.claim(conn, issue_id, other_run, 3)
        assert db.open_attempt(conn, first["id"], other_run, first["email"])
        db.mark_sent(conn, first["id"], other_run, 1)
        assert db.open_attempt(conn, second["id"], other_run, second["email"])
        db.mark_unconfirmed(conn, second["id"], other_run, 1, "no answer")
        conn.commit()
    # third stays "sending" (the other run is at it); the fourth is still queued
    report = send_issue(config, store, 12, dry_run=True)
    assert report.recipients == [ADDRESSES[3]]
    assert report.skipped == 3
    # someone who received it and then asked to be forgotten leaves an anonymous row
    remove_subscriber(store, first["email"], actor="test", forget=True)
    report = send_issue(config, store, 12, dry_run=True)
    assert (report.recipients, report.skipped) == ([ADDRESSES[3]], 2)
    assert third["email"] not in report.recipients


# -- a run gives back only what it still holds -------------------------------------------


def test_a_run_gives_back_only_the_rows_it_still_holds(setup: Setup, sink: Sink) -> None:
    """Run A (another host) claimed rows and went silent past the lease; run B took them
    over. When A comes back and gives its batch back, B's rows stay B's."""
    config, store = setup(sink.delivery_config())
    send_issue(config, store, 12, limit=0)
    issue_id = _issue_id(store, 12)
    run_a = "hote-a.example.org/10/aaaa0001/0.1"
    run_b = "hote-b.example.org/20/bbbb0001/0.1"
    with store.connect() as conn:
        held = db.claim(conn, issue_id, run_a, 4)
    with store.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.issue_id == issue_id)
            .values(updated_at=now() - LEASE - timedelta(minutes=1))
        )
    with store.connect() as conn:
        requeued, unconfirmed, dead = db.recover_stale(conn, issue_id, claim_is_dead, lease=LEASE)
        assert (requeued, unconfirmed, dead) == (4, 0, [run_a])
        taken = db.claim(conn, issue_id, run_b, 2)
        assert [r["id"] for r in taken] == [r["id"] for r in held[:2]]
        db.release(conn, [r["id"] for r in held], run_a)  # A stops: gives its batch back
        conn.commit()
        for row in held:  # and A's attempts find the rows no longer theirs
            assert not db.open_attempt(conn, row["id"], run_a, row["email"])
        conn.commit()
    rows = _rows(store)
    assert [rows[r["email"]]["claimed_by"] for r in held] == [run_b, run_b, None, None]
    assert [rows[r["email"]]["status"] for r in held] == ["sending", "sending", "queued", "queued"]
