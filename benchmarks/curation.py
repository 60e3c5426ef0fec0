"""Benchmark: curation queries on a large store (list, count, search, filter, select, edit).

    python benchmarks/curation.py [--items 50000] [--repeat 20] [--database-url URL]

Fills a fresh SQLite file (or the given, empty, database) with synthetic
items through the collection stage's own ``store_items``, then times the
calls behind ``items list`` (first page + total), ``items list --search``,
``--territory``, ``items select`` of 50 ids and ``items edit``. Prints the
median of the repeats for each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pressreview import curate
from pressreview.config import Config, Feed, Section, Territory
from pressreview.store import Store
from pressreview.store import collect as qc

PLACES = [
    "Amiens",
    "Creil",
    "Lille",
    "Roubaix",
    "Calais",
    "Laon",
    "Douai",
    "Lens",
    "Arras",
    "Beauvais",
]
WORDS = [
    "contrat",
    "ville",
    "signé",
    "quartiers",
    "prioritaires",
    "renouvellement",
    "urbain",
    "habitants",
    "bailleurs",
    "conseil",
    "citoyen",
    "emploi",
    "jeunes",
    "insertion",
    "école",
    "santé",
    "sécurité",
    "mobilité",
    "avenant",
    "évaluation",
    "agglomération",
    "métropole",
    "convention",
    "abattement",
    "gestion",
    "proximité",
    "cité",
    "éducative",
]


def fill(store: Store, n: int) -> None:
    rng = random.Random(7)
    feed = Feed(name="bench", url="https://bench.example.org/feed.xml")
    with store.begin() as conn:
        source_id = qc.sync_sources(conn, [feed])["bench"]["id"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for offset in range(0, n, 1000):
        batch = []
        for i in range(offset, min(offset + 1000, n)):
            place = rng.choice(PLACES)
            title = f"{place} : " + " ".join(rng.sample(WORDS, 8)) + f" ({i})"
            text = " ".join(rng.sample(WORDS, 25)) + "."
            batch.append(
                qc.NewItem(
                    guid=f"g{i}",
                    url=f"https://bench.example.org/a/{i}",
                    link="",
                    title=title,
                    summary_html=f"<p>{text}</p>",
                    excerpt=text,
                    outlet=f"Journal {i % 40}",
                    language="fr",
                    published_at=start + timedelta(minutes=17 * i),
                    tags=[],
                    territories=[place],
                    score=2,
                    relevant=True,
                    section=rng.choice(["signatures", "renouvellement", None]),
                )
            )
        with store.begin() as conn:
            qc.store_items(
                conn,
                source_id,
                batch,
                default_outlet="bench",
                dedupe_window=timedelta(days=0),
                threshold=1.1,
            )


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--database-url", help="an empty database (default: a temporary SQLite file)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        config = Config(
            sections=(
                Section("signatures", "Signatures"),
                Section("renouvellement", "Renouvellement"),
            ),
            territories=tuple(Territory(p) for p in PLACES),
        )
        t0 = time.perf_counter()
        fill(store, args.items)
        print(f"{args.items} items stored in {time.perf_counter() - t0:.1f} s ({store.dialect})")
        ids = iter(range(1, args.items, 29))
        cases: dict[str, Callable[[], object]] = {
            "items list (50 + total)": lambda: curate.list_items(
                config, store, curate.ItemQuery(limit=50)),
            "items list --search 'contrat ville signe' (50 + total)": lambda: curate.list_items(
                config, store, curate.ItemQuery(search="contrat ville signe", limit=50)),
            "items list --search 'creil avenant' --json (all)": lambda: curate.list_items(
                config, store, curate.ItemQuery(search="creil avenant")),
            "items list --territory Creil (50 + total)": lambda: curate.list_items(
                config, store, curate.ItemQuery(territory=["Creil"], limit=50)),
            "items list --outlet bench (50 + total)": lambda: curate.list_items(
                config, store, curate.ItemQuery(outlet="BENCH", limit=50)),
            "items select (50 ids)": lambda: curate.select_items(
                store, [next(ids) for _ in range(50)], section="signatures", actor="bench"),
            "items edit (1 item)": lambda: curate.edit_item(
                store, next(ids), title=f"Titre {time.perf_counter()}", actor="bench"),
        }  # fmt: skip
        for name, fn in cases.items():
            print(f"{name:<58} {timed(fn, args.repeat):8.1f} ms")
        store.close()


if __name__ == "__main__":
    main()
