"""Store queries of the curation stage: listing, searching and changing items; events.

Every change to an item goes through :func:`update_item`, an
``UPDATE ... WHERE id = ? AND version = ?`` that bumps the version: a change
based on a stale read matches no row and the caller refuses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    Text,
    and_,
    column,
    distinct,
    exists,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    table,
    text,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import TSQUERY

from pressreview.model import Item
from pressreview.store.schema import (
    events,
    issues,
    item_keys,
    item_territories,
    item_totals,
    items,
    now,
    sources,
)
from pressreview.text import fold, search_text, title_keys, words

CHUNK = 500

#: Sort orders of item lists (name -> ORDER BY); "date" is newest first.
SORTS: dict[str, Sequence[Any]] = {
    "date": (items.c.published_at.desc(), items.c.id.desc()),
    "oldest": (items.c.published_at.asc(), items.c.id.asc()),
    "seen": (items.c.first_seen_at.desc(), items.c.id.desc()),
    "score": (items.c.score.desc(), items.c.published_at.desc(), items.c.id.desc()),
    "id": (items.c.id.asc(),),
    "outlet": (items.c.outlet.asc(), items.c.published_at.desc(), items.c.id.desc()),
    "position": (
        items.c.section.asc(),
        items.c.position.is_(None).asc(),
        items.c.position.asc(),
        items.c.published_at.desc(),
        items.c.id.asc(),
    ),
}

#: Fields written by curation, kept in events as before/after.
CHANGE_FIELDS = (
    "status",
    "section",
    "position",
    "reject_reason",
    "title_edited",
    "summary_edited",
)


@dataclass
class ItemFilter:
    """Which items a list, a count or a bulk change is about (resolved values)."""

    statuses: tuple[str, ...] = ("new",)
    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    outlet: str | None = None
    #: Section keys; "" stands for "no section".
    sections: tuple[str, ...] = ()
    #: Canonical territory names (any of them).
    territories: tuple[str, ...] = ()
    search: str | None = None
    duplicates: bool = False
    ids: tuple[int, ...] = ()
    limit: int | None = None
    offset: int = 0
    sort: str = "date"
    #: Read territories and outlets from every item (the JSON list, a scan for the
    #: distinct outlet names), as before revision 0011, and search as before revision
    #: 0012 (prefixes, the plan left to the database): the reference the indexed
    #: reading is checked against (tests, ``benchmarks/scale.py``).
    scan: bool = False


def _base() -> Select[Any]:
    return (
        select(
            items,
            sources.c.name.label("source"),
            issues.c.number.label("issue_number"),
            issues.c.status.label("issue_status"),
        )
        .select_from(items)
        .outerjoin(sources, sources.c.id == items.c.source_id)
        .outerjoin(issues, issues.c.id == items.c.issue_id)
    )


def _item(row: RowMapping) -> Item:
    return cast(Item, dict(row))  # _base(): the items row, source, issue_number, issue_status


#: French articles, elisions and the commonest prepositions, folded: a search
#: ignores them when it has other words. Each would be a prefix that begins a
#: large share of all words (``de`` begins ``des``, ``demolition``,
#: ``departement``...), which costs a reading of most of the index and finds
#: nothing the other words do not ("contrat de ville": ``contrat`` and ``ville``).
STOP_WORDS = frozenset(
    {"a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "un", "une"}
)


#: What splits a search into words: what is not a letter or a digit for Python, and
#: the New Tai Lue vowel signs and two Vedic signs, letters for Python's Unicode but
#: separators for the tables of SQLite's tokenizer (Unicode 6.1). A search word the tokenizer
#: would read as two is a phrase, which the FTS5 index (``detail=column``, revision
#: 0013) refuses. ``tests/test_search_plans.py`` tries every character.
_WORD_SPLIT = re.compile(r"[\W_\u19b0-\u19c0\u19c8\u19c9\u1cf2\u1cf3]+")


def search_terms(query: str) -> list[str]:
    """The folded words of a search query, split like the full-text tokenizers split,
    without its ``STOP_WORDS`` unless it has no other word."""
    words = [w for w in _WORD_SPLIT.split(fold(query)) if w]
    kept = [w for w in words if w not in STOP_WORDS]
    return kept or words


#: Every word of the full-text index on PostgreSQL (revision 0012), kept by a trigger.
_fts_words = table("items_fts_words", column("word", Text))
#: Search words the PostgreSQL parser keeps as one word of their own (letters only,
#: digits only): those can be replaced by the indexed words they begin.
_PLAIN_TERM = re.compile(r"[a-z]{1,200}|[0-9]{1,200}")
#: A search word beginning more indexed words than this stays a prefix query.
MAX_EXPANSION = 64


#: What the GIN index ix_items_search indexes on PostgreSQL (revision 0012): the words
#: of the item's search text, its status as "_new", "_selected"... and "_lead" or
#: "_other" (another outlet of a story); no search word begins with "_". Written as
#: in the index, so that the planner recognises it.
_SEARCH_VECTOR: ColumnClause[Any] = literal_column(
    "(to_tsvector('simple'::regconfig, items.search_text) || array_to_tsvector(ARRAY["
    "'_'::text || items.status::text, "
    "CASE WHEN items.duplicate_of IS NULL THEN '_lead'::text ELSE '_other'::text END]))"
)


def _state_words(f: ItemFilter) -> str:
    """The filter's status and other-outlet tests as a query of the index's words."""
    parts = []
    if f.statuses:
        parts.append("(" + " | ".join(_tsquery_word(f"_{s}") for s in f.statuses) + ")")
    if not f.duplicates:
        parts.append("'_lead'")
    return " & ".join(parts)


def _tsquery_word(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _expansions(conn: Connection, terms: Sequence[str]) -> dict[str, list[str]]:
    """The indexed words each plain search word begins (at most ``MAX_EXPANSION`` + 1)."""
    found: dict[str, list[str]] = {}
    for term in dict.fromkeys(t for t in terms if _PLAIN_TERM.fullmatch(t)):
        after = term[:-1] + chr(ord(term[-1]) + 1)  # byte order: the prefix is one range
        query = (
            select(_fts_words.c.word)
            .where(_fts_words.c.word >= term, _fts_words.c.word < after)
            .distinct()
            .order_by(_fts_words.c.word)
            .limit(MAX_EXPANSION + 1)
        )
        found[term] = list(conn.execute(query).scalars())
    return found


def _fts_query(terms: Sequence[str], f: ItemFilter | None = None) -> str:
    """The FTS5 query of the search words: every word, each as a prefix, in the
    search text (not the ``state`` column; revision 0013). With ``f``, only the
    items of its statuses and, without ``duplicates``, the leads of stories."""
    query = "search_text : (" + " ".join(f'"{t}"*' for t in terms) + ")"
    if f is not None and f.statuses:
        query += " AND state : (" + " OR ".join(f'"{s}"' for s in f.statuses) + ")"
    if f is not None and not f.duplicates:
        query += ' AND state : "lead"'
    return query


def _fts_count(conn: Connection, f: ItemFilter) -> int | None:
    """SQLite: the total of a search by statuses and leads alone, counted by FTS5 from
    its own index (the item's state is a column of it since revision 0013); None
    for any other filter."""
    terms = search_terms(f.search or "")
    if (
        conn.dialect.name != "sqlite"
        or f.scan
        or not terms
        or f.since is not None
        or f.until is not None
        or not _plain_search(f)
        or not all(_STATUS_WORD.fullmatch(s) for s in f.statuses)
    ):
        return None
    found = text("SELECT count(*) FROM items_fts WHERE items_fts MATCH :fts_query")
    return int(conn.execute(found, {"fts_query": _fts_query(terms, f)}).scalar_one())


#: A status the FTS5 tokenizer keeps as one word (all of the item statuses), and not
#: one of the lead words of the ``state`` column.
_STATUS_WORD = re.compile(r"(?!(?:lead|other)$)[a-z]{1,40}")


def _search_clause(
    conn: Connection, query: str, *, scan: bool = False, states: str = "", walk: bool = False
) -> ColumnElement[bool]:
    """Items holding every word of ``query``, each as a prefix (``scan``: on PostgreSQL,
    as prefixes in the query, the reference the indexed words are checked against;
    ``states``: on PostgreSQL, the status and lead words the items must hold too;
    ``walk``: on SQLite, the matches are only tested, never looked up)."""
    terms = search_terms(query)
    if not terms:
        return literal_column("1") == literal_column("1")
    if conn.dialect.name == "sqlite":
        # Every word, each as a prefix ("contrat" finds "contrats"); words are \w+ only.
        fts = text("SELECT rowid FROM items_fts WHERE items_fts MATCH :fts_query").bindparams(
            fts_query=_fts_query(terms)
        )
        # Walking the list's index, SQLite must not look the matches up by id instead
        # (it guesses an IN list is short: 830 ms instead of 66 for a common word at
        # 550,000 items); a unary + keeps a column from being used by an index.
        item_id = literal_column("+items.id") if walk else items.c.id
        return item_id.in_(fts.columns(literal_column("rowid")))
    # A prefix ('contrat':*) makes the GIN index read the whole lists of every word
    # it begins; the few indexed words it begins ('contrat' | 'contrats') are
    # intersected without that. Same matches: those are all the words it begins.
    expanded = {} if scan else _expansions(conn, terms)
    exact: list[str] = []
    prefixes: list[str] = []
    for term in terms:
        words = expanded.get(term)
        if words is None or len(words) > MAX_EXPANSION:
            prefixes.append(f"'{term}':*")
        elif not words:
            return false()  # no item holds a word beginning with it
        else:
            exact.append("(" + " | ".join(_tsquery_word(w) for w in words) + ")")
    tsquery: ColumnElement[Any] | None = None
    if prefixes:
        tsquery = func.to_tsquery(literal_column("'simple'"), " & ".join(prefixes))
    if exact:
        # Taken as they are (no parsing): they are words of the index.
        words_query = sql_cast(" & ".join(exact), TSQUERY)
        tsquery = words_query if tsquery is None else tsquery.op("&&")(words_query)
    if states:
        # Status and lead are words of the index too: only the items in range are read.
        wanted = sql_cast(states, TSQUERY)
        tsquery = wanted if tsquery is None else tsquery.op("&&")(wanted)
    return _SEARCH_VECTOR.op("@@")(tsquery)


def _territory_rows(f: ItemFilter) -> Select[Any]:
    """Ids of the items in one of the filter's territories, from ``item_territories``.

    The filter's status, other-outlet and date conditions are read from the
    copies kept in that table, so that the whole selection is one index range.
    """
    t = item_territories
    query = select(t.c.item_id).where(t.c.territory.in_(f.territories))
    if f.statuses:
        query = query.where(t.c.status.in_(f.statuses))
    if not f.duplicates:
        query = query.where(t.c.duplicate_of.is_(None))
    if f.since is not None:
        query = query.where(t.c.published_at >= f.since)
    if f.until is not None:
        query = query.where(t.c.published_at < f.until)
    return query


def _territories_only(f: ItemFilter) -> bool:
    """Whether ``item_territories`` alone answers the filter (its list in date order, its total)."""
    return bool(
        f.territories
        and not f.scan
        and not (f.ids or f.sources or f.outlet or f.sections or f.search)
        and f.sort in ("date", "oldest")
    )


def _territory_clause(conn: Connection, f: ItemFilter) -> ColumnElement[bool]:
    if not f.scan:
        return items.c.id.in_(_territory_rows(f))
    names = f.territories
    if conn.dialect.name == "sqlite":
        elements = func.json_each(items.c.territories).table_valued("value")
    else:
        elements = func.json_array_elements_text(items.c.territories).table_valued("value")
    return exists(
        select(literal_column("1")).select_from(elements).where(elements.c.value.in_(names))
    )


#: The distinct outlet names, one index probe each (the leading column of
#: ``ix_items_outlet_list``): a loose index scan, not a scan of the items.
_OUTLET_NAMES = text(
    "WITH RECURSIVE names (name) AS ("
    " SELECT min(outlet) FROM items"
    " UNION ALL"
    " SELECT (SELECT min(outlet) FROM items WHERE outlet > names.name)"
    " FROM names WHERE names.name IS NOT NULL"
    ") SELECT name FROM names WHERE name IS NOT NULL"
)


def outlet_names(conn: Connection, *, scan: bool = False) -> list[str]:
    """The distinct outlet names of the items (``scan``: read from every item)."""
    if scan:
        query = select(items.c.outlet).where(items.c.outlet.is_not(None)).distinct()
        return list(conn.execute(query).scalars())
    return list(conn.execute(_OUTLET_NAMES).scalars())


def _outlet_clause(conn: Connection, text: str, *, scan: bool = False) -> ColumnElement[bool]:
    """Outlet names containing ``text``, accent- and case-insensitive on every backend.

    SQL ``ILIKE`` folds neither accents nor (on SQLite) non-ASCII case, so the
    few distinct outlet names are matched on their folded words here.
    """
    names = _outlet_matches(conn, text, scan=scan)
    # No name: nothing to read (an empty IN list is not seen as such by every planner).
    return items.c.outlet.in_(names) if names else false()


def _outlet_matches(conn: Connection, text: str, *, scan: bool = False) -> list[str]:
    """The distinct outlet names whose folded words contain those of ``text``."""
    wanted = " ".join(words(text))
    return [n for n in outlet_names(conn, scan=scan) if wanted in " ".join(words(n))]


#: How a search is read: its matches first (looked up one by one, then sorted),
#: or the list's index in its order, each item tested against the search.
MATCHES = "matches"
WALK = "walk"
#: What testing one item costs while walking the index, against reading one match
#: first (SQLite looks it up among the matches, read once).
SQLITE_WALK_COST = 0.3
#: SQLite counts by walking the index of statuses once the full-text matches are
#: more than this share of the items in range: a step of that walk costs about a
#: fifteenth of the lookup of one match.
SQLITE_WALK_SHARE = 15
#: PostgreSQL settings to read the matches first (the GIN index's bitmap): nothing
#: else is left to the planner, whose estimate of how many items a search matches
#: can be far off (a prefix, a rare word) and which then walks an index testing
#: every item, or the whole table, at a cost of seconds. The bitmap must stay
#: exact: a lossy one makes PostgreSQL recompute the words of every item of its pages.
PLANNER: dict[str, dict[str, str]] = {MATCHES: {"enable_seqscan": "off", "work_mem": "64MB"}}
#: A reading of all the matches reads no index in order (the page does, for its joins).
PLANNER_COUNT = {MATCHES: {**PLANNER[MATCHES], "enable_indexscan": "off"}}


def _plain_search(f: ItemFilter) -> bool:
    """A search with only status, other-outlet and date filters beside it."""
    return bool(
        f.search
        and search_terms(f.search)
        and not (f.ids or f.sources or f.outlet or f.sections or f.territories)
    )


def _without_search(f: ItemFilter) -> ItemFilter:
    return ItemFilter(**{**vars(f), "search": None, "limit": None, "offset": 0})


def _search_plan(conn: Connection, f: ItemFilter, total: int | None) -> str | None:
    """How to read a page of a search (None: as the database plans it).

    On SQLite, reading the matches first costs the matches; walking the index in
    date order costs about (offset + limit) x items in range / matches tests. The
    total (counted first) tells which is cheaper. PostgreSQL reads the matches
    (see _search_page).
    """
    if f.scan or not _plain_search(f):
        return MATCHES if f.search and conn.dialect.name == "sqlite" else None
    if conn.dialect.name != "sqlite" or f.limit is None or f.sort not in ("date", "oldest"):
        return MATCHES  # every match is read anyway
    matches = count_items(conn, f) if total is None else total
    if matches == 0:
        return MATCHES
    in_range = count_items(conn, _without_search(f))
    walk = matches * matches >= (f.offset + f.limit) * in_range * SQLITE_WALK_COST
    return WALK if walk else MATCHES


def _count_plan(conn: Connection, f: ItemFilter) -> str | None:
    """How to count a search (None: as the database plans it)."""
    if f.scan or not _plain_search(f):
        return MATCHES if f.search and conn.dialect.name == "sqlite" else None
    if conn.dialect.name != "sqlite":
        return MATCHES  # the GIN index's bitmap: each match's row is read once
    return WALK if _few_matches(conn, f) is None else MATCHES


def _few_matches(conn: Connection, f: ItemFilter) -> list[int] | None:
    """SQLite: the ids of the full-text matches of a search among the items of its
    statuses and leads (the state words of the index, revision 0013; its other
    filters are applied afterwards), or None when they are many.

    FTS5 reads its own matches cheaply; when they are more than a fifteenth of the
    items in range, walking the index of statuses once, testing each item among
    them, costs less than looking each of them up.
    """
    in_range = count_items(conn, _without_search(f))
    enough = in_range // SQLITE_WALK_SHARE + 1
    terms = search_terms(f.search or "")
    found = text("SELECT rowid FROM items_fts WHERE items_fts MATCH :fts_query LIMIT :enough")
    # SQLite (revision 0013): only the matches of the filter's statuses and leads.
    query = _fts_query(terms, f if all(_STATUS_WORD.fullmatch(s) for s in f.statuses) else None)
    ids = list(conn.execute(found, {"fts_query": query, "enough": enough}).scalars())
    return None if len(ids) >= enough else ids


@contextmanager
def _planner(conn: Connection, plan: str | None, *, count: bool = False) -> Iterator[None]:
    """PostgreSQL's settings for ``plan`` during the block (this transaction only),
    then those it had before."""
    settings = PLANNER_COUNT if count else PLANNER
    values = settings.get(plan or "", {}) if conn.dialect.name == "postgresql" else {}
    if not values:
        yield
        return
    names = list(values)
    current = "SELECT " + ", ".join(f"current_setting('{name}')" for name in names)
    before = dict(zip(names, conn.execute(text(current)).one(), strict=True))

    def apply(settings: Mapping[str, str]) -> None:
        assignments = ", ".join(f"set_config('{name}', :{name}, true)" for name in settings)
        conn.execute(text(f"SELECT {assignments}"), dict(settings))

    apply(values)
    yield
    # Not after an error: the transaction is rolled back, and its settings with it.
    apply(before)


def _where(
    conn: Connection,
    query: Select[Any],
    f: ItemFilter,
    plan: str | None = None,
    *,
    matched: Sequence[int] | None = None,
) -> Select[Any]:
    if f.ids:
        query = query.where(items.c.id.in_(f.ids))
    # When the full-text matches lead (their ids looked up one by one), the status
    # and other-outlet tests are written through coalesce(): as plain columns they
    # would make the database walk the index of statuses over the whole store
    # instead, testing every item against the search (see _search_plan).
    if plan is None:
        plan = MATCHES if f.search and conn.dialect.name == "sqlite" else None
    matches_lead = plan == MATCHES
    if f.statuses:
        status = func.coalesce(items.c.status, "") if matches_lead else items.c.status
        query = query.where(status.in_(f.statuses))
    if not f.duplicates:
        query = query.where(
            func.coalesce(items.c.duplicate_of, 0) == 0
            if matches_lead
            else items.c.duplicate_of.is_(None)
        )
    if f.since is not None:
        query = query.where(items.c.published_at >= f.since)
    if f.until is not None:
        query = query.where(items.c.published_at < f.until)
    if f.sources:
        query = query.where(func.lower(sources.c.name).in_([s.lower() for s in f.sources]))
    if f.outlet:
        query = query.where(_outlet_clause(conn, f.outlet, scan=f.scan))
    if f.sections:
        named = [s for s in f.sections if s]
        clauses: list[ColumnElement[bool]] = []
        if named:
            clauses.append(items.c.section.in_(named))
        if "" in f.sections:
            clauses.append(items.c.section.is_(None))
        query = query.where(or_(*clauses))
    if f.territories:
        query = query.where(_territory_clause(conn, f))
    if f.search:
        states = _state_words(f) if matches_lead and conn.dialect.name == "postgresql" else ""
        if matched is not None:
            # The search's matches, read already (SQLite): their ids as one JSON value.
            ids = func.json_each(json.dumps(list(matched))).table_valued("value")
            query = query.where(items.c.id.in_(select(ids.c.value)))
        else:
            walk = plan == WALK and conn.dialect.name == "sqlite"
            query = query.where(
                _search_clause(conn, f.search, scan=f.scan, states=states, walk=walk)
            )
    return query


#: At most this many index ranges are merged for one page; beyond, the database
#: sorts the filter's items as before.
MAX_RANGES = 32


def _merged_ranges(
    conn: Connection, f: ItemFilter, total: int | None = None
) -> list[Select[Any]] | None:
    """A page in date order of several statuses (or outlet names) as one query per
    index range, each reading at most ``offset + limit`` rows; None when not so read.

    A database reads ``status IN (...)`` on the leading column of an index as one
    range per value and then sorts all their rows by date (1.5 s for ``new`` and
    ``selected`` at 550,000 items on SQLite): the ranges, each already in date
    order, are merged instead (ix_items_list, or ix_items_outlet_list with an
    outlet). Without statuses (every status), those present are read from the
    counters. A search is read so on SQLite when its plan walks the index
    (_search_plan; ``total``: its total, when counted).
    """
    if (
        f.scan
        or f.limit is None
        or f.sort not in ("date", "oldest")
        or f.ids
        or f.sources
        or f.sections
        or f.territories
    ):
        return None
    plan = None
    if f.search:
        if conn.dialect.name != "sqlite" or not _plain_search(f):
            return None
        if len(set(f.statuses)) == 1 or _search_plan(conn, f, total) != WALK:
            return None
        plan = WALK
    statuses = sorted(set(f.statuses))
    if not statuses:
        known = select(item_totals.c.status).group_by(item_totals.c.status)
        statuses = sorted(set(conn.execute(known).scalars()))
    outlets: list[str | None] = [None]
    if f.outlet:
        outlets = list(_outlet_matches(conn, f.outlet))
    if len(statuses) * len(outlets) in (0, 1) or len(statuses) * len(outlets) > MAX_RANGES:
        return None
    one = ItemFilter(**{**vars(f), "statuses": (), "outlet": None, "limit": None, "offset": 0})
    ranges = []
    for status in statuses:
        for outlet in outlets:
            query = _where(conn, select(items.c.id, items.c.published_at), one, plan)
            query = query.where(items.c.status == status)
            if outlet is not None:
                query = query.where(items.c.outlet == outlet)
            ranges.append(query.order_by(*SORTS[f.sort]).limit(f.offset + f.limit))
    return ranges


def _merged_page(conn: Connection, f: ItemFilter, ranges: list[Select[Any]]) -> list[Item]:
    """The page of ``f`` from its ranges (see _merged_ranges): merged, then cut."""
    merged = union_all(*(select(*r.subquery().c) for r in ranges)).subquery()
    if f.sort == "date":
        order = (merged.c.published_at.desc(), merged.c.id.desc())
    else:
        order = (merged.c.published_at.asc(), merged.c.id.asc())
    page = select(merged.c.id).order_by(*order).limit(f.limit).offset(f.offset or None)
    query = _base().where(items.c.id.in_(page)).order_by(*SORTS[f.sort])
    return [_item(row) for row in conn.execute(query).mappings()]


def list_items(conn: Connection, f: ItemFilter, *, total: int | None = None) -> list[Item]:
    """Items matching the filter, in its sort order, with source name and issue number.

    ``total``: the filter's total when the caller has counted it (a search uses it
    to choose how to read the page; it is counted here otherwise).
    """
    if _territories_only(f):
        # The page is read from item_territories' index in date order; only its
        # items are read from the items table.
        t = item_territories
        direction = "desc" if f.sort == "date" else "asc"
        page = _territory_rows(f).add_columns(t.c.published_at)
        if len(set(f.territories)) > 1:
            page = page.distinct()  # an item in two of the territories once
        page = page.order_by(
            getattr(t.c.published_at, direction)(), getattr(t.c.item_id, direction)()
        )
        if f.limit is not None:
            page = page.limit(f.limit)
        if f.offset:
            page = page.offset(f.offset)
        chosen = page.subquery()
        query = _base().where(items.c.id.in_(select(chosen.c.item_id))).order_by(*SORTS[f.sort])
        return [_item(row) for row in conn.execute(query).mappings()]
    ranges = _merged_ranges(conn, f, total)
    if ranges is not None:
        return _merged_page(conn, f, ranges)
    if _one_reading(conn, f):
        return _search_page(conn, f)[0]
    plan = _search_plan(conn, f, total)
    query = _where(conn, _base(), f, plan).order_by(*SORTS[f.sort])
    if f.limit is not None:
        query = query.limit(f.limit)
    if f.offset:
        query = query.offset(f.offset)
    with _planner(conn, plan):
        return [_item(row) for row in conn.execute(query).mappings()]


def _one_reading(conn: Connection, f: ItemFilter) -> bool:
    """Whether the page and the total of a search come from one reading of its matches
    (a page: every match is read whole anyway without a limit)."""
    return (
        conn.dialect.name == "postgresql"
        and f.limit is not None
        and not f.scan
        and _plain_search(f)
    )


def _search_page(
    conn: Connection, f: ItemFilter, *, matched: Sequence[int] | None = None
) -> tuple[list[Item], int | None]:
    """A search: its page and its total (None when the page is empty) from one
    reading of its matches.

    The total reads the row of every match anyway (the GIN index holds no dates);
    ordering their ids on the way costs little, and only the page's items are
    then read whole.
    """
    found: Select[Any] = select(items.c.id, func.count().over().label("total")).select_from(items)
    found = _where(conn, found, f, MATCHES, matched=matched).order_by(*SORTS[f.sort])
    if f.limit is not None:
        found = found.limit(f.limit)
    if f.offset:
        found = found.offset(f.offset)
    with _planner(conn, MATCHES, count=True):
        page = conn.execute(found).all()
    if not page:
        return [], None
    ids = [row.id for row in page]
    rows = get_items(conn, ids)
    return [rows[i] for i in ids], int(page[0].total)


def list_and_count(conn: Connection, f: ItemFilter) -> tuple[list[Item], int]:
    """What ``items list`` shows: the page of items and the total of the filter.

    With a search the total is counted with the page (PostgreSQL; SQLite when
    the matches are few), or first (it tells SQLite how the page is best read).
    """
    if _one_reading(conn, f):
        rows, counted = _search_page(conn, f)
        return rows, count_items(conn, f) if counted is None else counted
    if conn.dialect.name == "sqlite" and f.limit is not None and _plain_search(f) and not f.scan:
        # When the full-text matches are few (their rows are read to count them),
        # the page's ids are sorted on the way, from the matches read once.
        matched = _few_matches(conn, f)
        if matched is not None:
            rows, counted = _search_page(conn, f, matched=matched)
            if counted is None:  # an empty page (no match, or past the last one)
                counted = count_items(conn, f) if matched else 0
            return rows, counted
    if f.limit is None and not f.offset:
        rows = list_items(conn, f)
        return rows, len(rows)
    total = count_items(conn, f)
    return list_items(conn, f, total=total), total


def _by_status_only(f: ItemFilter) -> bool:
    """Whether the filter is about statuses (and leads) alone: ``item_totals`` answers."""
    return not (
        f.scan
        or f.ids
        or f.since
        or f.until
        or f.sources
        or f.outlet
        or f.sections
        or f.territories
        or f.search
    )


def count_items(conn: Connection, f: ItemFilter) -> int:
    if _by_status_only(f):
        total = select(func.coalesce(func.sum(item_totals.c.n), 0))
        if f.statuses:
            total = total.where(item_totals.c.status.in_(f.statuses))
        if not f.duplicates:
            total = total.where(item_totals.c.is_lead.is_(True))
        return int(conn.execute(total).scalar_one())
    if _territories_only(f):
        # One index range of item_territories (an item in two of the territories once).
        t = item_territories
        each = func.count(distinct(t.c.item_id)) if len(set(f.territories)) > 1 else func.count()
        rows = _territory_rows(f).with_only_columns(each)
        return int(conn.execute(rows).scalar_one())
    counted_by_fts = _fts_count(conn, f)
    if counted_by_fts is not None:
        return counted_by_fts
    counted: Select[Any] = select(func.count()).select_from(items)
    if f.sources:
        counted = counted.outerjoin(sources, sources.c.id == items.c.source_id)
    plan = _count_plan(conn, f)
    # Without that join, a total by status and dates reads the index ix_items_list alone.
    counted = _where(conn, counted, f, plan)
    with _planner(conn, plan, count=True):
        return int(conn.execute(counted).scalar_one())


def get_items(conn: Connection, ids: Iterable[int]) -> dict[int, Item]:
    """The items with these ids (missing ids are absent from the result)."""
    wanted = sorted(set(ids))
    found: dict[int, Item] = {}
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        for row in conn.execute(_base().where(items.c.id.in_(chunk))).mappings():
            found[row["id"]] = _item(row)
    return found


def get_item(conn: Connection, item_id: int) -> Item | None:
    row = conn.execute(_base().where(items.c.id == item_id)).mappings().first()
    return _item(row) if row is not None else None


def find_by_url(conn: Connection, url: str) -> Item | None:
    row = conn.execute(_base().where(items.c.url == url)).mappings().first()
    return _item(row) if row is not None else None


def other_outlets(conn: Connection, item_id: int) -> list[Item]:
    """The items recorded as other outlets of this story (``duplicate_of`` = id)."""
    query = (
        _base().where(items.c.duplicate_of == item_id).order_by(items.c.published_at, items.c.id)
    )
    return [_item(row) for row in conn.execute(query).mappings()]


def _next_issue(section: str | None) -> ColumnElement[bool]:
    """Selected items of the next issue (not published yet; a draft may have gathered them)."""
    return and_(
        items.c.status == "selected",
        or_(items.c.issue_id.is_(None), issues.c.status != "published"),
        items.c.section.is_(None) if section is None else items.c.section == section,
    )


def section_items(conn: Connection, section: str | None) -> list[Item]:
    """Selected items of one section (None: without a section), in newsletter order."""
    query = _base().where(_next_issue(section)).order_by(*SORTS["position"])
    return [_item(row) for row in conn.execute(query).mappings()]


def max_position(conn: Connection, section: str | None) -> float | None:
    query = (
        select(func.max(items.c.position))
        .select_from(items)
        .outerjoin(issues, issues.c.id == items.c.issue_id)
        .where(_next_issue(section))
    )
    value = conn.execute(query).scalar_one()
    return float(value) if value is not None else None


def item_search_text(row: Mapping[str, Any]) -> str:
    """The folded text indexed for an item: original and edited title and summary, outlet."""
    return search_text(
        row.get("title"),
        row.get("title_edited"),
        row.get("excerpt"),
        row.get("summary_edited"),
        row.get("outlet"),
    )


def update_item(
    conn: Connection, item_id: int, version: int, values: Mapping[str, Any], *, stamp: datetime
) -> bool:
    """Apply values when the item is still at ``version``; False when it moved on."""
    result = conn.execute(
        update(items)
        .where(items.c.id == item_id, items.c.version == version)
        .values(**values, updated_at=stamp, version=items.c.version + 1)
    )
    return result.rowcount == 1


def set_item_contract(
    conn: Connection, item_id: int, contract: Mapping[str, Any] | None, source: str | None
) -> bool:
    """Set an item's contrat de ville classification (``source``: "auto" or "staff")."""
    result = conn.execute(
        update(items)
        .where(items.c.id == item_id)
        # null(): SQL NULL, not the JSON value null (the tracker's index skips NULL rows).
        .values(contract=null() if contract is None else dict(contract), contract_source=source)
    )
    return result.rowcount == 1


