"""Sending an issue to every active subscriber: resumable, never twice.

``send_issue`` renders the issue once, queues one delivery row per active
subscriber (idempotent), then claims rows in small batches and hands them to
``transport.workers`` threads, each with its own reused connection and its
own database connection, under one rate limit.

Exactly-once, and its one honest limit (docs/delivery.md has the long form):
a row is committed ``sending`` with ``sent_at`` set *after* the whole message
was transmitted and *before* the final "." of SMTP DATA (the point of no
return; a server discards a message whose DATA never ended). The reply is then
read and the row committed ``sent``. A run killed before the point of no return
leaves a row that the next run sends again (nothing was delivered); a run
killed after it leaves a row the next run marks ``unconfirmed`` and does not
send again (the server had the whole message). The only way to get it wrong is
a kill in the microseconds between the commit and the write of the "." (one
message lost, shown as unconfirmed) or a server that failed the message in
the same instant; ``send N --retry-unconfirmed`` resends those rows with the
same Message-ID, which many mailbox providers use to drop duplicates.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pressreview import urls
from pressreview.config import Config
from pressreview.contracts import Snapshot
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
from pressreview.process import process_alive
from pressreview.render import render_email
from pressreview.store import Connection as StoreConnection
from pressreview.store import Store
from pressreview.store import deliveries as db
from pressreview.subscribers import list_subscribers
from pressreview.tokens import Tokens

#: A "sending" row not touched for this long belongs to a dead run (other hosts).
LEASE = timedelta(minutes=15)


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
        report.requeued, report.marked_unconfirmed = _recover(conn, issue_id)
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


def _recover(conn: Any, issue_id: int) -> tuple[int, int]:
    return db.recover_stale(conn, issue_id, claim_is_dead, lease=LEASE)


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
        self.lock = threading.Lock()
        self.done = 0
        self.stop = threading.Event()
        self.budget = total
        self.batch_size = 32

    # -- the run: connections first, then workers that claim their own batches ------

    def run(self) -> None:
        workers = min(self.transport.workers, self.total)
        connections = []
        try:
            for _ in range(workers):  # fail fast: nothing claimed before every connection is up
                connections.append(self.transport.open())
        except TransportUnavailable as exc:
            for c in connections:
                c.close()
            self.report.aborted = str(exc)
            return
        self.budget = self.total
        self.batch_size = 32
        threads = [
            threading.Thread(target=self._worker, args=(c, i), name=f"send-{i}", daemon=True)
            for i, c in enumerate(connections)
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C: each worker finishes its message, gives the rest back
            self.stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            for c in connections:
                c.close()

    def _take(self) -> int:
        with self.lock:
            n = min(self.batch_size, self.budget)
            self.budget -= n
            return n

    def _worker(self, connection: TransportConnection, index: int) -> None:
        batch_no = 0
        with self.store.connect() as db_conn:
            while not self.stop.is_set():
                wanted = self._take()
                if wanted <= 0:
                    return
                batch_no += 1
                token = f"{self.token}/{index}.{batch_no}"
                rows = db.claim(db_conn, self.issue_id, token, wanted)
                if len(rows) < wanted:  # another worker or run took some: give the rest back
                    with self.lock:
                        self.budget += wanted - len(rows)
                if not rows:
                    if not db.has_queued(db_conn, self.issue_id):
                        return
                    continue
                for i, row in enumerate(rows):
                    if self.stop.is_set():
                        db.release(db_conn, [r["id"] for r in rows[i:]], token)
                        db_conn.commit()
                        return
                    try:
                        outcome, error = self._deliver(connection, db_conn, token, row)
                    except TransportUnavailable as exc:
                        db_conn.rollback()
                        db.release(db_conn, [r["id"] for r in rows[i:]], token)
                        db_conn.commit()
                        with self.lock:
                            if self.report.aborted is None:
                                self.report.aborted = str(exc)
                        self.stop.set()
                        return
                    except BaseException as exc:
                        db_conn.rollback()
                        self.stop.set()
                        with self.lock:
                            if self.report.aborted is None:
                                self.report.aborted = (
                                    f"sending stopped on an unexpected error: {exc!r}"
                                )
                        raise
                    self._count(outcome, row["email"], error)

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
            if error:
                self.report.errors.append((email, error))
            self.done += 1
            done = self.done
        if self.progress:
            self.progress(outcome, done, self.total)

    def _deliver(
        self,
        connection: TransportConnection,
        db_conn: StoreConnection,
        token: str,
        row: db.ClaimedRow,
    ) -> tuple[str, str | None]:
        email = row["email"]
        url = self.tokens.unsubscribe(row["subscriber_id"], row["email_key"])
        link = urls.unsubscribe_url(self.config, url)
        stuffed: bytes | None = None
        if self.signer:
            data = self.signer.sign(
                self.template.render(to=email, unsubscribe_url=link, message_id=row["message_id"])
            )
        elif self.transport.name == "smtp":
            data = stuffed = self.template.render(
                to=email, unsubscribe_url=link, message_id=row["message_id"], stuffed=True
            )
        else:
            data = self.template.render(
                to=email, unsubscribe_url=link, message_id=row["message_id"]
            )
        envelope = Envelope(self.config.email.from_address, email)

        def handing_over() -> bool:
            ok = db.mark_handing_over(db_conn, row["id"], token, email)
            db_conn.commit()
            return ok

        attempts = 0
        while True:
            attempts += 1
            self.rate.wait()
            try:
                connection.send(envelope, data, handing_over, stuffed=stuffed)
            except ClaimLost:
                db_conn.rollback()
                return "skipped", None
            except HandoverUnknown as exc:
                db.mark_unconfirmed(db_conn, row["id"], token, attempts, str(exc))
                db_conn.commit()
                return "unconfirmed", str(exc)
            except PermanentFailure as exc:
                db.mark_failed(db_conn, row["id"], token, attempts, str(exc))
                if row["subscriber_id"] is not None:
                    db.record_subscriber_error(
                        db_conn, row["subscriber_id"], str(exc), bounce=exc.recipient_refused
                    )
                db_conn.commit()
                return "failed", str(exc)
            except TemporaryFailure as exc:
                if row["attempts"] + attempts >= self.max_attempts or self.stop.is_set():
                    if self.stop.is_set():
                        db.clear_handover(db_conn, row["id"], token)
                        db.release(db_conn, [row["id"]], token, attempts=attempts, error=str(exc))
                        db_conn.commit()
                        return "skipped", None
                    message = f"gave up after {row['attempts'] + attempts} attempts: {exc}"
                    db.mark_failed(db_conn, row["id"], token, attempts, message)
                    db_conn.commit()
                    return "failed", message
                db.clear_handover(db_conn, row["id"], token)
                db_conn.commit()
                self.stop.wait(self.backoff * 2 ** (attempts - 1))
                continue
            db.mark_sent(db_conn, row["id"], token, attempts)
            db_conn.commit()
            return "sent", None


def deliveries_for(store: Store, number: int) -> list[dict[str, Any]]:
    """The delivery log of an issue: one dict per delivery row (for scripts and tests)."""
    with store.connect() as conn:
        issue_id = db.issue_id_for(conn, number)
        if issue_id is None:
            raise NotFound(f"issue {number} does not exist")
        return [dict(r) for r in db.rows_for_issue(conn, issue_id)]
