"""Store queries of the collection stage: source state and item upserts."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    TextClause,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from pressreview.config import Feed
from pressreview.store.schema import UTCDateTime, item_keys, items, now, sources
from pressreview.text import keys_of_shingles, search_text, sha256, shingles

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
    existing = {row.name: row for row in conn.execute(select(sources)).mappings()}
    stamp = now()
    for feed in feeds:
        row = existing.get(feed.name)
        if row is None:
            conn.execute(
                insert(sources).values(
                    name=feed.name,
                    config_url=feed.url,
                    url=feed.url,
                    status="new",
                    failures=0,
                    entries_seen=0,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        elif row.config_url != feed.url:
            conn.execute(
                update(sources)
                .where(sources.c.id == row.id)
                .values(
                    config_url=feed.url,
                    url=feed.url,
                    etag=None,
                    last_modified=None,
                    body_hash=None,
                    status="new",
                    failures=0,
                    last_error=None,
                    next_attempt_at=None,
                    updated_at=stamp,
                )
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
    #: Work that does not need the store, done beforehand (e.g. in a parse worker)
    #: by ``prepare()``; computed here when missing.
    shingles: set[str] | None = None
    search_text: str | None = None
    content_hash: str | None = None

    def prepare(self, default_outlet: str | None) -> NewItem:
        self.shingles = shingles(self.title)
        self.search_text = search_text(self.title, self.excerpt, self.outlet or default_outlet)
        self.content_hash = _content_hash(self)
        return self


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
    title_cache: dict[int, tuple[set[str], int | None, int | None]] | None = None,
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
        found = (existing_by_guid.get(item.guid) if item.guid else None) or existing_by_url.get(
            item.url
        )
        if found is None:
            to_insert.append(item)
            continue
        row = found
        digest = item.content_hash or _content_hash(item)
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
            "search_text": item.search_text
            or search_text(item.title, item.excerpt, item.outlet or default_outlet),
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
            update(items).where(items.c.id == row.id).values(**values, version=items.c.version + 1)
        )
        if title_cache is not None:
            title_cache.pop(row.id, None)
        counts.updated += 1

    if not to_insert:
        return counts

    shingles_of: dict[str, set[str]] = {}
    leads = _near_duplicate_leads(
        conn, source_id, to_insert, dedupe_window, threshold, stamp, shingles_of, title_cache
    )
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
                "content_hash": item.content_hash or _content_hash(item),
                "origin": origin,
                "search_text": item.search_text or search_text(item.title, item.excerpt, outlet),
                "version": 1,
            }
        )
    # A plain executemany, then the new ids by URL (unique): much cheaper than
    # RETURNING, which SQLite drivers run one row at a time to keep the order.
    conn.execute(insert(items), rows)
    ids: dict[str, int] = {}
    for chunk in _chunks([item.url for item in to_insert]):
        ids.update(
            (url, item_id)
            for url, item_id in conn.execute(
                select(items.c.url, items.c.id).where(items.c.url.in_(chunk))
            ).all()
        )
    inserted = [(ids[item.url], item.url) for item in to_insert]
    key_rows = []
    for (item_id, _url), item in zip(inserted, to_insert, strict=True):
        counts.new_ids.append(item_id)
        if title_cache is not None:
            title_cache[item_id] = (shingles_of[item.url], leads.get(item.url), source_id)
        if leads.get(item.url) is not None:
            counts.duplicates += 1
        for key in set(keys_of_shingles(shingles_of[item.url])):
            key_rows.append({"key": key, "item_id": item_id, "seen_at": stamp})
    if key_rows:
        conn.execute(insert(item_keys), key_rows)
    counts.new += len(inserted)
    return counts


#: At most this many recent items per title key are candidates: a key shared by
#: many titles (a common phrase) says little, and must not make a batch's cost
#: grow with the store.
CANDIDATES_PER_KEY = 10


@functools.lru_cache(maxsize=64)
def _newest_postings(keys: int) -> TextClause:
    """``keys`` index range scans in one statement: the newest postings of each key.

    Written as SQL text because building a 200-branch UNION with the
    expression language costs more than running it.
    """
    branch = (
        "SELECT * FROM (SELECT key, item_id FROM item_keys WHERE key = :k{i} "
        "AND seen_at >= :since ORDER BY item_id DESC LIMIT {limit}) AS p{i}"
    )
    sql = " UNION ALL ".join(branch.format(i=i, limit=CANDIDATES_PER_KEY) for i in range(keys))
    return text(sql).bindparams(bindparam("since", type_=UTCDateTime))


def _near_duplicate_leads(
    conn: Connection,
    source_id: int | None,
    batch: Sequence[NewItem],
    window: timedelta,
    threshold: float,
    stamp: datetime,
    shingles_of: dict[str, set[str]] | None = None,
    cache: dict[int, tuple[set[str], int | None, int | None]] | None = None,
) -> dict[str, int]:
    """For each new item that repeats a recent story of another source: the story's lead id.

    Candidates come from the title keys (an indexed lookup, the most recent
    ``CANDIDATES_PER_KEY`` per key), then are confirmed by the Jaccard
    similarity of the titles' shingles.
    """
    shingles_of = shingles_of if shingles_of is not None else {}
    for item in batch:
        if item.url not in shingles_of:
            shingles_of[item.url] = (
                item.shingles if item.shingles is not None else shingles(item.title)
            )
    keys_of = {item.url: keys_of_shingles(shingles_of[item.url]) for item in batch}
    all_keys = sorted({k for ks in keys_of.values() for k in ks})
    if not all_keys:
        return {}
    since = stamp - window
    candidates: dict[str, set[int]] = {}
    # One small index range per key (the newest postings first, at most
    # CANDIDATES_PER_KEY of them): the cost grows with the batch, not the store.
    for chunk in _chunks(all_keys, 200):
        for key, item_id in conn.execute(_newest_postings(len(chunk)), {
            **{f"k{i}": key for i, key in enumerate(chunk)}, "since": since,
        }).all():  # fmt: skip
            candidates.setdefault(key, set()).add(item_id)
    if not candidates:
        return {}
    wanted = sorted({i for ids in candidates.values() for i in ids})
    titles: dict[int, tuple[set[str], int | None]] = {}
    cached = cache if cache is not None else {}
    missing = [i for i in wanted if i not in cached]
    for chunk in _chunks(missing):
        for item_id, title, dup_of, owner in conn.execute(
            select(items.c.id, items.c.title, items.c.duplicate_of, items.c.source_id).where(
                items.c.id.in_(chunk)
            )
        ).all():
            cached[item_id] = (shingles(title), dup_of, owner)
    for item_id in wanted:
        entry = cached.get(item_id)
        # Only other sources' items: a feed does not repeat its own stories.
        if (
            entry is not None
            and entry[2] is not None
            and (source_id is None or entry[2] != source_id)
        ):
            titles[item_id] = (entry[0], entry[1])
    leads: dict[str, int] = {}
    for item in batch:
        ids = {i for k in keys_of[item.url] for i in candidates.get(k, ())}
        mine = shingles_of[item.url]
        size = len(mine)
        best, best_score = None, threshold
        for candidate in ids:
            found = titles.get(candidate)
            if found is None:
                continue
            theirs, dup_of = found
            # Jaccard is at most the ratio of the sizes: skip hopeless pairs.
            other = len(theirs)
            if (size if size < other else other) < best_score * (other if size < other else size):
                continue
            common = len(mine & theirs)
            score = common / (size + other - common) if common else 0.0
            lead = dup_of or candidate
            # Ties go to the oldest story, whatever the order of the candidates.
            if score > best_score or (score == best_score and (best is None or lead < best)):
                best, best_score = lead, score
        if best is not None:
            leads[item.url] = best
    return leads


def count_items(conn: Connection, **where: Any) -> int:
    query = select(func.count()).select_from(items)
    for name, value in where.items():
        query = query.where(items.c[name] == value)
    return int(conn.execute(query).scalar_one())
