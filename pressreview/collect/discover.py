"""Feed autodiscovery: from a site or page address, the feeds it offers.

Candidates come, in this order, from the page's ``<link rel="alternate">``
of feed types, from links in the page that look like feeds (``/feed/``,
``/rss/feed/...``, ``/rss2/<section>/cible_principale``, ``*.xml``...) and,
only when the page announces no feed, from the usual paths of common CMS
(WordPress ``/feed/``, Drupal ``/rss.xml``, eZ Publish ``/RSS``) tried at the
root of the site if its robots.txt allows them. A linked page that is not a
feed (an "RSS" page listing section feeds) is read for feed links too, one
level deep. Every candidate is fetched once, with the collect fetcher (same
timeouts, size cap, User-Agent and concurrency limits), and parsed with the
collect parser: each is shown with its title, entry count, newest date and a
few titles, so that staff pick the right section.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
import lxml.html
from lxml import etree

from pressreview.collect.fetch import Fetcher, FetchResult
from pressreview.collect.parse import NotAFeed, ParsedFeed, parse_body
from pressreview.config import CollectSettings
from pressreview.text import clean_text

#: ``type`` values of ``<link rel="alternate">`` that announce a feed.
FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml",
     "application/feed+json", "application/x-rss+xml", "application/x-atom+xml",
     "text/xml", "application/xml"}
)  # fmt: skip
#: Paths of common CMS, tried at the root of a site that announces no feed.
PROBE_PATHS = ("/feed/", "/rss.xml", "/RSS")
#: Candidates fetched for one discovery, at most.
MAX_CANDIDATES = 30
#: Of a page, only this much HTML is read for links.
PAGE_BYTES = 2_000_000
#: Titles shown per candidate.
SAMPLE = 3

_FEED_HREF_RE = re.compile(
    r"(?:^|/)(?:rss\d?|atom|feeds?|flux)(?:[/._-]|$)|\.(?:rss|atom|rdf|xml)$|/cible_principale$",
    re.I,
)
_HTML_RE = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])",
    re.I | re.S,
)


@dataclass
class Candidate:
    """One address that may be a feed, and what fetching it gave."""

    url: str
    #: How it was found: ``given`` (the address itself), ``announced``
    #: (``<link rel=alternate>``), ``linked`` (a link in the page), ``probed`` (CMS path).
    found_by: str
    label: str = ""
    ok: bool = False
    title: str = ""
    entries: int = 0
    newest: datetime | None = None
    sample: list[str] = field(default_factory=list)
    error: str | None = None
    status: int | None = None


@dataclass
class Discovery:
    """What a page or site offers."""

    url: str
    #: The address itself is a feed (``feeds`` then holds it alone).
    is_feed: bool = False
    page_title: str = ""
    final_url: str | None = None
    #: The page could not be fetched or read: the fetch result's error and status.
    page_error: str | None = None
    page_status: int | None = None
    page_content_type: str | None = None
    feeds: list[Candidate] = field(default_factory=list)
    #: Candidates tried that are not feeds (with their error).
    rejected: list[Candidate] = field(default_factory=list)
    #: CMS paths not tried because robots.txt disallows them.
    disallowed: list[str] = field(default_factory=list)


def site_root(url: str) -> str:
    """``https://host/`` of an address."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


_XML_DECL_RE = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")
_FEEDISH_RE = re.compile(rb"^\s*(?:\xef\xbb\xbf)?\s*(?:<\?xml|<rss[\s>]|<feed[\s>]|<rdf:RDF|\{)")


