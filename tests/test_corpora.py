"""Robustness over other projects' feed corpora, read in place (never copied).

Every file of feedparser's test suite (wellformed, illformed, encoding,
entities) and every real-world feed of fastfeedparser's integration tests
goes through ``collect`` over HTTP, a few hundred sources per run. For each:
no crash, no hang; the stored items match feedparser's entries one for one
(see ``reference``); every stored string is valid text and the stored HTML is
sanitized. A second check holds the fast parser to feedparser's output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
from conftest import CORPORA
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from pressreview.collect import collect
from pressreview.collect.parse import Entry, NotAFeed, parse_body
from pressreview.store import Store
from pressreview.store.schema import items, sources
from pressreview.text import (
    canonical_url,
    clean_text,
    host_of,
    safe_url,
    sanitize_html,
    split_publisher,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORPORA.is_dir(), reason=f"feed corpora not found at {CORPORA}"),
]

FEEDPARSER_DIRS = ("wellformed", "illformed", "encoding", "entities")
BATCH = 300

# Files where the stored items knowingly differ from feedparser's entries.
REFERENCE_EXCEPTIONS = {
    # feedparser 6.0.14 fails these files' own Expect line; the fast parser reads them right.
    "feedparser/tests/wellformed/atom/entry_link_rel_enclosure_no_href.xml":
        "feedparser takes an enclosure's text for the link (its own Expect says alternate)",
    "feedparser/tests/wellformed/atom10/entry_link_rel_enclosure_no_href.xml":
        "feedparser takes an enclosure's text for the link (its own Expect says alternate)",
    "feedparser/tests/wellformed/node_precedence/atom10_id.xml":
        "feedparser links the second entry to a nested <image><id> (its own Expect fails); "
        "the two entries then differ by link and are stored as two items",
}  # fmt: skip

# Files where the fast parser's entries knowingly differ from feedparser's.
FAST_EXCEPTIONS = {
    **REFERENCE_EXCEPTIONS,
    "feedparser/tests/wellformed/namespace/rss2.0NSwithModulesNoDefNSLocalNameClash.xml":
        "fastfeedparser reads an extension element named <description> as the summary",
    "feedparser/tests/wellformed/namespace/rss2.0noNSwithModulesLocalNameClash.xml":
        "fastfeedparser reads an extension element named <description> as the summary",
    "feedparser/tests/wellformed/namespace/atomthreadingwithentry.xml":
        "the entry's <author><name>John</name> is lost by feedparser (an unknown element "
        "inside <author>), read by fastfeedparser",
    "feedparser/tests/wellformed/atom10/entry_link_rel_self.xml":
        "fastfeedparser leaves a rel=\"self\" link out of an entry's links but gives it as the "
        "link, so this entry (nothing but that link) is kept by the fast path and dropped by "
        "feedparser, which has no article link for it",
}  # fmt: skip

HEADER_RE = re.compile(rb"^Header:\s*([\w-]+):\s*(.*?)\s*$", re.M)
SKIP_UNLESS_RE = re.compile(rb"SkipUnless:\s*(.*?)\s*$", re.M)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
EVENT_ATTR_RE = re.compile(r"<[^>]*\son\w+\s*=", re.I)


@dataclass
class Case:
    path: Path
    name: str  # relative to CORPORA
    body: bytes
    headers: dict[str, str]
    #: canonical URL -> acceptable titles ("" when any title will do)
    expected: dict[str, set[str]] = field(default_factory=dict)
    comparable: bool = True


def corpus_files() -> list[Path]:
    files: list[Path] = []
    for folder in FEEDPARSER_DIRS:
        files += sorted((CORPORA / "feedparser" / "tests" / folder).rglob("*.xml"))
    files += sorted((CORPORA / "realworld-feeds").glob("*.xml"))
    return files


def response_headers(path: Path, body: bytes) -> dict[str, str]:
    """The ``Header:`` lines of files under an http path (name starts with http)."""
    if not any(part.startswith("http") for part in path.parts[-2:]):
        return {}
    return {
        k.decode("ascii").lower(): v.decode("latin-1") for k, v in HEADER_RE.findall(body[:4096])
    }


def runnable(body: bytes) -> bool:
    """False when the file's SkipUnless condition fails here (e.g. chardet absent)."""
    match = SKIP_UNLESS_RE.search(body[:4096])
    if not match:
        return True
    try:
        eval(match.group(1).decode(), {"feedparser": feedparser})
    except Exception:
        return False
    return True


