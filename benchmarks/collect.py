"""Benchmark of `collect`: 1,000 feeds x 50 entries over a slow local HTTP server.

    python benchmarks/collect.py              # the full run (a few minutes)
    python benchmarks/collect.py --feeds 100  # a quick run

What it does:

* generates N feeds of 50 entries each (seeded: realistic French titles and
  summaries about urban policy in Hauts-de-France, some stories repeated
  across outlets), served by an asyncio HTTP server in its own process that
  waits 20 ms before every response; the feeds are spread over 100 host
  names (127.0.0.2 ... 127.0.0.101: the server listens on all addresses, so
  per-host limits apply as they do on the internet); each feed has an ETag
  and the server answers 304 when it is sent back;
* runs, on the same served feeds:
  - sequential: a plain `feedparser.parse(url)` loop, the baseline;
  - floor: the least a pipeline can do with the same parts as pressreview,
    written here: concurrent fetches (httpx), fastfeedparser, nh3 (sanitized
    summary and a plain-text excerpt) in one worker process per CPU, one
    `executemany` into SQLite, the FTS5 index built after the load;
  - cold: `collect` into an empty store; warm: `collect` again (every source
    answers 304);
  - reader: lemon24's reader (`update_feeds(workers=16)`, its own SQLite
    file), when it is installed (`pip install -e ".[bench]"`);
* each phase runs in a fresh subprocess, so its CPU time and peak RSS are its
  own (CPU time includes its worker processes).

The filters, sections and territories are those of the project's feeds.yaml.
Targets (2 CPUs): cold at least 6x faster than the sequential loop and at most
2x the floor's wall time, at most 200 us of CPU per item, warm under 1 s,
peak RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parent.parent

# -- generated feeds -------------------------------------------------------------

PLACES = [
    "Amiens", "Abbeville", "Lille", "Roubaix", "Tourcoing", "Valenciennes", "Maubeuge",
    "Denain", "Dunkerque", "Calais", "Boulogne-sur-Mer", "Lens", "Liévin", "Arras",
    "Béthune", "Hénin-Beaumont", "Douai", "Cambrai", "Saint-Quentin", "Laon", "Soissons",
    "Château-Thierry", "Beauvais", "Creil", "Compiègne", "Noyon", "Méru", "Saint-Omer",
]  # fmt: skip
SUBJECTS = [
    "le contrat de ville Quartiers 2030", "le quartier prioritaire", "la politique de la ville",
    "le renouvellement urbain", "la cité éducative", "le conseil citoyen", "le NPNRU",
    "la maison France services", "l'abattement de TFPB", "la gestion urbaine de proximité",
    "le programme de réussite éducative", "le centre social", "la résidence Jean-Jaurès",
    "l'atelier santé ville", "le bailleur social", "la médiation de nuit",
]  # fmt: skip
VERBS = [
    "signe", "présente", "lance", "inaugure", "relance", "prolonge", "finance", "réunit",
    "dévoile", "adopte", "évalue", "repense", "accompagne", "mobilise",
]  # fmt: skip
TAILS = [
    "avec l'État et les bailleurs", "pour 2024-2030", "après deux ans de concertation",
    "malgré les retards", "avec les habitants", "en conseil communautaire",
    "à la préfecture", "sous l'œil des élus", "pour les 16-25 ans", "à la rentrée",
    "avant l'été", "avec la CAF et le Département",
]  # fmt: skip
ACTORS = [
    "La métropole", "La communauté d'agglomération", "La préfète", "Le maire",
    "L'ANRU", "Le Département", "La Région", "Le bailleur", "L'association",
]  # fmt: skip
SENTENCES = [
    "{actor} {verb} {subject} {tail}.",
    "Plus de {n} habitants sont concernés dans les quartiers de {place}.",
    "Le budget atteint {m} millions d'euros sur la durée du contrat.",
    "Les associations saluent une démarche « attendue depuis longtemps ».",
    "Une réunion publique est prévue le {d} novembre à la mairie de {place}.",
    "Les élus d'opposition dénoncent un calendrier trop serré.",
]


FIRST = [
    "Marie", "Nadia", "Karim", "Sophie", "Jean-Luc", "Fatima", "Olivier", "Claire", "Mehdi",
    "Isabelle", "Thierry", "Leïla", "Patrick", "Aurélie", "Yacine", "Martine", "Hervé", "Inès",
]  # fmt: skip
LAST = [
    "Lefebvre", "Dupont", "Benali", "Leroy", "Martin", "Caron", "Haddad", "Delattre", "Vasseur",
    "Dumont", "Lemaire", "Boulanger", "Cordier", "Morel", "Fontaine", "Dufour", "Carpentier",
]  # fmt: skip
ROLES = [
    "adjointe au maire", "président de l'agglomération", "directrice du centre social",
    "délégué du préfet", "habitante du quartier", "bailleur social", "éducatrice",
    "chef de projet politique de la ville", "présidente de l'association", "élu d'opposition",
]  # fmt: skip
QUARTIERS = [
    "Étouvie", "Fafet-Brossolette", "Le Pigeonnier", "Les Provinces", "Lille-Sud", "Moulins",
    "L'Alma", "Le Pile", "La Bourgogne", "Le Virolois", "Chanteclair", "Dutemple",
    "Les Hauts de Saint-Pol", "Le Beau-Marais", "Fort-Nieulay", "Transition", "Saint-Liévin",
    "Les Blancs-Monts", "L'Europe", "Saint-Jean", "Les Champs-Dolent", "Le Plateau Rouher",
    "Argentine", "Saint-Lucien", "La Victoire", "Champ de Mars", "Les Rougemonts",
]  # fmt: skip
THINGS = [
    "logements sociaux", "places en crèche", "jardins partagés", "emplois aidés",
    "médiateurs", "classes dédoublées", "conseillers numériques", "terrains de sport",
    "arbres plantés", "permanences d'accès aux droits", "chantiers d'insertion",
]  # fmt: skip
QUOTES = [
    "on ne lâchera rien", "le quartier change enfin", "il faut plus de moyens",
    "les habitants doivent être écoutés", "c'est un premier pas", "la sécurité d'abord",
    "nos enfants méritent mieux", "un contrat ambitieux", "trop de promesses",
]  # fmt: skip


def _title(rng: random.Random) -> str:
    place, quartier = rng.choice(PLACES), rng.choice(QUARTIERS)
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    shape = rng.randrange(6)
    if shape == 0:
        return (
            f"{place} : {rng.choice(ACTORS).lower()} {rng.choice(VERBS)} "
            f"{rng.choice(SUBJECTS)} {rng.choice(TAILS)}"
        )
    if shape == 1:
        return f"« {rng.choice(QUOTES).capitalize()} » : {person}, {rng.choice(ROLES)} à {place}"
    if shape == 2:
        return (
            f"{rng.randint(3, 480)} {rng.choice(THINGS)} pour le quartier {quartier} "
            f"à {place} d'ici {rng.randint(2025, 2031)}"
        )
    if shape == 3:
        return (
            f"Quartier {quartier} : {rng.choice(SUBJECTS)} {rng.choice(TAILS)}, "
            f"{person} {rng.choice(VERBS)} le projet"
        )
    if shape == 4:
        month = rng.choice(["janvier", "mars", "mai", "juin", "septembre", "octobre", "décembre"])
        return (
            f"{place} : {rng.choice(SUBJECTS)} {rng.choice(VERBS)} "
            f"{rng.randint(1, 40)} millions d'euros le {rng.randint(1, 28)} {month}"
        )
    return f"Portrait : {person}, {rng.choice(ROLES)} dans le quartier {quartier} ({place})"


def _summary(rng: random.Random) -> str:
    parts = []
    for template in rng.sample(SENTENCES, 3):
        parts.append(
            template.format(
                actor=rng.choice(ACTORS),
                verb=rng.choice(VERBS),
                subject=rng.choice(SUBJECTS),
                tail=rng.choice(TAILS),
                place=rng.choice(PLACES),
                n=rng.randint(500, 20000),
                m=rng.randint(2, 90),
                d=rng.randint(1, 30),
            )
        )
    link = f'<a href="https://www.example.fr/dossier/{rng.randint(1, 999)}">le dossier</a>'
    return f"<p>{parts[0]} <strong>{parts[1]}</strong></p><p>{parts[2]} Lire {link}.</p>"


def host_of(i: int, hosts: int) -> str:
    return f"127.0.0.{2 + i % hosts}"


def feed_urls(port: int, feeds: int, hosts: int) -> list[str]:
    return [f"http://{host_of(i, hosts)}:{port}/feeds/{i}.xml" for i in range(feeds)]


def generate(feeds: int, entries: int, seed: int = 2026) -> dict[str, bytes]:
    """Feed bodies by path. About 5% of entries repeat a story of another outlet."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    shared = [_title(rng) for _ in range(200)]
    bodies = {}
    for i in range(feeds):
        outlet = f"Journal {i} des Hauts-de-France"
        site = f"https://journal-{i}.example.fr"
        items = []
        for j in range(entries):
            title = rng.choice(shared) if rng.random() < 0.05 else _title(rng)
            when = start + timedelta(minutes=rng.randint(0, 30 * 24 * 60))
            link = f"{site}/articles/{j}-{rng.getrandbits(32):08x}?utm_source=rss&xtor=RSS-{i}"
            items.append(
                f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
                f'<guid isPermaLink="false">{site}/{j}</guid>'
                f"<pubDate>{format_datetime(when)}</pubDate>"
                f"<category>{escape(rng.choice(SUBJECTS))}</category>"
                f"<description>{escape(_summary(rng))}</description></item>"
            )
        bodies[f"/feeds/{i}.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>{escape(outlet)}</title><link>{site}/</link><language>fr-fr</language>"
            f"<description>Actualités</description>{''.join(items)}</channel></rss>"
        ).encode()
    return bodies


