"""What a web page says about itself: title, description, date, site name.

Used by ``items add URL`` for stories no feed carried. The page is fetched
with the collection stage's :class:`~pressreview.collect.fetch.Fetcher` (same
timeouts, size cap and redirect rules) and read with the standard library's
``html.parser`` (tolerant of broken markup, no extra dependency), in this
order of preference for each field:

- title: ``og:title``, ``twitter:title``, JSON-LD ``headline``/``name``, ``<title>``;
- description: ``og:description``, ``description``, ``twitter:description``,
  JSON-LD ``description``;
- date: ``article:published_time``, JSON-LD ``datePublished``, ``date`` /
  ``dc.date`` / ``pubdate`` meta, ``<time datetime>``;
- site name: ``og:site_name``, JSON-LD ``publisher.name``, ``application-name``.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
from dateutil import parser as dateparser

from pressreview.collect.fetch import Fetcher
from pressreview.config import Config
from pressreview.text import clean_text

__all__ = ["PageInfo", "fetch_page_info", "parse_page_info"]

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
#: Only the head and the start of the body are read: metadata lives there.
READ_LIMIT = 2_000_000


@dataclass
class PageInfo:
    url: str
    final_url: str | None = None
    title: str = ""
    description: str = ""
    published_at: datetime | None = None
    site_name: str = ""
    canonical_url: str | None = None
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    #: Why the page could not be fetched or read (None when it was).
    error: str | None = None


class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.keywords: list[str] = []
        self.jsonld: list[str] = []
        self.title = ""
        self.canonical: str | None = None
        self.lang: str | None = None
        self.times: list[str] = []
        self._in: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "html" and a.get("lang"):
            self.lang = a["lang"]
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").strip().lower()
            content = a.get("content", "").strip()
            if key and content:
                if key in ("article:tag", "keywords", "news_keywords"):
                    self.keywords += [k.strip() for k in content.split(",") if k.strip()]
                self.meta.setdefault(key, content)
        elif tag == "link" and "canonical" in a.get("rel", "").lower().split():
            self.canonical = self.canonical or a.get("href") or None
        elif tag == "time" and a.get("datetime"):
            self.times.append(a["datetime"])
        elif tag == "title" and not self.title:
            self._in, self._buffer = "title", []
        elif tag == "script" and "ld+json" in a.get("type", "").lower():
            self._in, self._buffer = "jsonld", []

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in == "title" and tag == "title":
            self.title = "".join(self._buffer)
            self._in = None
        elif self._in == "jsonld" and tag == "script":
            self.jsonld.append("".join(self._buffer))
            self._in = None


def _decode(body: bytes, headers: dict[str, str]) -> str:
    content_type = headers.get("content-type", "")
    match = re.search(r"charset=[\"']?([\w-]+)", content_type, re.I)
    if not match:
        match = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", body[:4096], re.I)  # type: ignore[assignment]
    charset = match.group(1) if match else "utf-8"
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    try:
        return body.decode(charset, "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _jsonld_objects(blobs: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            found.append(value)
            if "@graph" in value:
                walk(value["@graph"])

    for blob in blobs:
        try:
            walk(json.loads(blob.strip()))
        except ValueError:
            continue
    articles = [
        o
        for o in found
        if any("article" in t.lower() or t in ("WebPage", "Report") for t in _types(o))
    ]
    return articles + [o for o in found if o not in articles]


def _types(obj: dict[str, Any]) -> list[str]:
    value = obj.get("@type", [])
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return clean_text(str(value)) if value else ""


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = dateparser.isoparse(value.strip())
    except (ValueError, OverflowError):
        try:
            moment = dateparser.parse(value.strip())
        except (ValueError, OverflowError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    result: datetime = moment.astimezone(UTC)
    return result


def parse_page_info(body: bytes | str, url: str, headers: dict[str, str] | None = None) -> PageInfo:
    """Read the metadata of an HTML page (no network)."""
    html = body if isinstance(body, str) else _decode(body[:READ_LIMIT], headers or {})
    parser = _MetaParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception as exc:  # html.parser is tolerant; be safe against odd input anyway
        return PageInfo(url=url, error=f"cannot read the page: {exc}")
    meta = parser.meta
    ld = _jsonld_objects(parser.jsonld)

    def first_ld(*keys: str) -> str:
        for obj in ld:
            for key in keys:
                if obj.get(key):
                    text = _text(obj[key])
                    if text:
                        return text
        return ""

    title = (
        clean_text(meta.get("og:title"))
        or clean_text(meta.get("twitter:title"))
        or first_ld("headline")
        or clean_text(parser.title)
        or first_ld("name")
    )
    description = (
        clean_text(meta.get("og:description"))
        or clean_text(meta.get("description"))
        or clean_text(meta.get("twitter:description"))
        or first_ld("description")
    )
    published = None
    for candidate in (
        meta.get("article:published_time"),
        first_ld("datePublished"),
        meta.get("datepublished"),
        meta.get("date"),
        meta.get("dc.date"),
        meta.get("dc.date.issued"),
        meta.get("pubdate"),
        meta.get("og:published_time"),
        *parser.times[:1],
    ):
        published = _date(candidate)
        if published:
            break
    publisher = ""
    for obj in ld:
        if isinstance(obj.get("publisher"), dict | str):
            publisher = _text(obj["publisher"])
            if publisher:
                break
    site = (
        clean_text(meta.get("og:site_name"))
        or publisher
        or clean_text(meta.get("application-name"))
    )
    canonical = meta.get("og:url") or parser.canonical
    return PageInfo(
        url=url,
        title=title,
        description=description,
        published_at=published,
        site_name=site,
        canonical_url=urljoin(url, canonical) if canonical else None,
        language=(meta.get("og:locale") or parser.lang or None),
        tags=list(dict.fromkeys(parser.keywords))[:20],
    )


def fetch_page_info(
    config: Config, url: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> PageInfo:
    """Fetch a page with the collection rules and read its metadata (network errors in .error)."""

    async def run() -> PageInfo:
        async with Fetcher(config.collect, transport=transport) as fetcher:
            result = await fetcher.fetch(url, accept=HTML_ACCEPT)
        if not result.ok or result.body is None:
            return PageInfo(url=url, error=result.error or "empty answer")
        content_type = result.headers.get("content-type", "text/html").lower()
        if "html" not in content_type and "xml" not in content_type:
            kind = content_type.split(";")[0] or "unknown"
            return PageInfo(url=url, error=f"not a web page ({kind})")
        info = parse_page_info(result.body, result.final_url or url, result.headers)
        info.final_url = result.final_url
        return info

    return asyncio.run(run())