def _is_html(body: bytes, content_type: str) -> bool:
    """An HTML page (by its first bytes, else by its declared type)."""
    if _HTML_RE.match(body[:2048]):
        return True
    if _FEEDISH_RE.match(body[:512]):
        return False
    return "html" in content_type.lower()


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def page_links(body: bytes, base_url: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The page's title and its feed links: (url, label, "announced" | "linked").

    Reads at most ``PAGE_BYTES`` of HTML; broken markup is read as browsers would.
    """
    # NUL bytes end libxml2's reading of a document: drop them.
    raw = body[:PAGE_BYTES].replace(b"\x00", b"")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")
    # An XML declaration in a decoded string is refused by lxml.
    text = _XML_DECL_RE.sub("", text, count=1)
    try:
        doc = lxml.html.document_fromstring(text)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return "", []
    base = base_url
    for node in doc.iter("base"):
        href = (node.get("href") or "").strip()
        if href:
            base = _join(base_url, href) or base_url
            break
    title_node = doc.find(".//title")
    title = clean_text(title_node.text_content())[:200] if title_node is not None else ""
    found: list[tuple[str, str, str]] = []
    seen: set[str] = set()

    def add(href: str | None, label: str, how: str) -> None:
        url = _join(base, (href or "").strip())
        if url and url not in seen and _http_url(url):
            seen.add(url)
            found.append((url, clean_text(label)[:200], how))

    for node in doc.iter("link"):
        rel = (node.get("rel") or "").lower().split()
        kind = (node.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES:
            add(node.get("href"), node.get("title") or "", "announced")
    for node in doc.iter("a"):
        href = (node.get("href") or "").strip()
        url = _join(base, href)
        if not url or not _http_url(url):
            continue
        path = urlsplit(url).path.rstrip("/") or "/"
        if _FEED_HREF_RE.search(path):
            add(url, node.text_content() or node.get("title") or "", "linked")
    return title, found


def _join(base: str, href: str) -> str | None:
    if not href or href.startswith(("#", "javascript:", "mailto:", "data:")):
        return None
    try:
        return urljoin(base, href).split("#")[0]
    except ValueError:
        return None


def _summarize(candidate: Candidate, parsed: ParsedFeed) -> None:
    candidate.ok = True
    candidate.title = parsed.title
    candidate.entries = len(parsed.entries)
    dated = sorted(
        (e for e in parsed.entries if e.published_at), key=lambda e: e.published_at or 0,
        reverse=True,
    )  # fmt: skip
    candidate.newest = dated[0].published_at if dated else None
    ordered = dated + [e for e in parsed.entries if not e.published_at]
    candidate.sample = [e.title for e in ordered[:SAMPLE]]


def discover(
    url: str,
    settings: CollectSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_candidates: int = MAX_CANDIDATES,
) -> Discovery:
    """The feeds a page or site offers (or the address itself, when it is a feed).

    Never raises for network trouble or bad markup: what could not be fetched
    or read is in ``page_error`` and ``rejected``.
    """
    # Politeness: fewer requests at once to one site than collect allows.
    polite = dataclasses.replace(
        settings, per_host=min(settings.per_host, 2), concurrency=min(settings.concurrency, 8)
    )
    return asyncio.run(_discover(url, polite, transport, max_candidates))


async def _discover(
    url: str,
    settings: CollectSettings,
    transport: httpx.AsyncBaseTransport | None,
    max_candidates: int,
) -> Discovery:
    found = Discovery(url=url)
    html_accept = "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.5"
    async with Fetcher(settings, transport=transport) as fetcher:
        page = await fetcher.fetch(url, accept=html_accept)
        found.final_url = page.final_url
        found.page_status = page.status
        found.page_content_type = page.headers.get("content-type")
        links: list[tuple[str, str, str]] = []
        if not page.ok:
            found.page_error = page.error
        else:
            assert page.body is not None
            base = page.final_url or url
            ctype = page.headers.get("content-type", "")
            if not _is_html(page.body, ctype):
                # A feed that moved permanently is added at its new address.
                given = Candidate(url=page.moved_to or url, found_by="given", status=page.status)
                try:
                    parsed = await asyncio.to_thread(_parse, page, base, settings)
                except NotAFeed as exc:
                    given.error = str(exc)
                except Exception as exc:  # a parser bug must not end the discovery
                    given.error = f"cannot parse: {type(exc).__name__}"
                else:
                    _summarize(given, parsed)
                    found.is_feed = True
                    found.feeds.append(given)
                    return found
                found.page_error = given.error
            else:
                found.page_title, links = await asyncio.to_thread(page_links, page.body, base)
        tried: set[str] = {url, page.final_url or url}
        queue: list[Candidate] = []
        for link_url, label, how in links:
            if link_url not in tried and len(queue) < max_candidates:
                tried.add(link_url)
                queue.append(Candidate(url=link_url, found_by=how, label=label))
        if not any(c.found_by == "announced" for c in queue):
            root = site_root(page.final_url or url)
            robots = await _robots(fetcher, root)
            for path in PROBE_PATHS:
                probe = urljoin(root, path)
                if probe in tried or len(queue) >= max_candidates:
                    continue
                tried.add(probe)
                if robots is not None and not robots.can_fetch("pressreview", probe):
                    found.disallowed.append(probe)
                    continue
                queue.append(Candidate(url=probe, found_by="probed"))
        pages = await asyncio.gather(*(_try(fetcher, c, settings) for c in queue))
        # A linked page listing section feeds: its feed links, one level deep.
        more: list[Candidate] = []
        for listing in pages:
            for link_url, label, _how in listing:
                if link_url not in tried and len(queue) + len(more) < max_candidates:
                    tried.add(link_url)
                    more.append(Candidate(url=link_url, found_by="linked", label=label))
        await asyncio.gather(*(_try(fetcher, c, settings, follow=False) for c in more))
    for candidate in queue + more:
        (found.feeds if candidate.ok else found.rejected).append(candidate)
    return found


def _parse(result: FetchResult, base: str, settings: CollectSettings) -> ParsedFeed:
    assert result.body is not None
    return parse_body(
        result.body, result.headers, base_url=base, excerpt_chars=settings.excerpt_chars,
        max_entries=settings.max_entries,
    )  # fmt: skip


async def _try(
    fetcher: Fetcher, candidate: Candidate, settings: CollectSettings, *, follow: bool = True
) -> list[tuple[str, str, str]]:
    """Fetch and parse one candidate; a page that is not a feed gives its feed links."""
    result = await fetcher.fetch(candidate.url)
    candidate.status = result.status
    if not result.ok:
        candidate.error = result.error
        return []
    assert result.body is not None
    base = result.final_url or candidate.url
    if _is_html(result.body, result.headers.get("content-type", "")):
        candidate.error = "an HTML page, not a feed"
        if follow and candidate.found_by == "linked":
            _title, links = await asyncio.to_thread(page_links, result.body, base)
            return links
        return []
    try:
        parsed = await asyncio.to_thread(_parse, result, base, settings)
    except NotAFeed as exc:
        candidate.error = str(exc)
    except Exception as exc:  # a parser bug must not end the discovery
        candidate.error = f"cannot parse: {type(exc).__name__}"
    else:
        _summarize(candidate, parsed)
    return []


async def _robots(fetcher: Fetcher, root: str) -> RobotFileParser | None:
    """The site's robots.txt rules; None when there are none (absent or unreadable).

    An unreachable robots.txt (a server error) disallows the probes, as
    RFC 9309 asks; a missing one (4xx) allows them.
    """
    result = await fetcher.fetch(urljoin(root, "/robots.txt"), accept="text/plain, */*;q=0.5")
    parser = RobotFileParser()
    if result.ok and result.body is not None:
        text = result.body[:500_000].decode("utf-8", "replace")
        if _is_html(result.body, result.headers.get("content-type", "")):
            return None
        parser.parse(text.splitlines())
        return parser
    if result.status is not None and 400 <= result.status < 500:
        return None
    parser.parse(["User-agent: *", "Disallow: /"])
    return parser
