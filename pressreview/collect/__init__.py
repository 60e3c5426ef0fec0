"""Collection: fetch every enabled source, parse, normalize, classify, store.

``collect(config, store)`` is the one entry point used by the command line
and the scheduler. Each source fails alone: its error is recorded against it
(with exponential back-off) and the others are collected.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from pressreview.collect.classify import Classifier
from pressreview.collect.fetch import Fetcher, FetchResult
from pressreview.collect.parse import Entry, NotAFeed, ParsedFeed, parse_body
from pressreview.config import Config, Feed
from pressreview.errors import UsageError
from pressreview.store import Store
from pressreview.store import collect as q
from pressreview.text import sha256

__all__ = ["CollectReport", "SourceReport", "check_feeds", "collect", "select_feeds"]


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
    moved_to: str | None = None
    next_attempt_at: datetime | None = None
    parser: str | None = None
    elapsed: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class CollectReport:
    sources: list[SourceReport] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None

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
            | {"failed": len(self.failed)},
            "sources": [
                {
                    k: (v.isoformat() if isinstance(v, datetime) else v)
                    for k, v in dataclasses.asdict(s).items()
                }
                for s in self.sources
            ],
        }


Progress = Callable[[SourceReport], None]


def select_feeds(config: Config, names: Sequence[str] | None) -> list[Feed]:
    """The enabled feeds, or the named ones (case-insensitive); unknown names are an error."""
    if not names:
        return [f for f in config.feeds if f.enabled]
    chosen = []
    for name in names:
        feed = next((f for f in config.feeds if f.name.casefold() == name.casefold()), None)
        if feed is None:
            known = ", ".join(f.name for f in config.feeds) or "none"
            raise UsageError(f"unknown source {name!r} (sources in the config: {known})")
        chosen.append(feed)
    return chosen


def _backoff(config: Config, failures: int, now: datetime) -> datetime:
    minutes = config.collect.backoff_minutes * (2 ** max(failures - 1, 0))
    minutes = min(minutes, config.collect.backoff_max_hours * 60)
    return now + timedelta(minutes=minutes)


def collect(
    config: Config,
    store: Store,
    *,
    only: Sequence[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    now: datetime | None = None,
) -> CollectReport:
    """Fetch the enabled (or named) sources and store what they hold."""
    now = now or datetime.now(UTC)
    report = CollectReport(started_at=now)
    feeds = select_feeds(config, only)
    with store.begin() as conn:
        rows = q.sync_sources(conn, config.feeds)
    due: list[Feed] = []
    for feed in feeds:
        row = rows[feed.name]
        if row.status == "disabled" and not only and not force:
            report.sources.append(
                SourceReport(feed.name, "disabled", error=row.last_error)
            )
            continue
        if row.next_attempt_at and row.next_attempt_at > now and not force and not only:
            report.sources.append(
                SourceReport(
                    feed.name, "skipped", error=row.last_error, next_attempt_at=row.next_attempt_at
                )
            )
            continue
        due.append(feed)
    for skipped in report.sources:
        if progress:
            progress(skipped)
    classifier = Classifier(config)

    async def run() -> None:
        async with Fetcher(config.collect, transport=transport) as fetcher:

            async def one(feed: Feed) -> tuple[Feed, FetchResult]:
                row = rows[feed.name]
                return feed, await fetcher.fetch(
                    row.url, etag=row.etag, last_modified=row.last_modified
                )

            tasks = [asyncio.ensure_future(one(feed)) for feed in due]
            loop = asyncio.get_running_loop()
            for next_done in asyncio.as_completed(tasks):
                feed, result = await next_done
                parsed: ParsedFeed | None = None
                parse_error: str | None = None
                row = rows[feed.name]
                digest = sha256(result.body) if result.body is not None else None
                if result.ok and not result.not_modified and digest != row.body_hash:
                    try:
                        parsed = await loop.run_in_executor(
                            None, _parse, result, config.collect.excerpt_chars
                        )
                    except NotAFeed as exc:
                        parse_error = str(exc)
                source_report = _record(
                    config, store, classifier, feed, row.id, result, parsed, parse_error,
                    digest, datetime.now(UTC),
                )  # fmt: skip
                report.sources.append(source_report)
                if progress:
                    progress(source_report)

    if due:
        asyncio.run(run())
    order = {f.name: i for i, f in enumerate(config.feeds)}
    report.sources.sort(key=lambda s: order.get(s.name, 0))
    report.finished_at = datetime.now(UTC)
    return report


def _parse(result: FetchResult, excerpt_chars: int) -> ParsedFeed:
    assert result.body is not None
    return parse_body(
        result.body, result.headers, base_url=result.final_url or result.url,
        excerpt_chars=excerpt_chars,
    )  # fmt: skip


def _record(
    config: Config,
    store: Store,
    classifier: Classifier,
    feed: Feed,
    source_id: int,
    result: FetchResult,
    parsed: ParsedFeed | None,
    parse_error: str | None,
    digest: str | None,
    now: datetime,
) -> SourceReport:
    """Store one source's outcome and items in one transaction."""
    rep = SourceReport(feed.name, "ok", moved_to=result.moved_to, elapsed=result.elapsed)
    with store.begin() as conn:
        row = q.get_source(conn, source_id)
        state: dict[str, object] = {"last_fetched_at": now}
        if result.moved_to:
            state["url"] = result.moved_to
        error = result.error or parse_error
        if result.gone:
            state.update(status="disabled", last_error=error, failures=row.failures + 1,
                         next_attempt_at=None)  # fmt: skip
            rep.status, rep.error = "failed", f"{error}; source disabled (remove it or fix its URL)"
        elif error:
            failures = row.failures + 1
            retry = result.retry_after or _backoff(config, failures, now)
            state.update(status="failing", last_error=error, failures=failures,
                         next_attempt_at=retry)  # fmt: skip
            rep.status, rep.error, rep.next_attempt_at = "failed", error, retry
        else:
            state.update(status="ok", last_error=None, failures=0, next_attempt_at=None,
                         last_success_at=now)  # fmt: skip
            if result.not_modified:
                rep.status = "not_modified"
            elif parsed is None:
                rep.status = "unchanged"
            else:
                state.update(
                    etag=result.headers.get("etag"),
                    last_modified=result.headers.get("last-modified"),
                    body_hash=digest,
                    entries_seen=len(parsed.entries),
                )
                rep.entries, rep.parser = len(parsed.entries), parsed.parser
                batch = [_to_new_item(classifier, feed, e) for e in parsed.entries]
                counts = q.store_items(
                    conn, source_id, batch,
                    default_outlet=feed.name,
                    dedupe_window=timedelta(days=config.collect.dedupe_window_days),
                    threshold=config.collect.near_duplicate_threshold,
                    stamp=now,
                )  # fmt: skip
                rep.new, rep.updated = counts.new, counts.updated
                rep.unchanged, rep.duplicates = counts.unchanged, counts.duplicates
                rep.filtered = sum(1 for b in batch if not b.relevant)
        q.update_source(conn, source_id, **state)
    return rep


