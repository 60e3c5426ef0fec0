"""Collection: fetch every enabled source, parse, normalize, classify, store.

``collect(config, store)`` is the one entry point used by the command line
and the scheduler. Each source fails alone: its error is recorded against it
(with exponential back-off) and the others are collected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import signal
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from pressreview.agenda import (
    Detected,
    ItemText,
    detect_ahead,
    propose_for_items,
    store_calendar,
)
from pressreview.agenda.ical import CalendarParse, NotACalendar, parse_calendar, window
from pressreview.collect.classify import Classifier
from pressreview.collect.fetch import Fetcher, FetchResult
from pressreview.collect.parse import Entry, NotAFeed, parse_body
from pressreview.config import Config, Feed
from pressreview.errors import StoreError, UsageError
from pressreview.store import Connection, Store, transaction
from pressreview.store import collect as q
from pressreview.text import sha256

__all__ = ["CollectReport", "SourceReport", "collect", "select_feeds"]


#: A run that stores at least this many new items refreshes the planner's statistics.
ANALYZE_AFTER = 5_000


@dataclass
class SourceReport:
    """What happened to one source in a run."""

    name: str
    status: str  # ok | not_modified | unchanged | failed | skipped | disabled
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    filtered: int = 0
    entries: int = 0
    error: str | None = None
    #: Entries were read, but something is worth fixing at the source (malformed XML).
    warning: str | None = None
    moved_to: str | None = None
    next_attempt_at: datetime | None = None
    parser: str | None = None
    elapsed: float = 0.0
    #: Entries the feed held when more than ``collect.max_entries`` (only the newest were read).
    total_entries: int | None = None
    #: Events proposed for the agenda, read in its new items (see pressreview.agenda).
    proposed_events: int = 0

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class CollectReport:
    sources: list[SourceReport] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Events proposed for the agenda, read in the new items (see pressreview.agenda).
    proposed_events: int = 0

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.failed]

    def total(self, attr: str) -> int:
        return sum(int(getattr(s, attr)) for s in self.sources)

    def as_dict(self) -> dict[str, object]:
        return {
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "totals": {
                k: self.total(k) for k in ("new", "updated", "unchanged", "duplicates", "filtered")
            }
            | {"failed": len(self.failed), "proposed_events": self.proposed_events},
            "sources": [
                {
                    k: (v.isoformat() if isinstance(v, datetime) else v)
                    for k, v in dataclasses.asdict(s).items()
                }
                for s in self.sources
            ],
        }


Progress = Callable[[SourceReport], None]


#: At most this many source names in the message about an unknown one.
KNOWN_SHOWN = 10


def select_feeds(config: Config, names: Sequence[str] | None) -> list[Feed]:
    """The enabled feeds, or the named ones (case-insensitive); unknown names are an error."""
    if not names:
        return [f for f in config.feeds if f.enabled]
    chosen = []
    for name in names:
        feed = next((f for f in config.feeds if f.name.casefold() == name.casefold()), None)
        if feed is None:
            names_known = [f.name for f in config.feeds]
            known = ", ".join(names_known[:KNOWN_SHOWN]) or "none"
            if len(names_known) > KNOWN_SHOWN:
                known += f"... {len(names_known):,} in all: pressreview feeds list"
            raise UsageError(f"unknown source {name!r} (sources in the config: {known})")
        chosen.append(feed)
    return chosen


def _backoff(config: Config, failures: int, now: datetime) -> datetime:
    minutes = config.collect.backoff_minutes * (2 ** max(failures - 1, 0))
    minutes = min(minutes, config.collect.backoff_max_hours * 60)
    return now + timedelta(minutes=minutes)


#: Sources fetched and not yet stored, beyond those being fetched, at most: enough to
#: keep the parse workers and the writer busy (each waiting source holds its parsed
#: items, about 200 KB for 50 entries).
BACKLOG = 48
#: Bodies larger than this are parsed one at a time (bounds the peak memory of a run).
LARGE_BODY = 2_000_000
#: Below this many sources to parse, parsing stays in threads of this process.
POOL_MIN_SOURCES = 20
#: Title shingles kept in memory between lots (near-duplicate checks), at most.
TITLE_CACHE_MAX = 60_000
#: Title keys whose newest postings are kept in memory between lots, at most.
POSTINGS_CACHE_MAX = 400_000


#: What a parse worker is given: body, headers, base URL, excerpt length, feed, max entries.
_ParseArgs = tuple[bytes, dict[str, str], str, int, Feed, int]


@dataclass
class _Outcome:
    """A fetched (and maybe parsed and classified) source, waiting to be stored."""

    feed: Feed
    source_id: int
    result: FetchResult
    digest: str | None
    parsed: _ParsedSummary | None = None
    batch: list[q.NewItem] | None = None
    parse_error: str | None = None
    #: For a calendar source (kind "ical"): the events read.
    calendar: CalendarParse | None = None
    window_start: datetime | None = None


def collect(
    config: Config,
    store: Store,
    *,
    only: Sequence[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    now: datetime | None = None,
    workers: int | None = None,
) -> CollectReport:
    """Fetch the enabled (or named) sources and store what they hold.

    Fetches run concurrently (bounded overall and per host); parsing and
    classification run in a pool of ``workers`` processes (default: one per
    CPU, when there are enough sources to make it worth it; 0 keeps them in
    threads) while the fetches go on; the results are written by one writer
    thread, in one transaction for whatever has arrived since its last write.
    A source whose items cannot be stored fails alone.
    """
    now = now or datetime.now(UTC)
    report = CollectReport(started_at=now)
    feeds = select_feeds(config, only)
    with store.begin() as conn:
        rows = q.sync_sources(conn, config.feeds)
    due: list[Feed] = []
    for feed in feeds:
        row = rows[feed.name]
        if row["status"] == "disabled" and not only and not force:
            report.sources.append(SourceReport(feed.name, "disabled", error=row["last_error"]))
            continue
        if row["next_attempt_at"] and row["next_attempt_at"] > now and not force and not only:
            report.sources.append(
                SourceReport(
                    feed.name,
                    "skipped",
                    error=row["last_error"],
                    next_attempt_at=row["next_attempt_at"],
                )
            )
            continue
        due.append(feed)
    for skipped in report.sources:
        if progress:
            progress(skipped)
    classifier = _LazyClassifier(config)  # built where something is parsed, if anywhere
    pool = _parse_pool(classifier, len(due), workers)
    writer = _Writer(config, store)
    try:
        if due:
            asyncio.run(_run(config, rows, due, classifier, pool, writer, report, progress,
                             transport))  # fmt: skip
        writer.close()
        # Items that announce an event got proposed agenda events as they were stored.
        report.proposed_events = report.total("proposed_events")
        if report.total("new") >= ANALYZE_AFTER:
            store.refresh_statistics()
    finally:
        writer.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    order = {f.name: i for i, f in enumerate(config.feeds)}
    report.sources.sort(key=lambda s: order.get(s.name, 0))
    report.finished_at = datetime.now(UTC)
    return report


async def _run(
    config: Config,
    rows: dict[str, Any],
    due: list[Feed],
    classifier: _LazyClassifier,
    pool: ProcessPoolExecutor | None,
    writer: _Writer,
    report: CollectReport,
    progress: Progress | None,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    loop = asyncio.get_running_loop()
    excerpt_chars = config.collect.excerpt_chars

    # Back-pressure: at most this many sources fetched and not yet stored, so that
    # memory stays bounded when the store is slower than the network.
    room = asyncio.Semaphore(config.collect.concurrency + BACKLOG)

    broken: list[bool] = []  # set once the process pool is unusable
    # Parsing a large body briefly takes several times its size: one at a time.
    large = asyncio.Semaphore(1)

    async def one(feed: Feed, fetcher: Fetcher) -> _Outcome:
        await room.acquire()
        row = rows[feed.name]
        result = await fetcher.fetch(
            row["url"], etag=row["etag"], last_modified=row["last_modified"]
        )
        digest = sha256(result.body) if result.body is not None else None
        outcome = _Outcome(feed, row["id"], dataclasses.replace(result, body=None), digest)
        if feed.kind == "ical":
            if result.ok and not result.not_modified and digest != row["body_hash"]:
                assert result.body is not None
                start, end = window(report.started_at or datetime.now(UTC),
                                    config.agenda.calendar_months)  # fmt: skip
                outcome.window_start = start
                try:
                    outcome.calendar = await loop.run_in_executor(
                        None,
                        lambda: parse_calendar(
                            result.body or b"", tz=config.tz, start=start, end=end,
                            max_events=config.agenda.max_events_per_calendar,
                        ),
                    )  # fmt: skip
                except NotACalendar as exc:
                    outcome.parse_error = str(exc)
                except Exception as exc:
                    outcome.parse_error = (
                        f"cannot read the calendar: {type(exc).__name__}: {_first_line(exc)}"
                    )
            return outcome
        if result.ok and not result.not_modified and digest != row["body_hash"]:
            assert result.body is not None
            args: _ParseArgs = (result.body, result.headers, result.final_url or result.url,
                                excerpt_chars, feed, config.collect.max_entries)  # fmt: skip
            del result  # the body is dropped as soon as it is parsed
            if len(args[0]) > LARGE_BODY:
                # Waiting its turn, a large body is kept compressed (XML shrinks ~10x).
                packed = zlib.compress(args[0], 1)
                args = (b"", *args[1:])
                async with large:
                    args = (zlib.decompress(packed), *args[1:])
                    del packed
                    await parse(outcome, args)
            else:
                await parse(outcome, args)
        return outcome

    async def parse(outcome: _Outcome, args: _ParseArgs) -> None:
        try:
            try:
                if pool is None or broken:
                    raise BrokenProcessPool
                outcome.parsed, outcome.batch = await loop.run_in_executor(
                    pool, _parse_and_classify, *args
                )
            except BrokenProcessPool:
                # No pool, or a worker died (killed, out of memory): parse here.
                broken.append(True)
                outcome.parsed, outcome.batch = await loop.run_in_executor(
                    None, _parse_and_classify, *args, classifier
                )
        except NotAFeed as exc:
            outcome.parse_error = str(exc)
        except Exception as exc:
            outcome.parse_error = f"cannot parse: {type(exc).__name__}: {_first_line(exc)}"

    def done(reports: list[SourceReport]) -> None:
        for _ in reports:
            room.release()
        report.sources.extend(reports)
        if progress:
            for rep in reports:
                progress(rep)

    # One writer thread: while it stores one lot, the next lot gathers.
    store_thread = ThreadPoolExecutor(1, thread_name_prefix="pressreview-store")
    queue: asyncio.Queue[_Outcome | None] = asyncio.Queue()

    async def write_lots() -> None:
        finished = False
        while not finished:
            first = await queue.get()
            if first is None:
                break
            lot = [first]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    finished = True
                    break
                lot.append(more)
            done(await loop.run_in_executor(store_thread, writer.write, lot))

    async def fetch_one(feed: Feed, fetcher: Fetcher) -> None:
        await queue.put(await one(feed, fetcher))

    writing = asyncio.ensure_future(write_lots())
    try:
        async with Fetcher(config.collect, transport=transport) as fetcher:
            fetcher.expect(rows[feed.name]["url"] for feed in due)
            fetching: asyncio.Future[list[None]] = asyncio.gather(
                *(fetch_one(feed, fetcher) for feed in due)
            )
            try:
                # If the writer dies, stop waiting for fetches it would never store.
                watched: list[asyncio.Future[Any]] = [fetching, writing]
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if writing.done() and not fetching.done():
                    fetching.cancel()
                    writing.result()  # raises the writer's error
                await fetching
            finally:
                # Interrupted (Ctrl-C cancels this task) or failed: stop the fetches
                # before their client closes, and wait until they have stopped.
                if not fetching.done():
                    fetching.cancel()
                    await asyncio.wait([fetching])
                if not fetching.cancelled():
                    fetching.exception()  # retrieved: never "exception was never retrieved"
        await queue.put(None)
        await writing
    finally:
        if not writing.done():
            writing.cancel()
        await loop.run_in_executor(store_thread, writer.close)
        store_thread.shutdown(wait=True)


def _parse_pool(
    classifier: _LazyClassifier, sources: int, workers: int | None
) -> ProcessPoolExecutor | None:
    """A pool of forked parse workers, started before any thread of this run exists.

    By default only from a single-threaded process: forking while other threads
    (a scheduler's, a web server's) may hold locks can hang a child; there the
    parsing runs in threads instead.
    """
    cpus = os.cpu_count() or 1
    if workers is None:
        alone = threading.active_count() == 1
        workers = cpus if cpus > 1 and sources >= POOL_MIN_SOURCES and alone else 0
    if workers <= 0 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_worker,
        initargs=(classifier,),
    )
    # Fork the workers now, from this thread, rather than from inside the event loop.
    pool.submit(int).result()
    return pool


class _LazyClassifier:
    """The run's ``Classifier``, built on first use: a run where no source changed
    builds none, and each parse worker builds its own."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._built: Classifier | None = None
        self._lock = threading.Lock()

    def get(self) -> Classifier:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = Classifier(self.config)
        return self._built


