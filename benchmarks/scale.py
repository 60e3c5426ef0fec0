"""Benchmark: cost of ingest and of item lists as the store grows (500,000 items).

    python benchmarks/scale.py                         # SQLite (a temporary file)
    python benchmarks/scale.py --postgres URL          # PostgreSQL: an empty database
    python benchmarks/scale.py --postgres              # a fresh database on the server of
                                                       # $PRESSREVIEW_TEST_POSTGRES_URL
    python benchmarks/scale.py --base 50000 --new 5000 # a quick run

What it does, in one store:

1. ingests ``--new`` (50,000) items into the empty store, the way a collect
   run writes them: ``store_items`` per source batch of 50 entries, ten
   sources per transaction, one near-duplicate cache for the run, the default
   dedupe window (14 days) and threshold (0.6); some stories are told by
   several outlets;
2. fills the store with ``--base`` (500,000) older items through the same
   ``store_items``, in large batches (a year and a half of history, ending
   before the dedupe window of step 3 opens: both ingests start with an empty
   window, so their ratio is the cost of the store's size alone);
3. ingests ``--new`` other items (same shape, later dates) into that store;
   the per-item cost of 3 against 1 is the ratio to watch (target: at most 1.3).
   On SQLite, ``--rounds`` (3) runs 1 and 3 again in turn, on a new empty
   store and on a copy of the store taken before 3, and prints the median of
   the rounds' CPU ratios: the two ingests of one round are a minute apart,
   where 1 and 3 are minutes apart, and a shared machine's speed drifts;
4. times (median of ``--repeat``) the calls behind ``items list``: first page
   of 50 and total, by default, with ``--search``, ``--territory`` and
   ``--outlet`` (target: at most 100 ms each); beside them ("scan"), the
   same answers read the way revision 0011 replaces: the total counted over
   the index of statuses instead of ``item_totals``, the JSON of every
   item's territories, the distinct outlets from every row; for searches,
   the search words as prefixes with the plan left to the database (before
   revision 0012).

``--queries URL`` times step 4 alone, on a store filled by an earlier run (a
PostgreSQL database given by URL is kept; so is a SQLite file given with
``--keep PATH``).

The items look like the collected ones: French titles about urban policy in
Hauts-de-France, 0 to 2 territories of 28 towns (a few much more frequent),
140 outlets (a few much bigger), 40 % filtered by the relevance filters.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pressreview.config import Feed
from pressreview.store import Store, normalize_url
from pressreview.store import collect as qc
from pressreview.store import items as qi

PLACES = [
    "Amiens", "Abbeville", "Lille", "Roubaix", "Tourcoing", "Valenciennes", "Maubeuge",
    "Denain", "Dunkerque", "Calais", "Boulogne-sur-Mer", "Lens", "Liévin", "Arras",
    "Béthune", "Hénin-Beaumont", "Douai", "Cambrai", "Saint-Quentin", "Laon", "Soissons",
    "Château-Thierry", "Beauvais", "Creil", "Compiègne", "Noyon", "Méru", "Saint-Omer",
]  # fmt: skip
#: A few towns are in the news much more often than the others.
PLACE_WEIGHTS = [1.0 / (rank + 1) ** 0.8 for rank in range(len(PLACES))]
SUBJECTS = [
    "le contrat de ville Quartiers 2030", "le quartier prioritaire", "la politique de la ville",
    "le renouvellement urbain", "la cité éducative", "le conseil citoyen", "le NPNRU",
    "la maison France services", "le programme de réussite éducative", "l’abattement de TFPB",
    "la gestion urbaine de proximité", "le centre social", "l’atelier santé ville",
    "la convention d’utilité sociale", "le plan local pour l’insertion", "la halle du marché",
    "le terrain synthétique", "la médiathèque", "la ligne de bus", "le budget participatif",
]  # fmt: skip
VERBS = [
    "signe", "présente", "lance", "inaugure", "prolonge", "évalue", "adopte", "prépare",
    "finance", "rénove", "annonce", "reporte", "relance", "transforme", "ouvre",
]  # fmt: skip
ACTORS = [
    "La mairie", "L’agglomération", "La métropole", "Le département", "La préfecture",
    "Le bailleur social", "Les habitants", "L’association", "Le conseil municipal",
    "La région", "L’État", "Le collectif",
]  # fmt: skip
EXTRA = [
    "jeunes", "emploi", "insertion", "école", "santé", "sécurité", "mobilité", "avenant",
    "évaluation", "convention", "bailleurs", "logements", "démolition", "commerces",
    "sport", "culture", "familles", "seniors", "numérique", "formation", "chantier",
    "travaux", "millions", "euros", "habitants", "réunion", "concertation", "projet",
]  # fmt: skip
OUTLETS = [
    f"{kind} {place}"
    for kind in ("Le Journal de", "La Voix de", "Le Courrier de", "L’Écho de", "Radio")
    for place in PLACES
]
OUTLET_WEIGHTS = [1.0 / (rank + 1) ** 0.7 for rank in range(len(OUTLETS))]
WIDTHS = (8, 10, 9, 8)
PER_SOURCE = 50  # entries of one feed's batch
SOURCES_PER_LOT = 10  # source batches per transaction, as collect writes them
WINDOW = timedelta(days=14)
DAY = timedelta(days=1)
THRESHOLD = 0.6


@dataclass
class Story:
    title: str
    excerpt: str
    places: list[str]


def story(rng: random.Random) -> Story:
    k = rng.choices((0, 1, 2), weights=(4, 5, 1))[0]
    places: list[str] = []
    while len(places) < k:
        place = rng.choices(PLACES, weights=PLACE_WEIGHTS)[0]
        if place not in places:
            places.append(place)
    where = places[0] if places else rng.choice(("Hauts-de-France", "la région", "l’Oise"))
    title = (
        f"{where} : {rng.choice(ACTORS).lower()} {rng.choice(VERBS)} "
        f"{rng.choice(SUBJECTS)} {' '.join(rng.sample(EXTRA, 3))} n°{rng.randrange(10**6)}"
    )
    excerpt = (
        f"{rng.choice(ACTORS)} {rng.choice(VERBS)} {rng.choice(SUBJECTS)} à {where}. "
        + " ".join(rng.sample(EXTRA, 12))
        + "."
    )
    return Story(title, excerpt, places)


def batches(
    rng: random.Random, prefix: str, count: int, start: datetime, end: datetime, size: int
) -> Iterator[list[qc.NewItem]]:
    """``count`` items dated from ``start`` to ``end``, in batches of ``size``; about
    one story in twelve is told again by another outlet with a slightly changed title."""
    step = (end - start) / max(count, 1)
    recent: list[Story] = []
    batch: list[qc.NewItem] = []
    for i in range(count):
        if recent and rng.random() < 0.08:
            told = rng.choice(recent)
            s = Story(told.title.rsplit(" ", 1)[0] + " (vidéo)", told.excerpt, told.places)
        else:
            s = story(rng)
            recent = [*recent, s][-200:]
        outlet = rng.choices(OUTLETS, weights=OUTLET_WEIGHTS)[0]
        batch.append(
            qc.NewItem(
                guid=f"{prefix}-{i}",
                url=f"https://{prefix}.example.org/{i}",
                link=f"https://{prefix}.example.org/{i}",
                title=s.title,
                summary_html=f"<p>{s.excerpt}</p>",
                excerpt=s.excerpt,
                outlet=outlet,
                language="fr",
                published_at=start + step * i,
                tags=[],
                territories=s.places,
                score=2,
                relevant=rng.random() < 0.6,
                section=rng.choice(("signatures", "renouvellement", None)),
            ).prepare(outlet)
        )
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def source_ids(store: Store, count: int) -> list[int]:
    feeds = [Feed(name=f"source {i}", url=f"https://s{i}.example.org/feed") for i in range(count)]
    with store.begin() as conn:
        rows = qc.sync_sources(conn, feeds)
    return [rows[f.name]["id"] for f in feeds]


@dataclass
class Cost:
    """Seconds spent by one ingest, in all and in its parts: wall clock, and CPU
    time of this process (on SQLite, all the work; on PostgreSQL, the client's)."""

    wall: float = 0.0
    near_duplicates: float = 0.0
    inserts: float = 0.0
    commit: float = 0.0
    cpu: float = 0.0
    cpu_near_duplicates: float = 0.0
    cpu_inserts: float = 0.0
    cpu_commit: float = 0.0


#: Parts of ``store_items`` timed apart (when the store module still has them).
PARTS = {"_near_duplicate_leads": "near_duplicates", "_insert_rows": "inserts"}


@contextmanager
def timing_parts(cost: Cost) -> Iterator[None]:
    originals = {name: getattr(qc, name) for name in PARTS if hasattr(qc, name)}

    def timed_part(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                field = PARTS[name]
                setattr(cost, field, getattr(cost, field) + time.perf_counter() - t0)
                cpu = f"cpu_{field}"
                setattr(cost, cpu, getattr(cost, cpu) + time.process_time() - c0)

        return run

    for name, function in originals.items():
        setattr(qc, name, timed_part(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(qc, name, function)


def ingest(store: Store, prefix: str, count: int, end: datetime, seed: int) -> Cost:
    """Ingest ``count`` items as collect writes them; the entries are made (and
    ``prepare``d, as collect's parse workers do) before the clock starts."""
    rng = random.Random(seed)
    sources = source_ids(store, 100)
    cache = qc.DedupeCache()
    lot = PER_SOURCE * SOURCES_PER_LOT
    start = end - timedelta(days=7)
    lots = list(batches(rng, prefix, count, start, end, lot))
    cost = Cost()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with store.connect() as conn, timing_parts(cost):
        qc.begin_bulk_writes(conn)  # as the collect writer does
        for n, chunk in enumerate(lots):
            stamp = start + (timedelta(days=7) * n * lot) / count
            transaction = conn.begin()
            for i in range(0, len(chunk), PER_SOURCE):
                qc.store_items(
                    conn,
                    sources[(n * SOURCES_PER_LOT + i // PER_SOURCE) % len(sources)],
                    chunk[i : i + PER_SOURCE],
                    default_outlet=None,
                    dedupe_window=WINDOW,
                    threshold=THRESHOLD,
                    stamp=stamp,
                    cache=cache,
                )
            t0, c0 = time.perf_counter(), time.process_time()
            transaction.commit()
            cost.commit += time.perf_counter() - t0
            cost.cpu_commit += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        qc.end_bulk_writes(conn)  # the log left is copied when the run ends
        cost.commit += time.perf_counter() - t0
        cost.cpu_commit += time.process_time() - c0
    cost.wall, cost.cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return cost


def fill(store: Store, count: int, start: datetime, end: datetime) -> None:
    """The history: ``count`` items through ``store_items`` in batches of 2,000."""
    rng = random.Random(11)
    sources = source_ids(store, 100)
    size = 2_000
    with store.connect() as conn:
        qc.begin_bulk_writes(conn)
        for n, chunk in enumerate(batches(rng, "history", count, start, end, size)):
            with conn.begin():
                qc.store_items(
                    conn,
                    sources[n % len(sources)],
                    chunk,
                    default_outlet=None,
                    dedupe_window=WINDOW,
                    threshold=THRESHOLD,
                    stamp=chunk[-1].published_at,
                )
        qc.end_bulk_writes(conn)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Median wall-clock and CPU (this process) milliseconds of ``repeat`` calls, and
    the result of a first call (not timed)."""
    result = fn()
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times) * 1000, statistics.median(cpu) * 1000, result


def page_and_total(store: Store, f: qi.ItemFilter) -> Callable[[], int]:
    """What ``items list`` asks of the store: the first page and the total."""

    def run() -> int:
        with store.connect() as conn:
            return qi.list_and_count(conn, f)[1]

    return run


@contextmanager
def fresh_postgres(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url``, dropped afterwards."""
    admin_url = normalize_url(server_url)
    name = f"pressreview_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, args: argparse.Namespace) -> None:
    store = Store(url)
    try:
        with store.connect() as conn:
            if qc.count_items(conn):
                sys.exit(f"{store.describe()} already holds items: give an empty database")
        print(f"backend: {store.dialect}; {args.new:,} new items into 0, then into {args.base:,}")
        now = datetime.now(UTC).replace(microsecond=0)
        # The history (and the first ingest) end before the dedupe window of the
        # second ingest opens: both ingests start with an empty window, so the
        # ratio is what the store's size costs, not a window already full of
        # recent candidates (the near-duplicate work follows the recent traffic,
        # whatever the size of the store).
        history_end = now - 7 * DAY - WINDOW - 7 * DAY
        empty = ingest(store, "first", args.new, history_end, seed=1)
        t0 = time.perf_counter()
        fill(store, args.base, history_end - timedelta(days=540), history_end)
        print(f"history of {args.base:,} items stored in {time.perf_counter() - t0:.0f} s")
        snapshot = _snapshot(store, url) if args.rounds > 1 else None
        big = ingest(store, "second", args.new, now, seed=2)
        per = 1e6 / args.new
        parts = ("", "near_duplicates", "inserts", "commit")
        print("ingest, µs per item          total  near-dup  inserts  commit")
        for clock in ("wall", "cpu"):
            names = [f"{clock}_{p}".strip("_") if clock == "cpu" else p or "wall" for p in parts]
            for label, cost in (("empty store", empty), (f"{args.base:,} items", big)):
                values = [getattr(cost, n) * per for n in names]
                cells = "".join(f"{v:{w}.0f}" for v, w in zip(values, WIDTHS, strict=True))
                print(f"  {clock:4} {label:17} {cells}")
            ratios = [getattr(big, n) / max(getattr(empty, n), 1e-9) for n in names]
            cells = "".join(f"{r:{w}.2f}" for r, w in zip(ratios, WIDTHS, strict=True))
            print(f"  {clock:4} {'ratio':17} {cells}")
        if snapshot is not None:
            try:
                more_rounds(snapshot, args, [(empty, big)], history_end, now)
            finally:
                _remove(snapshot)

        time_queries(store, args.repeat)
    finally:
        store.close()


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return (
        Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
    )


def _snapshot(store: Store, url: str) -> Path | None:
    """SQLite: a copy of the store's file as it is now (its log copied in first)."""
    path = _sqlite_path(url)
    if path is None:
        return None
    with store.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = path.with_name(path.name + ".before-second")
    shutil.copyfile(path, copy)
    return copy


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def more_rounds(
    snapshot: Path,
    args: argparse.Namespace,
    rounds: list[tuple[Cost, Cost]],
    history_end: datetime,
    now: datetime,
) -> None:
    """SQLite: the two ingests again, in turn (a new empty store; a copy of the store
    before step 3), so that a machine slower in one minute than in another does
    not pass for the cost of the store's size: the median ratio of the rounds."""
    for _ in range(args.rounds - 1):
        empty_path = snapshot.with_name("empty-round.db")
        big_path = snapshot.with_name("big-round.db")
        _remove(empty_path)
        _remove(big_path)
        try:
            empty_store = Store(f"sqlite:///{empty_path}")
            try:
                empty = ingest(empty_store, "first", args.new, history_end, seed=1)
            finally:
                empty_store.close()
            shutil.copyfile(snapshot, big_path)
            big_store = Store(f"sqlite:///{big_path}")
            try:
                big = ingest(big_store, "second", args.new, now, seed=2)
            finally:
                big_store.close()
        finally:
            _remove(empty_path)
            _remove(big_path)
        rounds.append((empty, big))
    per = 1e6 / args.new
    print(f"cpu µs per item, {len(rounds)} rounds in turn   empty  {args.base:,}  ratio")
    for n, (empty, big) in enumerate(rounds, 1):
        print(f"  round {n}                         {empty.cpu * per:6.0f} {big.cpu * per:8.0f}"
              f" {big.cpu / empty.cpu:6.2f}")  # fmt: skip
    ratios = [big.cpu / empty.cpu for empty, big in rounds]
    print(f"  median ratio                                    {statistics.median(ratios):6.2f}")


def time_queries(store: Store, repeat: int) -> None:
    """Step 4: the first page and total of each list, indexed and as before."""
    cases: list[tuple[str, qi.ItemFilter]] = [
        ("items list (first 50 + total)", qi.ItemFilter(limit=50)),
        ("items list --search 'contrat ville signe'", qi.ItemFilter(search="contrat ville signe")),
        ("items list --search meru", qi.ItemFilter(search="meru")),
        ("items list --search quartier", qi.ItemFilter(search="quartier")),
        ("items list --search 'contrat de ville'", qi.ItemFilter(search="contrat de ville")),
        (
            "items list --status new --status selected",
            qi.ItemFilter(statuses=("new", "selected")),
        ),
        ("items list --status all", qi.ItemFilter(statuses=())),
        (
            "items list --search quartier --status new --status selected",
            qi.ItemFilter(search="quartier", statuses=("new", "selected")),
        ),
        ("items list --territory Creil", qi.ItemFilter(territories=("Creil",))),
        (
            "items list --territory Creil --search logement",
            qi.ItemFilter(territories=("Creil",), search="logement"),
        ),
        ("items list --outlet 'courrier de creil'", qi.ItemFilter(outlet="courrier de creil")),
    ]
    with store.connect() as conn:
        size = qc.count_items(conn)
    print(f"queries at {size:,} items (median of {repeat}, ms); load average {os.getloadavg()}")
    # CPU: of this process (on SQLite, all the work; on PostgreSQL, the client's).
    print(f"  {'':60} {'matches':>8} {'indexed':>9} {'scan':>9} {'cpu':>7} {'cpu':>7}")
    for name, base in cases:
        indexed = qi.ItemFilter(**{**vars(base), "limit": 50})
        naive = qi.ItemFilter(**{**vars(indexed), "scan": True})
        ms, cpu, total = timed(page_and_total(store, indexed), repeat)
        naive_ms, naive_cpu, naive_total = timed(page_and_total(store, naive), max(1, repeat // 3))
        assert naive_total == total, (naive_total, total)
        print(f"  {name:60} {total:>8,} {ms:9.1f} {naive_ms:9.1f} {cpu:7.1f} {naive_cpu:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=500_000, help="items of the history")
    parser.add_argument("--new", type=int, default=50_000, help="items of each ingest")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="SQLite: the two ingests this many times in turn (the median ratio)",
    )
    parser.add_argument(
        "--queries",
        metavar="URL",
        help="only time the lists, on this store filled by an earlier run",
    )
    parser.add_argument(
        "--keep", metavar="PATH", type=Path, help="SQLite: build the store in this file, kept"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="",
        metavar="URL",
        help="an empty PostgreSQL database (without URL: a fresh database on the "
        "server of $PRESSREVIEW_TEST_POSTGRES_URL)",
    )
    args = parser.parse_args()
    if args.queries:
        store = Store(args.queries)
        try:
            time_queries(store, args.repeat)
        finally:
            store.close()
    elif args.postgres is None and args.keep:
        run(f"sqlite:///{args.keep.resolve()}", args)
    elif args.postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{Path(tmp) / 'scale.db'}", args)
    elif args.postgres:
        run(args.postgres, args)
    else:
        server = os.environ.get("PRESSREVIEW_TEST_POSTGRES_URL")
        if not server:
            sys.exit("--postgres: give a URL or set PRESSREVIEW_TEST_POSTGRES_URL")
        with fresh_postgres(server) as url:
            run(url, args)


if __name__ == "__main__":
    main()