# -- the server -------------------------------------------------------------------


def serve(port_out: multiprocessing.connection.Connection, feeds: int, entries: int,
          latency: float) -> None:  # fmt: skip
    """Run the slow feed server until killed (in its own process)."""
    bodies = generate(feeds, entries)
    etags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}
    stamp = "Sun, 01 Nov 2026 08:00:00 GMT"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                await asyncio.sleep(latency)
                body = bodies.get(path)
                if body is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif headers.get("if-none-match") == etags[path]:
                    writer.write(
                        f"HTTP/1.1 304 Not Modified\r\nETag: {etags[path]}\r\n\r\n".encode()
                    )
                else:
                    writer.write(
                        (
                            "HTTP/1.1 200 OK\r\n"
                            "Content-Type: application/rss+xml; charset=utf-8\r\n"
                            f"Content-Length: {len(body)}\r\nETag: {etags[path]}\r\n"
                            f"Last-Modified: {stamp}\r\n\r\n"
                        ).encode()
                        + body
                    )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "0.0.0.0", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- phases (each in a fresh subprocess) -----------------------------------------


def _own_cpu() -> float:
    """CPU seconds of this process alone (all its threads)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _usage() -> tuple[float, float]:
    """CPU seconds (this process and its finished children), peak RSS in MB."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, max(me.ru_maxrss, kids.ru_maxrss) / 1024


