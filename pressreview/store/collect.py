"""Store queries of the collection stage: source state and item upserts."""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    String,
    TextualSelect,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError

from pressreview.config import Feed
from pressreview.errors import StoreError
from pressreview.store.items import item_search_text
from pressreview.store.schema import UTCDateTime, item_keys, items, now, sources
from pressreview.text import (
    keys_of_hashes,
    keys_of_shingles,
    search_text,
    sha256,
    shingle_hashes,
    shingles,
    shingles_of_words,
)

# Chunk size for IN (...) lists: well under SQLite's variable limit.
CHUNK = 500


#: SQLite: pages the write-ahead log of a bulk writer may hold before it is copied
#: into the database (SQLite's default is 1,000 pages, 4 MB).
BULK_WAL_PAGES = 10_000


def begin_bulk_writes(conn: Connection) -> None:
    """Settings of a connection that will write many items in a row (the collect writer).

    On SQLite, each commit of a lot appends the pages it changed (random pages
    of the URL, title-key and territory indexes) to the write-ahead log, and
    the default checkpoint copies them into the database file every 4 MB:
    pages changed by several lots are copied several times. A longer log
    (``BULK_WAL_PAGES``, up to 40 MB) copies each of them once per checkpoint:
    about a sixth of the CPU of storing an item. Readers are not blocked
    (it is the same log). ``end_bulk_writes`` checkpoints what is left.

    The statement journal stays in memory (``temp_store``): a source's
    multi-row INSERT keeps a copy of every page it changes, so that a failing
    row can undo the statement alone, and past 64 KB SQLite writes that copy
    to a temporary file. The territory index's random pages made those files
    two thirds of everything written in a cold collect, and a fifth of the
    CPU of storing an item. The copy lives for one statement (about 1 MB for
    50 items).
    """
    if conn.dialect.name == "sqlite":
        _pragmas(conn, f"PRAGMA wal_autocheckpoint={BULK_WAL_PAGES}", "PRAGMA temp_store=MEMORY")


def end_bulk_writes(conn: Connection) -> None:
    """Copy the log of a bulk writer into the database, as far as readers allow."""
    if conn.dialect.name == "sqlite":
        _pragmas(
            conn,
            "PRAGMA wal_checkpoint(PASSIVE)",
            "PRAGMA wal_autocheckpoint=1000",
            "PRAGMA temp_store=DEFAULT",
        )


def _pragmas(conn: Connection, *statements: str) -> None:
    """Run PRAGMA statements outside any transaction of this connection."""
    try:
        if conn.in_transaction():
            conn.commit()
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.commit()
    except SQLAlchemyError as exc:
        raise StoreError(str(exc)) from exc


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# -- sources -------------------------------------------------------------------


class SourceRow(TypedDict):
    """A row of ``sources``: a feed's fetch state."""

    id: int
    name: str
    config_url: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    status: str
    last_error: str | None
    failures: int
    next_attempt_at: datetime | None
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    entries_seen: int
    created_at: datetime
    updated_at: datetime
    last_status: int | None
    last_content_type: str | None
    last_url: str | None
    newest_entry_at: datetime | None


def _source(row: RowMapping) -> SourceRow:
    return cast(SourceRow, dict(row))  # select(sources): every column


def sync_sources(conn: Connection, feeds: Iterable[Feed]) -> dict[str, SourceRow]:
    """Make sure each configured feed has a row; a changed URL in the config resets its state.

    Returns the rows by source name.
    """
    feeds = list(feeds)
    existing = {row["name"]: row for row in conn.execute(select(sources)).mappings()}
    stamp = now()
    changed = False
    for feed in feeds:
        row = existing.get(feed.name)
        if row is not None and row["config_url"] == feed.url:
            continue
        changed = True
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
        else:
            conn.execute(
                update(sources)
                .where(sources.c.id == row["id"])
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
                    last_status=None,
                    last_content_type=None,
                    last_url=None,
                    newest_entry_at=None,
                    updated_at=stamp,
                )
            )
    if changed:
        return source_rows(conn)
    # Nothing written: the rows just read are the rows (the usual case).
    return {name: _source(row) for name, row in existing.items()}


def source_rows(conn: Connection) -> dict[str, SourceRow]:
    return {row["name"]: _source(row) for row in conn.execute(select(sources)).mappings()}


