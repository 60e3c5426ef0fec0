"""Parse a fetched body into normalized entries.

Two parsers: fastfeedparser (fast, strict) first for bodies that are plainly
UTF-8 XML, feedparser (slow, forgiving, honours the charset of the
Content-Type header) for everything else and whenever the fast one raises or
finds nothing. Both outputs go through the same normalization, so an entry
looks the same whichever parser read it.
"""

from __future__ import annotations

import calendar
import email.utils
import functools
import heapq
import html
import itertools
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from lxml import etree

from pressreview.text import (
    canonical_url,
    clean_text,
    excerpt,
    host_of,
    safe_url,
    sanitize_html,
    split_publisher,
    url_parts,
    valid_text,
)

GOOGLE_NEWS_HOSTS = ("news.google.com",)

# Parsing a hostile document must not take forever or pull in remote entities.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True


@dataclass
class Entry:
    """One normalized feed entry, ready to be stored as an item.

    ``link`` is an absolute http(s) URL or ``""`` (the entry has no usable
    link); ``url`` is the identity: the canonical link (keeping a fragment
    that tells entries of the feed apart), else a ``urn:pressreview:`` name.
    """

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
    #: The author's name when the feed gives one (never a bare e-mail address).
    author: str | None = None


@dataclass
class ParsedFeed:
    title: str
    entries: list[Entry]
    parser: str
    #: A fatal reason when the body is not a feed at all.
    error: str | None = None
    #: Something worth telling staff although entries were read (malformed XML).
    warning: str | None = None
    #: Entries the feed holds, when more than were kept (``max_entries``).
    total_entries: int | None = None


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


def _repair_utf8(body: bytes, headers: Mapping[str, str]) -> bytes:
    """A UTF-8 body with a few invalid bytes, with those replaced by U+FFFD.

    Without this, one stray byte makes feedparser read the whole document as
    Windows-1252, and every accented letter is stored as mojibake ("Ã©").
    Only for a body whose charset is UTF-8 (declared, or by default) and that
    is mostly valid UTF-8; a body that is mostly not (Latin-1 labelled UTF-8)
    is left to the parser's own fallback, which reads it as Windows-1252.
    """
    label = _charset(headers)
    if label is None:
        decl = _XML_DECL_RE.match(body[:200])
        label = decl.group(1).decode("ascii").lower() if decl else "utf-8"
    if label not in ("utf-8", "utf8") or body.isascii() or body.startswith(_BOMS[1:]):
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return body
    text = body.decode("utf-8", "replace")
    # Runs of invalid bytes, not bytes: a Latin-1 body has one per accented
    # letter, while eight bad bytes in one title of a UTF-8 feed are one.
    invalid = len(_INVALID_RUN_RE.findall(text))
    valid = sum(1 for c in text if c > "\x7f") - text.count("\ufffd")
    if valid < invalid:
        return body
    return text.encode("utf-8")


_INVALID_RUN_RE = re.compile("\ufffd+")


