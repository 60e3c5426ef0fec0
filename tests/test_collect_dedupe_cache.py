"""The writer's near-duplicate cache gives exactly what the store would give.

Between batches of a run, the collection keeps the newest postings of each
title key in memory instead of reading them again. These tests compare, at
every batch, the story leads found with that cache with the leads found from
the store alone, through the cases that must invalidate it: postings falling
out of the window, another writer inserting items, a rolled-back batch.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pressreview.config import Feed
from pressreview.store import Store
from pressreview.store import collect as q
from pressreview.store.schema import items
from pressreview.text import keys_of_shingles, shingles

WORDS = [
    "contrat", "ville", "quartier", "Amiens", "Lille", "signature", "NPNRU", "bailleur",
    "habitants", "préfecture", "budget", "école", "Roubaix", "Calais", "Lens", "Arras",
    "conseil", "citoyen", "médiation", "santé", "emploi", "jeunes", "logement", "travaux",
    "rénovation", "association", "centre", "social", "maire", "métropole",
]  # fmt: skip
WINDOW = timedelta(days=1)
THRESHOLD = 0.6


def _batch(rng: random.Random, prefix: str, count: int, told: list[str]) -> list[q.NewItem]:
    batch = []
    for n in range(count):
        if told and rng.random() < 0.3:
            # A story told again by another outlet, sometimes with one word changed.
            words = rng.choice(told).split()
            if rng.random() < 0.5:
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            title = " ".join(words)
        else:
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 7)))
        told.append(title)
        url = f"https://example.org/{prefix}/{n}"
        batch.append(
            q.NewItem(
                guid=url, url=url, link=url, title=title, summary_html="", excerpt="",
                outlet=None, language="fr", published_at=None, tags=[], territories=[],
                score=0, relevant=True, section=None,
            ).prepare(prefix)
        )  # fmt: skip
    return batch


def _sources(store: Store, count: int) -> dict[str, int]:
    """Sources S0, S1... in the store, by name: their ids."""
    feeds = [Feed(name=f"S{i}", url=f"https://example.org/{i}.xml") for i in range(count)]
    with store.begin() as conn:
        return {name: row["id"] for name, row in q.sync_sources(conn, feeds).items()}


def _same_answers(
    conn: Any, source_id: int, batch: list[q.NewItem], stamp: datetime, cache: q.DedupeCache
) -> None:
    """The cache's candidates and leads are those read from the store alone."""
    cache.sync(conn, stamp - WINDOW)
    keys = {k for item in batch for k in keys_of_shingles(shingles(item.title))}
    fresh = q._candidates(conn, keys, stamp - WINDOW, q.DedupeCache())
    assert q._candidates(conn, keys, stamp - WINDOW, cache) == fresh
    expected = _leads(conn, source_id, batch, stamp, None)
    assert _leads(conn, source_id, batch, stamp, cache) == expected


def _leads(conn: Any, source_id: int, batch: list[q.NewItem], stamp: datetime, cache: Any) -> Any:
    return q._near_duplicate_leads(conn, source_id, batch, WINDOW, THRESHOLD, stamp, cache=cache)