def get_source(conn: Connection, source_id: int) -> SourceRow:
    return _source(conn.execute(select(sources).where(sources.c.id == source_id)).mappings().one())


#: Built once: a statement built per call costs more than running it on a few rows.
_SOURCES_BY_ID = select(sources).where(sources.c.id.in_(bindparam("ids", expanding=True)))


def get_sources(conn: Connection, source_ids: Iterable[int]) -> dict[int, SourceRow]:
    """Several sources' rows by id, in one query per chunk."""
    found: dict[int, SourceRow] = {}
    for chunk in _chunks(sorted(set(source_ids))):
        for row in conn.execute(_SOURCES_BY_ID, {"ids": list(chunk)}).mappings():
            found[row["id"]] = _source(row)
    return found


def newest_item_dates(conn: Connection) -> dict[int, datetime]:
    """The newest item date of each source that has items (by source id)."""
    query = (
        select(items.c.source_id, func.max(items.c.published_at))
        .where(items.c.source_id.is_not(None), items.c.origin == "feed")
        .group_by(items.c.source_id)
    )
    return {row[0]: row[1] for row in conn.execute(query) if row[1] is not None}


def update_source(conn: Connection, source_id: int, **values: Any) -> None:
    values.setdefault("updated_at", now())
    conn.execute(update(sources).where(sources.c.id == source_id).values(**values))