def parse_body(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    base_url: str = "",
    excerpt_chars: int = 300,
    fast: bool = True,
    max_entries: int | None = None,
) -> ParsedFeed:
    """Parse a feed body; raises NotAFeed with a one-line reason.

    With ``max_entries``, only that many entries are kept, the newest first;
    a body holding far more is cut down before it is parsed, so that a feed of
    200,000 entries costs what a feed of ``max_entries`` does.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body.strip():
        raise NotAFeed("empty body")
    headers = _correct_charset(body, headers)
    body = _repair_utf8(body, headers)
    total = None
    json_feed = _is_json(body)
    if max_entries is not None and not json_feed:
        body, total = _keep_newest_entries(body, max_entries)  # XML items only
    parsed = None
    if json_feed:
        parsed = _parse_json(body, headers, base_url, excerpt_chars)
    elif fast and _plain_utf8_xml(body, headers):
        parsed = _parse_fast(body, headers, base_url, excerpt_chars)
    if parsed is None:
        parsed = _parse_slow(body, headers, base_url, excerpt_chars)
    if max_entries is not None and len(parsed.entries) > max_entries:
        total = max(total or 0, len(parsed.entries))
        parsed.entries = _newest(parsed.entries, max_entries)
    parsed.total_entries = total
    return parsed


_ENTRY_START_RE = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")
_ENTRY_RE = re.compile(rb"<((?:[\w.-]+:)?(?:item|entry))[\s>].*?</\1\s*>", re.S)
_ENTRY_DATE_RE = re.compile(
    rb"<(?:[\w.-]+:)?(?:pubDate|published|updated|date|issued|modified)>\s*([^<]{6,60}?)\s*</"
)


def _keep_newest_entries(body: bytes, limit: int) -> tuple[bytes, int | None]:
    """The body with only its ``limit`` newest entries, and how many it held.

    Works on the raw bytes (no parse tree of the whole document): each
    ``<item>``/``<entry>`` element is found with its date, the newest are
    kept in document order, the rest cut out. Entries without a readable
    date count as new (they will be dated when first seen). A body this
    cannot split is returned whole; the entries are then capped after parsing.
    """
    if sum(1 for _ in itertools.islice(_ENTRY_START_RE.finditer(body), limit + 1)) <= limit:
        return body, None
    newest: list[tuple[float, int, int, int]] = []  # (date, -index, start, end), a min-heap
    count = first = last = 0
    for index, match in enumerate(_ENTRY_RE.finditer(body)):
        if index == 0:
            first = match.start()
        count, last = index + 1, match.end()
        found = _ENTRY_DATE_RE.search(body, match.start(), match.end())
        when = _quick_timestamp(found.group(1)) if found else None
        key = (when if when is not None else math.inf, -index, match.start(), match.end())
        if len(newest) < limit:
            heapq.heappush(newest, key)
        elif key > newest[0]:
            heapq.heapreplace(newest, key)
    if count <= limit:
        return body, None
    spans = sorted((start, end) for _, _, start, end in newest)
    return b"".join([body[:first], *(body[start:end] for start, end in spans), body[last:]]), count


def _quick_timestamp(raw: bytes) -> float | None:
    """A date as RFC 822 or ISO 8601 (the forms feeds use), without the slow parsers."""
    text = raw.decode("ascii", "replace").strip()
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _newest(entries: list[Entry], limit: int) -> list[Entry]:
    """The ``limit`` newest entries in feed order (undated ones count as new)."""
    far = datetime.max.replace(tzinfo=UTC)
    ranked = sorted(
        range(len(entries)), key=lambda i: (entries[i].published_at or far, -i), reverse=True
    )
    keep = sorted(ranked[:limit])
    return [entries[i] for i in keep]


def _parse_fast(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed | None:
    try:
        import fastfeedparser
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    if _needs_feedparser(body) or not _well_formed(body):
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
    return ParsedFeed(
        title=clean_text(_str(feed.get("title"))), entries=_distinguish_fragments(entries),
        parser="fast",
    )  # fmt: skip


def _is_json(body: bytes) -> bool:
    """A body that opens as a JSON object (a JSON Feed), after a BOM and spaces."""
    return body[:1024].removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{"


_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
_SURROGATES_RE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate (a JSON ``\\ud800`` escape) as U+FFFD.

    Such a string cannot be encoded, so it would fail the sanitizer and the
    store further on; everything else is left as it is.
    """
    if isinstance(value, str):
        return _SURROGATES_RE.sub("\ufffd", value) if not value.isascii() else value
    if isinstance(value, dict):
        return {k: _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


#: JSON Feed fields that are text, at the top and in items (jsonfeed.org 1.1).
_JSON_FEED_TEXT = frozenset(
    {
        "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
        "icon", "favicon", "language", "id", "url", "external_url", "content_html",
        "content_text", "summary", "image", "banner_image", "date_published",
        "date_modified", "name", "avatar",
    }
)  # fmt: skip


def _json_author(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if k in ("name", "url", "avatar") and isinstance(v, str)}


def _typed_json_object(value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A feed's or an item's fields with the types the format gives them.

    A field of another type (a title that is an object, a link that is a
    list, an author that is a string) is dropped, so it can neither fail the
    whole feed nor reach a reader as Python's spelling of it; a numeric
    ``id`` is read as its text, as the format asks. Returns the object and
    whether anything changed.
    """
    typed: dict[str, Any] = {}
    changed = False
    for key, entry in value.items():
        if key in _JSON_FEED_TEXT:
            if key == "id" and isinstance(entry, int | float) and not isinstance(entry, bool):
                entry, changed = str(entry), True
            elif not isinstance(entry, str):
                changed = True
                continue
        elif key == "author":
            author = _json_author(entry)
            if author != entry:
                changed = True
            if author is None:
                continue
            entry = author
        elif key == "authors" or key == "tags":
            if not isinstance(entry, list):
                changed = True
                continue
            keep: list[Any]
            if key == "authors":
                keep = [a for a in map(_json_author, entry) if a is not None]
            else:
                keep = [t for t in entry if isinstance(t, str)]
            changed = changed or keep != entry
            entry = keep
        typed[key] = entry
    text = typed.get("content_text")
    if text and not typed.get("content_html"):
        # Plain text, as the format says: "1 < 2" or "<b>" are words, not markup.
        typed["content_html"] = _plain_text_html(text)
        del typed["content_text"]
        changed = True
    return typed, changed


_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


def _plain_text_html(text: str) -> str:
    """Plain text as HTML: escaped, a paragraph for each block between blank lines.

    Entities ended by ``;`` are read first: a feed that escapes its plain text
    anyway (``&amp;``) shows "&", as its readers expect, not "&amp;"; a link's
    ``?a=1&copy=2`` stays as it is.
    """
    text = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), text)
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return "".join(f"<p>{html.escape(block, quote=False)}</p>" for block in blocks if block)


def _parse_json(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed:
    """A JSON Feed (jsonfeed.org, versions 1 and 1.1), read by fastfeedparser.

    Its items become entries as an RSS or Atom feed's do (same sanitizing,
    links resolved against the feed's URL, same identity rules).
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise NotAFeed(f"not a feed (JSON that cannot be read: {reason})") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(_JSON_FEED_VERSION):
        raise NotAFeed("not a feed (JSON, but not a JSON Feed: no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise NotAFeed('unreadable JSON Feed: its "items" is not a list')
    body = body.removeprefix(b"\xef\xbb\xbf")
    top, changed = _typed_json_object({k: v for k, v in document.items() if k != "items"})
    objects = []
    for item in items:
        if isinstance(item, dict):
            typed, retyped = _typed_json_object(item)
            objects.append(typed)
            changed = changed or retyped
    if changed or len(objects) < len(items) or b"\\ud" in body or b"\\uD" in body:
        # Items that are not objects, fields of the wrong type, or lone
        # surrogate escapes (hostile or broken): fastfeedparser refuses them
        # or passes them on as they are; the rest is read.
        document = _without_surrogates({**top, "items": objects})
        body = json.dumps(document, ensure_ascii=False).encode()
    try:
        import fastfeedparser

        data = fastfeedparser.parse(
            body, include_content=True, include_tags=True, include_media=False,
            include_enclosures=False,
        )  # fmt: skip
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise NotAFeed(f"unreadable JSON Feed: {reason}") from None
    data = _without_surrogates(data)
    feed = data.get("feed") or {}
    language = _language(b"", headers, _str(feed.get("language")))
    base = _base(base_url, headers)
    entries = []
    for raw in data.get("entries") or []:
        if not isinstance(raw, dict):
            continue
        _mark_synthesized(raw)
        entry = _normalize(raw, base, language, excerpt_chars)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(
        title=clean_text(_str(feed.get("title"))), entries=_distinguish_fragments(entries),
        parser="json",
    )  # fmt: skip


_NEEDS_FEEDPARSER_RE = re.compile(rb"""mode\s*=\s*["']base64|<source[\s>]|<media:title[\s>]""")


def _needs_feedparser(body: bytes) -> bool:
    """``_NEEDS_FEEDPARSER_RE`` found in the body (three substring tests rule it out faster)."""
    if b"base64" not in body and b"<source" not in body and b"<media:title" not in body:
        return False
    return _NEEDS_FEEDPARSER_RE.search(body) is not None


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
    parts = url_parts(url)
    return parts is not None and parts.port_ok and bool(parts.hostname)


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


#: A character reference to a UTF-16 surrogate (U+D800 to U+DFFF), hex or decimal.
_SURROGATE_REF_RE = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}"
    rb"|0*(?:5529[6-9]|55[3-9][0-9]{2}|56[0-9]{3}|57[0-2][0-9]{2}|573[0-3][0-9]|5734[0-3]));"
)


def _parse_slow(
    body: bytes, headers: Mapping[str, str], base_url: str, excerpt_chars: int
) -> ParsedFeed:
    response_headers = dict(headers)
    if base_url and "content-location" not in response_headers:
        response_headers["content-location"] = base_url
    if b"&#" in body:
        # feedparser fails on a character reference to a lone surrogate (hostile
        # or broken): it is read as U+FFFD, as a decoder reads invalid bytes.
        body = _SURROGATE_REF_RE.sub(b"&#xFFFD;", body)
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
        title=clean_text(_str(feed.get("title"))), entries=_distinguish_fragments(entries),
        parser="feedparser",
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
                when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError):
                continue
            if _PLAUSIBLE_YEARS[0] <= when.year <= _PLAUSIBLE_YEARS[1]:
                return when
            # 1970-01-01 (a zero timestamp), year 1: a placeholder, not a date.
    for key in ("published", "updated", "created"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            read = _parse_date_string(value)
            if read is not None:
                return read
    return None


#: A date outside these years is a feed's placeholder (1970, year 1): the entry
#: takes the time it was first seen.
_PLAUSIBLE_YEARS = (1990, 2200)
#: Longer date strings are not dates: never hand them to the slow parser.
_DATE_MAX_CHARS = 100


def _parse_date_string(value: str) -> datetime | None:
    """A date feedparser could not read: ISO 8601, RFC 822, then French or English prose.

    ``dateparser`` (about 1.5 ms a call) only runs when the quick forms fail,
    so a feed of well-formed dates never pays for it. Anything unreadable is
    ``None``: the entry then takes its first-seen date, alone.
    """
    value = value.strip()
    if not value or len(value) > _DATE_MAX_CHARS:
        return None
    when: datetime | None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
    if when is None:
        when = _prose_date(value)
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if not _PLAUSIBLE_YEARS[0] <= when.year <= _PLAUSIBLE_YEARS[1]:
        return None
    # Whole seconds, as feedparser's struct_time gives them.
    return when.replace(microsecond=0)


def _prose_date(value: str) -> datetime | None:
    """``lun., 03 juin 2024 08:00:00 +0200``, ``03/06/2024 à 08h00`` (day first)."""
    if not any(c.isdigit() for c in value):
        return None
    try:
        found = _prose_date_parser().get_date_data(value)
    except Exception:  # dateparser raises assorted errors on odd strings
        return None
    when = found.date_obj if found else None
    return when if isinstance(when, datetime) else None


@functools.cache
def _prose_date_parser() -> Any:
    """One dateparser parser for French and English, built on first need (~0.4 s to import)."""
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["fr", "en"],
        settings={"DATE_ORDER": "DMY", "PREFER_DAY_OF_MONTH": "first", "STRICT_PARSING": True},
    )


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
    content = raw["content"]
    if (
        not raw.get("summary")
        and isinstance(content, list)
        and content
        and isinstance(content[0], Mapping)
        and raw["description"] == content[0].get("value")
    ):
        return  # the description is the content itself: either way, the summary reads the same
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
    if all(_is_absolute(value) for value in _HREF_RE.findall(fragment)):
        return fragment  # the common case: ``resolve`` would keep every link

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


