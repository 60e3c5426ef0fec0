"""Store queries of the agenda: events from calendars, items and staff."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, and_, delete, func, insert, or_, select, update

from pressreview.store.schema import agenda_events, items, now, sources

#: Fields of an event that staff and sources may set.
EVENT_FIELDS = (
    "title",
    "description",
    "starts_at",
    "ends_at",
    "all_day",
    "place",
    "online",
    "url",
    "territory",
)


@dataclass(frozen=True)
class EventRow:
    """An event as the store holds it (times aware, in UTC)."""

    id: int
    uid: str
    origin: str
    status: str
    source_id: int | None
    source: str | None
    item_id: int | None
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool
    place: str | None
    online: bool
    url: str | None
    territory: str | None
    sequence: int
    updated_at: datetime
    version: int


def _select() -> Any:
    return select(agenda_events, sources.c.name.label("source")).outerjoin(
        sources, sources.c.id == agenda_events.c.source_id
    )


def _row(r: Any) -> EventRow:
    return EventRow(
        id=r.id,
        uid=r.uid,
        origin=r.origin,
        status=r.status,
        source_id=r.source_id,
        source=r.source,
        item_id=r.item_id,
        title=r.title,
        description=r.description,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        all_day=bool(r.all_day),
        place=r.place,
        online=bool(r.online),
        url=r.url,
        territory=r.territory,
        sequence=r.sequence,
        updated_at=r.updated_at,
        version=r.version,
    )


def get_event(conn: Connection, event_id: int) -> EventRow | None:
    r = conn.execute(_select().where(agenda_events.c.id == event_id)).first()
    return _row(r) if r is not None else None


def list_events(
    conn: Connection,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: Sequence[str] = ("confirmed",),
    item_id: int | None = None,
    limit: int | None = None,
) -> list[EventRow]:
    """Events overlapping [start, end), by start time (an event with no end lasts its day)."""
    query = _select()
    if statuses:
        query = query.where(agenda_events.c.status.in_(statuses))
    if start is not None:
        ends = func.coalesce(agenda_events.c.ends_at, agenda_events.c.starts_at)
        query = query.where(or_(ends >= start, agenda_events.c.starts_at >= start))
    if end is not None:
        query = query.where(agenda_events.c.starts_at < end)
    if item_id is not None:
        query = query.where(agenda_events.c.item_id == item_id)
    query = query.order_by(agenda_events.c.starts_at, agenda_events.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [_row(r) for r in conn.execute(query)]


def insert_event(conn: Connection, *, uid: str, origin: str, status: str, **values: Any) -> int:
    stamp = now()
    fields = {k: v for k, v in values.items() if k in (*EVENT_FIELDS, "source_id", "item_id")}
    fields.setdefault("description", "")
    fields.setdefault("all_day", False)
    fields.setdefault("online", False)
    result = conn.execute(
        insert(agenda_events).values(
            uid=uid,
            origin=origin,
            status=status,
            sequence=int(values.get("sequence", 0)),
            created_at=stamp,
            updated_at=stamp,
            version=1,
            **fields,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_event(
    conn: Connection, event_id: int, version: int | None, changes: Mapping[str, Any]
) -> bool:
    """Change an event; with ``version``, only if nobody changed it since it was read."""
    condition = agenda_events.c.id == event_id
    if version is not None:
        condition = and_(condition, agenda_events.c.version == version)
    result = conn.execute(
        update(agenda_events)
        .where(condition)
        .values(**changes, updated_at=now(), version=agenda_events.c.version + 1)
    )
    return result.rowcount == 1


def delete_event(conn: Connection, event_id: int) -> bool:
    return conn.execute(delete(agenda_events).where(agenda_events.c.id == event_id)).rowcount == 1


def events_by_uid(conn: Connection, uids: Iterable[str]) -> dict[str, EventRow]:
    wanted = list(uids)
    found: dict[str, EventRow] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for r in conn.execute(_select().where(agenda_events.c.uid.in_(chunk))):
            found[r.uid] = _row(r)
    return found


def source_events_from(conn: Connection, source_id: int, start: datetime) -> list[EventRow]:
    """A calendar source's events that end on or after ``start`` (not already cancelled)."""
    ends = func.coalesce(agenda_events.c.ends_at, agenda_events.c.starts_at)
    query = _select().where(
        agenda_events.c.source_id == source_id,
        agenda_events.c.origin == "ical",
        agenda_events.c.status != "cancelled",
        ends >= start,
    )
    return [_row(r) for r in conn.execute(query)]