def update_sources(conn: Connection, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Several ``update_source`` at once: one ``executemany`` per set of columns."""
    stamp = now()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for source_id, values in updates:
        values = {"updated_at": stamp, **values}
        groups.setdefault(tuple(sorted(values)), []).append(
            {"source_id_": source_id, **{f"{k}_": v for k, v in values.items()}}
        )
    for columns, params in groups.items():
        conn.execute(_update_sources(columns), params)


@functools.lru_cache(maxsize=64)
def _update_sources(columns: tuple[str, ...]) -> Update:
    """The ``UPDATE`` of these columns of a source (built once per set of columns)."""
    return (
        update(sources)
        .where(sources.c.id == bindparam("source_id_"))
        .values({c: bindparam(f"{c}_") for c in columns})
    )


# -- items ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _outlet_search_text(outlet: str) -> str:
    """``search_text`` of an outlet's name (a run's items come from a few outlets)."""
    return search_text(outlet)


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
    #: The contrat de ville classification (``items.contract``), or None.
    contract: dict[str, Any] | None = None
    #: Why a relevant-looking item is kept as ``filtered`` (stored as its reject reason).
    filter_reason: str | None = None
    #: The author's name, when the feed gives one.
    author: str | None = None
    #: Work that does not need the store, done beforehand (e.g. in a parse worker)
    #: by ``prepare()``; computed here when missing.
    shingles: set[str] | None = None
    search_text: str | None = None
    content_hash: str | None = None
    #: The title's keys (``keys_of_shingles``) and ``shingle_mask`` of its shingles.
    keys: list[str] | None = None
    mask: int | None = None
    #: The agenda events it announces, read in the parse worker (what
    #: ``pressreview.agenda.detect_ahead`` returns); None: read when it is stored.
    agenda: tuple[Any, ...] | None = None

    def prepare(
        self,
        default_outlet: str | None,
        title_words: list[str] | None = None,
        excerpt_words: list[str] | None = None,
    ) -> NewItem:
        """Compute what does not need the store; ``title_words`` and ``excerpt_words``
        are ``text.words`` of the title and the excerpt when already known."""
        if title_words is None or excerpt_words is None:
            self.shingles = shingles(self.title)
            self.search_text = search_text(self.title, self.excerpt, self.outlet or default_outlet)
        else:
            self.shingles = shingles_of_words(title_words)
            outlet = self.outlet or default_outlet
            self.search_text = " ".join(
                [
                    *([" ".join(title_words)] if self.title else []),
                    *([" ".join(excerpt_words)] if self.excerpt else []),
                    *([_outlet_search_text(outlet)] if outlet else []),
                ]
            )
        # One CRC-32 per shingle for both the keys and the mask.
        hashes = shingle_hashes(self.shingles)
        self.keys = keys_of_hashes(hashes)
        self.mask = shingle_mask(self.shingles, hashes)
        self.content_hash = _content_hash(self)
        return self


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    new_ids: list[int] = field(default_factory=list)
    #: The new items that are a story's first outlet (no ``duplicate_of``), with their
    #: ids, as stored (for the agenda's proposals).
    new_stories: list[tuple[int, NewItem]] = field(default_factory=list)


#: Title shingles (interned, as a tuple: a third of the memory of a set), lead,
#: source and shingle mask of an item, by id.
TitleCache = dict[int, tuple[tuple[str, ...], int | None, int | None, int]]

#: Postings of the dedupe window read at once when a run starts, at most (beyond,
#: keys are looked up per batch).
PRELOAD_POSTINGS = 100_000

#: Bits of a shingle mask.
MASK_BITS = 128


def shingle_mask(sh: Iterable[str], hashes: Iterable[int] | None = None) -> int:
    """A bit per shingle (its CRC-32 modulo ``MASK_BITS``), to bound a Jaccard similarity.

    A bit set in one title's mask and not in the other's stands for at least
    one shingle that the second title lacks, so the number of such bits is a
    lower bound of the set difference, hence an upper bound of the
    intersection: pairs that cannot reach the threshold are skipped without
    intersecting their sets (exact, never a guess). ``hashes``: the shingles'
    ``text.shingle_hashes`` when already computed.
    """
    if hashes is None:
        hashes = shingle_hashes(sh)
    # The distinct bits, added: their sum is their union.
    return sum({1 << (h % MASK_BITS) for h in hashes})


@dataclass
class DedupeCache:
    """What one writer knows of the near-duplicate candidates, kept between batches of a run.

    Exact, not a guess: the newest postings of a title key (at most
    ``CANDIDATES_PER_KEY``, with the oldest ``seen_at`` among them) are what
    the store holds, given that since they were read only this writer
    inserted items (checked before every lookup with the highest item id;
    anything else resets the postings) and no posting fell out of the window
    (that key is read again). When the store held no postings at all at the
    start, keys never seen are known to have none and are not looked up.
    """

    titles: TitleCache = field(default_factory=dict)
    postings: dict[str, tuple[list[int], datetime | None]] = field(default_factory=dict)
    #: Keys missing from ``postings`` have no postings in the store.
    complete: bool = False
    #: The highest items.id the postings account for (None: not synchronized).
    max_id: int | None = None
    since: datetime | None = None
    #: The SQLite transaction that inserted last (it holds the write lock while active).
    locked: Any = None

    def reset(self) -> None:
        """Forget everything (after a rollback: ids may be given again)."""
        self.titles.clear()
        self.forget_postings()

    def forget_postings(self) -> None:
        self.postings.clear()
        self.complete = False
        self.max_id = self.since = self.locked = None

    def sync(self, conn: Connection, since: datetime) -> None:
        """Drop the postings if another writer inserted items, or time went back."""
        forward = self.since is None or since >= self.since
        transaction = conn.get_transaction()
        if (
            forward
            and transaction is not None
            and transaction is self.locked
            and transaction.is_active
        ):
            # Still in the SQLite transaction that inserted last: nobody else can write.
            self.since = since
            return
        self.locked = None
        current = int(conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one())
        if forward and self.max_id is not None and current == self.max_id:
            self.since = since
            return
        self.forget_postings()
        self.complete = self._preload(conn, since)
        self.max_id, self.since = current, since

    def _preload(self, conn: Connection, since: datetime) -> bool:
        """Read every posting of the window at once, when there are not too many.

        One range of the items' first-seen index instead of an index lookup per
        title key of every batch: a run on a store with history costs about
        what it costs on an empty one. A key's postings are stamped with its
        item's first-seen time (both are the insert's stamp), so the items
        first seen in the window hold every posting of the window. True when
        ``postings`` now holds all of them (keys missing have none).
        """
        rows = conn.execute(
            select(item_keys.c.key, item_keys.c.item_id, item_keys.c.seen_at)
            .select_from(items.join(item_keys, item_keys.c.item_id == items.c.id))
            .where(items.c.first_seen_at >= since, item_keys.c.seen_at >= since)
            .limit(PRELOAD_POSTINGS + 1)
        ).all()
        if len(rows) > PRELOAD_POSTINGS:
            return False  # a very busy window: keys are looked up batch by batch
        found: dict[str, list[tuple[int, datetime]]] = {}
        for key, item_id, seen_at in rows:
            found.setdefault(key, []).append((item_id, seen_at))
        for key, postings in found.items():
            postings.sort(reverse=True)
            newest = postings[:CANDIDATES_PER_KEY]
            self.postings[key] = ([i for i, _ in newest], min(seen for _, seen in newest))
        return True

    def inserted(self, item_id: int, keys: Iterable[str], seen_at: datetime) -> None:
        """Account for an item this writer inserted, with its title keys."""
        if self.max_id is not None:
            self.max_id = max(self.max_id, item_id)
        for key in keys:
            entry = self.postings.get(key)
            if entry is None:
                if not self.complete:
                    continue  # not known: it will be read from the store
                entry = ([], None)
            ids, oldest = entry
            if not ids or item_id > ids[0]:
                ids.insert(0, item_id)  # the usual case: the newest id of all
            else:
                ids.append(item_id)
                ids.sort(reverse=True)
            del ids[CANDIDATES_PER_KEY:]
            self.postings[key] = (ids, seen_at if oldest is None else min(oldest, seen_at))


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


#: Item columns written by the collection, in this order.
_ITEM_COLUMNS = (
    "source_id", "guid", "url", "link", "title", "summary_html", "excerpt", "outlet",
    "language", "published_at", "date_is_fallback", "first_seen_at", "updated_at", "tags",
    "territories", "score", "status", "section", "duplicate_of", "content_hash", "origin",
    "search_text", "version", "contract", "contract_source", "reject_reason", "author",
)  # fmt: skip
_KEY_COLUMNS = ("key", "item_id", "seen_at")
#: Bound parameters per statement when the driver cannot say (SQLite's oldest limit).
_SQLITE_MAX_PARAMS = 999
#: Rows per multi-row statement, at most.
_ROWS_PER_STATEMENT = 500


@functools.lru_cache(maxsize=8)
def _bind_processors(dialect: Dialect, table: str, columns: tuple[str, ...]) -> list[Any]:
    """The dialect's own conversion of each column (dates, JSON, booleans), or None."""
    target = items if table == "items" else item_keys
    return [target.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]


