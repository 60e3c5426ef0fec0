"""Full-text search at scale (revision 0012) answers exactly as before.

Every search is checked against the reference reading (``ItemFilter.scan``:
search words as prefixes, the plan left to the database, as before revision
0012): same ids in the same order, same total, whichever way the page and the
total are read (the matches first, or the list's index walked in date order),
on SQLite and PostgreSQL. The words cover what the indexed reading treats
apart: common and rare words, a prefix beginning more indexed words than are
replaced, a word no item holds, words the PostgreSQL parser splits, accents;
and the changes that add words: collect, an edit, a store upgraded from
revision 0011 with its items already there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import _postgres_database
from fixtures_curate import Collected, collected_fixture  # noqa: F401

from pressreview import curate
from pressreview.store import Store
from pressreview.store import collect as qc
from pressreview.store import items as q
from pressreview.store.schema import items

#: More words beginning "zq" than a search word is replaced by (MAX_EXPANSION).
MANY = [f"zq{i}" for i in range(q.MAX_EXPANSION + 6)]
SEARCHES = [
    "logement",  # most items
    "quartier",  # a third
    "Méru",  # a few, with an accent
    "meru noyon",
    "contrat de ville",
    "contrat ville signé",
    "zq",  # begins more words than are replaced: stays a prefix
    "zq1",
    "zq12 logement",
    "10e10e",  # split in two by PostgreSQL's parser
    "n 815",
    "zzzzz",  # no item
    "logement zzzzz",
    "Amiens",  # the demo corpus
    "renouvellement urbain",
    "Ⅻ ǅ x\U0001e922y ٣",  # letters and numbers of other scripts: words, never phrases
]


def _entries(stamp: Any, count: int) -> list[qc.NewItem]:
    entries = []
    for i in range(count):
        words = ["logement" if i % 5 else "logements", f"n {815 * (i % 7)}"]
        if i % 3 == 0:
            words.append("quartier prioritaire")
        if i % 41 == 0:
            words.append("Méru")
        if i % 29 == 0:
            words.append("Noyon")
        if i % 11 == 0:
            words.append("contrat de ville signé")
        if i % 97 == 0:
            words.append("10e10e")
        words.append(MANY[i % len(MANY)])
        entries.append(
            qc.NewItem(
                guid=f"search-{i}",
                url=f"https://search.example.org/{i}",
                link=f"https://search.example.org/{i}",
                title=f"Article {i} : {' '.join(words)}",
                summary_html="",
                excerpt=f"Le renouvellement urbain, épisode {i % 13}",
                outlet="Le Journal de Noyon" if i % 2 else "L’Écho de Méru",
                language="fr",
                published_at=stamp - timedelta(minutes=i % 500, seconds=i),
                tags=[],
                territories=["Noyon"] if i % 4 == 0 else [],
                score=i % 3,
                relevant=i % 6 != 0,
                section=None,
            )
        )
    return entries


def _fill(collected: Collected, count: int = 1_500) -> list[int]:
    store = collected.store
    first = collected.rows()[0]
    stamp = first["first_seen_at"] + timedelta(hours=2)
    entries = _entries(stamp, count)
    new_ids = collected.store_entries(entries, stamp)
    curate.reject_items(store, new_ids[:300:3], reason="lot", actor="ed")
    curate.select_items(store, new_ids[1:200:3], section="signatures", actor="ed")
    return new_ids


def _reference(conn: Any, f: q.ItemFilter) -> tuple[list[int], int]:
    scan = q.ItemFilter(**{**vars(f), "scan": True})
    return [r["id"] for r in q.list_items(conn, scan)], q.count_items(conn, scan)


def _filters(search: str) -> Iterator[q.ItemFilter]:
    for statuses in (("new",), (), ("new", "selected")):
        for duplicates in (False, True):
            for limit, offset in ((50, 0), (4, 0), (3, 5), (None, 0)):
                yield q.ItemFilter(
                    search=search,
                    statuses=statuses,
                    duplicates=duplicates,
                    limit=limit,
                    offset=offset,
                )
    yield q.ItemFilter(search=search, sort="oldest", limit=7)
    yield q.ItemFilter(
        search=search, statuses=("new", "filtered"), sort="oldest", limit=7, offset=2
    )
    yield q.ItemFilter(search=search, sort="score", limit=7)
    yield q.ItemFilter(search=search, territories=("Noyon",), limit=5)
    yield q.ItemFilter(search=search, outlet="journal de noyon", limit=5)


def _same_as_reference(store: Store, searches: list[str]) -> set[str | None]:
    """Check every search against the reference; returns the ways the pages were read."""
    ways: set[str | None] = set()
    with store.connect() as conn:
        for search in searches:
            for f in _filters(search):
                expected = _reference(conn, f)
                rows, total = q.list_and_count(conn, f)
                assert ([r["id"] for r in rows], total) == expected, f
                assert q.count_items(conn, f) == expected[1], f
                if f.limit is not None:
                    # The page read either way (the total only chooses the way).
                    for hint in (0, 10**9):
                        page = [r["id"] for r in q.list_items(conn, f, total=hint)]
                        assert page == expected[0], (f, hint)
                    ways.add(q._search_plan(conn, f, total))
                ways.add(q._count_plan(conn, f))
    return ways


def test_searches_answer_as_the_reference(collected: Collected) -> None:
    _fill(collected)
    store = collected.store
    ways = _same_as_reference(store, SEARCHES)
    # SQLite: both ways were taken (and checked) by some search; PostgreSQL reads
    # the matches first, page and total at once.
    both = {q.MATCHES, q.WALK} if store.is_sqlite else {q.MATCHES}
    assert both <= ways
    with store.connect() as conn:
        found = q.list_and_count(conn, q.ItemFilter(search="logement", statuses=()))
        assert found[1] > 1_000
        nothing = q.list_and_count(conn, q.ItemFilter(search="zzzzz", statuses=()))
        assert nothing == ([], 0)
        rare = q.list_items(conn, q.ItemFilter(search="10e10e", statuses=(), limit=None))
        assert rare and all("10e10e" in r["title"] for r in rare)


def test_an_edited_item_is_found_by_its_new_words(collected: Collected) -> None:
    new_ids = _fill(collected, count=300)
    store = collected.store
    item = curate.get_item(store, new_ids[10])
    curate.edit_item(store, item["id"], title="Zorglub ouvre la médiathèque", actor="ed")
    for search in ("zorglub", "zorg", "mediatheque zorg", "Article 10"):
        with store.connect() as conn:
            f = q.ItemFilter(search=search, statuses=(), limit=10)
            ids = [r["id"] for r in q.list_and_count(conn, f)[0]]
            assert (ids, q.count_items(conn, f)) == _reference(conn, f)
        assert item["id"] in ids, search
    _same_as_reference(store, ["zorglub", "zorg"])


@pytest.fixture
def second_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another database of the same backend as ``store_url``."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'at-0011.db'}"
    else:
        yield from _postgres_database()


def test_a_store_at_0011_searches_as_before_once_upgraded(
    collected: Collected, second_url: str
) -> None:
    """The words of the items stored before revision 0012 are indexed by the upgrade."""
    from alembic import command

    _fill(collected, count=400)
    source = collected.rows()
    store = Store(second_url, auto_upgrade=False)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store._alembic_config(conn), "0011")
        columns = [c.name for c in items.columns]
        rows: list[dict[str, Any]] = [
            {c: r[c] for c in columns} | {"source_id": None, "issue_id": None} for r in source
        ]
        with store.engine.begin() as conn:
            conn.execute(items.insert(), rows)
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        _same_as_reference(store, SEARCHES)
        with store.connect() as conn, collected.store.connect() as there:
            for search in SEARCHES:
                f = q.ItemFilter(search=search, statuses=(), duplicates=True, sort="id")
                assert [r["id"] for r in q.list_items(conn, f)] == [
                    r["id"] for r in q.list_items(there, f)
                ]
        # And back: revision 0011 searches with prefixes only.
        with store.engine.begin() as conn:
            command.downgrade(store._alembic_config(conn), "0011")
        assert store.current_revision() == "0011"
        with store.engine.connect() as conn:
            f = q.ItemFilter(search="logement", statuses=(), limit=5, scan=True)
            assert q.count_items(conn, f) > 0
        store.upgrade()
        _same_as_reference(store, ["logement", "zq1"])
    finally:
        store.close()


def test_the_index_follows_statuses_and_leads(collected: Collected) -> None:
    """SQLite counts a search by the items' state in its FTS5 index (revision 0013):
    the state follows every change of status and lead, and is never a search word."""
    new_ids = _fill(collected, count=300)
    store = collected.store
    with store.connect() as conn:
        for word in ("new", "lead", "other", "selected", "rejected"):
            f = q.ItemFilter(search=word, statuses=(), duplicates=True)
            assert q.count_items(conn, f) == _reference(conn, f)[1] == 0, word
    curate.reset_items(store, new_ids[:300:3], actor="ed")  # rejected, then new again
    with store.engine.begin() as conn:  # another outlet of a story, then a lead again
        conn.execute(items.update().where(items.c.id == new_ids[4]).values(duplicate_of=new_ids[7]))
        conn.execute(items.update().where(items.c.id == new_ids[8]).values(duplicate_of=None))
        conn.execute(items.delete().where(items.c.id == new_ids[13]))
    _same_as_reference(store, ["logement", "quartier", "contrat de ville", "meru noyon"])
    if store.is_sqlite:
        with store.connect() as conn:
            # rank 1: also compares the index with its content (the view)
            check = "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)"
            conn.exec_driver_sql(check)  # raises on an index out of step with its content


def test_every_search_word_is_one_word_of_the_index() -> None:
    """SQLite's tokenizer (Unicode 6.1) and Python's letters (a later Unicode) differ:
    no character may make a search word two words of the index, a phrase that the
    FTS5 index (``detail=column``) refuses with an error."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE f USING fts5(search_text, state, detail=column, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO f VALUES ('x y', 'new lead')")
    refused = []
    for code in range(0x110000):
        char = chr(code)
        if not char.isalnum() or 0xD800 <= code <= 0xDFFF:
            continue  # split off by the \W of search_terms anyway
        terms = q.search_terms(f"x{char}y")
        try:
            db.execute("SELECT count(*) FROM f WHERE f MATCH ?", (q._fts_query(terms),))
        except sqlite3.OperationalError:
            refused.append(hex(code))
    assert refused == []
