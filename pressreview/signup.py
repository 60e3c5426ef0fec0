"""The sign-up queue: the subscription form only enqueues; a worker sends confirmations.

A POST of the form does the same constant work whatever the address's state
(unknown, pending, active, unsubscribed) and whether the mail server is up:
two rate-limit hits (the client's address, the mailbox) and one INSERT into
``confirmation_queue``. The answer is the same page. Everything that depends
on the address happens later, in :func:`drain_confirmations`, which
``pressreview serve`` runs in a background thread and the scheduler runs every
minute (the job ``confirmations``):

1. each new request is decided in one transaction (see
   :func:`pressreview.subscribers.prepare_confirmation`): ``queued`` when a
   confirmation is due, ``skipped`` otherwise (active address, one already asked
   for within 10 minutes, mailbox over its limit);
2. each ``queued`` row is claimed (``sending``), the email is handed to the
   transport, and the row becomes ``sent``; a temporary failure or a server
   that is down puts it back to ``queued`` with a growing delay, so an outage
   only delays confirmations. A permanent refusal (5xx) ends as ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pressreview import urls
from pressreview.config import Config
from pressreview.deliver.single import confirmation_sender
from pressreview.deliver.transports import (
    HandoverUnknown,
    PermanentFailure,
    TransportUnavailable,
)
from pressreview.errors import DeliveryError, Refused
from pressreview.store import Store
from pressreview.store import signup as q
from pressreview.store import subscribers as subscribers_db
from pressreview.store.schema import now
from pressreview.subscribers import (
    ConfirmationSender,
    email_key,
    normalize_email,
    prepare_confirmation,
)
from pressreview.tokens import Tokens

log = logging.getLogger("pressreview.signup")

#: Fixed windows of the web form's rate limits.
CLIENT_WINDOW = timedelta(hours=1)
MAILBOX_WINDOW = timedelta(days=1)
#: Delay before the first retry of a confirmation, doubled at each attempt, capped.
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
#: A confirmation not sent within this time is given up (its link would be stale).
GIVE_UP_AFTER = timedelta(days=2)
#: A ``sending`` row older than this belongs to a worker that died.
STALE_CLAIM = timedelta(minutes=10)
#: Finished rows are kept this long, then deleted.
KEEP_DONE = timedelta(days=30)


class RateLimited(Refused):
    """Too many requests from one client address."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# -- keys ------------------------------------------------------------------------------


def mailbox_key(address: str) -> str:
    """The mailbox an address delivers to, for rate limits: case folded and without
    a ``+tag`` (``Marie+x@Example.fr`` and ``marie+y@example.fr`` are one mailbox)."""
    local, _, domain = address.strip().rpartition("@")
    local = local.split("+", 1)[0] if "+" in local[1:] else local
    return f"{local}@{domain}".casefold()