@functools.lru_cache(maxsize=64)
def _multirow_insert(table: str, columns: tuple[str, ...], rows: int, returning: str) -> str:
    one = "(" + ", ".join("?" * len(columns)) + ")"
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * rows)
    return f"{sql} RETURNING {returning}" if returning else sql


def _max_params(conn: Connection) -> int:
    dbapi = conn.connection.dbapi_connection
    getlimit = getattr(dbapi, "getlimit", None)
    if getlimit is None:  # Python < 3.11
        return _SQLITE_MAX_PARAMS
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def _insert_rows(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    returning: str = "",
) -> list[Any] | None:
    """Insert rows (tuples in ``columns`` order); on SQLite as multi-row statements.

    On SQLite, one multi-row ``INSERT ... VALUES`` for a source's items costs
    half as much per item as ``executemany``: the FTS5 trigger flushes the
    full-text index at the end of every statement, and ``executemany`` runs
    one statement per row. The values are converted by the dialect's own
    bind processors, once per distinct date or list, which also saves
    SQLAlchemy's per-row parameter processing. With ``returning`` (SQLite
    3.35 and later), the inserted rows' ``returning`` columns come back;
    otherwise None. Other backends use a plain ``executemany``.
    """
    if not rows:
        return []
    target = items if table == "items" else item_keys
    if conn.dialect.name != "sqlite":
        conn.execute(insert(target), [dict(zip(columns, row, strict=True)) for row in rows])
        return None
    if returning and not conn.dialect.insert_returning:
        returning = ""
    convert = [
        (i, proc)
        for i, proc in enumerate(_bind_processors(conn.dialect, table, columns))
        if proc is not None
    ]
    memo: dict[Any, Any] = {}
    flat: list[list[Any]] = []
    for row in rows:
        values = list(row)
        for i, proc in convert:
            value = values[i]
            if value is None:
                continue
            if isinstance(value, dict):
                values[i] = proc(value)
                continue
            # Run stamps and common tag lists repeat on many rows: convert each once.
            key = (i, tuple(value)) if isinstance(value, list) else (i, value)
            converted = memo.get(key, memo)
            if converted is memo:
                converted = memo[key] = proc(value)
            values[i] = converted
        flat.append(values)
    per_statement = max(1, min(_ROWS_PER_STATEMENT, _max_params(conn) // len(columns)))
    returned: list[Any] = []
    for chunk in _chunks(flat, per_statement):
        params = tuple(v for values in chunk for v in values)
        result = conn.exec_driver_sql(
            _multirow_insert(table, columns, len(chunk), returning), params
        )
        if returning:
            returned.extend(result.all())
    return returned if returning else None


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
    title_cache: TitleCache | None = None,
    cache: DedupeCache | None = None,
) -> StoreCounts:
    """Insert new items and update changed ones, one item per story.

    Identity: the same GUID in this source, or the same canonical URL
    anywhere, is the same item. A new item whose title is a near-duplicate
    of a recent item from another source is stored as an other outlet of
    that story (``duplicate_of``). Every lookup goes through an index with
    the batch's own keys: the cost grows with the batch, not the store.
    ``cache`` (or just ``title_cache``) carries what one writer already
    knows from one batch to the next.
    """
    stamp = stamp or now()
    counts = StoreCounts()
    if not batch:
        return counts
    if cache is None:
        cache = DedupeCache(titles=title_cache if title_cache is not None else {})
    # Within a batch, the last entry with a GUID or URL wins (feeds repeat entries).
    by_key: dict[str, NewItem] = {}
    for item in batch:
        by_key[f"g:{item.guid}" if item.guid else f"u:{item.url}"] = item
    seen_urls: dict[str, NewItem] = {}
    for item in by_key.values():
        seen_urls[item.url] = item
    unique = list(seen_urls.values())
    horizon = stamp + timedelta(hours=1)
    for item in unique:
        # A date in the future is the feed's mistake: the item dates from when it was seen.
        if item.published_at is not None and item.published_at > horizon:
            item.published_at = None

    guids = [i.guid for i in unique if i.guid]
    urls = [i.url for i in unique]
    cols = (
        items.c.id, items.c.guid, items.c.url, items.c.content_hash, items.c.source_id,
        items.c.title_edited, items.c.summary_edited, items.c.contract_source,
    )  # fmt: skip
    existing_by_guid: dict[str, RowMapping] = {}
    existing_by_url: dict[str, RowMapping] = {}
    if source_id is not None and guids and len(guids) <= CHUNK and len(urls) <= CHUNK:
        # Both lookups in one statement (two index searches); the rows sorted out here.
        guid_set, url_set = set(guids), set(urls)
        for row in conn.execute(
            select(*cols).where(
                or_(
                    and_(items.c.source_id == source_id, items.c.guid.in_(guids)),
                    items.c.url.in_(urls),
                )
            )
        ).mappings():
            if row.source_id == source_id and row.guid in guid_set:
                existing_by_guid[row.guid] = row
            if row.url in url_set:
                existing_by_url[row.url] = row
    else:
        if source_id is not None:
            for chunk in _chunks(guids):
                for row in conn.execute(
                    select(*cols).where(items.c.source_id == source_id, items.c.guid.in_(chunk))
                ).mappings():
                    existing_by_guid[row.guid] = row
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
            "tags": item.tags,
            "content_hash": digest,
            "updated_at": stamp,
            "search_text": item.search_text
            or search_text(item.title, item.excerpt, item.outlet or default_outlet),
        }
        if row.title_edited is not None or row.summary_edited is not None:
            # Staff edits stay searchable when the feed's text changes under them.
            values["search_text"] = item_search_text(
                {**values, "outlet": item.outlet or default_outlet,
                 "title_edited": row.title_edited, "summary_edited": row.summary_edited}
            )  # fmt: skip
        if row.contract_source != "staff":
            # The classifier's reading follows the text; a staff correction stays.
            values["contract"] = item.contract
            values["contract_source"] = "auto" if item.contract is not None else None
        if item.published_at is not None:
            values["published_at"] = item.published_at
            values["date_is_fallback"] = False
        if item.outlet:
            values["outlet"] = item.outlet
        if item.author:
            values["author"] = item.author
        if item.link:
            # A feed that stops giving a link does not erase one (staff may have added it).
            values["link"] = item.link
        # The URL moves with the GUID, unless another item already holds the new URL.
        other = existing_by_url.get(item.url)
        if row.url != item.url and other is None:
            values["url"] = item.url
        conn.execute(
            update(items).where(items.c.id == row.id).values(**values, version=items.c.version + 1)
        )
        cache.titles.pop(row.id, None)
        counts.updated += 1

    if not to_insert:
        return counts

    shingles_of: dict[str, set[str]] = {}
    keys_of: dict[str, list[str]] = {}
    masks_of: dict[str, int] = {}
    cache.sync(conn, stamp - dedupe_window)
    leads = _near_duplicate_leads(
        conn, source_id, to_insert, dedupe_window, threshold, stamp, shingles_of, cache, keys_of,
        masks_of,
    )  # fmt: skip
    rows = []
    for item in to_insert:
        outlet = item.outlet or default_outlet
        rows.append(
            (  # in _ITEM_COLUMNS order
                source_id,
                item.guid,
                item.url,
                item.link,
                item.title,
                item.summary_html,
                item.excerpt,
                outlet,
                item.language,
                item.published_at or stamp,
                item.published_at is None,
                stamp,
                stamp,
                item.tags,
                item.territories,
                item.score,
                "new" if item.relevant else "filtered",
                item.section,
                leads.get(item.url),
                item.content_hash or _content_hash(item),
                origin,
                item.search_text or search_text(item.title, item.excerpt, outlet),
                1,
                item.contract,
                "auto" if item.contract is not None else None,
                item.filter_reason,
                item.author,
            )
        )
    # The new ids by URL (unique): from a multi-row INSERT ... RETURNING on SQLite,
    # else read back (an executemany with RETURNING runs one row at a time).
    returned = _insert_rows(conn, "items", _ITEM_COLUMNS, rows, returning="url, id")
    if returned is not None:
        ids: dict[str, int] = {url: item_id for url, item_id in returned}
    else:
        ids = {}
        for chunk in _chunks([item.url for item in to_insert]):
            ids.update(
                (url, item_id)
                for url, item_id in conn.execute(
                    select(items.c.url, items.c.id).where(items.c.url.in_(chunk))
                ).all()
            )
    if conn.dialect.name == "sqlite":
        # This transaction now holds SQLite's write lock: no other writer until it ends.
        cache.locked = conn.get_transaction()
    key_rows = []
    for item in to_insert:
        item_id = ids[item.url]
        counts.new_ids.append(item_id)
        lead = leads.get(item.url)
        if lead is None:
            counts.new_stories.append((item_id, item))
        cache.titles[item_id] = (
            tuple(map(sys.intern, shingles_of[item.url])),
            lead,
            source_id,
            masks_of[item.url],
        )
        if lead is not None:
            counts.duplicates += 1
        keys = set(keys_of[item.url])
        cache.inserted(item_id, keys, stamp)
        for key in keys:
            key_rows.append((key, item_id, stamp))
    _insert_rows(conn, "item_keys", _KEY_COLUMNS, key_rows)
    counts.new += len(to_insert)
    return counts