def _web_link(link: str, base_url: str) -> str:
    """The entry's link made absolute against the feed's base; ``""`` unless http(s)."""
    if not link:
        return ""
    if not _is_absolute(link) and base_url and ":" not in link.split("/", 1)[0]:
        try:
            link = urljoin(base_url, link)
        except ValueError:
            return ""
    return link if safe_url(link) and _valid_url(link) else ""


def _distinguish_fragments(entries: list[Entry]) -> list[Entry]:
    """Keep the fragment in the identity of entries that differ only by it.

    Canonical URLs drop fragments (``#xtor=RSS``, ``#comments``) so that one
    article is one item; but a feed whose entries are ``page#2026-02-16``,
    ``page#comment-12`` or GUIDs like ``…/29#When:6:56:02PM`` means distinct
    entries, and they stay distinct.
    """
    fragments: dict[str, set[str]] = {}
    for entry in entries:
        if entry.link:
            fragments.setdefault(entry.url, set()).add(entry.link.partition("#")[2])
    shared = {url for url, found in fragments.items() if len(found) > 1}
    if not shared:
        return entries
    for entry in entries:
        if entry.url in shared and "#" in entry.link:
            fragment = entry.link.split("#", 1)[1]
            if fragment:
                entry.url = f"{entry.url}#{fragment}"
    return entries


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
    links = raw.get("links")
    if links:
        # The article, not its licence, enclosure, comments or feed: the fast
        # parser takes an entry's only link whatever its rel.
        hrefs = [
            (_str(c["href"]).strip(), c.get("rel") in ("alternate", "", None))
            for c in links
            if isinstance(c, Mapping) and c.get("href")
        ]
        others = {h for h, article in hrefs if not article} - {h for h, a in hrefs if a}
        if link in others:
            link = ""
        if not link:
            link = next((h for h, article in hrefs if article), "")
    else:
        others = set()
    guid = _str(raw.get("id") or raw.get("guid")).strip() or None
    if guid in others:
        guid = None  # the fast parser's stand-in id: the licence's address again
    given = guid
    if not link and guid and _is_absolute(guid):
        link = guid
    if guid == link:
        # A GUID that is the link adds nothing to identity (and the fast parser
        # fills in the link where the feed has no id at all).
        guid = None
    link = _web_link(valid_text(link), base_url)
    if not link and given and guid is None:
        guid = given  # an id that is no web address ("urn:uuid:..."): still the identity
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
    elif len(title) > TITLE_MAX_CHARS:
        title = excerpt(title, TITLE_MAX_CHARS)  # a whole article in the title element
    if outlet and len(outlet) > OUTLET_MAX_CHARS:
        outlet = excerpt(outlet, OUTLET_MAX_CHARS)
    url = canonical_url(link) if link else ""
    if not url:
        url = f"urn:pressreview:{guid}" if guid else f"urn:pressreview:title:{title}"
    language = feed_language or None
    return Entry(
        title=title,
        link=link,
        url=url,
        guid=valid_text(guid)[:2000] if guid else None,
        summary_html=_absolute_links(sanitize_html(summary), base_url),
        excerpt=excerpt(summary, excerpt_chars),
        published_at=_date(raw),
        outlet=outlet,
        language=(language or "")[:20] or None,
        tags=_tags(raw),
        author=_author(raw),
    )


