"""Sending an issue to every active subscriber: resumable, never twice.

``send_issue`` renders the issue once, queues one delivery row per active
subscriber (idempotent), then claims rows in small batches and hands them to
``transport.workers`` threads, each with its own reused connection and its
own database connection, under one rate limit.

Exactly-once, and its one honest limit (docs/delivery.md has the long form):
before MAIL FROM the row's attempt is committed open (``sent_at`` set, the
claim re-checked); right before the final "." of SMTP DATA (the point of no
return: a server discards a message whose DATA never ended) one line goes to
the run's local handover journal, with no database round trip between that
write and the "."; after the server's 250 the row is committed ``sent`` (without
a rate limit, in the same commit as the next row's attempt, which follows at
once: one commit per message). A run
killed before the point of no return leaves a row without a journal line,
which the next run sends again (nothing was delivered); a run killed after it
leaves a row the next run marks ``unconfirmed`` and does not send again. The
ambiguous window is thus from the "." to the commit of the 250 (plus the
microseconds between the journal write and the "."); ``send N
--retry-unconfirmed`` resends those rows with the same Message-ID, which many
mailbox providers use to drop duplicates.

A temporary failure (4xx, a dropped connection) does not hold a worker: the
row goes back to the queue with ``not_before`` (exponential backoff) and is
retried later in the run, or by the next run. After
``delivery.max_connection_failures`` consecutive connection failures or
timeouts the run stops: the server is down or too slow.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pressreview import urls
from pressreview.config import Config
from pressreview.deliver import journal
from pressreview.deliver.message import DkimSigner, MessageTemplate, dkim_signer, make_message_id
from pressreview.deliver.single import send_test_copies
from pressreview.deliver.transports import (
    ClaimLost,
    Envelope,
    HandoverUnknown,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    TransportUnavailable,
    open_transport,
)
from pressreview.deliver.transports import Connection as TransportConnection
from pressreview.errors import DeliveryError, NotFound
from pressreview.issues import get_snapshot
from pressreview.model import Snapshot
from pressreview.process import process_alive
from pressreview.render import render_email
from pressreview.store import Connection as StoreConnection
from pressreview.store import Store
from pressreview.store import deliveries as db
from pressreview.subscribers import list_subscribers
from pressreview.tokens import Tokens

#: A "sending" row not touched for this long belongs to a dead run (other hosts).
LEASE = timedelta(minutes=15)

#: A message made for a row: (row id, wire bytes, the same dot-stuffed for SMTP or None).
_Built = tuple[int, bytes, bytes | None]


@dataclass
class SendReport:
    """What a ``send`` run did. ``skipped`` = already sent before, or no longer subscribed."""

    number: int
    transport: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unconfirmed: int = 0
    requeued: int = 0
    marked_unconfirmed: int = 0
    deferred: int = 0
    test_to: str | None = None
    dry_run: bool = False
    recipients: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (address, error)
    totals: dict[str, int] = field(
        default_factory=dict
    )  # rows of the issue by status, after the run
    aborted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "transport": self.transport,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "unconfirmed": self.unconfirmed,
            "requeued_after_crash": self.requeued,
            "marked_unconfirmed_after_crash": self.marked_unconfirmed,
            "test_to": self.test_to,
            "dry_run": self.dry_run,
            "recipients": self.recipients,
            "errors": [{"email": e, "error": m} for e, m in self.errors],
            "totals": self.totals,
        }


ProgressCallback = Callable[[str, int, int], None]  # (outcome, done, total)


class RateLimiter:
    """At most ``rate`` messages a second over all workers (0 = no limit)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            current = self.clock()
            at = max(current, self.next_at)
            self.next_at = at + self.interval
        delay = at - current
        if delay > 0:
            self.sleep(delay)


def run_token() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def claim_is_dead(claimed_by: str) -> bool:
    """A claim made on this host by a process that no longer runs."""
    parts = claimed_by.split("/")
    if len(parts) < 3:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    return process_alive(parts[0], pid) is False


def _issue(store: Store, number: int) -> tuple[int, Snapshot]:
    snapshot = get_snapshot(store, number)
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, number)
    if issue_id is None:  # pragma: no cover - get_snapshot raised already
        raise NotFound(f"issue {number} does not exist")
    return issue_id, snapshot


