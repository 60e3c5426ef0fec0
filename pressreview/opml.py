"""OPML import and export of the sources, and adding sources to feeds.yaml.

feeds.yaml stays the one place where sources are declared: an import appends
the new sources to its ``feeds:`` list as text, so the comments and layout of
the file are kept, then the whole file is validated again (and restored if it
no longer loads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException

from pressreview.config import Config, Feed, load_config
from pressreview.errors import ConfigError, UsageError
from pressreview.text import fold


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str
    tags: tuple[str, ...] = ()


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an xmlUrl; categories (parent outlines) become tags."""
    try:
        root = SafeET.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise UsageError(f"not a valid OPML file: {exc}") from None
    if root.tag.lower() != "opml":
        raise UsageError("not an OPML file (the root element is not <opml>)")
    body = root.find("body")
    if body is None:
        raise UsageError("OPML file without a <body>")
    found: list[OpmlFeed] = []

    def walk(node: ElementTree.Element, tags: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            name = (outline.get("title") or outline.get("text") or url).strip()
            if url:
                found.append(OpmlFeed(name=name or url, url=url, tags=tags))
            else:
                label = (outline.get("text") or outline.get("title") or "").strip()
                walk(outline, tags + ((label,) if label else ()))

    walk(body, ())
    return found


def export_opml(config: Config) -> str:
    """The configured sources as an OPML 2.0 document (tags as categories)."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = f"{config.organisation.name}: sources"
    body = ElementTree.SubElement(root, "body")
    for feed in config.feeds:
        attrs = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        ElementTree.SubElement(body, "outline", attrs)
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


def new_feeds(config: Config, candidates: list[OpmlFeed]) -> tuple[list[Feed], list[str]]:
    """The candidates not already configured (by URL or name), and what was skipped and why."""
    urls = {f.url for f in config.feeds}
    names = {fold(f.name) for f in config.feeds}
    added: list[Feed] = []
    skipped: list[str] = []
    for c in candidates:
        if c.url in urls:
            skipped.append(f"{c.name}: already configured ({c.url})")
            continue
        name = c.name
        n = 2
        while fold(name) in names:
            name = f"{c.name} ({n})"
            n += 1
        names.add(fold(name))
        urls.add(c.url)
        added.append(Feed(name=name, url=c.url, tags=c.tags))
    return added, skipped


_TOP_KEY_RE = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def append_feeds(path: Path, feeds: list[Feed]) -> None:
    """Append sources to the ``feeds:`` list of a config file, keeping its comments."""
    if not feeds:
        return
    original = path.read_text(encoding="utf-8")
    entries = [
        {"name": f.name, "url": f.url, **({"tags": list(f.tags)} if f.tags else {})} for f in feeds
    ]
    dumped = yaml.safe_dump(entries, allow_unicode=True, sort_keys=False, width=200)
    lines = original.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^feeds\s*:", line)), None)
    # New entries take the indentation of the existing ones ("- name" or "  - name").
    indent = "  "
    if start is not None:
        for line in lines[start + 1 :]:
            if _TOP_KEY_RE.match(line):
                break
            item = re.match(r"^(\s*)- ", line)
            if item:
                indent = item.group(1)
                break
    block = "".join(f"{indent}{line}\n" for line in dumped.splitlines())
    if start is None:
        text = original + ("" if original.endswith("\n") or not original else "\n")
        text += "feeds:\n" + block
    elif re.match(r"^feeds\s*:\s*\[\s*\]\s*(#.*)?$", lines[start].rstrip("\n")):
        lines[start] = "feeds:\n"
        lines.insert(start + 1, block)
        text = "".join(lines)
    else:
        end = start + 1
        last_content = start
        while end < len(lines) and not _TOP_KEY_RE.match(lines[end]):
            if lines[end].strip() and not lines[end].lstrip().startswith("#"):
                last_content = end
            end += 1
        lines.insert(last_content + 1, block)
        text = "".join(lines)
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        path.write_text(original, encoding="utf-8")
        raise ConfigError(
            f"{path}: the import would make the file invalid ({exc}); nothing changed"
        ) from None
