"""Store queries of the collection stage: source state and item upserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, select, update

from pressreview.config import Feed
from pressreview.store.schema import item_keys, items, now, sources
from pressreview.text import search_text, sha256, similarity, title_keys

# Chunk size for IN (...) lists: well under SQLite's variable limit.
CHUNK = 500


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# -- sources -------------------------------------------------------------------


def sync_sources(conn: Connection, feeds: Iterable[Feed]) -> dict[str, RowMapping]:
    """Make sure each configured feed has a row; a changed URL in the config resets its state.

    Returns the rows by source name.
    """
    feeds = list(feeds)
    existing = {
        row.name: row
        for row in conn.execute(select(sources)).mappings()
    }
    stamp = now()
    for feed in feeds:
        row = existing.get(feed.name)
        if row is None:
            conn.execute(
                insert(sources).values(
                    name=feed.name, config_url=feed.url, url=feed.url, status="new",
                    failures=0, entries_seen=0, created_at=stamp, updated_at=stamp,
                )  # fmt: skip
            )
        elif row.config_url != feed.url:
            conn.execute(
                update(sources)
                .where(sources.c.id == row.id)
                .values(
                    config_url=feed.url, url=feed.url, etag=None, last_modified=None,
                    body_hash=None, status="new", failures=0, last_error=None,
                    next_attempt_at=None, updated_at=stamp,
                )  # fmt: skip
            )
    return {row.name: row for row in conn.execute(select(sources)).mappings()}


def source_rows(conn: Connection) -> dict[str, RowMapping]:
    return {row.name: row for row in conn.execute(select(sources)).mappings()}


def get_source(conn: Connection, source_id: int) -> RowMapping:
    return conn.execute(select(sources).where(sources.c.id == source_id)).mappings().one()


def update_source(conn: Connection, source_id: int, **values: Any) -> None:
    values.setdefault("updated_at", now())
    conn.execute(update(sources).where(sources.c.id == source_id).values(**values))


# -- items ---------------------------------------------------------------------


@dataclass
class NewItem:
    """An entry as the collection stage wants it stored."""

    guid: str | None
    url: str
    link: str
    title: str
    summary_html: str
    excerpt: str
    outlet: str | None
    language: str | None
    published_at: datetime | None
    tags: list[str]
    territories: list[str]
    score: int
    relevant: bool
    section: str | None


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    new_ids: list[int] = field(default_factory=list)


def _content_hash(item: NewItem) -> str:
    return sha256(
        "\x1f".join(
            [
                item.title,
                item.summary_html,
                item.link,
                item.outlet or "",
                item.published_at.isoformat() if item.published_at else "",
                ",".join(item.tags),
            ]
        )
    )


def store_items(
    conn: Connection,
    source_id: int | None,
    batch: Sequence[NewItem],
    *,
    default_outlet: str | None,
    dedupe_window: timedelta,
    threshold: float,
    origin: str = "feed",
    stamp: datetime | None = None,
) -> StoreCounts:
    """Insert new items and update changed ones, one item per story.

    Identity: the same GUID in this source, or the same canonical URL
    anywhere, is the same item. A new item whose title is a near-duplicate
    of a recent item from another source is stored as an other outlet of
    that story (``duplicate_of``). Every lookup goes through an index with
    the batch's own keys: the cost grows with the batch, not the store.
    """
    stamp = stamp or now()
    counts = StoreCounts()
    if not batch:
        return counts
    # Within a batch, the last entry with a GUID or URL wins (feeds repeat entries).
    by_key: dict[str, NewItem] = {}
    for item in batch:
        by_key[f"g:{item.guid}" if item.guid else f"u:{item.url}"] = item
    seen_urls: dict[str, NewItem] = {}
    for item in by_key.values():
        seen_urls[item.url] = item
    unique = list(seen_urls.values())

    guids = [i.guid for i in unique if i.guid]
    urls = [i.url for i in unique]
    cols = (items.c.id, items.c.guid, items.c.url, items.c.content_hash, items.c.source_id)
    existing_by_guid: dict[str, RowMapping] = {}
    if source_id is not None:
        for chunk in _chunks(guids):
            for row in conn.execute(
                select(*cols).where(items.c.source_id == source_id, items.c.guid.in_(chunk))
            ).mappings():
                existing_by_guid[row.guid] = row
    existing_by_url: dict[str, RowMapping] = {}
    for chunk in _chunks(urls):
        for row in conn.execute(select(*cols).where(items.c.url.in_(chunk))).mappings():
            existing_by_url[row.url] = row

    to_insert: list[NewItem] = []
    for item in unique:
        row = (existing_by_guid.get(item.guid) if item.guid else None) or existing_by_url.get(
            item.url
        )
        if row is None:
            to_insert.append(item)
            continue
        digest = _content_hash(item)
        if row.content_hash == digest or row.source_id != source_id:
            # Unchanged, or a link another source already brought: that source owns the text.
            counts.unchanged += 1
            continue
        values: dict[str, Any] = {
            "title": item.title,
            "summary_html": item.summary_html,
            "excerpt": item.excerpt,
            "link": item.link,
            "tags": item.tags,
            "content_hash": digest,
            "updated_at": stamp,
            "search_text": search_text(item.title, item.excerpt, item.outlet or default_outlet),
        }
        if item.published_at is not None:
            values["published_at"] = item.published_at
            values["date_is_fallback"] = False
        if item.outlet:
            values["outlet"] = item.outlet
        # The URL moves with the GUID, unless another item already holds the new URL.
        other = existing_by_url.get(item.url)
        if row.url != item.url and other is None:
            values["url"] = item.url
        conn.execute(
            update(items)
            .where(items.c.id == row.id)
            .values(**values, version=items.c.version + 1)
        )
        counts.updated += 1

    if not to_insert:
        return counts

    leads = _near_duplicate_leads(conn, source_id, to_insert, dedupe_window, threshold, stamp)
    rows = []
    for item in to_insert:
        outlet = item.outlet or default_outlet
        rows.append(
            {
                "source_id": source_id,
                "guid": item.guid,
                "url": item.url,
                "link": item.link,
                "title": item.title,
                "summary_html": item.summary_html,
                "excerpt": item.excerpt,
                "outlet": outlet,
                "language": item.language,
                "published_at": item.published_at or stamp,
                "date_is_fallback": item.published_at is None,
                "first_seen_at": stamp,
                "updated_at": stamp,
                "tags": item.tags,
                "territories": item.territories,
                "score": item.score,
                "status": "new" if item.relevant else "filtered",
                "section": item.section,
                "duplicate_of": leads.get(item.url),
                "content_hash": _content_hash(item),
                "origin": origin,
                "search_text": search_text(item.title, item.excerpt, outlet),
                "version": 1,
            }
        )
    result = conn.execute(
        insert(items).returning(items.c.id, items.c.url, sort_by_parameter_order=True), rows
    )
    inserted = result.all()
    key_rows = []
    for (item_id, _url), item in zip(inserted, to_insert, strict=True):
        counts.new_ids.append(item_id)
        if leads.get(item.url) is not None:
            counts.duplicates += 1
        for key in set(title_keys(item.title)):
            key_rows.append({"key": key, "item_id": item_id, "seen_at": stamp})
    if key_rows:
        conn.execute(insert(item_keys), key_rows)
    counts.new += len(inserted)
    return counts


def _near_duplicate_leads(
    conn: Connection,
    source_id: int | None,
    batch: Sequence[NewItem],
    window: timedelta,
    threshold: float,
    stamp: datetime,
) -> dict[str, int]:
    """For each new item that repeats a recent story of another source: the story's lead id."""
    keys_of = {item.url: title_keys(item.title) for item in batch}
    all_keys = sorted({k for ks in keys_of.values() for k in ks})
    if not all_keys:
        return {}
    since = stamp - window
    candidates: dict[str, set[int]] = {}
    for chunk in _chunks(all_keys):
        query = (
            select(item_keys.c.key, item_keys.c.item_id)
            .join(items, items.c.id == item_keys.c.item_id)
            .where(item_keys.c.key.in_(chunk), item_keys.c.seen_at >= since)
        )
        if source_id is not None:
            query = query.where(
                and_(items.c.source_id.is_not(None), items.c.source_id != source_id)
            )
        for key, item_id in conn.execute(query):
            candidates.setdefault(key, set()).add(item_id)
    if not candidates:
        return {}
    wanted = sorted({i for ids in candidates.values() for i in ids})
    titles: dict[int, tuple[str, int | None]] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(
            select(items.c.id, items.c.title, items.c.duplicate_of).where(items.c.id.in_(chunk))
        ):
            titles[row.id] = (row.title, row.duplicate_of)
    leads: dict[str, int] = {}
    for item in batch:
        ids = {i for k in keys_of[item.url] for i in candidates.get(k, ())}
        best, best_score = None, threshold
        for candidate in sorted(ids):
            title, dup_of = titles[candidate]
            score = similarity(item.title, title)
            if score >= best_score:
                best, best_score = (dup_of or candidate), score
        if best is not None:
            leads[item.url] = best
    return leads


def count_items(conn: Connection, **where: Any) -> int:
    query = select(func.count()).select_from(items)
    for name, value in where.items():
        query = query.where(items.c[name] == value)
    return int(conn.execute(query).scalar_one())

