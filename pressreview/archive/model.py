"""From published snapshots to the pages of the site (pure data, no I/O).

Every page is described by its output path, the template that renders it, a
*key* (a short text naming everything the page depends on besides the theme
and the site-wide settings) and a function that builds its context. Keys are
cheap: they are made of the hashes of the snapshots a page shows, so an
incremental build finds the pages to render without building the others'
contexts. An issue page depends only on its own frozen snapshot and on the
number and title of the issue before it, never on later issues.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from pressreview import urls
from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.text import clean_text, excerpt, fold, sanitize_html, sort_key
from pressreview.typography import typeset, typeset_html

#: Items shown on the main page of a section or territory (older ones: year pages).
LATEST_ITEMS = 50
#: Issues in the Atom feed.
FEED_ENTRIES = 20
#: Key of the section that holds items without one (set by the issue snapshot).
OTHER_SECTION = "autres"


@dataclass
class PageSpec:
    """One output file: where it goes, what it depends on, how to make its context."""

    path: str
    kind: str  # "html" (a template) or "atom"
    template: str | None
    key: str
    make_context: Callable[[], dict[str, Any]]
    #: Canonical address relative to the site root ("numeros/12/"); None: not a page.
    url_path: str | None = None
    #: Listed in sitemap.xml.
    in_sitemap: bool = True
    lastmod: date | None = None


class Entry(NamedTuple):
    """Where one item of one issue goes, known without processing the issue."""

    sort_key: tuple[str, int, int]  # newest first: (date, issue number, -order in issue)
    year: int
    number: int
    section: int  # index of the section in the snapshot
    position: int  # index of the item in its section


class IssueInfo:
    """What every build knows of an issue; its snapshot is parsed only when a page needs it."""

    def __init__(
        self,
        number: int,
        text: str,
        digest: str,
        record: list[Any],
        snapshot: dict[str, Any] | None = None,
    ):
        self.number = number
        self.text = text
        self.digest = digest
        self.record = record
        self.title: str = typeset(record[1])
        self.date = date.fromisoformat(record[2])
        self.section_counts: list[tuple[str, int]] = [(typeset(t), n) for _k, t, n in record[3]]
        self.item_count = sum(n for _t, n in self.section_counts)
        self._snapshot = snapshot

    @property
    def snapshot(self) -> dict[str, Any]:
        if self._snapshot is None:
            self._snapshot = _parse(self.number, self.text)
        return self._snapshot


def _parse(number: int, text: str) -> dict[str, Any]:
    try:
        snapshot = json.loads(text)
    except ValueError:
        raise RenderError(f"issue {number}: the stored snapshot is not JSON") from None
    if not isinstance(snapshot, dict):
        raise RenderError(f"issue {number}: the stored snapshot is not a JSON object")
    return snapshot


def index_record(number: int, snapshot: dict[str, Any]) -> list[Any]:
    """The little of a snapshot that places its items on every page (cached between builds).

    ``[number, title, date, [[section key, title, count], ...],
    [[date, section index, item index, [territory, ...]], ...]]``
    """
    where = f"issue {number}"
    published_at = _required(snapshot, "published_at", where)
    issue_date = _date(snapshot.get("date"), where) or _datetime(published_at, where).date()
    issue_iso = issue_date.isoformat()
    raw_sections = _required(snapshot, "sections", where)
    if not isinstance(raw_sections, list):
        raise RenderError(f"{where}: the snapshot's sections are not a list")
    sections: list[list[Any]] = []
    entries: list[list[Any]] = []
    for s_index, raw_section in enumerate(raw_sections):
        key = str(raw_section.get("key") or OTHER_SECTION)
        raw_items = raw_section.get("items") or []
        sections.append([key, str(raw_section.get("title") or key), len(raw_items)])
        for i_index, raw in enumerate(raw_items):
            day = str(raw.get("date") or issue_iso)[:10]
            _date(day, f"{where}: sections[{s_index}].items[{i_index}]")
            names = [str(n) for n in raw.get("territories") or () if str(n).strip()]
            entries.append([day, s_index, i_index, names])
    return [number, str(_required(snapshot, "title", where)), issue_iso, sections, entries]


@dataclass
class Group:
    """A section or a territory: its items across issues, newest first."""

    kind: str  # "rubriques" or "territoires"
    key: str
    title: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def path(self) -> str:
        return urls.group_path(self.kind, self.key)

    def summary(self) -> dict[str, Any]:
        latest = self.entries[0].sort_key[0] if self.entries else None
        return {
            "kind": self.kind,
            "key": self.key,
            "title": self.title,
            "path": self.path,
            "count": len(self.entries),
            "latest_date": date.fromisoformat(latest) if latest else None,
        }

    def years(self) -> dict[int, list[Entry]]:
        by_year: dict[int, list[Entry]] = defaultdict(list)
        for entry in self.entries:
            by_year[entry.year].append(entry)
        return dict(sorted(by_year.items(), reverse=True))


def slugify(text: str) -> str:
    """A URL segment from a name: ``"Métropole de Lille"`` → ``metropole-de-lille``."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return slug or "sans-nom"