def send_issue(
    config: Config,
    store: Store,
    number: int,
    *,
    test_to: str | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    retry_unconfirmed: bool = False,
    transport: Transport | None = None,
    progress: ProgressCallback | None = None,
    environ: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> SendReport:
    """Send published issue ``number`` to every active subscriber not yet sent to.

    ``test_to``: one "[TEST]" copy to that address, recorded for nobody.
    ``dry_run``: who would receive it; nothing is sent or queued.
    ``retry_failed`` / ``retry_unconfirmed``: queue those rows again first.
    ``transport``: defaults to :func:`open_transport` (``delivery.transport``).
    ``limit``: send at most this many messages in this run (the rest stays queued).
    Raises DeliveryError (one line) when the transport is unavailable; rows
    not handed over stay queued, so the next run sends them.
    """
    issue_id, snapshot = _issue(store, number)
    transport = transport or open_transport(config, environ=environ)
    report = SendReport(number=number, transport=transport.describe(), dry_run=dry_run)

    if dry_run:
        with store.connect() as conn:
            done = db.sent_subscriber_ids(conn, issue_id)
        active = list_subscribers(store, status="active")
        report.recipients = [s.email for s in active if s.id not in done]
        report.skipped = len(active) - len(report.recipients)
        return report

    tokens = Tokens.from_env(environ)
    signer = dkim_signer(config, environ)
    rendered = render_email(config, snapshot)

    if test_to:
        (report.test_to,) = send_test_copies(
            config,
            rendered,
            [test_to],
            transport=transport,
            signer=signer,
            message_id=lambda _index: make_message_id(config, number, "test"),
        )
        report.sent = 1
        return report

    template = MessageTemplate(config, rendered)
    with store.connect() as conn:
        report.requeued, report.marked_unconfirmed = _recover(
            conn, issue_id, config.resolve(config.delivery.journal_dir)
        )
    with store.begin() as conn:
        statuses = (["failed"] if retry_failed else []) + (
            ["unconfirmed"] if retry_unconfirmed else []
        )
        if statuses:
            db.requeue(conn, issue_id, statuses)
    with store.connect() as conn:
        fresh = db.active_without_row(conn, issue_id)
    with store.begin() as conn:
        db.queue_rows(
            conn,
            issue_id,
            [(r["id"], r["email"], make_message_id(config, number, r["id"])) for r in fresh],
        )
    with store.begin() as conn:
        db.cancel_inactive(conn, issue_id)
        before = db.counts(conn, issue_id)
    report.skipped = (
        before.get("sent", 0) + before.get("unconfirmed", 0) + before.get("cancelled", 0)
    )
    total = before.get("queued", 0)
    if limit is not None:
        total = min(total, limit)
    if total:
        _Campaign(
            config, store, issue_id, template, tokens, signer, transport, report, progress, total
        ).run()
    with store.connect() as conn:
        report.totals = db.counts(conn, issue_id)
    if report.aborted:
        raise DeliveryError(
            f"{report.aborted}; {report.sent} sent in this run, "
            f"{report.totals.get('queued', 0)} still queued: run `pressreview send {number}` again"
        )
    return report


def _recover(conn: Any, issue_id: int, journal_dir: Path) -> tuple[int, int]:
    """Settle the rows of dead runs (their handover journals say what they handed over)."""
    requeued, unconfirmed, claims = db.recover_stale(
        conn,
        issue_id,
        claim_is_dead,
        lease=LEASE,
        handed_over=lambda claim: journal.handed_over(journal_dir, claim),
    )
    for run in {journal.run_of(c) for c in claims}:
        if claim_is_dead(run):  # same host, process gone: its journal has served
            journal.remove(journal_dir, run)
    return requeued, unconfirmed


class _Campaign:
    """The worker threads of one run."""

    def __init__(
        self,
        config: Config,
        store: Store,
        issue_id: int,
        template: MessageTemplate,
        tokens: Tokens,
        signer: DkimSigner | None,
        transport: Transport,
        report: SendReport,
        progress: ProgressCallback | None,
        total: int,
    ):
        self.config = config
        self.store = store
        self.issue_id = issue_id
        self.template = template
        self.tokens = tokens
        self.signer = signer
        self.transport = transport
        self.report = report
        self.progress = progress
        self.total = total
        self.token = run_token()
        self.rate = RateLimiter(config.delivery.rate_per_second)
        self.max_attempts = max(1, config.delivery.max_attempts)
        self.backoff = max(0.0, config.delivery.retry_backoff_seconds)
        self.max_failures = max(1, config.delivery.max_connection_failures)
        self.failures_in_row = 0
        self.lock = threading.Lock()
        self.done = 0
        self.stop = threading.Event()
        self.budget = total
        self.batch_size = 32
        self.journal: journal.HandoverJournal | None = None

    # -- the run: connections first, then workers that claim their own batches ------

    def run(self) -> None:
        workers = min(self.transport.workers, self.total)
        connections = []
        try:
            self.journal = journal.HandoverJournal(
                self.config.resolve(self.config.delivery.journal_dir), self.token
            )
            for _ in range(workers):  # fail fast: nothing claimed before every connection is up
                connections.append(self.transport.open())
        except TransportUnavailable as exc:
            for c in connections:
                c.close()
            if self.journal:
                self.journal.close(remove=True)
            self.report.aborted = str(exc)
            return
        self.budget = self.total
        self.batch_size = 32
        threads = [
            threading.Thread(target=self._worker, args=(c, i), name=f"send-{i}", daemon=True)
            for i, c in enumerate(connections)
        ]
        settled = False
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            settled = True
        except BaseException:  # Ctrl-C: each worker finishes its message, gives the rest back
            self.stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            for c in connections:
                c.close()
            # Every row this run opened is settled (sent, failed, deferred, unconfirmed):
            # the journal is no longer needed. After an unexpected error it stays for recovery.
            self.journal.close(remove=settled)

    def _take(self) -> int:
        with self.lock:
            n = min(self.batch_size, self.budget)
            self.budget -= n
            return n

    def _give_back(self, n: int) -> None:
        with self.lock:
            self.budget += n

    def _wait_for_due(self, db_conn: StoreConnection) -> bool:
        """No row claimable now: wait for the next deferred one (False: nothing left)."""
        due = db.next_due(db_conn, self.issue_id)
        if due is None:
            return False
        delay = (due - datetime.now(UTC)).total_seconds()
        if delay > 0:
            self.stop.wait(min(delay, 1.0))
        return True

    def _worker(self, connection: TransportConnection, index: int) -> None:
        with self.store.connect() as db_conn:
            try:
                self._work(connection, index, db_conn)
            except BaseException:
                # A "sent" held for the next message's commit is committed all the same
                # (an error in _deliver itself was rolled back below).
                with contextlib.suppress(Exception):
                    db_conn.commit()
                raise

    def _work(self, connection: TransportConnection, index: int, db_conn: StoreConnection) -> None:
        batch_no = 0
        while not self.stop.is_set():
            wanted = self._take()
            if wanted <= 0:
                return
            batch_no += 1
            token = f"{self.token}/{index}.{batch_no}"
            rows = db.claim(db_conn, self.issue_id, token, wanted)
            if len(rows) < wanted:  # another worker or run took some: give the rest back
                self._give_back(wanted - len(rows))
            if not rows:
                if not self._wait_for_due(db_conn):
                    return
                continue
            built: _Built | None = None
            for i, row in enumerate(rows):
                if self.stop.is_set():
                    # (this commit also records a "sent" held by the previous message)
                    db.release(db_conn, [r["id"] for r in rows[i:]], token)
                    db_conn.commit()
                    return
                following = rows[i + 1] if i + 1 < len(rows) else None
                try:
                    outcome, error, built = self._deliver(
                        connection, db_conn, token, row, built, following
                    )
                except TransportUnavailable as exc:
                    # raised before the end of data (reconnect refused, journal unwritable)
                    db_conn.rollback()
                    db.release(db_conn, [r["id"] for r in rows[i:]], token)
                    db_conn.commit()
                    self._abort(str(exc))
                    return
                except BaseException as exc:
                    db_conn.rollback()
                    self._abort(f"sending stopped on an unexpected error: {exc!r}")
                    raise
                if outcome == "deferred":
                    self._give_back(1)
                self._count(outcome, row["email"], error)

    def _abort(self, reason: str) -> None:
        with self.lock:
            if self.report.aborted is None:
                self.report.aborted = reason
        self.stop.set()

    def _connection_failed(self, error: str) -> None:
        with self.lock:
            self.failures_in_row += 1
            failures = self.failures_in_row
        if failures >= self.max_failures:
            self._abort(
                f"the SMTP server failed {failures} times in a row "
                f"(delivery.max_connection_failures), last: {error}"
            )

    def _server_answered(self) -> None:
        with self.lock:
            self.failures_in_row = 0

    def _count(self, outcome: str, email: str, error: str | None) -> None:
        with self.lock:
            if outcome == "sent":
                self.report.sent += 1
            elif outcome == "failed":
                self.report.failed += 1
            elif outcome == "unconfirmed":
                self.report.unconfirmed += 1
            elif outcome == "skipped":
                self.report.skipped += 1
            elif outcome == "deferred":
                self.report.deferred += 1
                return  # not done yet: retried later
            if error:
                self.report.errors.append((email, error))
            self.done += 1
            done = self.done
        if self.progress:
            self.progress(outcome, done, self.total)

    def _build(self, row: db.ClaimedRow) -> _Built:
        """The wire bytes of a row's message (and their dot-stuffed form for SMTP)."""
        email = row["email"]
        url = self.tokens.unsubscribe(row["subscriber_id"], row["email_key"])
        link = urls.unsubscribe_url(self.config, url)
        if self.signer:
            data = self.signer.sign(
                self.template.render(to=email, unsubscribe_url=link, message_id=row["message_id"])
            )
            return row["id"], data, None
        if self.transport.name == "smtp":
            data = self.template.render(
                to=email, unsubscribe_url=link, message_id=row["message_id"], stuffed=True
            )
            return row["id"], data, data
        data = self.template.render(to=email, unsubscribe_url=link, message_id=row["message_id"])
        return row["id"], data, None

    def _deliver(
        self,
        connection: TransportConnection,
        db_conn: StoreConnection,
        token: str,
        row: db.ClaimedRow,
        built: _Built | None = None,
        following: db.ClaimedRow | None = None,
    ) -> tuple[str, str | None, _Built | None]:
        """Send one row; returns (outcome, error, the following row's message built).

        ``built``: this row's message, built while the previous one was being sent.
        ``following``: the next row of the batch. Its message is built after this row's
        attempt is committed (not between a 250 and its commit), and, without a rate
        limit, this row's "sent" is committed together with the following row's
        attempt: one commit per message instead of two, and still nothing but the
        journal's write between a body and its ".".
        """
        email = row["email"]
        if built is None or built[0] != row["id"]:
            built = self._build(row)
        _, data, stuffed = built
        envelope = Envelope(self.config.email.from_address, email)
        journal_ = self.journal
        assert journal_ is not None

        def handing_over() -> bool:
            journal_.mark(row["id"], token)  # one local write(2), then the "."
            return True

        self.rate.wait()
        # The attempt is committed before the SMTP transaction starts (and the claim
        # re-checked): nothing but the journal's write sits between the body and the ".".
        opened = db.open_attempt(db_conn, row["id"], token, email)
        db_conn.commit()
        if not opened:
            return "skipped", None, None
        following_built: _Built | None = None
        if following is not None:
            try:
                following_built = self._build(following)
            except DeliveryError:  # raised again in its own turn, with nothing held
                following_built = None
        hold = following_built is not None and not self.rate.interval
        attempt = row["attempts"] + 1
        try:
            connection.send(envelope, data, handing_over, stuffed=stuffed)
        except ClaimLost:
            db.release(db_conn, [row["id"]], token)
            db_conn.commit()
            return "skipped", None, None
        except HandoverUnknown as exc:
            db.mark_unconfirmed(db_conn, row["id"], token, 1, str(exc))
            db_conn.commit()
            self._connection_failed(str(exc))
            return "unconfirmed", str(exc), following_built
        except PermanentFailure as exc:
            db.mark_failed(db_conn, row["id"], token, 1, str(exc))
            if row["subscriber_id"] is not None:
                db.record_subscriber_error(
                    db_conn, row["subscriber_id"], str(exc), bounce=exc.recipient_refused
                )
            db_conn.commit()
            self._server_answered()
            return "failed", str(exc), following_built
        except TemporaryFailure as exc:
            if attempt >= self.max_attempts:
                message = f"gave up after {attempt} attempts: {exc}"
                db.mark_failed(db_conn, row["id"], token, 1, message)
                outcome, error = "failed", message
            else:
                wait = timedelta(seconds=self.backoff * 2 ** (attempt - 1))
                db.defer(db_conn, row["id"], token, str(exc), datetime.now(UTC) + wait)
                outcome, error = "deferred", None
            db_conn.commit()
            if exc.connection:
                self._connection_failed(str(exc))
            else:
                self._server_answered()
            return outcome, error, following_built
        db.mark_sent(db_conn, row["id"], token, 1)
        if not hold:  # else committed with the following row's attempt, next
            db_conn.commit()
        self._server_answered()
        return "sent", None, following_built


def deliveries_for(store: Store, number: int) -> list[dict[str, Any]]:
    """The delivery log of an issue: one dict per delivery row (for scripts and tests)."""
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, number)
        if issue_id is None:
            raise NotFound(f"issue {number} does not exist")
        return [dict(r) for r in db.rows_for_issue(conn, issue_id)]