#: Longer titles are cut at a word (with an ellipsis): no headline is this long,
#: and each would fill the newsletter and the archive's pages.
TITLE_MAX_CHARS = 500
OUTLET_MAX_CHARS = 200

_EMAIL_NAME_RE = re.compile(r"^\S+@\S+\s*\((?P<name>[^()]+)\)$")
#: "Jeanne Doe (jdoe@example.fr)", "Jeanne Doe <jdoe@example.fr>".
_NAME_EMAIL_RE = re.compile(r"^(?P<name>[^()<>@]+?)\s*(?:\(\S+@\S+\)|<\S+@\S+>)$")


def _author(raw: Mapping[str, Any]) -> str | None:
    """The entry's author: RSS ``author``/``dc:creator`` or Atom ``author/name``.

    RSS 2.0 writes ``jdoe@example.com (Jeanne Doe)``: the name is kept, a bare
    address is not (it says nothing to readers and is personal data).
    """
    detail = raw.get("author_detail")
    named = detail.get("name") if isinstance(detail, Mapping) else None
    value = raw.get("author")
    if isinstance(value, Mapping):
        value = value.get("name")
    # feedparser's author_detail holds the name alone where ``author`` is
    # "Name (address)"; the fast parser gives ``author`` only.
    text = clean_text(_str(named or value))
    match = _EMAIL_NAME_RE.match(text) or _NAME_EMAIL_RE.match(text)
    if match:
        text = clean_text(match["name"])
    if not text or "@" in text:
        return None
    return text[:200]