#: At most this many recent items per title key are candidates: a key shared by
#: many titles (a common phrase) says little, and must not make a batch's cost
#: grow with the store.
CANDIDATES_PER_KEY = 10


@functools.lru_cache(maxsize=64)
def _newest_postings(keys: int) -> TextualSelect:
    """``keys`` index range scans in one statement: the newest postings of each key.

    Written as SQL text because building a 200-branch UNION with the
    expression language costs more than running it.
    """
    branch = (
        "SELECT * FROM (SELECT key, item_id, seen_at FROM item_keys WHERE key = :k{i} "
        "AND seen_at >= :since ORDER BY item_id DESC LIMIT {limit}) AS p{i}"
    )
    sql = " UNION ALL ".join(branch.format(i=i, limit=CANDIDATES_PER_KEY) for i in range(keys))
    return (
        text(sql)
        .bindparams(bindparam("since", type_=UTCDateTime))
        .columns(key=String, item_id=Integer, seen_at=UTCDateTime)
    )


def _candidates(
    conn: Connection, keys: Iterable[str], since: datetime, cache: DedupeCache
) -> dict[str, list[int]]:
    """The newest postings (item ids) of each key, from the cache or the store."""
    found: dict[str, list[int]] = {}
    missing = []
    postings = cache.postings
    for key in keys:
        entry = postings.get(key)
        if entry is None:
            if not cache.complete:
                missing.append(key)
        elif entry[1] is None or entry[1] >= since:
            if entry[0]:
                found[key] = entry[0]
        else:
            missing.append(key)  # a posting fell out of the window: read the key again
    # One small index range per key (the newest postings first, at most
    # CANDIDATES_PER_KEY of them): the cost grows with the batch, not the store.
    for chunk in _chunks(sorted(missing), 200):
        read: dict[str, tuple[list[int], datetime | None]] = {k: ([], None) for k in chunk}
        for key, item_id, seen_at in conn.execute(_newest_postings(len(chunk)), {
            **{f"k{i}": key for i, key in enumerate(chunk)}, "since": since,
        }).all():  # fmt: skip
            ids, oldest = read[key]
            ids.append(item_id)
            read[key] = (ids, seen_at if oldest is None or seen_at < oldest else oldest)
        for key, (ids, oldest) in read.items():
            ids.sort(reverse=True)
            postings[key] = (ids, oldest)
            if ids:
                found[key] = ids
    return found


