"""Store queries of the delivery log: one row per (issue, subscriber).

Row life (see docs/delivery.md):

    queued --claim--> sending (claimed_by set, sent_at NULL)
           --attempt opened, committed before MAIL FROM--> sending (sent_at set)
           --server said 250--> sent
    4xx: back to queued with not_before (retried later, with backoff),
         failed after delivery.max_attempts
    5xx: failed

After a crash a row "sending" with sent_at NULL was never tried: it is queued
again. A row "sending" with sent_at set had an SMTP transaction open: the
dead run's handover journal (pressreview/deliver/journal.py) says whether it
got to the end of data (then "unconfirmed", not sent again unless asked) or not
(queued again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pressreview.store.schema import deliveries, issues, now, subscribers

STATUSES = ("queued", "sending", "sent", "unconfirmed", "failed", "cancelled")
CHUNK = 500


class Recipient(TypedDict):
    """An active subscriber without a delivery row yet."""

    id: int
    email: str


class ClaimedRow(TypedDict):
    """A delivery row claimed by this run, with the subscriber's address."""

    id: int
    subscriber_id: int
    message_id: str
    attempts: int
    email: str
    email_key: str


def issue_id_for(conn: Connection, number: int) -> int | None:
    return conn.execute(select(issues.c.id).where(issues.c.number == number)).scalar()


def active_without_row(conn: Connection, issue_id: int) -> list[Recipient]:
    """Active subscribers that have no delivery row for the issue yet."""
    has_row = select(deliveries.c.id).where(
        deliveries.c.issue_id == issue_id, deliveries.c.subscriber_id == subscribers.c.id
    )
    query = (
        select(subscribers.c.id, subscribers.c.email)
        .where(subscribers.c.status == "active", ~has_row.exists())
        .order_by(subscribers.c.id)
    )
    return [cast(Recipient, dict(row)) for row in conn.execute(query).mappings()]


def queue_rows(conn: Connection, issue_id: int, rows: Sequence[tuple[int, str, str]]) -> int:
    """Insert queued rows (subscriber_id, email, message_id); existing pairs are left alone."""
    if not rows:
        return 0
    stamp = now()
    values = [
        {
            "issue_id": issue_id,
            "subscriber_id": sid,
            "email": email,
            "message_id": mid,
            "status": "queued",
            "attempts": 0,
            "queued_at": stamp,
            "updated_at": stamp,
        }
        for sid, email, mid in rows
    ]
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    added = 0
    for i in range(0, len(values), CHUNK):
        stmt = dialect_insert(deliveries).on_conflict_do_nothing(
            index_elements=["issue_id", "subscriber_id"]
        )
        result = conn.execute(stmt, values[i : i + CHUNK])
        added += max(int(result.rowcount or 0), 0)
    return added


def sent_subscriber_ids(conn: Connection, issue_id: int) -> set[int]:
    query = select(deliveries.c.subscriber_id).where(
        deliveries.c.issue_id == issue_id,
        deliveries.c.status.in_(["sent", "unconfirmed", "sending"]),
        deliveries.c.subscriber_id.is_not(None),
    )
    return {int(r) for r in conn.execute(query).scalars()}


def recover_stale(
    conn: Connection,
    issue_id: int,
    is_dead: Callable[[str], bool],
    *,
    lease: timedelta,
    handed_over: Callable[[str], set[int] | None] = lambda claim: None,
) -> tuple[int, int, list[str]]:
    """Rows left "sending" by a run that died: requeue or mark unconfirmed (commits).

    ``handed_over(claim)``: the ids of that claim's rows that reached the end of
    data (from the dead run's journal), or None when unknown (every row with an
    open attempt is then unconfirmed: never sent twice). Read first, then one
    UPDATE per dead claim and outcome that re-checks the claim, each in its own
    short transaction (no lock upgrade on SQLite, and a row that another run
    recovered and claimed meanwhile is left alone). Returns (requeued,
    unconfirmed, the dead claims).
    """
    limit = now() - lease
    rows = list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.claimed_by,
                deliveries.c.sent_at,
                deliveries.c.updated_at,
            ).where(deliveries.c.issue_id == issue_id, deliveries.c.status == "sending")
        ).mappings()
    )
    conn.commit()
    dead: dict[tuple[str, bool], list[int]] = {}
    journals: dict[str, set[int] | None] = {}
    for row in rows:
        claim = row["claimed_by"] or ""
        if not (is_dead(claim) or row["updated_at"] < limit):
            continue
        maybe_delivered = False
        if row["sent_at"] is not None:
            if claim not in journals:
                journals[claim] = handed_over(claim) if claim else None
            known = journals[claim]
            maybe_delivered = known is None or row["id"] in known
        dead.setdefault((claim, maybe_delivered), []).append(row["id"])
    requeued = unconfirmed = 0
    for (claim, maybe_delivered), ids in dead.items():
        for i in range(0, len(ids), CHUNK):
            mine = and_(
                deliveries.c.id.in_(ids[i : i + CHUNK]),
                deliveries.c.status == "sending",
                deliveries.c.claimed_by == claim if claim else deliveries.c.claimed_by.is_(None),
            )
            if maybe_delivered:
                values: dict[str, Any] = {
                    "status": "unconfirmed",
                    "last_error": "the sending run stopped after the end of data, before it "
                    "recorded the server's answer: probably delivered, not sent again",
                }
            else:
                values = {"status": "queued", "sent_at": None}
            result = conn.execute(
                update(deliveries).where(mine).values(claimed_by=None, updated_at=now(), **values)
            )
            conn.commit()
            if maybe_delivered:
                unconfirmed += int(result.rowcount or 0)
            else:
                requeued += int(result.rowcount or 0)
    return requeued, unconfirmed, sorted({claim for claim, _ in dead if claim})


