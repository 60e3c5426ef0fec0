"""Store queries of the issues stage: drafts, published snapshots, their items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, RowMapping, func, insert, or_, select, update

from pressreview.model import Snapshot
from pressreview.store.items import add_event as add_event  # the one audit-trail writer
from pressreview.store.schema import events, issues, items, now, sources

# Chunk size for IN (...) lists: well under SQLite's variable limit.
CHUNK = 500

ITEM_COLUMNS = (
    items.c.id,
    items.c.url,
    items.c.link,
    items.c.title,
    items.c.title_edited,
    items.c.summary_html,
    items.c.summary_edited,
    items.c.excerpt,
    items.c.outlet,
    items.c.author,
    items.c.published_at,
    items.c.date_is_fallback,
    items.c.tags,
    items.c.territories,
    items.c.status,
    items.c.section,
    items.c.position,
    items.c.duplicate_of,
    items.c.issue_id,
    items.c.version,
    items.c.first_seen_at,
)


class IssueRow(TypedDict):
    """A row of ``issues``: a draft (no number, no snapshot) or a published issue."""

    id: int
    number: int | None
    title: str
    intro_md: str
    status: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    snapshot: Snapshot | None
    version: int


class PublishedIssueRow(TypedDict):
    """A row of ``issues`` whose status is published: numbered, dated, frozen."""

    id: int
    number: int
    title: str
    intro_md: str
    status: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime
    snapshot: Snapshot
    version: int


class PublishedRef(TypedDict):
    """The last published issue, in short."""

    id: int
    number: int
    title: str
    published_at: datetime


class IssueItemRow(TypedDict):
    """An item as a snapshot is made of (ITEM_COLUMNS and the source's name)."""

    id: int
    url: str
    link: str
    title: str
    title_edited: str | None
    summary_html: str
    summary_edited: str | None
    excerpt: str
    outlet: str | None
    author: str | None
    published_at: datetime
    date_is_fallback: bool
    tags: list[str]
    territories: list[str]
    status: str
    section: str | None
    position: float | None
    duplicate_of: int | None
    issue_id: int | None
    version: int
    first_seen_at: datetime
    source_name: str | None


def _issue(row: RowMapping) -> IssueRow:
    return cast(IssueRow, dict(row))  # select(issues): every column


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _item_query() -> Any:
    return select(*ITEM_COLUMNS, sources.c.name.label("source_name")).select_from(
        items.outerjoin(sources, items.c.source_id == sources.c.id)
    )


# -- issues ----------------------------------------------------------------------


def current_draft(conn: Connection) -> IssueRow | None:
    """The draft in progress (the oldest, should there ever be two)."""
    query = select(issues).where(issues.c.status == "draft").order_by(issues.c.id).limit(1)
    row = conn.execute(query).mappings().first()
    return _issue(row) if row is not None else None


def insert_draft(conn: Connection, *, title: str, intro_md: str, at: datetime) -> int:
    result = conn.execute(
        insert(issues).values(
            title=title,
            intro_md=intro_md,
            status="draft",
            created_at=at,
            updated_at=at,
            version=1,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_draft(conn: Connection, issue_id: int, version: int, **values: Any) -> bool:
    """Change a draft if it is still at ``version``; False when it changed or was published."""
    values.setdefault("updated_at", now())
    result = conn.execute(
        update(issues)
        .where(issues.c.id == issue_id, issues.c.status == "draft", issues.c.version == version)
        .values(version=issues.c.version + 1, **values)
    )
    return result.rowcount == 1


def delete_draft(conn: Connection, issue_id: int) -> bool:
    conn.execute(update(items).where(items.c.issue_id == issue_id).values(issue_id=None))
    result = conn.execute(
        issues.delete().where(issues.c.id == issue_id, issues.c.status == "draft")
    )
    return result.rowcount == 1


def next_number(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(issues.c.number), 0))).scalar_one()) + 1


