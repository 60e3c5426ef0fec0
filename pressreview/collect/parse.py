"""Parse a fetched body into normalized entries.

Two parsers: fastfeedparser (fast, strict) first for bodies that are plainly
UTF-8 XML, feedparser (slow, forgiving, honours the charset of the
Content-Type header) for everything else and whenever the fast one raises or
finds nothing. Both outputs go through the same normalization, so an entry
looks the same whichever parser read it.
"""

from __future__ import annotations

import calendar
import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree

from pressreview.text import (
    canonical_url,
    clean_text,
    excerpt,
    host_of,
    sanitize_html,
    split_publisher,
    valid_text,
)

GOOGLE_NEWS_HOSTS = ("news.google.com",)

# Parsing a hostile document must not take forever or pull in remote entities.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True


@dataclass
class Entry:
    """One normalized feed entry, ready to be stored as an item."""

    title: str
    link: str
    url: str
    guid: str | None
    summary_html: str
    excerpt: str
    published_at: datetime | None
    outlet: str | None
    language: str | None
    tags: list[str] = field(default_factory=list)


@dataclass
class ParsedFeed:
    title: str
    entries: list[Entry]
    parser: str
    #: A fatal reason when the body is not a feed at all.
    error: str | None = None
    #: Something worth telling staff although entries were read (malformed XML).
    warning: str | None = None


class NotAFeed(Exception):
    pass


_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HARMLESS_BOZO = (feedparser.ThingsNobodyCaresAboutButMe,)


_HTML_PAGE_RE = re.compile(rb"^\s*(<!--.*?-->\s*)*<!doctype\s+html|^\s*<html[\s>]", re.I | re.S)


def _charset(headers: Mapping[str, str]) -> str | None:
    ctype = headers.get("content-type", "")
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", ctype, re.I)
    return match.group(1).lower() if match else None