_worker_classifier: _LazyClassifier | None = None


def _init_worker(classifier: _LazyClassifier) -> None:
    global _worker_classifier
    _worker_classifier = classifier
    # Ctrl-C reaches the whole process group: the parent stops the run, workers
    # just end with it (no KeyboardInterrupt traceback from each of them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class _ParsedSummary:
    """What the writer needs of a parsed feed besides its items."""

    parser: str
    entries: int
    newest: datetime | None
    warning: str | None
    total_entries: int | None


def _parse_and_classify(
    body: bytes,
    headers: dict[str, str],
    base_url: str,
    excerpt_chars: int,
    feed: Feed,
    max_entries: int | None = None,
    lazy: _LazyClassifier | None = None,
) -> tuple[_ParsedSummary, list[q.NewItem]]:
    """Parse a body and turn its entries into items (runs in a worker)."""
    lazy = lazy or _worker_classifier
    assert lazy is not None
    classifier = lazy.get()
    parsed = parse_body(
        body, headers, base_url=base_url, excerpt_chars=excerpt_chars, max_entries=max_entries
    )
    batch = [_to_new_item(classifier, feed, e) for e in parsed.entries]
    _detect_agenda(batch, lazy.config.tz)
    # The entries live on in the items: only what the report needs goes back (less to
    # pickle, to hold while waiting for the writer, and to unpickle in this process).
    newest = max((e.published_at for e in parsed.entries if e.published_at), default=None)
    summary = _ParsedSummary(parsed.parser, len(parsed.entries), newest, parsed.warning,
                             parsed.total_entries)  # fmt: skip
    return summary, batch