def test_cached_candidates_match_the_store(store_url: str) -> None:
    store = Store(store_url)
    rng = random.Random(7)
    ids = _sources(store, 6)
    cache = q.DedupeCache()
    told: list[str] = []
    stamp = datetime(2026, 11, 1, 8, tzinfo=UTC)
    compared = duplicates = 0
    for lot in range(8):
        # Six hours between lots, a window of one day: postings fall out of it.
        stamp += timedelta(hours=6)
        with store.begin() as conn:
            for n in range(5):
                name = f"S{(lot + n) % 6}"
                batch = _batch(rng, f"{lot}-{n}", 25, told)
                _same_answers(conn, ids[name], batch, stamp, cache)
                compared += len(batch)
                counts = q.store_items(
                    conn, ids[name], batch, default_outlet=name, dedupe_window=WINDOW,
                    threshold=THRESHOLD, stamp=stamp, cache=cache,
                )  # fmt: skip
                duplicates += counts.duplicates
        if lot % 3 == 1:
            # Another writer inserts items between two lots: the cache must notice.
            with store.begin() as conn:
                q.store_items(
                    conn, ids["S5"], _batch(rng, f"other-{lot}", 20, told), default_outlet="S5",
                    dedupe_window=WINDOW, threshold=THRESHOLD, stamp=stamp,
                )  # fmt: skip
        if lot == 5:
            # A batch rolled back: its ids may be given again.
            with pytest.raises(RuntimeError), store.begin() as conn:
                q.store_items(
                    conn, ids["S0"], _batch(rng, "rolled-back", 10, told), default_outlet="S0",
                    dedupe_window=WINDOW, threshold=THRESHOLD, stamp=stamp, cache=cache,
                )  # fmt: skip
                raise RuntimeError("rollback")
            cache.reset()
    assert compared == 8 * 5 * 25
    # The comparison meant something: stories were found repeated.
    assert duplicates > 20
    with store.connect() as conn:
        leads = {
            row.id: row.duplicate_of
            for row in conn.execute(select(items.c.id, items.c.duplicate_of))
            if row.duplicate_of is not None
        }
        first_seen = dict(conn.execute(select(items.c.id, items.c.first_seen_at)).all())
    assert leads
    for item_id, lead in leads.items():
        assert first_seen[lead] <= first_seen[item_id]
    store.close()


@pytest.mark.parametrize("preload", [q.PRELOAD_POSTINGS, 5])
def test_a_new_writer_reads_the_postings_of_earlier_runs(
    store_url: str, preload: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's cache starts with every posting of the window (or, beyond
    ``PRELOAD_POSTINGS``, looks keys up batch by batch): the same answers."""
    monkeypatch.setattr(q, "PRELOAD_POSTINGS", preload)
    store = Store(store_url)
    rng = random.Random(11)
    ids = _sources(store, 3)
    told: list[str] = []
    stamp = datetime(2026, 11, 1, 8, tzinfo=UTC)
    for run in range(3):
        cache = q.DedupeCache()  # one per run, as the collection's writer does
        stamp += timedelta(hours=1)
        with store.begin() as conn:
            for n, name in enumerate(ids):
                batch = _batch(rng, f"{run}-{name}", 30, told)
                if n == 0:
                    # Earlier runs' postings are read at once, unless there are too many.
                    cache.sync(conn, stamp - WINDOW)
                    preloaded = run > 0 and preload > 90 * run * 4
                    assert bool(cache.postings) is preloaded
                    assert cache.complete is (run == 0 or preloaded)
                _same_answers(conn, ids[name], batch, stamp, cache)
                q.store_items(
                    conn, ids[name], batch, default_outlet=name, dedupe_window=WINDOW,
                    threshold=THRESHOLD, stamp=stamp, cache=cache,
                )  # fmt: skip
    store.close()


def test_postings_out_of_the_window_are_not_preloaded(store_url: str) -> None:
    store = Store(store_url)
    rng = random.Random(5)
    ids = _sources(store, 2)
    told: list[str] = []
    old, recent = datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 3, 8, tzinfo=UTC)
    with store.begin() as conn:
        for stamp, name in ((old, "S0"), (recent, "S1")):
            q.store_items(
                conn, ids[name], _batch(rng, f"{name}", 20, told), default_outlet=name,
                dedupe_window=WINDOW, threshold=THRESHOLD, stamp=stamp,
            )  # fmt: skip
    with store.connect() as conn:
        rows = conn.execute(select(items.c.id, items.c.first_seen_at)).all()
        in_window = {i for i, seen in rows if seen >= recent - timedelta(hours=1)}
        cache = q.DedupeCache()
        cache.sync(conn, recent - timedelta(hours=1))
    assert cache.complete and len(in_window) == 20
    assert {i for ids_, _ in cache.postings.values() for i in ids_} <= in_window
    assert all(len(ids_) <= q.CANDIDATES_PER_KEY for ids_, _ in cache.postings.values())
    store.close()
