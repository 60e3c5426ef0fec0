"""What is wrong with each source, and what staff can try: `pressreview feeds check`.

A diagnosis is made from an ``Observation``: what the last fetch of a source
answered (HTTP status, Content-Type, address after redirects, error, entries,
newest entry date). Observations come from what collect recorded in the
store (``observations``), or from fetching each source once now
(``probe``), which stores nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pressreview.agenda.ical import NotACalendar, parse_calendar, window
from pressreview.collect.discover import Discovery, site_root
from pressreview.collect.fetch import Fetcher
from pressreview.collect.parse import NotAFeed, parse_body
from pressreview.config import Config, Feed
from pressreview.text import host_of

#: A feed whose newest entry is older than this many months is reported.
STALE_MONTHS = 6

#: Problems, from the most to the least urgent (the order of the report).
PROBLEMS = (
    "bot_shield", "moved", "not_found", "gone", "html_page", "not_a_feed", "unreachable",
    "server_error", "rate_limited", "empty_search", "empty", "stale", "moved_permanently",
)  # fmt: skip


@dataclass(frozen=True)
class Observation:
    """What one fetch of a source answered."""

    url: str
    fetched_at: datetime | None = None
    status: int | None = None
    content_type: str | None = None
    final_url: str | None = None
    error: str | None = None
    entries: int | None = None
    newest: datetime | None = None
    title: str = ""
    failures: int = 0
    disabled: bool = False
    #: The stored address differs from feeds.yaml after a permanent redirect.
    moved_to: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    """One source's state in words staff can act on."""

    name: str
    url: str
    #: ``ok``, ``not_collected``, ``disabled_in_config`` or one of ``PROBLEMS``.
    problem: str
    summary: str
    advice: str = ""
    failures: int = 0
    fetched_at: datetime | None = None
    status: int | None = None
    entries: int | None = None
    newest: datetime | None = None
    title: str = ""

    @property
    def needs_action(self) -> bool:
        return self.problem in PROBLEMS

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "url": self.url, "problem": self.problem,
            "needs_action": self.needs_action, "summary": self.summary, "advice": self.advice,
            "failures": self.failures, "status": self.status, "entries": self.entries,
            "title": self.title,
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "newest": self.newest.isoformat() if self.newest else None,
        }  # fmt: skip


def google_query(url: str) -> str | None:
    """The search of a Google Actualités feed address (``q=``), else None."""
    parts = urlsplit(url)
    if host_of(url) != "news.google.com" or not parts.path.startswith("/rss/search"):
        return None
    values = parse_qs(parts.query).get("q")
    return values[0] if values else ""