def _detect_agenda(batch: Sequence[q.NewItem], tz: Any) -> None:
    """Read the agenda events each item announces (in the worker: off the writer's thread);
    the writer proposes those of the items that turn out new."""
    now = datetime.now(UTC)
    for n in batch:
        n.agenda = detect_ahead(
            title=n.title, text=n.excerpt, summary_html=n.summary_html, link=n.link,
            published_at=n.published_at, search_text=n.search_text, tz=tz, now=now,
        )  # fmt: skip


class _Writer:
    """Stores outcomes from one thread, on one connection, a lot per transaction."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._conn: Connection | None = None
        self._context: Any = None
        #: Title shingles and title-key postings seen in this run (near-duplicate checks).
        self.cache = q.DedupeCache()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._context = self.store.connect()
            self._conn = self._context.__enter__()
            q.begin_bulk_writes(self._conn)
        return self._conn

    def write(self, lot: list[_Outcome]) -> list[SourceReport]:
        conn = self._connection()
        stamp = datetime.now(UTC)
        if len(self.cache.titles) > TITLE_CACHE_MAX:
            self.cache.titles.clear()
        if len(self.cache.postings) > POSTINGS_CACHE_MAX:
            self.cache.forget_postings()
        try:
            with transaction(conn):
                rows = q.get_sources(conn, (o.source_id for o in lot))
                updates: list[tuple[int, dict[str, object]]] = []
                reports = [
                    _record(self.config, conn, o, stamp, self.cache, rows.get(o.source_id), updates)
                    for o in lot
                ]
                # The lot's source rows in a few statements (one per set of columns).
                q.update_sources(conn, updates)
                return reports
        except StoreError:
            self.cache.reset()  # ids of a rolled-back lot may be given again
            if len(lot) == 1:
                return [self._store_failure(conn, lot[0], stamp)]
        # One source's items could not be stored: store the others one by one.
        reports = []
        for outcome in lot:
            try:
                with transaction(conn):
                    reports.append(_record(self.config, conn, outcome, stamp, self.cache))
            except StoreError:
                self.cache.reset()
                reports.append(self._store_failure(conn, outcome, stamp))
        return reports

    def _store_failure(self, conn: Connection, outcome: _Outcome, stamp: datetime) -> SourceReport:
        """Record a source whose items the store refused; its stored items stay as they were."""
        try:
            with transaction(conn):
                failed = dataclasses.replace(
                    outcome, parsed=None, batch=None,
                    parse_error="cannot store its items (database error; see the logs)",
                )  # fmt: skip
                return _record(self.config, conn, failed, stamp)
        except StoreError as exc:
            return SourceReport(outcome.feed.name, "failed", error=f"store: {_first_line(exc)}")

    def close(self) -> None:
        if self._context is not None:
            try:
                if self._conn is not None:
                    q.end_bulk_writes(self._conn)
            except StoreError:
                pass  # a checkpoint left for later: the log is still read as the database
            finally:
                self._context.__exit__(None, None, None)
                self._conn = self._context = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _record(
    config: Config,
    conn: Connection,
    outcome: _Outcome,
    now: datetime,
    cache: q.DedupeCache | None = None,
    row: q.SourceRow | None = None,
    updates: list[tuple[int, dict[str, object]]] | None = None,
) -> SourceReport:
    """Store one source's outcome and items (inside the caller's transaction).

    The source's new state is written at once, or appended to ``updates`` for
    the caller to write with the others (``store.collect.update_sources``).
    """
    feed, source_id, result = outcome.feed, outcome.source_id, outcome.result
    parsed, parse_error, digest = outcome.parsed, outcome.parse_error, outcome.digest
    rep = SourceReport(feed.name, "ok", moved_to=result.moved_to, elapsed=result.elapsed)
    if row is None:
        row = q.get_source(conn, source_id)
    state: dict[str, object] = {"last_fetched_at": now, **_answer(result)}
    if result.moved_to:
        state["url"] = result.moved_to
    error = result.error or parse_error
    if result.gone:
        state.update(status="disabled", last_error=error, failures=row["failures"] + 1,
                     next_attempt_at=None)  # fmt: skip
        rep.status, rep.error = "failed", f"{error}; source disabled (remove it or fix its URL)"
    elif error:
        failures = row["failures"] + 1
        retry = result.retry_after or _backoff(config, failures, now)
        state.update(status="failing", last_error=error, failures=failures,
                     next_attempt_at=retry)  # fmt: skip
        rep.status, rep.error, rep.next_attempt_at = "failed", error, retry
    else:
        state.update(status="ok", last_error=None, failures=0, next_attempt_at=None,
                     last_success_at=now)  # fmt: skip
        if result.not_modified:
            rep.status = "not_modified"
        elif outcome.calendar is not None:
            calendar = outcome.calendar
            rep.warning = calendar.warning
            state.update(
                etag=result.headers.get("etag"),
                last_modified=result.headers.get("last-modified"),
                body_hash=digest,
                entries_seen=len(calendar.events),
            )
            rep.entries, rep.parser = len(calendar.events), "icalendar"
            window_start = outcome.window_start or window(now, config.agenda.calendar_months)[0]
            rep.new, rep.updated, cancelled = store_calendar(
                conn, source_id, calendar.events, window_start=window_start
            )
            if cancelled:
                rep.warning = "; ".join(
                    filter(None, [rep.warning, f"{cancelled} event(s) cancelled"])
                )
        elif parsed is None:
            rep.status = "unchanged"
            # Same body as last time; keep validators the server may have started sending.
            state.update(
                etag=result.headers.get("etag"),
                last_modified=result.headers.get("last-modified"),
            )
        else:
            rep.warning = parsed.warning
            if parsed.total_entries:
                capped = (
                    f"kept the newest {parsed.entries:,} of {parsed.total_entries:,} "
                    "entries (collect.max_entries)"
                )
                rep.total_entries = parsed.total_entries
                rep.warning = f"{rep.warning}; {capped}" if rep.warning else capped
            state.update(
                etag=result.headers.get("etag"),
                last_modified=result.headers.get("last-modified"),
                body_hash=digest,
                entries_seen=parsed.entries,
                newest_entry_at=min(parsed.newest, now) if parsed.newest else None,
            )
            batch = outcome.batch or []
            rep.entries, rep.parser = parsed.entries, parsed.parser
            counts = q.store_items(
                conn, source_id, batch,
                default_outlet=feed.name,
                dedupe_window=timedelta(days=config.collect.dedupe_window_days),
                threshold=config.collect.near_duplicate_threshold,
                stamp=now, cache=cache,
            )  # fmt: skip
            rep.new, rep.updated = counts.new, counts.updated
            rep.unchanged, rep.duplicates = counts.unchanged, counts.duplicates
            if counts.new_stories:
                # The new items that announce an event get proposed agenda events, in
                # this transaction, from the texts at hand (nothing read back).
                rep.proposed_events = propose_for_items(conn, [
                    ItemText(item_id, n.title, n.excerpt, n.summary_html, n.link,
                             n.published_at or now, n.territories, n.search_text,
                             cast("Detected | tuple[()] | None", n.agenda))
                    for item_id, n in counts.new_stories
                ], config.tz)  # fmt: skip
            rep.filtered = sum(1 for b in batch if not b.relevant)
    if updates is None:
        q.update_source(conn, source_id, **state)
    else:
        updates.append((source_id, state))
    return rep


def _answer(result: FetchResult) -> dict[str, object]:
    """What the server answered, kept for `feeds check`."""
    ctype = result.headers.get("content-type", "").strip()[:200] or None
    return {"last_status": result.status, "last_content_type": ctype,
            "last_url": result.final_url}  # fmt: skip


def _to_new_item(classifier: Classifier, feed: Feed, entry: Entry) -> q.NewItem:
    c = classifier.classify(
        entry.title,
        entry.excerpt,
        feed.territory,
        published=entry.published_at,
        outlet=entry.outlet or feed.name,
    )
    return q.NewItem(
        guid=entry.guid, url=entry.url, link=entry.link, title=entry.title,
        summary_html=entry.summary_html, excerpt=entry.excerpt, outlet=entry.outlet,
        language=entry.language, published_at=entry.published_at,
        tags=sorted(set(entry.tags) | set(feed.tags)), territories=c.territories,
        score=c.score, relevant=c.relevant, section=c.section,
        contract=c.contract, filter_reason=c.filter_reason, author=entry.author,
    ).prepare(feed.name, c.title_words, c.text_words)  # fmt: skip
