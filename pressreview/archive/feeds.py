"""The machine-readable files of the archive: Atom feed, sitemap.xml, robots.txt.

XML is built with ElementTree (escaping is the library's job); the HTML of
each feed entry comes from the theme's ``feed_entry.html.j2``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from pressreview.urls import FEED_PATH, ISSUES_DIR, SITEMAP_PATH

ATOM_NS = "http://www.w3.org/2005/Atom"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def tag_uri(base_url: str, day: date, specific: str) -> str:
    """A stable RFC 4151 id: ``tag:veille.example.org,2026-11-23:numeros/12``."""
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},{day.isoformat()}:{specific}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, text: str, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    element.text = text
    return element


def atom_feed(
    *,
    site: dict[str, Any],
    issues: list[dict[str, Any]],
    entry_html: Callable[[dict[str, Any]], str],
    summary: Callable[[dict[str, Any]], str],
) -> bytes:
    """The Atom 1.0 feed of the latest issues, each entry an issue with its items as HTML."""
    base_url = site["base_url"]
    feed = ET.Element("feed", {XML_LANG: site["lang"]})
    feed.set("xmlns", ATOM_NS)
    _text(feed, "id", base_url)
    _text(feed, "title", site["title"])
    subtitle = site.get("subtitle")
    if subtitle:
        _text(feed, "subtitle", subtitle)
    updated = issues[0]["published_at"] if issues else datetime(2000, 1, 1, tzinfo=UTC)
    _text(feed, "updated", _iso(updated))
    ET.SubElement(
        feed, "link", {"rel": "self", "type": "application/atom+xml", "href": base_url + FEED_PATH}
    )
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": base_url})
    author = ET.SubElement(feed, "author")
    _text(author, "name", site["organisation"]["name"])
    _text(author, "uri", site["organisation"]["url"])
    if site["organisation"].get("contact_email"):
        _text(author, "email", site["organisation"]["contact_email"])
    if site["organisation"].get("logo_url"):
        _text(feed, "logo", site["organisation"]["logo_url"])
    _text(feed, "generator", "pressreview")
    for issue in issues:
        entry = ET.SubElement(feed, "entry")
        url = base_url + issue["path"]
        _text(entry, "id", tag_uri(base_url, issue["date"], f"{ISSUES_DIR}/{issue['number']}"))
        _text(entry, "title", issue["title"])
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html", "href": url})
        published = issue["published_at"] or datetime.combine(issue["date"], time(), UTC)
        _text(entry, "published", _iso(published))
        _text(entry, "updated", _iso(published))
        text = summary(issue)
        if text:
            _text(entry, "summary", text)
        _text(entry, "content", entry_html(issue), type="html")
    ET.indent(feed)
    return _document(feed)


def sitemap(base_url: str, urls: Iterable[tuple[str, date | None]]) -> bytes:
    """sitemap.xml: one <url> per page, with the issue date as lastmod on issue pages."""
    urlset = ET.Element("urlset", {"xmlns": SITEMAP_NS})
    for path, lastmod in urls:
        url = ET.SubElement(urlset, "url")
        _text(url, "loc", base_url + path)
        if lastmod is not None:
            _text(url, "lastmod", lastmod.isoformat())
    ET.indent(urlset)
    return _document(urlset)


def _document(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body + b"\n"


def robots(base_url: str) -> bytes:
    """robots.txt: everything may be crawled; the sitemap's address."""
    return f"User-agent: *\nAllow: /\n\nSitemap: {base_url}{SITEMAP_PATH}\n".encode()