def client_key(remote_addr: str | None) -> str:
    """The client of a request, for rate limits: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _hashed(kind: str, value: str, secret: str) -> str:
    """A rate-limit key that does not keep the address or the IP in clear."""
    digest = hmac.new(secret.encode("utf-8"), value.encode("utf-8"), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:40]}"


def _window(at: datetime, size: timedelta) -> datetime:
    seconds = int(size.total_seconds())
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


# -- the request -----------------------------------------------------------------------


def enqueue_signup(
    config: Config,
    store: Store,
    address: str,
    *,
    name: str | None,
    client: str | None,
    secret: str,
    at: datetime | None = None,
) -> None:
    """Record one request of the subscription form (the whole of the web's work).

    Raises InvalidAddress (syntax only: no lookup) and RateLimited (this client
    sent more than ``web.client_limit`` requests this hour). A mailbox asked for
    more than ``web.mailbox_limit`` times today is queued as throttled: the
    worker sends it nothing, and the request did the same work as any other.
    """
    email = normalize_email(address)
    stamp = at or now()
    with store.begin() as conn:
        hits = q.hit(
            conn, _hashed("client", client_key(client), secret), _window(stamp, CLIENT_WINDOW)
        )
        if hits > config.web.client_limit:
            window_end = _window(stamp, CLIENT_WINDOW) + CLIENT_WINDOW
            raise RateLimited(
                "too many subscription requests from this address",
                retry_after=max(1, int((window_end - stamp).total_seconds())),
            )
        mailbox_hits = q.hit(
            conn, _hashed("mailbox", mailbox_key(email), secret), _window(stamp, MAILBOX_WINDOW)
        )
        q.enqueue(
            conn,
            email=email,
            email_key=email_key(email),
            name=name,
            throttled=mailbox_hits > config.web.mailbox_limit,
            at=stamp,
        )


# -- the worker ------------------------------------------------------------------------


@dataclass
class DrainReport:
    """What one pass over the queue did."""

    decided: int = 0
    skipped: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "skipped": self.skipped,
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
        }


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (30 s, 1 min, 2 min, ... 1 h)."""
    factor: int = 2 ** max(attempts - 1, 0)
    return min(RETRY_FIRST * factor, RETRY_MAX)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def drain_confirmations(
    config: Config,
    store: Store,
    *,
    environ: Mapping[str, str] | None = None,
    send: ConfirmationSender | None = None,
    at: datetime | None = None,
    limit: int = 200,
) -> DrainReport:
    """Decide the new requests of the form and send the confirmations that are due.

    ``send`` defaults to deliver.single.confirmation_sender (``delivery.transport``).
    Safe to run from several processes at once (every step is a conditional
    UPDATE). Raises ConfigError without a secret key; never raises for a
    transport failure (the rows wait for the next pass).
    """
    tokens = Tokens.from_env(environ)
    send = send or confirmation_sender(config, environ=environ)
    stamp = at or now()
    report = DrainReport()
    worker = _worker_name()

    with store.connect() as conn:
        new_ids = q.due_ids(conn, "new", stamp, limit)
    for row_id in new_ids:
        with store.begin() as conn:
            if not q.take(conn, row_id, "new", status="deciding"):
                continue
            row = q.get(conn, row_id)
            assert row is not None
            sid = None
            if not row["throttled"]:
                sid = prepare_confirmation(conn, email=row["email"], name=row["name"], at=stamp)
            done = {"email": None, "email_key": None, "name": None}
            if sid is None:
                q.update_row(conn, row_id, status="skipped", **done)
                report.skipped += 1
            else:
                q.update_row(
                    conn, row_id, status="queued", subscriber_id=sid, next_attempt_at=stamp, **done
                )
                report.decided += 1

    with store.begin() as conn:
        q.requeue_stale(conn, stamp - STALE_CLAIM, stamp)
        queued = q.due_ids(conn, "queued", stamp, limit)
    for row_id in queued:
        with store.begin() as conn:
            if not q.take(
                conn, row_id, "queued", status="sending", claimed_by=worker, claimed_at=stamp
            ):
                continue
            row = q.get(conn, row_id)
            assert row is not None
            subscriber = (
                subscribers_db.get_by_id(conn, row["subscriber_id"])
                if row["subscriber_id"] is not None
                else None
            )
            if subscriber is None or subscriber["status"] != "pending":
                q.update_row(conn, row_id, status="skipped", claimed_by=None)
                report.skipped += 1
                continue
        attempts = int(row["attempts"]) + 1
        token = tokens.confirm(int(subscriber["id"]), subscriber["email_key"])
        outcome: dict[str, Any]
        stop = False
        try:
            send(subscriber["email"], urls.confirm_url(config, token))
        except DeliveryError as exc:
            # deliver.single names the message; the transport's own failure is its cause.
            cause = exc.__cause__ or exc
            if isinstance(cause, PermanentFailure):
                outcome = {"status": "failed", "last_error": str(exc)[:500]}
                report.failed += 1
            elif isinstance(cause, HandoverUnknown):
                # The server may have accepted it: not sent again (as for the digest).
                outcome = {"status": "unconfirmed", "last_error": str(exc)[:500]}
                report.failed += 1
            elif stamp - row["requested_at"] >= GIVE_UP_AFTER:
                outcome = {"status": "failed", "last_error": str(exc)[:500]}
                report.failed += 1
                log.error("confirmation given up after %d attempts: %s", attempts, exc)
            else:
                stop = isinstance(cause, TransportUnavailable)
                outcome = {
                    "status": "queued",
                    "last_error": str(exc)[:500],
                    "next_attempt_at": stamp + retry_delay(attempts),
                }
                report.deferred += 1
                log.warning("confirmation deferred (attempt %d): %s", attempts, exc)
            report.errors.append(str(exc))
        else:
            outcome = {"status": "sent", "sent_at": now(), "last_error": None}
            report.sent += 1
        with store.begin() as conn:
            q.update_row(conn, row_id, attempts=attempts, claimed_by=None, **outcome)
        if stop:  # the server is down: the other rows wait for the next pass
            break
    _housekeeping(store, stamp)
    return report


def _housekeeping(store: Store, stamp: datetime) -> None:
    with store.begin() as conn:
        q.purge_done(conn, stamp - KEEP_DONE)
        q.purge_rate_limits(conn, stamp - MAILBOX_WINDOW - CLIENT_WINDOW)


class ConfirmationWorker:
    """A daemon thread of the web process that drains the queue.

    Woken after each request (so the answer never waits for the mail server)
    and every ``interval`` seconds for retries. Started on first use, in the
    process that uses it (safe under pre-forking servers).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        environ: Mapping[str, str] | None = None,
        interval: float = 30.0,
    ):
        self.config = config
        self.store = store
        self.environ = environ
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._stop.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="pressreview-confirmations", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                drain_confirmations(self.config, self.store, environ=self.environ)
            except Exception:  # the thread must outlive any failure; logged for the admin
                log.exception("confirmation worker: pass failed")
            self._wake.wait(self.interval)
