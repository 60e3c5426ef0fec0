"""Store queries of subscribers (and the events written about them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, RowMapping, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pressreview.errors import DuplicateKey
from pressreview.store.schema import (
    confirmation_queue,
    consent_events,
    deliveries,
    events,
    issues,
    now,
    subscribers,
)

STATUSES = ("pending", "active", "unsubscribed", "bounced")


class SubscriberRow(TypedDict):
    """A row of ``subscribers``."""

    id: int
    email: str
    email_key: str
    name: str | None
    status: str
    consent_at: datetime | None
    consent_method: str | None
    consent_detail: str | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    last_error: str | None


def _row(row: RowMapping) -> SubscriberRow:
    return cast(SubscriberRow, dict(row))  # select(subscribers): every column


def get_by_key(conn: Connection, email_key: str) -> SubscriberRow | None:
    row = (
        conn.execute(select(subscribers).where(subscribers.c.email_key == email_key))
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


def get_by_id(conn: Connection, subscriber_id: int) -> SubscriberRow | None:
    row = (
        conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


def existing_keys(conn: Connection, keys: Sequence[str]) -> dict[str, SubscriberRow]:
    found: dict[str, SubscriberRow] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        for row in conn.execute(
            select(subscribers).where(subscribers.c.email_key.in_(chunk))
        ).mappings():
            found[row["email_key"]] = _row(row)
    return found


def insert_subscriber(
    conn: Connection,
    *,
    email: str,
    email_key: str,
    name: str | None,
    status: str,
    consent_method: str,
    consent_detail: str | None,
    consent_at: datetime | None,
    at: datetime | None = None,
) -> int:
    """Insert a subscriber; DuplicateKey when the address is taken (by a concurrent request)."""
    stamp = at or now()
    try:
        result = conn.execute(
            insert(subscribers).values(
                email=email,
                email_key=email_key,
                name=name,
                status=status,
                consent_at=consent_at,
                consent_method=consent_method,
                consent_detail=consent_detail,
                created_at=stamp,
                updated_at=stamp,
                confirmed_at=stamp if status == "active" else None,
            )
        )
    except IntegrityError as exc:
        raise DuplicateKey(f"{email} is already a subscriber") from exc
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def insert_pending_if_absent(
    conn: Connection, *, email: str, email_key: str, name: str | None, at: datetime
) -> int | None:
    """A new ``pending`` subscriber, or None when the address exists (no error, no race)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = (
        dialect_insert(subscribers)
        .values(
            email=email,
            email_key=email_key,
            name=name,
            status="pending",
            consent_method="form",
            consent_detail="web form, awaiting confirmation",
            consent_at=None,
            created_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=["email_key"])
        .returning(subscribers.c.id)
    )
    sid = conn.execute(stmt).scalar()
    return None if sid is None else int(sid)


def request_again(
    conn: Connection, subscriber_id: int, *, name: str | None, at: datetime, resend_after: timedelta
) -> bool:
    """Back to ``pending`` for a new confirmation, unless one was asked for within
    ``resend_after`` or the subscriber is active (one conditional UPDATE: atomic).

    The consent columns are left alone: the history lives in ``consent_events``.
    """
    values: dict[str, Any] = {"status": "pending", "updated_at": at}
    if name:
        values["name"] = name
    result = conn.execute(
        update(subscribers)
        .where(
            subscribers.c.id == subscriber_id,
            or_(
                subscribers.c.status.in_(["unsubscribed", "bounced"]),
                and_(
                    subscribers.c.status == "pending",
                    subscribers.c.updated_at <= at - resend_after,
                ),
            ),
        )
        .values(**values)
    )
    return result.rowcount == 1


def record_consent(
    conn: Connection,
    subscriber_id: int,
    *,
    event: str,
    method: str,
    detail: str | None,
    actor: str,
    at: datetime | None = None,
) -> None:
    """Append one event to the consent history (never updated, never deleted but by forget)."""
    conn.execute(
        insert(consent_events).values(
            subscriber_id=subscriber_id,
            at=at or now(),
            event=event,
            method=method,
            detail=detail,
            actor=actor,
        )
    )