def issue_page(number: int) -> str:
    """The file of an issue's page in the site's folder."""
    return urls.issue_path(number) + "index.html"


def _date(value: Any, where: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise RenderError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _datetime(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise RenderError(f"{where}: {value!r} is not an ISO date and time") from None
    if parsed.tzinfo is None:
        raise RenderError(f"{where}: {value!r} has no time zone")
    return parsed


def _required(snapshot: dict[str, Any], key: str, where: str) -> Any:
    if snapshot.get(key) is None:
        raise RenderError(f"{where}: the published snapshot has no {key!r}; republish the issue")
    return snapshot[key]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _process_issue(info: IssueInfo, excerpt_chars: int = 300) -> dict[str, Any]:
    """An issue ready for the templates: checked, dates parsed, HTML sanitized again,
    French typography applied, extracts of articles capped (see :func:`_item`)."""
    snapshot = info.snapshot
    where = f"issue {info.number}"
    published_at = _datetime(_required(snapshot, "published_at", where), where)
    sections = []
    for s_index, raw_section in enumerate(snapshot["sections"]):
        key = str(raw_section.get("key") or OTHER_SECTION)
        slug = slugify(key)
        sections.append(
            {
                "key": key,
                "title": typeset(str(raw_section.get("title") or key)),
                "anchor": f"rubrique-{slug}",
                "path": urls.group_path(urls.SECTIONS_DIR, slug),
                "items": [
                    _item(raw, f"{where}: sections[{s_index}].items[{i_index}]", excerpt_chars)
                    for i_index, raw in enumerate(raw_section.get("items") or ())
                ],
            }
        )
    return {
        "number": info.number,
        "digest": info.digest,
        "title": info.title,
        "path": urls.issue_path(info.number),
        "date": info.date,
        "published_at": published_at,
        "intro_html": typeset_html(sanitize_html(snapshot.get("intro_html") or "")),
        "item_count": info.item_count,
        "sections": sections,
    }


def _item(raw: dict[str, Any], where: str, excerpt_chars: int = 300) -> dict[str, Any]:
    """One item for the public archive.

    Press rights: the archive shows the title (linking to the source), the
    outlet, the author when known, the date and at most a short extract of the
    article, cut at a word (``archive.excerpt_chars``), or the staff's own
    summary; never the feed's full text (its HTML summary only feeds that extract).
    """
    item_id = raw.get("id")
    if item_id is None or not raw.get("title") or not raw.get("url"):
        raise RenderError(f"{where}: an item needs an id, a title and a url; republish the issue")
    territories = [
        {
            "name": typeset(str(name)),
            "path": urls.group_path(urls.TERRITORIES_DIR, slugify(str(name))),
        }
        for name in raw.get("territories") or ()
        if str(name).strip()
    ]
    also = [
        {
            "outlet": typeset(str(a.get("outlet") or a.get("url") or "")),
            "url": str(a["url"]),
            "title": typeset(str(a.get("title") or "")),
        }
        for a in raw.get("also") or ()
        if a.get("url")
    ]
    text = str(raw.get("excerpt") or "") or clean_text(raw.get("summary_html") or "")
    if not raw.get("summary_by_staff"):
        text = excerpt(text, excerpt_chars)
    return {
        "id": item_id,
        "anchor": f"article-{item_id}",
        "title": typeset(str(raw["title"])),
        "url": str(raw["url"]),
        "outlet": typeset(str(raw.get("outlet") or "")),
        "author": typeset(str(raw.get("author") or "")),
        "date": _date(raw.get("date"), where),
        "territories": territories,
        "excerpt": typeset(text),
        "summary_html": "",
        "tags": [str(t) for t in raw.get("tags") or ()],
        "also": also,
    }


class SiteModel:
    """The site's data and pages, from the stored texts of the published snapshots."""

    def __init__(
        self,
        config: Config,
        stored: Iterable[tuple[int, str]],
        cache: dict[str, list[Any]] | None = None,
    ):
        self.config = config
        self.issues: list[IssueInfo] = []
        self.section_titles: dict[str, str] = {}
        #: Index records by snapshot hash, for the next build.
        self.index: dict[str, list[Any]] = {}
        cache = cache or {}
        sections: dict[str, Group] = {}
        territories: dict[str, Group] = {}
        slugs: dict[str, str] = {}

        def slug_of(name: str) -> str:
            if name not in slugs:
                slugs[name] = slugify(name)
            return slugs[name]

        for number, text in sorted(stored, key=lambda row: row[0]):
            digest = _sha(text)
            record = cache.get(digest)
            snapshot = None
            if not (isinstance(record, list) and len(record) == 5 and record[0] == number):
                snapshot = _parse(number, text)
                record = index_record(number, snapshot)
            self.index[digest] = record
            info = IssueInfo(number, text, digest, record, snapshot)
            self.issues.append(info)
            for key, title, _count in record[3]:
                self.section_titles[slug_of(key)] = title  # the latest title wins
            section_keys = [slug_of(key) for key, _title, _count in record[3]]
            for order, (day, s_index, i_index, names) in enumerate(record[4], start=1):
                entry = Entry((day, number, -order), int(day[:4]), number, s_index, i_index)
                key = section_keys[s_index]
                group = sections.get(key)
                if group is None:
                    group = sections[key] = Group(
                        urls.SECTIONS_DIR, key, typeset(self.section_titles[key])
                    )
                group.entries.append(entry)
                for name in names:
                    t_slug = slug_of(name)
                    territory = territories.get(t_slug)
                    if territory is None:
                        territory = territories[t_slug] = Group(urls.TERRITORIES_DIR, t_slug, name)
                    territory.title = typeset(name)  # the latest spelling wins
                    territory.entries.append(entry)
        for configured in config.sections:
            self.section_titles[slugify(configured.key)] = configured.title
        for key, group in sections.items():
            group.title = typeset(self.section_titles[key])
        configured_order = [slugify(s.key) for s in config.ordered_sections()]

        def section_rank(key: str) -> tuple[int, int, str]:
            if key in configured_order:
                return (0, configured_order.index(key), "")
            return (2 if key == OTHER_SECTION else 1, 0, sort_key(self.section_titles[key]))

        self.sections = [sections[k] for k in sorted(sections, key=section_rank)]
        self.territories = sorted(territories.values(), key=lambda g: sort_key(g.title))
        for group in (*self.sections, *self.territories):
            group.entries.sort(reverse=True)
        self.by_number = {issue.number: issue for issue in self.issues}
        self._processed: dict[int, dict[str, Any]] = {}
        self.pages = self._pages()

    # -- data for the templates ------------------------------------------------

    def processed(self, number: int) -> dict[str, Any]:
        """The issue ready for the templates (made once per build, when a page needs it)."""
        if number not in self._processed:
            self._processed[number] = _process_issue(
                self.by_number[number], self.config.archive.excerpt_chars
            )
        return self._processed[number]

    def volumes(self) -> dict[str, list[str]]:
        """Search volumes: issue page paths grouped by the year of the issue."""
        groups: dict[str, list[str]] = defaultdict(list)
        for issue in self.issues:
            groups[str(issue.date.year)].append(issue_page(issue.number))
        return dict(groups)

    def _brief(self, info: IssueInfo) -> dict[str, Any]:
        return {
            "number": info.number,
            "title": info.title,
            "path": urls.issue_path(info.number),
            "date": info.date,
            "item_count": info.item_count,
            "sections": [{"title": t, "count": n} for t, n in info.section_counts if n],
        }

    def _outline(self, info: IssueInfo) -> dict[str, Any]:
        issue = self.processed(info.number)
        return {
            **self._brief(info),
            "intro_html": issue["intro_html"],
            "sections": [
                {
                    "key": s["key"],
                    "title": s["title"],
                    "anchor": s["anchor"],
                    "items": [
                        {"title": i["title"], "anchor": i["anchor"], "outlet": i["outlet"]}
                        for i in s["items"]
                    ],
                }
                for s in issue["sections"]
                if s["items"]
            ],
        }

    def _entry(self, entry: Entry) -> dict[str, Any]:
        """One item on a listing page, with where it appeared."""
        issue = self.processed(entry.number)
        section = issue["sections"][entry.section]
        item = section["items"][entry.position]
        slug = slugify(section["key"])
        return {
            **item,
            "date": item["date"] or issue["date"],
            "issue": {
                "number": issue["number"],
                "title": issue["title"],
                "path": issue["path"],
                "date": issue["date"],
            },
            "section": {
                "key": slug,
                "title": typeset(self.section_titles.get(slug, section["title"])),
                "path": urls.group_path(urls.SECTIONS_DIR, slug),
            },
        }

    def _digests(self, entries: Iterable[Entry]) -> str:
        numbers = sorted({e.number for e in entries})
        return ",".join(f"{n}:{self.by_number[n].digest[:16]}" for n in numbers)

    # -- the pages ---------------------------------------------------------------

    def _pages(self) -> list[PageSpec]:
        pages: list[PageSpec] = []
        newest_first = list(reversed(self.issues))
        per_page = max(1, self.config.archive.per_page)
        # The list of issues is cut into stable pages counted from the first issue:
        # page/1/ holds issues 1 to per_page and never changes once full, so a new
        # issue changes only the last page (and the home page).
        chunks = [self.issues[i : i + per_page] for i in range(0, len(self.issues), per_page)]
        ranges = [
            {
                "page": n,
                "path": urls.list_page_path(n),
                "first": chunk[0].number,
                "last": chunk[-1].number,
                "count": len(chunk),
            }
            for n, chunk in enumerate(chunks, start=1)
        ]
        latest = newest_first[0] if newest_first else None
        recent = newest_first[:per_page]
        home_key = json.dumps(
            [[(i.number, i.digest) for i in recent], ranges, latest.digest if latest else None]
        )
        pages.append(
            PageSpec(
                "index.html",
                "html",
                "home.html.j2",
                home_key,
                functools.partial(self._home_context, recent, ranges, latest),
                "",
            )
        )
        for n, chunk in enumerate(chunks, start=1):
            # Only what does not change as the last page fills up.
            neighbours = {
                "newer": {k: ranges[n][k] for k in ("path", "first")} if n < len(ranges) else None,
                "older": {k: ranges[n - 2][k] for k in ("path", "first", "last")}
                if n > 1
                else None,
            }
            key = json.dumps([ranges[n - 1], neighbours, [(i.number, i.digest) for i in chunk]])
            pages.append(
                PageSpec(
                    urls.list_page_path(n) + "index.html",
                    "html",
                    "issues.html.j2",
                    key,
                    functools.partial(self._list_context, chunk, ranges[n - 1], neighbours),
                    urls.list_page_path(n),
                )
            )

        previous: IssueInfo | None = None
        for info in self.issues:
            prev = (
                {
                    "number": previous.number,
                    "title": previous.title,
                    "path": urls.issue_path(previous.number),
                }
                if previous
                else None
            )
            key = json.dumps([info.digest, prev], sort_keys=True)

            def issue_context(
                number: int = info.number, prev: dict[str, Any] | None = prev
            ) -> dict[str, Any]:
                return {"issue": self.processed(number), "previous": prev}

            pages.append(
                PageSpec(
                    issue_page(info.number),
                    "html",
                    "issue.html.j2",
                    key,
                    issue_context,
                    urls.issue_path(info.number),
                    lastmod=info.date,
                )
            )
            previous = info

        for kind, groups in (
            (urls.SECTIONS_DIR, self.sections),
            (urls.TERRITORIES_DIR, self.territories),
        ):
            summaries = [g.summary() for g in groups]
            pages.append(
                PageSpec(
                    f"{kind}/index.html",
                    "html",
                    "groups.html.j2",
                    json.dumps(summaries, sort_keys=True, default=str),
                    functools.partial(dict, kind=kind, groups=summaries),
                    f"{kind}/",
                )
            )
            for group in groups:
                pages.extend(self._group_pages(group))

        subscribe = {"subscribe_url": urls.archive_subscribe_url(self.config)}
        pages.append(
            PageSpec(
                urls.ABOUT_PATH + "index.html",
                "html",
                "about.html.j2",
                json.dumps(subscribe),
                functools.partial(dict, subscribe),
                urls.ABOUT_PATH,
            )
        )
        for path, template in (
            (urls.LEGAL_PATH, "legal.html.j2"),
            (urls.PRIVACY_PATH, "privacy.html.j2"),
        ):
            # Made of the configuration only (in every page's site context).
            pages.append(
                PageSpec(
                    f"{path}index.html",
                    "html",
                    template,
                    "",
                    dict,
                    path,
                )
            )
        volumes = sorted(self.volumes(), reverse=True)
        pages.append(
            PageSpec(
                urls.SEARCH_PATH + "index.html",
                "html",
                "search.html.j2",
                ",".join(volumes),
                lambda: {"volumes": volumes},
                urls.SEARCH_PATH,
                in_sitemap=False,
            )
        )
        pages.append(PageSpec("404.html", "html", "404.html.j2", "", dict, None, in_sitemap=False))
        feed = newest_first[:FEED_ENTRIES]
        pages.append(
            PageSpec(
                urls.FEED_PATH,
                "atom",
                "feed_entry.html.j2",
                ",".join(f"{i.number}:{i.digest}" for i in feed),
                functools.partial(self._feed_context, feed),
            )
        )
        return pages

    def _home_context(
        self, recent: list[IssueInfo], ranges: list[dict[str, Any]], latest: IssueInfo | None
    ) -> dict[str, Any]:
        return {
            "issues": [self._brief(i) for i in recent],
            "ranges": list(reversed(ranges)),
            "latest": self._outline(latest) if latest else None,
        }

    def _list_context(
        self, chunk: list[IssueInfo], current: dict[str, Any], neighbours: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "issues": [self._brief(i) for i in reversed(chunk)],
            "range": current,
            **neighbours,
        }

    def _feed_context(self, feed: list[IssueInfo]) -> dict[str, Any]:
        """The feed's issues (what the entries' headers need) and a way to get them whole."""
        issues = []
        for info in feed:
            where = f"issue {info.number}"
            snapshot = info.snapshot
            issues.append(
                {
                    "number": info.number,
                    "digest": info.digest,
                    "title": info.title,
                    "date": info.date,
                    "path": urls.issue_path(info.number),
                    "published_at": _datetime(_required(snapshot, "published_at", where), where),
                    "intro_html": typeset_html(sanitize_html(snapshot.get("intro_html") or "")),
                }
            )
        return {"issues": issues, "processed": self.processed}

    def _year_context(
        self, title: dict[str, Any], years: list[dict[str, Any]], year: int, entries: list[Entry]
    ) -> dict[str, Any]:
        items = [self._entry(e) for e in entries]
        return {"group": title, "years": years, "year": year, "year_counts": None, "items": items}

    def _group_pages(self, group: Group) -> list[PageSpec]:
        head = group.summary()
        by_year = group.years()
        # Year pages list the years without counts: adding an issue then changes only
        # the page of its year (and the group's main page).
        years = [{"year": y, "path": urls.year_path(group.path, y)} for y in by_year]
        counts = {str(y): len(entries) for y, entries in by_year.items()}
        latest = group.entries[:LATEST_ITEMS]
        pages = [
            PageSpec(
                group.path + "index.html",
                "html",
                "listing.html.j2",
                json.dumps([head, counts, self._digests(latest)], sort_keys=True, default=str),
                lambda: {
                    "group": head,
                    "years": years,
                    "year": None,
                    "year_counts": counts,
                    "items": [self._entry(e) for e in latest],
                },
                group.path,
            )
        ]
        title = {k: head[k] for k in ("kind", "key", "title", "path")}
        for year, entries in by_year.items():
            pages.append(
                PageSpec(
                    urls.year_path(group.path, year) + "index.html",
                    "html",
                    "listing.html.j2",
                    json.dumps(
                        [title, years, self._digests(entries), len(entries)], sort_keys=True
                    ),
                    functools.partial(self._year_context, title, years, year, entries),
                    urls.year_path(group.path, year),
                )
            )
        return pages


def build_model(
    config: Config, stored: Iterable[tuple[int, str]], cache: dict[str, list[Any]] | None = None
) -> SiteModel:
    """The site's data and pages from (number, stored snapshot text) pairs.

    ``cache``: the index records of a previous build (``SiteModel.index``), so
    that unchanged snapshots are not parsed again.
    """
    return SiteModel(config, stored, cache)