def entry_link(entry: Any) -> str:
    """The article's link: an ``alternate`` one, never a licence, enclosure or
    other rel (feedparser itself takes an enclosure for the link of the first
    entry of ``atom/entry_link_no_href_link_priority.xml``, which expects the
    alternate one)."""
    links = [c for c in entry.get("links") or [] if c.get("href")]
    articles = [str(c["href"]).strip() for c in links if c.get("rel", "alternate") == "alternate"]
    others = {str(c["href"]).strip() for c in links} - set(articles)
    link = (entry.get("link") or "").strip()
    if link in others:
        link = ""
    return link or (articles[0] if articles else "")


def web_link(link: str, base: str) -> str:
    """The link as an item's URL: made absolute against the feed's address, http(s) only."""
    relative = not link[:8].lower().startswith(("http://", "https://"))
    if link and base and relative and ":" not in link.split("/", 1)[0]:
        link = urljoin(base, link)
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return ""
    return link if parts.hostname and safe_url(link) else ""


def reference(body: bytes, headers: dict[str, str]) -> dict[str, set[str]]:
    """What must be stored, from feedparser's own reading of the body.

    Each entry with a link, id or title is an item, keyed by its canonical
    URL (the link if it is a web link, else an absolute-URL id; else
    ``urn:pressreview:<id>``); a fragment is kept where it tells entries of
    the feed apart. True duplicates are collapsed the way the store defines
    identity: entries with the same id are one item (the last one wins), then
    entries with the same canonical URL are one item. Titles are compared as
    clean text, with a trailing `` - Publisher`` split off where the entry
    names its source.
    """
    data = feedparser.parse(body, response_headers=headers)
    base = headers.get("content-location", "")
    rows: list[tuple[str, str, str, str]] = []  # (key, url, title, web link)
    for entry in data.entries:
        link = entry_link(entry)
        guid = str(entry.get("id") or entry.get("guid") or "").strip() or None
        if not link and guid and guid[:8].lower().startswith(("http://", "https://")):
            link = guid
        title = clean_text(entry.get("title") or "")
        web = web_link(link, base)
        source = entry.get("source") or {}
        if source.get("title") or host_of(web) == "news.google.com":
            title = split_publisher(title, clean_text(source.get("title") or "") or None)[0]
        if not web and not guid and not title:
            continue
        url = canonical_url(web) if web else f"urn:pressreview:{guid}" if guid else ""
        if not url:
            url = f"urn:pressreview:title:{title}"
        rows.append((f"g:{guid}" if guid and guid != link else "", url, title, web))
    fragments: dict[str, set[str]] = {}
    for _key, url, _title, web in rows:
        if web:
            fragments.setdefault(url, set()).add(web.partition("#")[2])
    by_key: dict[str, tuple[str, str]] = {}
    for key, url, title, web in rows:
        fragment = web.partition("#")[2]
        if web and fragment and len(fragments.get(url, ())) > 1:
            url = f"{url}#{fragment}"
        by_key[key or f"u:{url}"] = (url, title)
    expected: dict[str, set[str]] = {}
    for url, title in by_key.values():
        expected.setdefault(url, set()).add(title)
    return expected


def load_cases() -> list[Case]:
    cases = []
    for path in corpus_files():
        body = path.read_bytes()
        name = path.relative_to(CORPORA).as_posix()
        cases.append(
            Case(path, name, body, response_headers(path, body), comparable=runnable(body))
        )
    return cases


def batches(cases: list[Case]) -> list[list[Case]]:
    """Groups of cases without a canonical URL in common (URLs are one item store-wide)."""
    groups: list[tuple[list[Case], set[str]]] = []
    for case in cases:
        urls = set(case.expected)
        for group, seen in groups:
            if len(group) < BATCH and not urls & seen:
                group.append(case)
                seen |= urls
                break
        else:
            groups.append(([case], set(urls)))
    return [g for g, _ in groups]


def check_text(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, str):
        if CONTROL_RE.search(value):
            problems.append(f"{where}: invalid character in {value[:60]!r}")
    elif isinstance(value, list):
        for v in value:
            check_text(v, where, problems)