def _item_columns() -> Any:
    """What event detection reads of an item."""
    return select(
        items.c.id,
        items.c.title,
        items.c.excerpt,
        items.c.summary_html,
        items.c.link,
        items.c.published_at,
        items.c.territories,
        items.c.status,
    )


#: The keys of an ``insert_events`` row taken as they are.
_ROW_FIELDS = frozenset((*EVENT_FIELDS, "source_id", "item_id"))


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert several events in one statement (each row as ``insert_event`` takes its values)."""
    if not rows:
        return
    stamp = now()
    defaults: dict[str, Any] = {
        "description": "", "all_day": False, "online": False, "source_id": None, "item_id": None,
    }  # fmt: skip
    values = [
        {
            **defaults,
            **{k: v for k, v in row.items() if k in _ROW_FIELDS},
            "uid": row["uid"],
            "origin": row["origin"],
            "status": row["status"],
            "sequence": int(row.get("sequence", 0)),
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for row in rows
    ]
    # The same keys in every row: one executemany.
    names = tuple(sorted({k for v in values for k in v}))
    if conn.dialect.name == "sqlite":
        # The driver's own executemany, the values converted by the dialect's own
        # processors: SQLAlchemy's per-row parameter handling costs several times
        # the insert itself (collect inserts proposals source by source).
        convert = [
            (i, proc)
            for i, proc in enumerate(_bind_processors(conn.dialect, names))
            if proc is not None
        ]
        memo: dict[tuple[int, Any], Any] = {}  # the stamps repeat on every row
        params = []
        for v in values:
            row = [v.get(k) for k in names]
            for i, proc in convert:
                value = row[i]
                if value is not None:
                    converted = memo.get((i, value), memo)
                    if converted is memo:
                        converted = memo[i, value] = proc(value)
                    row[i] = converted
            params.append(tuple(row))
        conn.exec_driver_sql(_insert_sql(names), params)
        return
    conn.execute(insert(agenda_events), [{k: v.get(k) for k in names} for v in values])


@functools.lru_cache(maxsize=8)
def _bind_processors(dialect: Dialect, columns: tuple[str, ...]) -> list[Any]:
    """The dialect's own conversion of each column of ``agenda_events`` (dates, booleans)."""
    return [
        agenda_events.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]


@functools.lru_cache(maxsize=8)
def _insert_sql(columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO agenda_events ({names}) VALUES ({', '.join('?' * len(columns))})"


def items_with_events(conn: Connection, item_ids: Sequence[int]) -> set[int]:
    """Which of these items have events (of any status)."""
    found: set[int] = set()
    for i in range(0, len(item_ids), 500):
        chunk = item_ids[i : i + 500]
        if conn.dialect.name == "sqlite":
            # Plain SQL: building the expanding IN costs ten times the query on SQLite
            # (about 150 µs), and collect asks once per source that has proposals.
            marks = ", ".join("?" * len(chunk))
            found.update(
                item_id
                for (item_id,) in conn.exec_driver_sql(
                    f"SELECT DISTINCT item_id FROM agenda_events WHERE item_id IN ({marks})",
                    tuple(chunk),
                )
            )
            continue
        found.update(
            conn.execute(
                select(agenda_events.c.item_id).where(agenda_events.c.item_id.in_(chunk)).distinct()
            ).scalars()
        )
    return found


def items_seen_since(conn: Connection, since: datetime) -> list[Any]:
    """Items first seen since ``since`` (indexed), with what event detection reads."""
    query = _item_columns().where(items.c.first_seen_at >= since, items.c.duplicate_of.is_(None))
    return list(conn.execute(query))


def item_ids_seen_since(conn: Connection, since: datetime) -> list[int]:
    """The ids of ``items_seen_since``, in id order (read the items by pages after)."""
    query = (
        select(items.c.id)
        .where(items.c.first_seen_at >= since, items.c.duplicate_of.is_(None))
        .order_by(items.c.id)
    )
    return list(conn.execute(query).scalars())


def items_for_events(conn: Connection, item_ids: Sequence[int]) -> list[Any]:
    """These items (at most a few thousand), with what event detection reads, in id order."""
    found: list[Any] = []
    for i in range(0, len(item_ids), 500):
        chunk = item_ids[i : i + 500]
        found.extend(conn.execute(_item_columns().where(items.c.id.in_(chunk))))
    return sorted(found, key=lambda row: row.id)


def item_for_event(conn: Connection, item_id: int) -> Any:
    return conn.execute(_item_columns().where(items.c.id == item_id)).first()