def _to_new_item(classifier: Classifier, feed: Feed, entry: Entry) -> q.NewItem:
    c = classifier.classify(entry.title, entry.excerpt, feed.territory)
    return q.NewItem(
        guid=entry.guid, url=entry.url, link=entry.link, title=entry.title,
        summary_html=entry.summary_html, excerpt=entry.excerpt, outlet=entry.outlet,
        language=entry.language, published_at=entry.published_at,
        tags=sorted(set(entry.tags) | set(feed.tags)), territories=c.territories,
        score=c.score, relevant=c.relevant, section=c.section,
    )  # fmt: skip


@dataclass
class CheckReport:
    name: str
    url: str
    ok: bool
    title: str = ""
    entries: int = 0
    newest: datetime | None = None
    parser: str | None = None
    error: str | None = None
    moved_to: str | None = None


def check_feeds(
    config: Config,
    only: Sequence[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[CheckReport]:
    """Fetch each source once and say what it holds; nothing is stored."""
    feeds = select_feeds(config, only)

    async def run() -> list[CheckReport]:
        async with Fetcher(config.collect, transport=transport) as fetcher:

            async def one(feed: Feed) -> CheckReport:
                result = await fetcher.fetch(feed.url)
                rep = CheckReport(feed.name, feed.url, ok=False, moved_to=result.moved_to)
                if not result.ok:
                    rep.error = result.error
                    return rep
                try:
                    parsed = await asyncio.get_running_loop().run_in_executor(
                        None, _parse, result, config.collect.excerpt_chars
                    )
                except NotAFeed as exc:
                    rep.error = str(exc)
                    return rep
                dates = [e.published_at for e in parsed.entries if e.published_at]
                rep.ok, rep.title, rep.entries = True, parsed.title, len(parsed.entries)
                rep.newest, rep.parser = (max(dates) if dates else None), parsed.parser
                return rep

            return list(await asyncio.gather(*(one(f) for f in feeds)))

    return asyncio.run(run()) if feeds else []