def record_consent_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(consent_events), list(rows))


def consent_history(conn: Connection, subscriber_id: int) -> list[RowMapping]:
    query = (
        select(
            consent_events.c.at,
            consent_events.c.event,
            consent_events.c.method,
            consent_events.c.detail,
            consent_events.c.actor,
        )
        .where(consent_events.c.subscriber_id == subscriber_id)
        .order_by(consent_events.c.id)
    )
    return list(conn.execute(query).mappings())


def insert_many(
    conn: Connection, rows: Sequence[dict[str, Any]], *, actor: str, action: str
) -> dict[str, int]:
    """Insert many subscribers (dicts of column values) and one event each.

    Returns the new ids by email_key.
    """
    if not rows:
        return {}
    conn.execute(
        insert(subscribers), [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    )
    keys = [r["email_key"] for r in rows]
    ids: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        query = select(subscribers.c.email_key, subscribers.c.id).where(
            subscribers.c.email_key.in_(keys[i : i + 500])
        )
        ids.update({k: int(v) for k, v in conn.execute(query)})
    stamp = now()
    conn.execute(
        insert(events),
        [
            {
                "at": stamp,
                "actor": actor,
                "action": action,
                "item_id": None,
                "issue_id": None,
                "subscriber_id": ids[r["email_key"]],
                "details": r.get("_details", {}),
            }
            for r in rows
        ],
    )
    return ids


def update_subscriber(conn: Connection, subscriber_id: int, **values: Any) -> None:
    values.setdefault("updated_at", now())
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def set_status_if(
    conn: Connection, subscriber_id: int, expected: Sequence[str], **values: Any
) -> bool:
    """Change a subscriber only when its status is one of ``expected`` (atomic)."""
    values.setdefault("updated_at", now())
    result = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.status.in_(list(expected)))
        .values(**values)
    )
    return result.rowcount == 1


def list_subscribers(conn: Connection, status: str | None = None) -> list[SubscriberRow]:
    query = select(subscribers).order_by(subscribers.c.email_key)
    if status:
        query = query.where(subscribers.c.status == status)
    return [_row(row) for row in conn.execute(query).mappings()]


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(subscribers.c.status, func.count()).group_by(subscribers.c.status))
    return {status: int(n) for status, n in rows}


def delivery_history(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    query = (
        select(
            issues.c.number,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.message_id,
            deliveries.c.queued_at,
            deliveries.c.sent_at,
        )
        .join(issues, issues.c.id == deliveries.c.issue_id)
        .where(deliveries.c.subscriber_id == subscriber_id)
        .order_by(issues.c.number)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def subscriber_events(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    query = select(events).where(events.c.subscriber_id == subscriber_id).order_by(events.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def record_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subscriber_id: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(events).values(
            at=now(), actor=actor, action=action, subscriber_id=subscriber_id, details=details or {}
        )
    )


def forget_subscriber(conn: Connection, subscriber_id: int) -> int:
    """Erase a subscriber: delivery rows keep counts but lose the address; events lose the link.

    Returns the number of delivery rows anonymized.
    """
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.subscriber_id == subscriber_id)
        .values(subscriber_id=None, email=None, message_id=None, last_error=None, claimed_by=None)
    )
    conn.execute(
        update(events)
        .where(events.c.subscriber_id == subscriber_id)
        .values(subscriber_id=None, details={})
    )
    conn.execute(delete(consent_events).where(consent_events.c.subscriber_id == subscriber_id))
    key = conn.execute(
        select(subscribers.c.email_key).where(subscribers.c.id == subscriber_id)
    ).scalar()
    conn.execute(
        delete(confirmation_queue).where(
            or_(
                confirmation_queue.c.subscriber_id == subscriber_id,
                confirmation_queue.c.email_key == key,
            )
        )
    )
    conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
    return int(result.rowcount or 0)