def _plain_utf8_xml(body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the fast parser can be trusted with the body's encoding."""
    charset = _charset(headers)
    if charset not in (None, "utf-8", "utf8"):
        return False
    head = body[:200].lstrip()
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return False
    decl = re.match(rb"<\?xml[^>]*encoding=[\"']([\w.:-]+)", head)
    if decl and decl.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_SINGLE_BYTE = frozenset(
    {"iso-8859-1", "latin-1", "latin1", "iso-8859-15", "windows-1252", "cp1252", "us-ascii",
     "ascii"}
)  # fmt: skip
_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([\w.:-]+)")


def _correct_charset(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """Read valid UTF-8 as UTF-8 even when labelled Latin-1 or ASCII.

    Non-ASCII bytes that decode as UTF-8 are almost never Latin-1 text (that
    would take sequences like "Ã©"), while "UTF-8 labelled ISO-8859-1" is a
    common server misconfiguration. The other way round (Latin-1 bytes
    labelled UTF-8) feedparser already handles: UTF-8 fails, it falls back to
    Windows-1252.
    """
    label = _charset(headers)
    if label is None:
        decl = _XML_DECL_RE.match(body[:200])
        label = decl.group(1).decode("ascii").lower() if decl else None
    if label not in _SINGLE_BYTE or body.isascii():
        return headers
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return headers
    ctype = headers.get("content-type", "").split(";")[0].strip() or "application/xml"
    return {**headers, "content-type": f"{ctype}; charset=utf-8"}


def parse_body(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    base_url: str = "",
    excerpt_chars: int = 300,
    fast: bool = True,
) -> ParsedFeed:
    """Parse a feed body; raises NotAFeed with a one-line reason."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body.strip():
        raise NotAFeed("empty body")
    headers = _correct_charset(body, headers)
    if fast and _plain_utf8_xml(body, headers):
        parsed = _parse_fast(body, headers, base_url, excerpt_chars)
        if parsed is not None:
            return parsed
    return _parse_slow(body, headers, base_url, excerpt_chars)


def _parse_fast(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed | None:
    try:
        import fastfeedparser
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    if _NEEDS_FEEDPARSER_RE.search(body) or not _well_formed(body):
        # fastfeedparser recovers from broken XML by dropping what it cannot read
        # (feedparser's lenient parser keeps more of it), and it ignores base64
        # text, <source> (the outlet of an aggregated item) and media:title precedence.
        return None
    try:
        data = fastfeedparser.parse(
            body, include_content=True, include_tags=True, include_media=False,
            include_enclosures=False,
        )  # fmt: skip
    except Exception:
        return None
    raw_entries = data.get("entries") or []
    if not raw_entries:
        return None
    feed = data.get("feed") or {}
    language = _language(body, headers, _str(feed.get("language")))
    base = _base(base_url, headers)
    xml_bases = _XML_BASE_RE.findall(body)
    if xml_bases:
        # One xml:base on the root element is a base for everything; anything
        # finer-grained is feedparser's job.
        if len(xml_bases) > 1 or body.find(b"xml:base") > 4096:
            return None
        try:
            base = urljoin(base, html.unescape(xml_bases[0].decode("utf-8")))
        except ValueError:
            return None
    entries = []
    for raw in raw_entries:
        link = _str(raw.get("link")).strip()
        if not link or not _is_absolute(link) or not _valid_url(link):
            # Relative links, or links derived from ids: feedparser resolves them
            # (xml:base, Content-Location, isPermaLink); the fast parser does not.
            return None
        _mark_synthesized(raw)
        entry = _normalize(raw, base, language, excerpt_chars)
        if entry is not None:
            entries.append(entry)
    if not entries:
        return None
    return ParsedFeed(title=clean_text(_str(feed.get("title"))), entries=entries, parser="fast")


_NEEDS_FEEDPARSER_RE = re.compile(rb"""mode\s*=\s*["']base64|<source[\s>]|<media:title[\s>]""")
_XML_BASE_RE = re.compile(rb"""xml:base\s*=\s*["']([^"']*)["']""")
_LANGUAGE_RE = re.compile(
    rb"<(?:[\w-]+:)?language>\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)\s*</"
    rb"""|xml:lang\s*=\s*["']([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)["']"""
)


def _base(base_url: str, headers: Mapping[str, str]) -> str:
    try:
        return urljoin(base_url, headers.get("content-location", "")) if base_url else ""
    except ValueError:
        return base_url


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return bool(parts.hostname)


def _is_absolute(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


def _language(body: bytes, headers: Mapping[str, str], parsed: str) -> str:
    """The feed's language, read the same way whichever parser ran."""
    match = _LANGUAGE_RE.search(body, 0, 65536)
    if match:
        return (match.group(1) or match.group(2)).decode("ascii")
    return parsed or headers.get("content-language", "").split(",")[0].strip()


def _well_formed(body: bytes) -> bool:
    """Strict XML check (no entity expansion, no network, no DTD loading)."""
    parser = etree.XMLParser(
        recover=False, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return False
    return True


def _parse_slow(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed:
    response_headers = dict(headers)
    if base_url and "content-location" not in response_headers:
        response_headers["content-location"] = base_url
    data = feedparser.parse(body, response_headers=response_headers)
    raw_entries = data.get("entries") or []
    exc = data.get("bozo_exception")
    # Encoding and content-type remarks are not errors; XML syntax errors are.
    malformed = bool(data.get("bozo")) and not isinstance(exc, _HARMLESS_BOZO)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0] if exc else "unreadable"
    feed = data.get("feed") or {}
    language = _language(body, headers, _str(feed.get("language")))
    entries = []
    for raw in raw_entries:
        entry = _normalize(raw, _base(base_url, headers), language, excerpt_chars)
        if entry is not None:
            entries.append(entry)
    warning = None
    if not entries:
        if _HTML_PAGE_RE.match(body[:2048]):
            raise NotAFeed("an HTML page, not a feed (check the URL)")
        if malformed:
            if not body.lstrip()[:1] == b"<" and not body.startswith(_BOMS):
                raise NotAFeed("not a feed (no RSS, Atom or JSON Feed found)")
            raise NotAFeed(f"malformed feed, no entry readable: {reason}")
        if not data.get("version") and not feed:
            raise NotAFeed("not a feed (no RSS, Atom or JSON Feed found)")
    elif malformed:
        warning = f"malformed XML read leniently ({reason})"
    return ParsedFeed(
        title=clean_text(_str(feed.get("title"))), entries=entries, parser="feedparser",
        warning=warning,
    )  # fmt: skip


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "" if value == "None" else value
    return str(value)


def _date(raw: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = raw.get(key)
        if isinstance(parsed, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    for key in ("published", "updated", "created"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            when = _parse_date_string(value)
            if when is not None:
                return when
    return None


def _parse_date_string(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        parsed = feedparser._parse_date(value)
        if parsed is None:
            return None
        try:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not 1990 <= when.year <= 2200:
        return None
    # Whole seconds, as feedparser's struct_time gives them.
    return when.astimezone(UTC).replace(microsecond=0)


def _summary(raw: Mapping[str, Any]) -> str:
    """The entry's own summary, else its content (both parsers agree on this)."""
    summary = _str(raw.get("summary") or raw.get("description"))
    content = raw.get("content")
    if isinstance(content, list) and content:
        first = content[0]
        value = _str(first.get("value") if isinstance(first, Mapping) else first)
        # feedparser copies the content into a missing summary, fastfeedparser
        # writes a plain-text prefix of it: either way, use the content itself.
        if (
            not summary
            or raw.get("_synthesized")
            or ("summary" in raw and "summary_detail" not in raw)
        ):
            summary = value
    return summary


def _mark_synthesized(raw: dict[str, Any]) -> None:
    """Flag a description that fastfeedparser made up from the content."""
    if "content" not in raw or "description" not in raw:
        return
    probe = {k: v for k, v in raw.items() if k != "description"}
    try:
        from fastfeedparser.main import _synthesize_entry_description

        _synthesize_entry_description(probe)
    except Exception:
        return
    if probe.get("description") == raw["description"]:
        raw["_synthesized"] = True


def _tags(raw: Mapping[str, Any]) -> list[str]:
    tags = []
    for tag in raw.get("tags") or []:
        term = tag.get("term") or tag.get("label") if isinstance(tag, Mapping) else tag
        text = clean_text(_str(term))
        if text and text[:100] not in tags:
            tags.append(text[:100])
    return sorted(tags, key=str.casefold)


_HREF_RE = re.compile(r'href="([^"]*)"')


def _absolute_links(fragment: str, base: str) -> str:
    """Resolve relative links of sanitized HTML against the feed's address.

    feedparser resolves them itself, fastfeedparser does not: doing it here
    makes both agree, and keeps links working in the newsletter.
    """
    if not base or "href=" not in fragment:
        return fragment

    def resolve(match: re.Match[str]) -> str:
        value = html.unescape(match.group(1))
        if _is_absolute(value) or value.startswith("mailto:"):
            return match.group(0)
        try:
            joined = urljoin(base, value)
        except ValueError:
            return match.group(0)
        return f'href="{html.escape(joined, quote=True)}"'

    return _HREF_RE.sub(resolve, fragment)


_GOOGLE_FONT_RE = re.compile(r"</a>(?:\s|&nbsp;|&#160;|\xa0)*<font[^>]*>([^<]{1,200})</font>", re.I)


def google_publisher(description: str) -> str:
    """The publisher Google Actualités writes after the link of an item's description.

    Its descriptions are ``<a href=...>Title</a>&nbsp;&nbsp;<font color="#6f6f6f">
    Publisher</font>`` (for a cluster of stories, a list of these, the item's
    own first); anything else gives "".
    """
    match = _GOOGLE_FONT_RE.search(description)
    return clean_text(html.unescape(match.group(1))) if match else ""


def _normalize(
    raw: Mapping[str, Any], base_url: str, feed_language: str, excerpt_chars: int
) -> Entry | None:
    link = _str(raw.get("link")).strip()
    if not link:
        for candidate in raw.get("links") or []:
            if isinstance(candidate, Mapping) and candidate.get("href"):
                link = _str(candidate["href"]).strip()
                break
    guid = _str(raw.get("id") or raw.get("guid")).strip() or None
    if not link and guid and _is_absolute(guid):
        link = guid
    if guid == link:
        # A GUID that is the link adds nothing to identity (and the fast parser
        # fills in the link where the feed has no id at all).
        guid = None
    link = valid_text(link)
    title = clean_text(_str(raw.get("title")))
    summary = _summary(raw)
    if not link and not title and not guid:
        return None
    outlet = None
    source = raw.get("source")
    source_title = clean_text(_str(source.get("title"))) if isinstance(source, Mapping) else ""
    google = host_of(link) in GOOGLE_NEWS_HOSTS
    if google or source_title:
        # The publisher: the <source> element, else the end of Google's description.
        publisher = source_title or (google_publisher(summary) if google else "")
        title, outlet = split_publisher(title, publisher or None)
    if not title:
        title = excerpt(summary, 120) or link or (guid or "")
    url = canonical_url(link) if link else ""
    if not url:
        url = f"urn:pressreview:{guid}" if guid else f"urn:pressreview:title:{title}"
    language = feed_language or None
    return Entry(
        title=title,
        link=link or url,
        url=url,
        guid=valid_text(guid)[:2000] if guid else None,
        summary_html=_absolute_links(sanitize_html(summary), base_url),
        excerpt=excerpt(summary, excerpt_chars),
        published_at=_date(raw),
        outlet=outlet,
        language=(language or "")[:20] or None,
        tags=_tags(raw),
    )