def last_published(conn: Connection) -> PublishedRef | None:
    query = (
        select(issues.c.id, issues.c.number, issues.c.title, issues.c.published_at)
        .where(issues.c.status == "published")
        .order_by(issues.c.number.desc())
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    return cast(PublishedRef, dict(row)) if row is not None else None


def publish_issue(
    conn: Connection,
    issue_id: int,
    *,
    version: int,
    number: int,
    title: str,
    snapshot: Snapshot,
    at: datetime,
) -> bool:
    """Turn the draft into a published issue; False when it changed meanwhile."""
    result = conn.execute(
        update(issues)
        .where(issues.c.id == issue_id, issues.c.status == "draft", issues.c.version == version)
        .values(
            status="published",
            number=number,
            title=title,
            snapshot=snapshot,
            published_at=at,
            updated_at=at,
            version=issues.c.version + 1,
        )
    )
    return result.rowcount == 1


def _published(row: RowMapping) -> PublishedIssueRow:
    return cast(PublishedIssueRow, dict(row))  # status published: number, date and snapshot set


def issue_by_number(conn: Connection, number: int) -> PublishedIssueRow | None:
    query = select(issues).where(issues.c.number == number, issues.c.status == "published")
    row = conn.execute(query).mappings().first()
    return _published(row) if row is not None else None


def published_issues(conn: Connection) -> list[PublishedIssueRow]:
    """Published issues, newest first, with their snapshots."""
    query = select(issues).where(issues.c.status == "published").order_by(issues.c.number.desc())
    return [_published(row) for row in conn.execute(query).mappings()]


# -- items of a draft ------------------------------------------------------------


def _item_row(row: RowMapping) -> IssueItemRow:
    return cast(IssueItemRow, dict(row))  # _item_query(): ITEM_COLUMNS and source_name


def draft_items(conn: Connection, draft_id: int | None) -> list[IssueItemRow]:
    """Selected items not yet in a published issue (free, or claimed by this draft)."""
    free = items.c.issue_id.is_(None)
    claim = free if draft_id is None else or_(free, items.c.issue_id == draft_id)
    query = _item_query().where(items.c.status == "selected", claim).order_by(items.c.id)
    return [_item_row(row) for row in conn.execute(query).mappings()]


def other_outlets(conn: Connection, lead_ids: Sequence[int]) -> list[IssueItemRow]:
    """Items recorded as other outlets of the given stories (duplicate_of one of them)."""
    rows: list[IssueItemRow] = []
    for chunk in _chunks(list(lead_ids)):
        query = (
            _item_query()
            .where(items.c.duplicate_of.in_(chunk))
            .order_by(items.c.published_at, items.c.id)
        )
        rows.extend(_item_row(row) for row in conn.execute(query).mappings())
    return rows


def claim_items(conn: Connection, draft_id: int, ids: Sequence[int]) -> int:
    """Mark free selected items as gathered by the draft; returns how many joined."""
    count = 0
    for chunk in _chunks(list(ids)):
        result = conn.execute(
            update(items)
            .where(items.c.id.in_(chunk), items.c.issue_id.is_(None), items.c.status == "selected")
            .values(issue_id=draft_id)
        )
        count += result.rowcount
    return count


def release_items(conn: Connection, draft_id: int) -> int:
    """Items the draft had gathered that are no longer selected leave it."""
    result = conn.execute(
        update(items)
        .where(items.c.issue_id == draft_id, items.c.status != "selected")
        .values(issue_id=None)
    )
    return int(result.rowcount)


def mark_published(
    conn: Connection, issue_id: int, draft_id: int, ids: Sequence[int], at: datetime
) -> int:
    """Selected items of the draft become published in the issue; returns how many changed."""
    count = 0
    for chunk in _chunks(list(ids)):
        result = conn.execute(
            update(items)
            .where(
                items.c.id.in_(chunk),
                items.c.status == "selected",
                or_(items.c.issue_id.is_(None), items.c.issue_id == draft_id),
            )
            .values(
                status="published",
                issue_id=issue_id,
                updated_at=at,
                version=items.c.version + 1,
            )
        )
        count += result.rowcount
    return count


def item_counts(conn: Connection, issue_ids: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for chunk in _chunks(list(issue_ids)):
        query = (
            select(items.c.issue_id, func.count())
            .where(items.c.issue_id.in_(chunk), items.c.duplicate_of.is_(None))
            .group_by(items.c.issue_id)
        )
        counts.update({int(k): int(v) for k, v in conn.execute(query)})
    return counts


def issue_events(conn: Connection, issue_id: int) -> list[dict[str, Any]]:
    query = select(events).where(events.c.issue_id == issue_id).order_by(events.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]
