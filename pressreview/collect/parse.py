"""Parse a fetched body into normalized entries.

Two parsers: fastfeedparser (fast, strict) first for bodies that are plainly
UTF-8 XML, feedparser (slow, forgiving, honours the charset of the
Content-Type header) for everything else and whenever the fast one raises or
finds nothing. Both outputs go through the same normalization, so an entry
looks the same whichever parser read it.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

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


class NotAFeed(Exception):
    pass


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
    if fast and _plain_utf8_xml(body, headers):
        parsed = _parse_fast(body, base_url, excerpt_chars)
        if parsed is not None:
            return parsed
    return _parse_slow(body, headers, base_url, excerpt_chars)


def _parse_fast(body: bytes, base_url: str, excerpt_chars: int) -> ParsedFeed | None:
    try:
        import fastfeedparser
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    try:
        data = fastfeedparser.parse(
            body, include_content=True, include_tags=True, include_media=False,
            include_enclosures=False,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - any failure falls back to feedparser
        return None
    raw_entries = data.get("entries") or []
    if not raw_entries:
        return None
    feed = data.get("feed") or {}
    language = _str(feed.get("language"))
    entries = []
    for raw in raw_entries:
        entry = _normalize(raw, base_url, language, excerpt_chars)
        if entry is not None:
            entries.append(entry)
    if not entries:
        return None
    return ParsedFeed(title=clean_text(_str(feed.get("title"))), entries=entries, parser="fast")


def _parse_slow(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed:
    response_headers = dict(headers)
    if base_url and "content-location" not in response_headers:
        response_headers["content-location"] = base_url
    data = feedparser.parse(body, response_headers=response_headers)
    raw_entries = data.get("entries") or []
    if not raw_entries:
        if _HTML_PAGE_RE.match(body[:2048]):
            raise NotAFeed("an HTML page, not a feed (check the URL)")
        if data.get("bozo") and not data.get("feed"):
            exc = data.get("bozo_exception")
            reason = str(exc).splitlines()[0] if exc else "unreadable"
            raise NotAFeed(f"not a feed: {reason}")
        if not data.get("version") and not data.get("feed"):
            raise NotAFeed("not a feed (no RSS, Atom or JSON Feed found)")
    feed = data.get("feed") or {}
    language = _str(feed.get("language"))
    entries = []
    for raw in raw_entries:
        entry = _normalize(raw, base_url, language, excerpt_chars)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(title=clean_text(_str(feed.get("title"))), entries=entries, parser="feedparser")


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
        parsed = feedparser._parse_date(value)  # type: ignore[attr-defined]
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
    return when.astimezone(UTC)


def _summary(raw: Mapping[str, Any]) -> str:
    summary = _str(raw.get("summary") or raw.get("description"))
    if not summary:
        content = raw.get("content")
        if isinstance(content, list) and content:
            first = content[0]
            summary = _str(first.get("value") if isinstance(first, Mapping) else first)
    return summary


def _tags(raw: Mapping[str, Any]) -> list[str]:
    tags = []
    for tag in raw.get("tags") or []:
        term = tag.get("term") or tag.get("label") if isinstance(tag, Mapping) else tag
        text = clean_text(_str(term))
        if text and text not in tags:
            tags.append(text[:100])
    return tags


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
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    link = valid_text(link)
    title = clean_text(_str(raw.get("title")))
    summary = _summary(raw)
    if not link and not title and not guid:
        return None
    outlet = None
    source = raw.get("source")
    source_title = clean_text(_str(source.get("title"))) if isinstance(source, Mapping) else ""
    if host_of(link) in GOOGLE_NEWS_HOSTS or source_title:
        title, outlet = split_publisher(title, source_title or None)
    if not title:
        title = excerpt(summary, 120) or link or (guid or "")
    url = canonical_url(link) if link else ""
    if not url:
        url = f"urn:pressreview:{guid}" if guid else f"urn:pressreview:title:{title}"
    language = _str(raw.get("language")) or feed_language or None
    return Entry(
        title=title,
        link=link or url,
        url=url,
        guid=valid_text(guid)[:2000] if guid else None,
        summary_html=sanitize_html(summary),
        excerpt=excerpt(summary, excerpt_chars),
        published_at=_date(raw),
        outlet=outlet,
        language=(language or "")[:20] or None,
        tags=_tags(raw),
    )