#: What the floor pipeline keeps of a summary (pressreview keeps a similar set).
FLOOR_TAGS = {"a", "b", "strong", "i", "em", "p", "br", "ul", "ol", "li", "blockquote"}

FloorRow = tuple[str, str, str, str, str, str]


def _floor_parse(body: bytes) -> list[FloorRow]:
    """Parse one feed and prepare its rows (runs in a worker process of the floor)."""
    import fastfeedparser
    import nh3

    rows = []
    for e in fastfeedparser.parse(body).entries:
        html = e.get("description") or ""
        summary = nh3.clean(html, tags=FLOOR_TAGS, link_rel="noopener noreferrer nofollow")
        text = " ".join(nh3.clean(html, tags=set()).split())
        if len(text) > 300:
            text = text[: text.rfind(" ", 0, 300)] + "…"
        rows.append((e.get("id") or e.get("link"), e.get("link"), e.get("title") or "", summary,
                     text, e.get("published") or ""))  # fmt: skip
    return rows


def _floor(urls: list[str], workdir: Path) -> int:
    """The minimal pipeline (see the module's docstring); returns the number of items."""
    import sqlite3
    from concurrent.futures import ProcessPoolExecutor

    import httpx

    pool = ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("fork"))
    rows: list[FloorRow] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(32)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def one(url: str) -> None:
                async with slots:
                    body = (await client.get(url)).content
                rows.extend(await loop.run_in_executor(pool, _floor_parse, body))

            await asyncio.gather(*(one(url) for url in urls))

    asyncio.run(run())
    pool.shutdown()
    db = sqlite3.connect(workdir / "floor.db")
    db.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, guid TEXT UNIQUE, link TEXT, title TEXT, "
        "summary TEXT, excerpt TEXT, published TEXT)"
    )
    with db:
        db.executemany(
            "INSERT OR IGNORE INTO items (guid, link, title, summary, excerpt, published) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    with db:
        db.execute(
            "CREATE VIRTUAL TABLE items_fts USING fts5(title, excerpt, content='items', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        db.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
    count = int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    db.close()
    return count


def _reader(urls: list[str], workdir: Path) -> int:
    from reader import make_reader

    reader = make_reader(str(workdir / "reader.sqlite"))
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    reader.update_feeds(workers=16)
    count = int(reader.get_entry_counts().total)
    reader.close()
    return count


def phase(name: str, workdir: Path) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    urls = json.loads((workdir / "urls.json").read_text())
    if name in ("sequential", "floor", "reader"):
        if name == "sequential":
            import feedparser

            entries = sum(len(feedparser.parse(url).entries) for url in urls)
        elif name == "floor":
            entries = _floor(urls, workdir)
        else:
            entries = _reader(urls, workdir)
        wall = time.perf_counter() - started
        cpu, rss = _usage()
        return {"wall": wall, "cpu": cpu, "rss": rss, "entries": entries}
    import pressreview.collect as pc
    from pressreview.collect import collect
    from pressreview.config import load_config
    from pressreview.store import open_store

    # The writer thread's own CPU and busy time, and its lots: the writer is the
    # one part of a run that cannot be spread over the CPUs.
    lots: list[tuple[int, float, float]] = []
    write = pc._Writer.write

    def timed_write(self: Any, lot: list[Any]) -> Any:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        try:
            return write(self, lot)
        finally:
            items = sum(len(o.batch or ()) for o in lot)
            lots.append((items, time.thread_time() - cpu0, time.perf_counter() - wall0))

    pc._Writer.write = timed_write  # type: ignore[method-assign]
    config = load_config(workdir / "feeds.yaml")
    store = open_store(config)
    store.ensure_schema()
    main0 = _own_cpu()
    started = time.perf_counter()
    report = collect(config, store)
    wall = time.perf_counter() - started
    main_cpu = _own_cpu() - main0
    store.close()
    cpu, rss = _usage()
    statuses: dict[str, int] = {}
    for s in report.sources:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    return {
        "wall": wall, "cpu": cpu, "rss": rss, "new": report.total("new"),
        "entries": report.total("entries"), "duplicates": report.total("duplicates"),
        "statuses": statuses,
        "errors": sorted({s.error or "" for s in report.failed})[:3],
        "main_cpu": main_cpu, "lots": len(lots), "lot_items": sum(n for n, _, _ in lots),
        "writer_cpu": sum(c for _, c, _ in lots), "writer_busy": sum(w for _, _, w in lots),
    }  # fmt: skip


def write_config(workdir: Path, urls: list[str]) -> None:
    project = yaml.safe_load((ROOT / "feeds.yaml").read_text("utf-8"))
    config = {
        key: project[key]
        for key in ("organisation", "locale", "timezone", "territories", "filters", "sections")
        if key in project
    }
    config["database_url"] = "sqlite:///store.db"
    config["feeds"] = [{"name": f"Journal {i}", "url": url} for i, url in enumerate(urls)]
    (workdir / "feeds.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    (workdir / "urls.json").write_text(json.dumps(urls))


def run_phase(name: str, workdir: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--workdir", str(workdir)],
        capture_output=True, text=True, cwd=workdir,
    )  # fmt: skip
    if out.returncode:
        sys.exit(f"phase {name} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- breakdown: where the CPU goes, stage by stage, in one process ----------------


def breakdown(feeds: int, entries: int) -> None:
    """Run each stage of pressreview and of the floor alone on the generated bodies.

    No network and no worker process: CPU time of one process, stage by stage,
    so the figures add up and do not depend on what else the machine runs as
    much as wall times do. The fetch is measured by the phases above.
    """
    import hashlib
    import pickle
    import sqlite3

    import fastfeedparser

    sys.path.insert(0, str(ROOT))
    import pressreview.collect as pc
    from pressreview.agenda import propose_for_items
    from pressreview.collect.classify import Classifier
    from pressreview.collect.fetch import FetchResult
    from pressreview.collect.parse import parse_body
    from pressreview.config import load_config
    from pressreview.store import collect as q
    from pressreview.store import open_store

    workdir = Path(tempfile.mkdtemp(prefix="pressreview-breakdown-"))
    cwd = Path.cwd()
    try:
        os.chdir(workdir)
        write_config(workdir, feed_urls(1, feeds, 100))
        config = load_config(workdir / "feeds.yaml")
        store = open_store(config)
        store.ensure_schema()
        with store.begin() as conn:
            rows = q.sync_sources(conn, config.feeds)
        bodies = generate(feeds, entries)
        headers = {"content-type": "application/rss+xml; charset=utf-8"}
        classifier = Classifier(config)
        cpu: dict[str, float] = {}

        def timed(stage: str, fn: Any, *args: Any) -> Any:
            started = time.process_time()
            try:
                return fn(*args)
            finally:
                cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - started

        outcomes = []
        floor_rows = []
        for i, feed in enumerate(config.feeds):
            body = bodies[f"/feeds/{i}.xml"]
            timed("parse (fastfeedparser)", fastfeedparser.parse, body)
            parsed = timed("parse and normalize", lambda b=body, f=feed: parse_body(
                b, headers, base_url=f.url, excerpt_chars=300, max_entries=2000
            ))  # fmt: skip
            items = timed("classify and prepare", lambda p=parsed, f=feed: [
                pc._to_new_item(classifier, f, e) for e in p.entries
            ])  # fmt: skip
            # The parse workers read the agenda events each item announces.
            timed("agenda detection (workers)", pc._detect_agenda, items, config.tz)
            summary = pc._ParsedSummary(parsed.parser, len(parsed.entries), None, None, None)
            blob = timed("pickle", pickle.dumps, (summary, items), pickle.HIGHEST_PROTOCOL)
            summary, items = timed("unpickle", pickle.loads, blob)
            result = FetchResult(url=feed.url, status=200, headers={"etag": '"e"'})
            outcomes.append(pc._Outcome(feed, rows[feed.name]["id"], result, str(i), summary,
                                        items))  # fmt: skip
            floor_rows.extend(timed("floor: parse, sanitize, excerpt", _floor_parse, body))
        cpu["normalize"] = cpu.pop("parse and normalize") - cpu["parse (fastfeedparser)"]

        leads = [0.0]
        near = q._near_duplicate_leads

        def near_timed(*args: Any, **kwargs: Any) -> dict[str, int]:
            started = time.process_time()
            try:
                return near(*args, **kwargs)
            finally:
                leads[0] += time.process_time() - started

        # The writer proposes agenda events (read by the workers) as it stores each
        # source's new items.
        agenda = [0.0]

        def propose_timed(*args: Any, **kwargs: Any) -> int:
            started = time.process_time()
            try:
                return propose_for_items(*args, **kwargs)
            finally:
                agenda[0] += time.process_time() - started

        q._near_duplicate_leads = near_timed  # type: ignore[assignment]
        pc.propose_for_items = propose_timed
        writer = pc._Writer(config, store)
        for k in range(0, len(outcomes), 25):
            timed("store", writer.write, outcomes[k : k + 25])
        timed("store", writer.close)
        q._near_duplicate_leads = near
        pc.propose_for_items = propose_for_items
        cpu["store: near-duplicates"] = leads[0]
        cpu["agenda (proposed events)"] = agenda[0]
        cpu["store"] -= leads[0] + agenda[0]
        store.close()
        db = sqlite3.connect(workdir / "store.db")
        dups = db.execute(
            "SELECT i.url, d.url FROM items i JOIN items d ON d.id = i.duplicate_of ORDER BY 1"
        ).fetchall()
        db.close()

        def floor_store() -> None:
            db = sqlite3.connect(workdir / "floor.db")
            db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, guid TEXT UNIQUE, link TEXT, "
                       "title TEXT, summary TEXT, excerpt TEXT, published TEXT)")  # fmt: skip
            with db:
                db.executemany("INSERT OR IGNORE INTO items (guid, link, title, summary, excerpt, "
                               "published) VALUES (?, ?, ?, ?, ?, ?)", floor_rows)  # fmt: skip
            with db:
                db.execute("CREATE VIRTUAL TABLE items_fts USING fts5(title, excerpt, "
                           "content='items', content_rowid='id')")  # fmt: skip
                db.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
            db.close()

        timed("floor: executemany, FTS5 after", floor_store)
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)
    n = feeds * entries
    print(f"CPU per item by stage, one process, no network ({feeds} feeds x {entries} entries):")
    ours = floor = 0.0
    for stage, seconds in cpu.items():
        print(f"  {stage:<36}{seconds / n * 1e6:>7.0f} us")
        if stage.startswith("floor"):
            floor += seconds
        else:
            ours += seconds
    print(f"  {'pressreview, total':<36}{ours / n * 1e6:>7.0f} us")
    print(f"  {'floor, total':<36}{floor / n * 1e6:>7.0f} us")
    digest = hashlib.sha256("\n".join(f"{a}\t{b}" for a, b in dups).encode()).hexdigest()[:16]
    print(f"near-duplicates: {len(dups)} items (other outlets), digest {digest}")


def _reader_installed() -> bool:
    try:
        import reader  # noqa: F401
    except ImportError:
        return False
    return True


def report(results: dict[str, dict[str, object]], items: int) -> None:
    """Print every figure, the ratios and the targets."""
    print(f"{'phase':<11}{'wall s':>9}{'CPU s':>9}{'CPU us/item':>13}{'peak RSS MB':>13}  notes")
    for name, r in results.items():
        wall, cpu, rss = float(r["wall"]), float(r["cpu"]), float(r["rss"])  # type: ignore[arg-type]
        if name in ("sequential", "floor", "reader"):
            notes = f"{r['entries']} entries" + (" stored" if name != "sequential" else "")
        else:
            notes = f"{r['new']} new items, {r['duplicates']} other outlets, {r['statuses']}"
        if r.get("errors"):
            notes += f" errors: {r['errors']}"
        per_item = f"{cpu / items * 1e6:.0f}" if name != "warm" else "-"
        print(f"{name:<11}{wall:>9.2f}{cpu:>9.2f}{per_item:>13}{rss:>13.0f}  {notes}")

    def wall(name: str) -> float:
        return float(results[name]["wall"])  # type: ignore[arg-type]

    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    cold = wall("cold")
    cpu_per_item = float(results["cold"]["cpu"]) / items * 1e6  # type: ignore[arg-type]
    rss = max(float(r["rss"]) for r in results.values())  # type: ignore[arg-type]
    lines = []
    if "sequential" in results:
        ratio = wall("sequential") / cold
        lines.append(f"cold is {ratio:.1f}x faster than the sequential loop (target >= 6x: "
                     f"{met(ratio >= 6)})")  # fmt: skip
    if "floor" in results:
        ratio = cold / wall("floor")
        cpu = float(results["cold"]["cpu"]) / float(results["floor"]["cpu"])  # type: ignore[arg-type]
        lines.append(f"cold takes {ratio:.2f}x the floor's wall time (target <= 2x: "
                     f"{met(ratio <= 2)}) and {cpu:.2f}x its CPU")  # fmt: skip
    if "reader" in results:
        lines.append(f"cold is {wall('reader') / cold:.1f}x faster than reader "
                     f"(update_feeds(workers=16))")  # fmt: skip
    lines.append(f"cold CPU per item {cpu_per_item:.0f} us (target <= 200: "
                 f"{met(cpu_per_item <= 200)})")  # fmt: skip
    lines.append(f"warm {wall('warm'):.2f} s (target <= 1 s: {met(wall('warm') <= 1)})")
    lines.append(f"peak RSS {rss:.0f} MB (target <= 200 MB: {met(rss <= 200)})")
    r = results["cold"]
    if r.get("lots"):
        main, total = float(r["main_cpu"]), float(r["cpu"])  # type: ignore[arg-type]
        writer, busy = float(r["writer_cpu"]), float(r["writer_busy"])  # type: ignore[arg-type]
        lines.append(
            f"cold: main process {main:.2f} s CPU, parse workers {total - main:.2f}; "
            f"writer thread {writer:.2f} s CPU, busy {busy:.2f} s of the "
            f"{float(r['wall']):.2f} s run ({r['lots']} lots, "  # type: ignore[arg-type]
            f"{int(r['lot_items']) // int(r['lots'])} items each on average)"  # type: ignore[call-overload]
        )
    for line in lines:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per response")
    parser.add_argument("--no-sequential", action="store_true", help="skip the baseline loop")
    parser.add_argument("--no-reader", action="store_true", help="skip reader")
    parser.add_argument(
        "--breakdown", action="store_true", help="only the CPU per item of each stage"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.workdir)))
        return
    if args.breakdown:
        breakdown(args.feeds, args.entries)
        return

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(send, args.feeds, args.entries, args.latency), daemon=True
    )
    server.start()
    port = receive.recv()
    workdir = Path(tempfile.mkdtemp(prefix="pressreview-bench-"))
    try:
        urls = feed_urls(port, args.feeds, args.hosts)
        write_config(workdir, urls)
        load = os.getloadavg()[0]
        print(
            f"{args.feeds} feeds x {args.entries} entries, {args.hosts} hosts, "
            f"{args.latency * 1000:g} ms per response, {os.cpu_count()} CPUs, "
            f"load average {load:.1f} at the start"
        )
        phases = [] if args.no_sequential else ["sequential"]
        phases += ["floor", "cold", "warm"]
        if not args.no_reader and _reader_installed():
            phases.append("reader")
        results = {name: run_phase(name, workdir) for name in phases}
        report(results, args.feeds * args.entries)
    finally:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
