"""Territory and outlet filters and totals read indexes and counters (revision 0011), and
stay right.

Every check compares the indexed reading with the reading of every item (the
JSON list of territories, the distinct outlets from all rows), after each kind
of change: collect (inserts, other outlets of a story, a feed's new text),
select, reject, reset, edit, move, publish, a deleted lead item, and a store
migrated from revision 0010 with its items already there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import _postgres_database
from fixtures_curate import Collected, collected_fixture  # noqa: F401
from sqlalchemy import delete, func, select

from pressreview import curate
from pressreview.store import Store
from pressreview.store import collect as qc
from pressreview.store import items as q
from pressreview.store.schema import item_territories, item_totals, items

STATUS_SETS: list[tuple[str, ...]] = [
    ("new",),
    ("selected",),
    ("rejected",),
    ("published",),
    ("filtered",),
    ("new", "selected"),
    ("selected", "rejected", "filtered"),
    (),
]
OUTLETS = ("picardie", "echo des hauts", "l’écho des", "presse", "nulle part")


def _answers(store: Store, f: q.ItemFilter) -> tuple[list[int], int, list[int]]:
    """Ids of the first page, the total, and every id (in the list's order)."""
    with store.connect() as conn:
        page = [r["id"] for r in q.list_items(conn, f)]
        total = q.count_items(conn, f)
        every = [r["id"] for r in q.list_items(conn, q.ItemFilter(**{**vars(f), "limit": None}))]
    return page, total, every


def _same_as_scan(store: Store, territories: list[str]) -> int:
    """Check every filter against the scan; returns how many items they matched in all."""
    matched = 0
    filters: list[q.ItemFilter] = []
    with store.connect() as conn:
        dates = sorted(conn.execute(select(items.c.published_at)).scalars())
    since = dates[len(dates) // 2]
    for statuses in STATUS_SETS:
        for duplicates in (False, True):
            # Totals by status alone come from item_totals; a page of several statuses
            # (or outlet names) merges one index range of each.
            for sort in ("date", "oldest", "id"):
                for limit, offset in ((5, 0), (3, 4), (1, 0)):
                    filters.append(
                        q.ItemFilter(
                            statuses=statuses,
                            duplicates=duplicates,
                            limit=limit,
                            offset=offset,
                            sort=sort,
                        )
                    )
            filters.append(
                q.ItemFilter(statuses=statuses, duplicates=duplicates, since=since, limit=4)
            )
            for territory in territories:
                for sort in ("date", "oldest", "id"):
                    filters.append(
                        q.ItemFilter(
                            statuses=statuses,
                            duplicates=duplicates,
                            territories=(territory,),
                            limit=3,
                            sort=sort,
                        )
                    )
            filters.append(
                q.ItemFilter(
                    statuses=statuses, duplicates=duplicates, territories=tuple(territories)
                )
            )
            filters.append(
                q.ItemFilter(
                    statuses=statuses,
                    duplicates=duplicates,
                    territories=tuple(territories[:2]),
                    limit=2,
                    offset=1,
                )
            )
            for outlet in OUTLETS:
                filters.append(
                    q.ItemFilter(statuses=statuses, duplicates=duplicates, outlet=outlet, limit=4)
                )
                filters.append(
                    q.ItemFilter(
                        statuses=statuses,
                        duplicates=duplicates,
                        outlet=outlet,
                        limit=2,
                        offset=3,
                        sort="oldest",
                    )
                )
    for f in filters:
        indexed = _answers(store, f)
        scanned = _answers(store, q.ItemFilter(**{**vars(f), "scan": True}))
        assert indexed == scanned, f
        matched += indexed[1]
    return matched


def _territories(collected: Collected) -> list[str]:
    names = sorted({t for r in collected.rows() for t in r["territories"]})
    assert len(names) >= 3, names
    return names


def test_outlet_names_are_read_from_the_index(collected: Collected) -> None:
    with collected.store.connect() as conn:
        indexed = q.outlet_names(conn)
        scanned = q.outlet_names(conn, scan=True)
    assert indexed == sorted(indexed)
    assert set(indexed) == set(scanned) and len(indexed) == len(scanned) > 3


def test_filters_and_totals_follow_every_change(collected: Collected) -> None:
    config, store = collected.config, collected.store
    territories = _territories(collected)
    assert _same_as_scan(store, territories) > 0
    # Other outlets of a story are hidden from the territory's lead list.
    lead, others = collected.amiens_story()
    shared = sorted(set(lead["territories"]) & set(others[0]["territories"]))
    assert shared
    leads_only = _answers(store, q.ItemFilter(statuses=(), territories=(shared[0],)))[2]
    with_others = _answers(
        store, q.ItemFilter(statuses=(), territories=(shared[0],), duplicates=True)
    )[2]
    assert lead["id"] in leads_only and others[0]["id"] not in leads_only
    assert others[0]["id"] in with_others

    # Select, reject, reset, edit and move: the territory lists move with the status.
    in_territory = [r for r in collected.rows(status="new", duplicate_of=None) if r["territories"]]
    assert len(in_territory) >= 3
    first, second, third = in_territory[:3]
    taken = {first["id"], second["id"], third["id"]}
    leads = collected.rows(status="new", duplicate_of=None)
    fourth = next(r for r in leads if r["id"] not in taken)
    territory = first["territories"][0]
    new_before = _answers(store, q.ItemFilter(territories=(territory,)))[1]
    curate.select_items(store, [first["id"], second["id"]], section="signatures", actor="ed")
    assert _answers(store, q.ItemFilter(territories=(territory,)))[1] == new_before - 1 - (
        territory in second["territories"]
    )
    selected = _answers(store, q.ItemFilter(statuses=("selected",), territories=(territory,)))
    assert first["id"] in selected[2]
    curate.reject_items(store, [third["id"]], reason="hors sujet", actor="ed")
    rejected = q.ItemFilter(statuses=("rejected",), territories=tuple(third["territories"]))
    assert third["id"] in _answers(store, rejected)[2]
    curate.edit_item(store, fourth["id"], title="Un autre titre", actor="ed")
    curate.move_item(store, second["id"], before=first["id"], actor="ed")
    _same_as_scan(store, territories)
    curate.reset_items(store, [third["id"]], actor="ed")
    assert third["id"] not in _answers(store, rejected)[2]
    _same_as_scan(store, territories)

    # Publishing: the items leave "selected" for "published".
    collected.publish([fourth["id"]])
    published = q.ItemFilter(statuses=("published",), territories=tuple(fourth["territories"]))
    assert fourth["id"] in _answers(store, published)[2]
    _same_as_scan(store, territories)

    # An item whose date changes (a feed's corrected date) moves in the territory's list.
    with store.begin() as conn:
        row = collected.rows(id=second["id"])[0]
        moved = datetime(2001, 1, 1, tzinfo=UTC)  # before any item of the demo feeds
        conn.execute(items.update().where(items.c.id == row["id"]).values(published_at=moved))
    oldest = _answers(
        store, q.ItemFilter(statuses=(), territories=tuple(row["territories"]), sort="oldest")
    )
    assert oldest[0][0] == row["id"]
    _same_as_scan(store, territories)

    # A lead item deleted: its other outlets become leads (ON DELETE SET NULL).
    with store.begin() as conn:
        conn.execute(delete(items).where(items.c.id == lead["id"]))
    assert (
        others[0]["id"] in _answers(store, q.ItemFilter(statuses=(), territories=(shared[0],)))[2]
    )
    with store.connect() as conn:
        orphans = conn.execute(
            select(func.count())
            .select_from(item_territories)
            .where(item_territories.c.item_id == lead["id"])
        ).scalar_one()
    assert orphans == 0
    _same_as_scan(store, territories)
    # The curation API gives the same totals as its lists.
    listed = curate.list_items(
        config, store, curate.ItemQuery(status=["all"], territory=["amiens"])
    )
    assert listed.total == len(listed.items) > 0


def test_new_items_and_changed_territories_are_indexed(collected: Collected) -> None:
    store = collected.store
    first = collected.rows()[0]
    stamp = first["first_seen_at"] + timedelta(hours=1)
    entry = qc.NewItem(
        guid="scale-1",
        url="https://scale.example.org/1",
        link="https://scale.example.org/1",
        title="Noyon et Méru : une convention pour les quartiers",
        summary_html="",
        excerpt="",
        outlet="Le Journal de Noyon",
        language="fr",
        published_at=stamp,
        tags=[],
        territories=["Noyon", "Méru", "Noyon"],
        score=1,
        relevant=True,
        section=None,
    )
    with store.begin() as conn:
        counts = qc.store_items(
            conn,
            first["source_id"],
            [entry],
            default_outlet=None,
            dedupe_window=timedelta(days=14),
            threshold=0.6,
            stamp=stamp,
        )
    (new_id,) = counts.new_ids
    for territory in ("Noyon", "Méru"):
        assert _answers(store, q.ItemFilter(territories=(territory,)))[2] == [new_id]
    assert _answers(store, q.ItemFilter(territories=("Noyon", "Méru")))[1] == 1
    assert _answers(store, q.ItemFilter(outlet="journal de noyon"))[2] == [new_id]
    # A changed list of territories (the classifier again, a staff correction).
    with store.begin() as conn:
        conn.execute(items.update().where(items.c.id == new_id).values(territories=["Creil"]))
    assert _answers(store, q.ItemFilter(territories=("Noyon",)))[1] == 0
    assert _answers(store, q.ItemFilter(territories=("Creil",)))[2] == [new_id]
    _same_as_scan(store, ["Noyon", "Méru", "Creil"])


@pytest.fixture
def second_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another database of the same backend as ``store_url``."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'at-0010.db'}"
    else:
        yield from _postgres_database()


def test_a_store_at_0010_is_indexed_by_the_upgrade(collected: Collected, second_url: str) -> None:
    """Items stored before revision 0011 are found by the indexed filters once upgraded."""
    from alembic import command

    source = collected.rows()
    # A second database at revision 0010, with the collected items copied in.
    store = Store(second_url, auto_upgrade=False)
    try:
        with store.engine.begin() as conn:
            command.upgrade(store._alembic_config(conn), "0010")
        assert store.current_revision() == "0010"
        columns = [c.name for c in items.columns]
        rows: list[dict[str, Any]] = [
            {c: r[c] for c in columns} | {"source_id": None, "issue_id": None} for r in source
        ]
        with store.engine.begin() as conn:
            conn.execute(items.insert(), rows)
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        with store.connect() as conn:
            copied = conn.execute(select(func.count()).select_from(item_territories)).scalar_one()
        assert copied == sum(len(set(r["territories"])) for r in source) > 0
        assert _same_as_scan(store, _territories(collected)) > 0
        # The filters answer in the upgraded store as in the one collected at head.
        for territory in _territories(collected):
            f = q.ItemFilter(statuses=(), duplicates=True, territories=(territory,), sort="id")
            assert _answers(store, f) == _answers(collected.store, f)
    finally:
        store.close()


def test_totals_by_status_are_folded_and_stay_exact(collected: Collected) -> None:
    """Thousands of inserts and status changes: item_totals stays a few rows, and exact."""
    store = collected.store
    first = collected.rows()[0]
    stamp = first["first_seen_at"] + timedelta(hours=2)
    entries = [
        qc.NewItem(
            guid=f"fold-{i}",
            url=f"https://fold.example.org/{i}",
            link=f"https://fold.example.org/{i}",
            title=f"Article {i} sur un sujet {i * 7919 % 1000} du quartier {i % 13}",
            summary_html="",
            excerpt="",
            outlet="Le Journal de Noyon",
            language="fr",
            published_at=stamp - timedelta(minutes=i),
            tags=[],
            territories=["Noyon"] if i % 3 else [],
            score=1,
            relevant=i % 4 != 0,
            section=None,
        )
        for i in range(2_600)
    ]
    new_ids = collected.store_entries(entries, stamp)
    assert len(new_ids) == 2_600
    curate.reject_items(store, new_ids[:700:2], reason="lot", actor="ed")
    curate.select_items(store, new_ids[1:400:2], section="signatures", actor="ed")
    with store.begin() as conn:
        conn.execute(delete(items).where(items.c.id.in_(new_ids[2000:2100])))
    with store.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(item_totals)).scalar_one()
    # 2,600 inserts, 550 changes of status (two rows each), 100 deletes: folded.
    assert rows < 1_000
    _same_as_scan(store, ["Noyon"])