def requeue(conn: Connection, issue_id: int, statuses: Iterable[str]) -> int:
    """Put rows of the given statuses back in the queue (``--retry-failed`` ...)."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.issue_id == issue_id, deliveries.c.status.in_(list(statuses)))
        .values(
            status="queued",
            claimed_by=None,
            sent_at=None,
            not_before=None,
            attempts=0,
            updated_at=now(),
        )
    )
    return int(result.rowcount or 0)


def cancel_inactive(conn: Connection, issue_id: int) -> int:
    """Queued rows whose subscriber left (or was forgotten) since they were queued."""
    inactive = select(subscribers.c.id).where(subscribers.c.status == "active")
    result = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.issue_id == issue_id,
            deliveries.c.status == "queued",
            or_(deliveries.c.subscriber_id.is_(None), deliveries.c.subscriber_id.not_in(inactive)),
        )
        .values(
            status="cancelled", claimed_by=None, updated_at=now(), last_error="no longer subscribed"
        )
    )
    return int(result.rowcount or 0)


def next_due(conn: Connection, issue_id: int) -> datetime | None:
    """When the next queued row may be claimed (None: nothing queued; commits)."""
    query = select(
        func.count(),
        func.sum(case((deliveries.c.not_before.is_(None), 1), else_=0)),
        func.min(deliveries.c.not_before),
    ).where(deliveries.c.issue_id == issue_id, deliveries.c.status == "queued")
    total, ready, earliest = conn.execute(query).one()
    conn.commit()
    if not total:
        return None
    if ready or earliest is None:
        return now()
    return earliest if isinstance(earliest, datetime) else now()


def claim(conn: Connection, issue_id: int, token: str, limit: int) -> list[ClaimedRow]:
    """Take up to ``limit`` queued rows for this run (commits); returns them with the address.

    Three short transactions: read the first queued ids (the (issue_id, status)
    index gives them in id order), claim them with one UPDATE that re-checks
    the status (a concurrent run may have taken some), read back those carrying
    this batch's token. The UPDATE starts its own transaction, so SQLite never
    has to upgrade a read lock.
    """
    due = or_(deliveries.c.not_before.is_(None), deliveries.c.not_before <= now())
    candidates = list(
        conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "queued", due)
            .order_by(deliveries.c.id)
            .limit(limit)
        ).scalars()
    )
    conn.commit()
    if not candidates:
        return []
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(candidates), deliveries.c.status == "queued")
        .values(status="sending", claimed_by=token, sent_at=None, not_before=None, updated_at=now())
    )
    conn.commit()
    query = (
        select(
            deliveries.c.id,
            deliveries.c.subscriber_id,
            deliveries.c.message_id,
            deliveries.c.attempts,
            subscribers.c.email,
            subscribers.c.email_key,
        )
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.id.in_(candidates), deliveries.c.claimed_by == token)
        .order_by(deliveries.c.id)
    )
    rows = [cast(ClaimedRow, dict(row)) for row in conn.execute(query).mappings()]
    conn.commit()
    return rows


# The per-message statements are built once with bind parameters: a statement
# object made per call costs SQLAlchemy several times more than the SQL itself.
_MINE = and_(
    deliveries.c.id == bindparam("did"),
    deliveries.c.claimed_by == bindparam("token"),
    deliveries.c.status == "sending",
)
_OPEN_ATTEMPT = (
    update(deliveries)
    .where(_MINE)
    .values(sent_at=bindparam("at"), updated_at=bindparam("at"), email=bindparam("email"))
)
_DEFER = (
    update(deliveries)
    .where(_MINE)
    .values(
        status="queued",
        claimed_by=None,
        sent_at=None,
        not_before=bindparam("not_before"),
        updated_at=bindparam("at"),
        attempts=deliveries.c.attempts + 1,
        last_error=bindparam("error"),
    )
)
_FINISH = (
    update(deliveries)
    .where(_MINE)
    .values(
        status=bindparam("new_status"),
        claimed_by=None,
        sent_at=bindparam("sent_at"),
        updated_at=bindparam("at"),
        attempts=deliveries.c.attempts + bindparam("n", type_=Integer),
        last_error=bindparam("error"),
    )
)
_UNCONFIRMED = (
    update(deliveries)
    .where(_MINE)
    .values(
        status="unconfirmed",
        claimed_by=None,
        updated_at=bindparam("at"),
        attempts=deliveries.c.attempts + bindparam("n", type_=Integer),
        last_error=bindparam("error"),
    )
)


def open_attempt(conn: Connection, delivery_id: int, token: str, email: str) -> bool:
    """Before MAIL FROM: the row is still ours and an SMTP transaction is open for it.

    Committed before anything is sent, so that no database round trip sits
    between the message and its end of data (the journal records that point).
    """
    result = conn.execute(
        _OPEN_ATTEMPT, {"did": delivery_id, "token": token, "at": now(), "email": email}
    )
    return result.rowcount == 1


def defer(conn: Connection, delivery_id: int, token: str, error: str, not_before: datetime) -> None:
    """A temporary failure: back to the queue, not to be claimed before ``not_before``."""
    conn.execute(
        _DEFER,
        {"did": delivery_id, "token": token, "at": now(), "error": error, "not_before": not_before},
    )


def mark_sent(conn: Connection, delivery_id: int, token: str, attempts: int) -> None:
    stamp = now()
    conn.execute(
        _FINISH,
        {
            "did": delivery_id,
            "token": token,
            "new_status": "sent",
            "sent_at": stamp,
            "at": stamp,
            "n": attempts,
            "error": None,
        },
    )


def mark_unconfirmed(
    conn: Connection, delivery_id: int, token: str, attempts: int, error: str
) -> None:
    conn.execute(
        _UNCONFIRMED,
        {"did": delivery_id, "token": token, "at": now(), "n": attempts, "error": error},
    )


def mark_failed(conn: Connection, delivery_id: int, token: str, attempts: int, error: str) -> None:
    conn.execute(
        _FINISH,
        {
            "did": delivery_id,
            "token": token,
            "new_status": "failed",
            "sent_at": None,
            "at": now(),
            "n": attempts,
            "error": error,
        },
    )


def release(
    conn: Connection,
    delivery_ids: Sequence[int],
    token: str,
    *,
    attempts: int = 0,
    error: str | None = None,
) -> None:
    """Give rows back to the queue (the caller knows nothing was delivered)."""
    for i in range(0, len(delivery_ids), CHUNK):
        values: dict[str, Any] = {
            "status": "queued",
            "claimed_by": None,
            "sent_at": None,
            "updated_at": now(),
        }
        if attempts:
            values["attempts"] = deliveries.c.attempts + attempts
        if error is not None:
            values["last_error"] = error
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(list(delivery_ids[i : i + CHUNK])),
                deliveries.c.claimed_by == token,
                deliveries.c.status == "sending",
            )
            .values(**values)
        )


def counts(conn: Connection, issue_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(deliveries.c.status, func.count())
        .where(deliveries.c.issue_id == issue_id)
        .group_by(deliveries.c.status)
    )
    return {status: int(n) for status, n in rows}


def rows_for_issue(conn: Connection, issue_id: int) -> list[RowMapping]:
    return list(
        conn.execute(
            select(deliveries).where(deliveries.c.issue_id == issue_id).order_by(deliveries.c.id)
        ).mappings()
    )


def record_subscriber_error(
    conn: Connection, subscriber_id: int, error: str, *, bounce: bool
) -> None:
    values: dict[str, Any] = {"last_error": error, "updated_at": now()}
    if bounce:
        values["status"] = "bounced"
    query = update(subscribers).where(subscribers.c.id == subscriber_id)
    if bounce:
        query = query.where(subscribers.c.status == "active")
    conn.execute(query.values(**values))
