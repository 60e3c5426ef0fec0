"""Two `send` runs at the same time never deliver a row twice (SQLite and PostgreSQL).

The race is forced, not left to luck: each run has its own store (its own
engine and connections, as two processes would), and a SQLAlchemy event on
run B's engine holds B at the exact point where it has read the queued rows
and is about to claim them, while run A claims and sends them. A real SMTP
server (aiosmtpd) counts what each subscriber received.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from pressreview.config import Config
from pressreview.deliver.campaign import SendReport, deliveries_for, send_issue
from pressreview.store import Store
from pressreview.subscribers import add_subscriber
from tests.fixtures_deliver import SECRET, Sink, publish_fixed_issue

ADDRESSES = [f"lecteur{i}@example.fr" for i in range(7)]
WAIT = 20.0  # seconds: a step of the interleaving that never comes fails the test


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    monkeypatch.delenv("PRESSREVIEW_SMTP_USERNAME", raising=False)
    monkeypatch.delenv("PRESSREVIEW_SMTP_PASSWORD", raising=False)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


Stores = tuple[Config, Store, Store]


@pytest.fixture
def two_runs(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    sink: Sink,
) -> Stores:
    """A published issue, seven subscribers, and two stores on the same database."""
    config = make_config(database_url=store_url, delivery=sink.delivery_config(pool_size=1))
    store_a = store_for(config)
    publish_fixed_issue(store_a)
    for address in ADDRESSES:
        add_subscriber(store_a, address, actor="test")
    return config, store_a, store_for(config)


def _is_claim(statement: str, parameters: Any) -> bool:
    """The UPDATE that claims queued rows (the only one that sets status 'sending')."""
    if not statement.lstrip().upper().startswith("UPDATE DELIVERIES SET STATUS"):
        return False
    values: Sequence[Any] = (
        list(parameters.values()) if isinstance(parameters, dict) else list(parameters or ())
    )
    return "sending" in values


def _assert_each_once(store: Store, sink: Sink, reports: list[SendReport]) -> None:
    assert sink.handler.per_recipient() == {a: 1 for a in ADDRESSES}
    assert sum(sink.handler.message_ids().values()) == len(ADDRESSES)
    assert sum(r.sent for r in reports) == len(ADDRESSES)
    rows = deliveries_for(store, 12)
    assert [r["status"] for r in rows] == ["sent"] * len(ADDRESSES)
    assert all(r["attempts"] == 1 and r["claimed_by"] is None for r in rows)


def test_a_run_that_read_the_queue_before_another_run_sent_it_sends_nothing(
    two_runs: Stores, sink: Sink
) -> None:
    """B has read the queued ids; A claims and sends every row; then B's claim comes."""
    config, store_a, store_b = two_runs
    run_a: list[SendReport] = []

    def a_runs_first(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if _is_claim(statement, parameters) and not run_a:
            run_a.append(send_issue(config, store_a, 12))

    event.listen(store_b.engine, "before_cursor_execute", a_runs_first)
    run_b = send_issue(config, store_b, 12)
    assert len(run_a) == 1, "run B never claimed: the interleaving did not happen"
    _assert_each_once(store_a, sink, [run_a[0], run_b])
    assert (run_a[0].sent, run_b.sent) == (len(ADDRESSES), 0)


def test_a_claim_during_another_runs_smtp_transaction_takes_nothing(
    two_runs: Stores, sink: Sink
) -> None:
    """B has read the queued ids; A claims them all and opens the SMTP transaction of its
    first row; B's claim runs right then (while the server answers A's RCPT TO); A goes on."""
    config, store_a, store_b = two_runs
    b_at_claim, go_b, b_claimed = threading.Event(), threading.Event(), threading.Event()
    held: list[bool] = []

    def hold_b(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if _is_claim(statement, parameters) and not b_at_claim.is_set():
            b_at_claim.set()
            assert go_b.wait(WAIT)
            held.append(True)

    def b_done(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if held and _is_claim(statement, parameters):
            b_claimed.set()

    event.listen(store_b.engine, "before_cursor_execute", hold_b)
    event.listen(store_b.engine, "after_cursor_execute", b_done)
    run_b: list[SendReport] = []
    failure: list[BaseException] = []

    def b() -> None:
        try:
            run_b.append(send_issue(config, store_b, 12))
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=b, name="run-b")
    thread.start()
    try:
        assert b_at_claim.wait(WAIT), "run B never reached its claim"

        def first_rcpt(_: str) -> None:
            if not go_b.is_set():
                go_b.set()  # A's first row: attempt committed, SMTP transaction under way
                assert b_claimed.wait(WAIT)

        sink.handler.on_rcpt = first_rcpt
        run_a = send_issue(config, store_a, 12)
    finally:
        go_b.set()
        thread.join(WAIT * 2)
        sink.handler.on_rcpt = None
    assert not failure, failure
    assert b_claimed.is_set(), "run B's claim did not run during A's transaction"
    _assert_each_once(store_a, sink, [run_a, run_b[0]])
    assert (run_a.sent, run_b[0].sent) == (len(ADDRESSES), 0)