def insert_item(conn: Connection, values: Mapping[str, Any], *, stamp: datetime) -> int:
    """Insert one item (added by hand) and its near-duplicate lookup keys."""
    item_id = int(conn.execute(insert(items).values(**values).returning(items.c.id)).scalar_one())
    keys = [
        {"key": k, "item_id": item_id, "seen_at": stamp} for k in set(title_keys(values["title"]))
    ]
    if keys:
        conn.execute(insert(item_keys), keys)
    return item_id


# -- events ----------------------------------------------------------------------


def add_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    item_id: int | None = None,
    issue_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        insert(events).values(
            at=at or now(),
            actor=actor,
            action=action,
            item_id=item_id,
            issue_id=issue_id,
            details=dict(details or {}),
        )
    )


def list_events(
    conn: Connection,
    *,
    item_id: int | None = None,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    query = select(events)
    conditions: list[ColumnElement[bool]] = []
    if item_id is not None:
        conditions.append(events.c.item_id == item_id)
    if since is not None:
        conditions.append(events.c.at >= since)
    if actor:
        conditions.append(func.lower(events.c.actor) == actor.lower())
    if action:
        conditions.append(or_(events.c.action == action, events.c.action.like(f"{action}.%")))
    if conditions:
        query = query.where(and_(*conditions))
    order = (events.c.at.desc(), events.c.id.desc()) if newest_first else (events.c.at, events.c.id)
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]