def _near_duplicate_leads(
    conn: Connection,
    source_id: int | None,
    batch: Sequence[NewItem],
    window: timedelta,
    threshold: float,
    stamp: datetime,
    shingles_of: dict[str, set[str]] | None = None,
    cache: DedupeCache | None = None,
    keys_of: dict[str, list[str]] | None = None,
    masks_of: dict[str, int] | None = None,
) -> dict[str, int]:
    """For each new item that repeats a recent story of another source: the story's lead id.

    Candidates come from the title keys (an indexed lookup, the most recent
    ``CANDIDATES_PER_KEY`` per key), then are confirmed by the Jaccard
    similarity of the titles' shingles.
    """
    shingles_of = shingles_of if shingles_of is not None else {}
    keys_of = keys_of if keys_of is not None else {}
    masks_of = masks_of if masks_of is not None else {}
    cache = cache if cache is not None else DedupeCache()
    for item in batch:
        prepared = item.shingles is not None and item.keys is not None and item.mask is not None
        if item.url not in shingles_of:
            shingles_of[item.url] = (
                item.shingles if item.shingles is not None else shingles(item.title)
            )
        sh = shingles_of[item.url]
        if prepared and sh is item.shingles:
            keys_of[item.url], masks_of[item.url] = item.keys or [], item.mask or 0
        else:
            keys_of[item.url], masks_of[item.url] = keys_of_shingles(sh), shingle_mask(sh)
    all_keys = {k for ks in keys_of.values() for k in ks}
    if not all_keys:
        return {}
    since = stamp - window
    candidates = _candidates(conn, all_keys, since, cache)
    if not candidates:
        return {}
    cached = cache.titles
    missing = sorted({i for ids in candidates.values() for i in ids if i not in cached})
    for chunk in _chunks(missing):
        for item_id, title, dup_of, owner in conn.execute(
            select(items.c.id, items.c.title, items.c.duplicate_of, items.c.source_id).where(
                items.c.id.in_(chunk)
            )
        ).all():
            sh = shingles(title)
            cached[item_id] = (tuple(map(sys.intern, sh)), dup_of, owner, shingle_mask(sh))
    # Each item against the candidates of its keys: other sources' items only (a
    # feed does not repeat its own stories). An item sharing several keys with a
    # candidate compares it more than once, which cannot change the outcome.
    leads: dict[str, int] = {}
    found = cached.get
    for item in batch:
        mine = shingles_of[item.url]
        mask = masks_of[item.url]
        size = len(mine)
        best, best_score = None, threshold
        for key in keys_of[item.url]:
            for candidate in candidates.get(key, ()):
                entry = found(candidate)
                if entry is None:
                    continue
                theirs, their_lead, owner, their_mask = entry
                if owner is None or owner == source_id:
                    continue
                other = len(theirs)
                # Each side's shingles less those the other lacks (see shingle_mask)
                # bound the shingles in common, hence the score: a pair that cannot
                # reach the best score so far is skipped (exact, as the score only
                # grows with the shingles in common).
                most = size - (mask & ~their_mask).bit_count()
                if most <= 0 or most / (size + other - most) < best_score:
                    continue
                most = other - (their_mask & ~mask).bit_count()
                if most <= 0 or most / (size + other - most) < best_score:
                    continue
                common = len(mine.intersection(theirs))
                score = common / (size + other - common) if common else 0.0
                lead = their_lead or candidate
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
