"""Store queries of the sign-up queue (``confirmation_queue``) and of the rate limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, or_, select, update

from pressreview.store.schema import confirmation_queue, rate_limits

#: Rows whose work is over (kept a while for `subscribers export` and diagnosis).
DONE = ("sent", "skipped", "failed", "unconfirmed")


def _dialect_insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    return dialect_insert


def hit(conn: Connection, key: str, window_start: datetime) -> int:
    """Count one hit of ``key`` in the window (one atomic upsert); returns the new count."""
    stmt = _dialect_insert(conn)(rate_limits).values(key=key, window_start=window_start, hits=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"hits": rate_limits.c.hits + 1}
    ).returning(rate_limits.c.hits)
    return int(conn.execute(stmt).scalar_one())


def purge_rate_limits(conn: Connection, before: datetime) -> int:
    result = conn.execute(delete(rate_limits).where(rate_limits.c.window_start < before))
    return int(result.rowcount or 0)


def enqueue(
    conn: Connection,
    *,
    email: str,
    email_key: str,
    name: str | None,
    throttled: bool,
    at: datetime,
) -> None:
    conn.execute(
        insert(confirmation_queue).values(
            email=email,
            email_key=email_key,
            name=name,
            throttled=throttled,
            status="new",
            attempts=0,
            requested_at=at,
            next_attempt_at=at,
        )
    )


def due_ids(conn: Connection, status: str, at: datetime, limit: int) -> list[int]:
    query = (
        select(confirmation_queue.c.id)
        .where(confirmation_queue.c.status == status, confirmation_queue.c.next_attempt_at <= at)
        .order_by(confirmation_queue.c.next_attempt_at, confirmation_queue.c.id)
        .limit(limit)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def take(conn: Connection, row_id: int, expected: str, **values: Any) -> bool:
    """Move a row out of status ``expected`` (atomic: only one worker gets it)."""
    result = conn.execute(
        update(confirmation_queue)
        .where(confirmation_queue.c.id == row_id, confirmation_queue.c.status == expected)
        .values(**values)
    )
    return result.rowcount == 1


def get(conn: Connection, row_id: int) -> RowMapping | None:
    query = select(confirmation_queue).where(confirmation_queue.c.id == row_id)
    return conn.execute(query).mappings().first()


def update_row(conn: Connection, row_id: int, **values: Any) -> None:
    conn.execute(
        update(confirmation_queue).where(confirmation_queue.c.id == row_id).values(**values)
    )


def open_for(conn: Connection, subscriber_id: int) -> bool:
    """Whether a confirmation of this subscriber waits in the queue (or is being sent)."""
    query = select(confirmation_queue.c.id).where(
        confirmation_queue.c.subscriber_id == subscriber_id,
        confirmation_queue.c.status.in_(["queued", "sending"]),
    )
    return conn.execute(query.limit(1)).first() is not None


def requeue_stale(conn: Connection, claimed_before: datetime, at: datetime) -> int:
    """Rows left ``sending`` by a worker that died: queued again."""
    result = conn.execute(
        update(confirmation_queue)
        .where(
            confirmation_queue.c.status == "sending",
            or_(
                confirmation_queue.c.claimed_at.is_(None),
                confirmation_queue.c.claimed_at < claimed_before,
            ),
        )
        .values(status="queued", claimed_by=None, next_attempt_at=at)
    )
    return int(result.rowcount or 0)


def purge_done(conn: Connection, before: datetime) -> int:
    result = conn.execute(
        delete(confirmation_queue).where(
            confirmation_queue.c.status.in_(list(DONE)),
            confirmation_queue.c.requested_at < before,
        )
    )
    return int(result.rowcount or 0)


def of_subscriber(conn: Connection, subscriber_id: int) -> list[RowMapping]:
    query = (
        select(
            confirmation_queue.c.status,
            confirmation_queue.c.attempts,
            confirmation_queue.c.requested_at,
            confirmation_queue.c.sent_at,
            confirmation_queue.c.last_error,
        )
        .where(confirmation_queue.c.subscriber_id == subscriber_id)
        .order_by(confirmation_queue.c.id)
    )
    return list(conn.execute(query).mappings())