def _months(newest: datetime, now: datetime) -> int:
    return max((now - newest).days // 30, 0)


def diagnose(
    feed: Feed,
    seen: Observation | None,
    *,
    now: datetime | None = None,
    stale_months: int = STALE_MONTHS,
) -> Diagnosis:
    """What is wrong with a source and what to try, from its last observation."""
    now = now or datetime.now(UTC)
    url = feed.url
    home = site_root(url)

    def result(problem: str, summary: str, advice: str = "") -> Diagnosis:
        if seen is None:
            return Diagnosis(feed.name, url, problem, summary, advice)
        return Diagnosis(
            feed.name, url, problem, summary, advice, failures=seen.failures,
            fetched_at=seen.fetched_at, status=seen.status, entries=seen.entries,
            newest=seen.newest, title=seen.title,
        )  # fmt: skip

    if not feed.enabled:
        return result("disabled_in_config", "paused in feeds.yaml (enabled: false)")
    if seen is None or seen.fetched_at is None:
        return result(
            "not_collected",
            "not fetched yet",
            "run `pressreview collect`, or `pressreview feeds check --probe` to fetch it now",
        )
    discover = f"`pressreview feeds discover {home}`"
    if seen.error:
        status = seen.status
        error = seen.error
        redirected = seen.final_url and seen.final_url.rstrip("/") != seen.url.rstrip("/")
        if status in (401, 403):
            return result(
                "bot_shield",
                f"the site refuses automated clients (HTTP {status})",
                f"try its section feeds with {discover}; if every one is refused, ask the "
                "site to let pressreview in (the User-Agent gives our contact address)",
            )
        if status in (404, 410) and redirected:
            target = site_root(seen.final_url or url)
            return result(
                "moved",
                f"the site moved: the address now leads to {seen.final_url}, which answers "
                f"HTTP {status}",
                f"the site moved; run `pressreview feeds discover {target}` on its home page "
                "and put the feed it lists in feeds.yaml",
            )
        if status == 404:
            return result(
                "not_found",
                "the address does not exist (HTTP 404)",
                f"the site may have moved its feed; run {discover} on its home page",
            )
        if status == 410 or seen.disabled:
            return result(
                "gone",
                "the site removed this feed (410 Gone); collect no longer fetches it",
                f"look for its new feed with {discover}, or remove the source from feeds.yaml",
            )
        if status in (429, 503) or "429" in error:
            return result(
                "rate_limited",
                f"the site asks to come back later (HTTP {status})",
                "nothing to do now: collect waits as long as the site asks; if it lasts, "
                "collect less often (schedule.collect_every_hours)",
            )
        if status is not None and status >= 500:
            return result(
                "server_error",
                f"the site's server fails (HTTP {status})",
                "usually temporary; if it lasts for days, tell the site",
            )
        if status is not None and status >= 400:
            return result(
                "unreachable",
                f"the site answers {error}",
                f"open the address in a browser; if the feed is gone, run {discover}",
            )
        if feed.kind == "ical" and (
            error.startswith(("not an iCalendar", "unreadable iCalendar", "cannot expand"))
            or "html" in (seen.content_type or "").lower()
        ):
            return result(
                "not_a_feed",
                f"the address does not answer a readable calendar ({error})",
                "open the site's agenda page in a browser and copy the address of its "
                "iCalendar (.ics) export",
            )
        if error.startswith("an HTML page") or "html" in (seen.content_type or "").lower():
            return result(
                "html_page",
                "this is a web page, not a feed",
                f"`pressreview feeds discover {url}` lists the feeds it announces",
            )
        if error.startswith(("not a feed", "malformed", "empty body", "cannot parse")):
            return result(
                "not_a_feed",
                f"the address does not answer a readable feed ({error})",
                f"open it in a browser; {discover} lists the site's feeds",
            )
        if error.startswith(("redirect loop", "more than")):
            return result(
                "moved",
                f"the site's redirects never end ({error})",
                f"the site moved or changed its addresses; run {discover} on its home page",
            )
        if error.startswith("body larger"):
            return result(
                "not_a_feed",
                f"the answer is too large ({error})",
                "use one of the site's section feeds (`pressreview feeds discover`), or raise "
                "collect.max_bytes",
            )
        return result(
            "unreachable",
            f"the site could not be reached ({error})",
            "check the address in a browser (a misspelt host name or a site that is down); "
            "collect tries again later by itself",
        )
    query = google_query(url)
    if query is not None and not seen.entries:
        return result(
            "empty_search",
            f"the Google Actualités search returns nothing: {query}",
            "loosen the query (fewer quoted phrases, fewer terms joined by AND) and try it "
            "on news.google.com before changing feeds.yaml",
        )
    if feed.kind == "ical":
        events = seen.entries if seen.entries is not None else "?"
        return result("ok", f"calendar: {events} event(s) in the agenda's window")
    if seen.entries == 0:
        return result(
            "empty",
            "the feed holds no entry",
            f"it may have been replaced; run {discover} on the site's home page",
        )
    if seen.newest is not None and _months(seen.newest, now) >= stale_months:
        months = _months(seen.newest, now)
        return result(
            "stale",
            f"no new entry for {months} months (newest {seen.newest:%Y-%m-%d})",
            f"the feed may be abandoned; look for a current one with {discover}, or set "
            "`enabled: false`",
        )
    if seen.moved_to:
        return result(
            "moved_permanently",
            f"moved permanently to {seen.moved_to} (collect follows it)",
            "replace the url in feeds.yaml by the new address",
        )
    newest = f", newest {seen.newest:%Y-%m-%d}" if seen.newest else ""
    title = f"{seen.title}: " if seen.title else ""
    entries = seen.entries if seen.entries is not None else "?"
    return result("ok", f"{title}{entries} entries{newest}")


def observation_from_row(
    row: Mapping[Any, Any], newest_item: datetime | None = None
) -> Observation:
    """What collect recorded of a source (a ``sources`` row)."""
    ok = row["status"] == "ok"
    moved = row["url"] if row["url"] != row["config_url"] else None
    return Observation(
        url=row["url"],
        # A source whose address changed in feeds.yaml starts again as "new".
        fetched_at=row["last_fetched_at"] if row["status"] != "new" else None,
        status=row.get("last_status"),
        content_type=row.get("last_content_type"),
        final_url=row.get("last_url"),
        error=None if ok else row["last_error"],
        entries=row["entries_seen"] if ok else None,
        newest=row.get("newest_entry_at") or newest_item,
        failures=row["failures"],
        disabled=row["status"] == "disabled",
        moved_to=moved,
    )


def probe(
    config: Config,
    feeds: Sequence[Feed],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Observation]:
    """Fetch each feed once, now, and say what it answered; nothing is stored."""

    async def run() -> dict[str, Observation]:
        async with Fetcher(config.collect, transport=transport) as fetcher:

            async def one(feed: Feed) -> tuple[str, Observation]:
                result = await fetcher.fetch(feed.url)
                stamp = datetime.now(UTC)
                base = Observation(
                    url=feed.url, fetched_at=stamp, status=result.status,
                    content_type=result.headers.get("content-type"),
                    final_url=result.final_url, error=result.error, moved_to=result.moved_to,
                    disabled=result.gone,
                )  # fmt: skip
                if not result.ok or result.body is None:
                    return feed.name, base
                if feed.kind == "ical":
                    return feed.name, await _probe_calendar(config, result.body, base)
                try:
                    parsed = await asyncio.to_thread(
                        parse_body, result.body, result.headers,
                        base_url=result.final_url or feed.url,
                        excerpt_chars=config.collect.excerpt_chars,
                    )  # fmt: skip
                except NotAFeed as exc:
                    return feed.name, _replace(base, error=str(exc))
                except Exception as exc:  # a parser bug must not end the check
                    return feed.name, _replace(base, error=f"cannot parse: {type(exc).__name__}")
                dates = [e.published_at for e in parsed.entries if e.published_at]
                return feed.name, _replace(
                    base, entries=len(parsed.entries), newest=max(dates) if dates else None,
                    title=parsed.title,
                )  # fmt: skip

            return dict(await asyncio.gather(*(one(f) for f in feeds)))

    return asyncio.run(run()) if feeds else {}


async def _probe_calendar(config: Config, body: bytes, seen: Observation) -> Observation:
    """How many events of an iCalendar source fall in the agenda's window."""
    start, end = window(datetime.now(UTC), config.agenda.calendar_months)
    try:
        calendar = await asyncio.to_thread(
            parse_calendar, body, tz=config.tz, start=start, end=end,
            max_events=config.agenda.max_events_per_calendar,
        )  # fmt: skip
    except NotACalendar as exc:
        return _replace(seen, error=str(exc))
    except Exception as exc:  # a parser bug must not end the check
        return _replace(seen, error=f"cannot parse: {type(exc).__name__}")
    return _replace(seen, entries=len(calendar.events))


def _replace(seen: Observation, **changes: Any) -> Observation:
    return dataclasses.replace(seen, **changes)


def order(diagnoses: Sequence[Diagnosis]) -> list[Diagnosis]:
    """Sources needing action first (most urgent problem first), then the others."""
    rank = {p: i for i, p in enumerate(PROBLEMS)}
    return sorted(diagnoses, key=lambda d: rank.get(d.problem, len(PROBLEMS)))


def no_feed_found(found: Discovery) -> str:
    """One line for a discovery that found no feed: why, and what to try."""
    tried = len(found.rejected)
    if found.page_error:
        seen = Observation(
            url=found.url, fetched_at=datetime.now(UTC), status=found.page_status,
            content_type=found.page_content_type, final_url=found.final_url,
            error=found.page_error,
        )  # fmt: skip
        problem = diagnose(Feed(name=found.url, url=found.url), seen)
        if problem.problem == "bot_shield":
            return (
                f"{found.url}: {problem.summary}, and none of the {tried} usual feed addresses "
                "answered a feed; open the site in a browser, copy the address of its RSS "
                "link and give it to `pressreview feeds add`"
            )
        return (
            f"{found.url}: {problem.summary}; no feed found at the {tried} usual addresses "
            f"either. {problem.advice[:1].upper()}{problem.advice[1:]}"
        )
    robots = (
        f" ({len(found.disallowed)} not tried: robots.txt disallows them)"
        if found.disallowed
        else ""
    )
    return (
        f"{found.url}: no feed found: the page announces none, and none of the {tried} "
        f"addresses tried is a feed{robots}; look for an RSS link on the site (or ask it) "
        "and give it to `pressreview feeds add`"
    )
