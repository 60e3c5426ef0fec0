"""What a `send` run does with the rows a dead run left behind (docs/delivery.md, the table).

The dead run's state is made with the same store functions and journal the
sender uses, in the order it uses them (claim, open the attempt, journal line
before the end of data), under a claim token of a process that has exited, or
of another host. Then a real `send` runs against a real SMTP server (aiosmtpd)
that counts what each subscriber received.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from pressreview.config import Config
from pressreview.deliver import journal
from pressreview.deliver.campaign import LEASE, claim_is_dead, deliveries_for, send_issue
from pressreview.store import Store
from pressreview.store import deliveries as db
from pressreview.store.schema import deliveries, now
from pressreview.subscribers import add_subscriber
from tests.fixtures_deliver import SECRET, Sink, publish_fixed_issue

ADDRESSES = [f"relecteur{i}@example.fr" for i in range(6)]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    monkeypatch.delenv("PRESSREVIEW_SMTP_USERNAME", raising=False)
    monkeypatch.delenv("PRESSREVIEW_SMTP_PASSWORD", raising=False)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
def queued(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    sink: Sink,
) -> tuple[Config, Store, int]:
    """Issue 12 published, one queued row per subscriber, nothing sent."""
    config = make_config(database_url=store_url, delivery=sink.delivery_config(pool_size=1))
    store = store_for(config)
    publish_fixed_issue(store)
    for address in ADDRESSES:
        add_subscriber(store, address, actor="test")
    assert send_issue(config, store, 12, limit=0).sent == 0
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, 12)
    assert issue_id is not None
    return config, store, issue_id


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _claim(store: Store, issue_id: int, token: str, n: int) -> list[db.ClaimedRow]:
    with store.connect() as conn:
        rows = db.claim(conn, issue_id, token, n)
    assert len(rows) == n
    return rows


def _open(store: Store, row: db.ClaimedRow, token: str) -> None:
    """The attempt is committed open: the run was about to say MAIL FROM."""
    with store.connect() as conn:
        assert db.open_attempt(conn, row["id"], token, row["email"])
        conn.commit()


def _age(store: Store, ids: list[int], age: timedelta) -> None:
    with store.begin() as conn:
        conn.execute(
            update(deliveries).where(deliveries.c.id.in_(ids)).values(updated_at=now() - age)
        )


def _by_email(store: Store) -> dict[str, dict[str, Any]]:
    return {r["email"]: r for r in deliveries_for(store, 12)}


def test_a_dead_run_on_this_host_is_settled_by_its_journal(
    queued: tuple[Config, Store, int], sink: Sink
) -> None:
    config, store, issue_id = queued
    run = f"{socket.gethostname()}/{_dead_pid()}/deadbeef"
    token = f"{run}/0.1"
    assert claim_is_dead(token)
    # claimed 3 rows: #0 not tried yet, #1 attempt open (killed before the "."),
    # #2 attempt open and its journal line written (killed after the ".")
    claimed = _claim(store, issue_id, token, 3)
    _open(store, claimed[1], token)
    _open(store, claimed[2], token)
    folder = config.resolve(config.delivery.journal_dir)
    dead_journal = journal.HandoverJournal(folder, run)
    dead_journal.mark(claimed[2]["id"], token)
    dead_journal.close(remove=False)

    report = send_issue(config, store, 12)

    assert (report.requeued, report.marked_unconfirmed) == (2, 1)
    assert report.sent == len(ADDRESSES) - 1
    handed_over = claimed[2]["email"]
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES if a != handed_over}
    rows = _by_email(store)
    assert rows[handed_over]["status"] == "unconfirmed"
    assert "probably delivered" in rows[handed_over]["last_error"]
    assert rows[handed_over]["claimed_by"] is None
    assert report.skipped == 1  # the unconfirmed row counts as done for this run
    assert not journal.journal_path(folder, run).exists()  # the dead run's journal has served
    assert list(folder.glob("*.log")) == []  # and this run's own journal is gone too

    # --retry-unconfirmed sends it again, with the Message-ID stored before the first attempt
    again = send_issue(config, store, 12, retry_unconfirmed=True)
    assert again.sent == 1
    assert sink.handler.per_recipient()[handed_over] == 1
    (received,) = [m for m in sink.handler.received if m.recipients == [handed_over]]
    assert received.message_id == claimed[2]["message_id"] == rows[handed_over]["message_id"]
    assert _by_email(store)[handed_over]["status"] == "sent"


def test_a_run_of_another_host_is_left_alone_until_its_lease_has_passed(
    queued: tuple[Config, Store, int], sink: Sink
) -> None:
    config, store, issue_id = queued
    token = "autre-serveur.example.org/4242/cafe0001/0.1"
    assert not claim_is_dead(token)  # another host: cannot tell
    claimed = _claim(store, issue_id, token, 2)
    _open(store, claimed[1], token)  # its journal is on the other host: unknown
    theirs = {r["email"] for r in claimed}

    _age(store, [r["id"] for r in claimed], LEASE - timedelta(minutes=1))
    report = send_issue(config, store, 12)
    assert (report.requeued, report.marked_unconfirmed) == (0, 0)
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES if a not in theirs}
    rows = _by_email(store)
    assert {rows[a]["status"] for a in theirs} == {"sending"}
    assert {rows[a]["claimed_by"] for a in theirs} == {token}

    _age(store, [r["id"] for r in claimed], LEASE + timedelta(minutes=1))
    report = send_issue(config, store, 12)
    assert (report.requeued, report.marked_unconfirmed, report.sent) == (1, 1, 1)
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES if a != claimed[1]["email"]}
    rows = _by_email(store)
    assert rows[claimed[0]["email"]]["status"] == "sent"
    assert rows[claimed[1]["email"]]["status"] == "unconfirmed"


def test_a_live_run_of_this_host_keeps_its_rows(
    queued: tuple[Config, Store, int], sink: Sink
) -> None:
    config, store, issue_id = queued
    token = f"{socket.gethostname()}/{os.getpid()}/11ve0001/0.1"  # this process
    assert not claim_is_dead(token)
    claimed = _claim(store, issue_id, token, 2)
    _open(store, claimed[0], token)
    report = send_issue(config, store, 12)
    assert (report.requeued, report.marked_unconfirmed) == (0, 0)
    assert report.sent == len(ADDRESSES) - 2
    rows = _by_email(store)
    assert {rows[r["email"]]["claimed_by"] for r in claimed} == {token}


@pytest.mark.parametrize(
    ("claim", "dead"),
    [
        ("", False),
        ("host-only", False),
        ("a/b", False),
        (f"{socket.gethostname()}/not-a-pid/run/0.1", True),
    ],
)
def test_claims_that_cannot_be_a_live_run(claim: str, dead: bool) -> None:
    assert claim_is_dead(claim) is dead