def test_corpora_through_collect(
    httpserver: HTTPServer, make_config: Callable[..., Any], tmp_path: Path,
    store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    cases = load_cases()
    assert len(cases) > 2000
    served: dict[str, Case] = {}

    def serve(request: Request) -> Response:
        case = served[request.path]
        response = Response(case.body, status=200)
        del response.headers["Content-Type"]  # only what the case itself says
        for key, value in case.headers.items():
            response.headers[key] = value
        return response

    httpserver.expect_request(re.compile(r"/c/.*")).respond_with_handler(serve)
    for i, case in enumerate(cases):
        path = f"/c/{i}/{case.path.name}"
        served[path] = case
        url = httpserver.url_for(path)
        case.headers_sent = {"content-location": url, **case.headers}  # type: ignore[attr-defined]
        case.url = url  # type: ignore[attr-defined]
        if case.comparable:
            case.expected = reference(case.body, case.headers_sent)  # type: ignore[attr-defined]

    problems: list[str] = []
    stored_total = 0
    for n, group in enumerate(batches(cases)):
        config = make_config(
            database_url=f"sqlite:///{tmp_path / f'corpus{n}.db'}",
            collect={"connect_timeout": 2, "read_timeout": 5, "total_timeout": 10, "per_host": 16},
            feeds=[{"name": f"case {i}", "url": c.url} for i, c in enumerate(group)],  # type: ignore[attr-defined]
        )
        store = store_for(config)
        report = collect(config, store)
        by_name = {s.name: s for s in report.sources}
        with store.connect() as conn:
            rows = conn.execute(
                select(items, sources.c.name.label("source_name")).join(
                    sources, sources.c.id == items.c.source_id
                )
            ).mappings().all()  # fmt: skip
        stored: dict[str, dict[str, Any]] = {}
        for row in rows:
            stored.setdefault(row["source_name"], {})[row["url"]] = row
            stored_total += 1
            for column in items.columns.keys():  # noqa: SIM118 - Column collection
                check_text(row[column], f"{row['source_name']}.{column}", problems)
            html = row["summary_html"]
            if sanitize_html(html) != html:
                problems.append(f"{row['source_name']}: summary not stable under sanitizing")
            if "<script" in html.lower() or EVENT_ATTR_RE.search(html) or "javascript:" in html:
                problems.append(f"{row['source_name']}: unsafe HTML kept: {html[:80]!r}")
        for i, case in enumerate(group):
            rep = by_name[f"case {i}"]
            if rep.error and "\n" in rep.error:
                problems.append(f"{case.name}: multi-line error {rep.error!r}")
            if rep.status not in ("ok", "failed"):
                problems.append(f"{case.name}: unexpected status {rep.status}")
            if not case.comparable or case.name in REFERENCE_EXCEPTIONS:
                continue
            got = stored.get(f"case {i}", {})
            if set(got) != set(case.expected):
                missing = sorted(set(case.expected) - set(got))[:3]
                extra = sorted(set(got) - set(case.expected))[:3]
                problems.append(
                    f"{case.name}: items differ from feedparser's entries "
                    f"(missing {missing}, extra {extra}, {rep.status}: {rep.error})"
                )
                continue
            for url, titles in case.expected.items():
                title = got[url]["title"]
                if "" not in titles and title not in titles:
                    problems.append(f"{case.name}: title {title!r}, feedparser has {titles}")
    expected_total = sum(len(c.expected) for c in cases)
    assert expected_total > 400 and stored_total >= expected_total
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"


ENTRY_FIELDS = [f.name for f in fields(Entry)]


def test_fast_parser_matches_feedparser() -> None:
    """Wherever the fast path answers, its entries equal feedparser's, field by field."""
    compared = 0
    problems = []
    for case in load_cases():
        base = "http://corpus.test/" + case.name
        try:
            fast = parse_body(case.body, case.headers, base_url=base)
        except NotAFeed:
            continue
        if fast.parser != "fast" or case.name in FAST_EXCEPTIONS:
            continue
        slow = parse_body(case.body, case.headers, base_url=base, fast=False)
        compared += 1
        if len(fast.entries) != len(slow.entries):
            problems.append(
                f"{case.name}: {len(fast.entries)} entries, feedparser {len(slow.entries)}"
            )
            continue
        for a, b in zip(fast.entries, slow.entries, strict=True):
            diff = [f for f in ENTRY_FIELDS if getattr(a, f) != getattr(b, f)]
            if diff:
                problems.append(
                    f"{case.name}: {diff[0]}: fast {getattr(a, diff[0])!r:.80} "
                    f"!= feedparser {getattr(b, diff[0])!r:.80}"
                )
                break
    assert compared > 50  # the fast path answers for the files with absolute links
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"
