"""OPML import and export of the sources, and adding sources to feeds.yaml.

feeds.yaml stays the one place where sources are declared: an import appends
the new sources to its ``feeds:`` list as text, so the comments and layout of
the file are kept, then the whole file is validated again (and restored if it
no longer loads).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException

from pressreview.config import Config, Feed, parse_config
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
#: A group heading inside the feeds list: ``  # --- Regional press ---``.
_HEADING_RE = re.compile(r"^\s*#\s*-{2,}\s*(\w.*?)\s*-*\s*$")


def _entry(feed: Feed) -> dict[str, object]:
    entry: dict[str, object] = {"name": feed.name, "url": feed.url}
    if feed.territory:
        entry["territory"] = feed.territory
    if feed.tags:
        entry["tags"] = list(feed.tags)
    if not feed.enabled:
        entry["enabled"] = False
    return entry


def feed_groups(path: Path) -> list[str]:
    """The group headings of the ``feeds:`` list (``# --- Name ---`` comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start, end = _feeds_block(lines)
    if start is None:
        return []
    return [m.group(1) for line in lines[start + 1 : end] if (m := _HEADING_RE.match(line))]


def _feeds_block(lines: list[str]) -> tuple[int | None, int]:
    """Index of the ``feeds:`` line and of the first line after its block."""
    start = next((i for i, line in enumerate(lines) if re.match(r"^feeds\s*:", line)), None)
    if start is None:
        return None, len(lines)
    end = start + 1
    while end < len(lines) and not _TOP_KEY_RE.match(lines[end]):
        end += 1
    return start, end


def append_feeds(path: Path, feeds: list[Feed], *, group: str | None = None) -> None:
    """Add sources to the ``feeds:`` list of a config file, keeping its comments and order.

    The sources go at the end of the list, or at the end of the group whose
    heading (a ``# --- Name ---`` comment) contains ``group``. The new text is
    validated as a whole configuration before the file is replaced (atomically):
    nothing is written if it would not load.
    """
    if not feeds:
        return
    original = path.read_text(encoding="utf-8")
    entries = [_entry(f) for f in feeds]
    dumped = yaml.safe_dump(entries, allow_unicode=True, sort_keys=False, width=200)
    lines = original.splitlines(keepends=True)
    start, end = _feeds_block(lines)
    # New entries take the indentation of the existing ones ("- name" or "  - name").
    indent = "  "
    if start is not None:
        for line in lines[start + 1 : end]:
            item = re.match(r"^(\s*)- ", line)
            if item:
                indent = item.group(1)
                break
    block = "".join(f"{indent}{line}\n" for line in dumped.splitlines())
    if start is None:
        if group:
            raise UsageError(f"{path}: no feeds list, so no group {group!r}")
        text = original + ("" if original.endswith("\n") or not original else "\n")
        text += "feeds:\n" + block
    elif re.match(r"^feeds\s*:\s*\[\s*\]\s*(#.*)?$", lines[start].rstrip("\n")):
        if group:
            raise UsageError(f"{path}: the feeds list is empty, so it has no group {group!r}")
        lines[start] = "feeds:\n"
        lines.insert(start + 1, block)
        text = "".join(lines)
    else:
        first, last = start + 1, end
        if group:
            first, last = _group_span(path, lines, start, end, group)
        last_content = first - 1 if group else start
        for i in range(first, last):
            if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                last_content = i
        lines.insert(last_content + 1, block)
        text = "".join(lines)
    _validate(path, text)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _group_span(path: Path, lines: list[str], start: int, end: int, group: str) -> tuple[int, int]:
    """Lines of the group whose heading contains ``group`` (case and accents ignored)."""
    wanted = fold(group).strip()
    headings = [
        (i, m.group(1)) for i in range(start + 1, end) if (m := _HEADING_RE.match(lines[i]))
    ]
    matches = [(i, name) for i, name in headings if wanted and wanted in fold(name)]
    if len(matches) != 1:
        known = "; ".join(name for _, name in headings) or "none"
        what = "no group" if not matches else "several groups"
        raise UsageError(f"{path}: {what} of feeds match {group!r} (groups: {known})")
    first = matches[0][0] + 1
    following = [i for i, _ in headings if i > matches[0][0]]
    return first, following[0] if following else end


def _validate(path: Path, text: str) -> None:
    """Raise ConfigError, naming the problem, if ``text`` would not load as the configuration."""
    try:
        data = yaml.safe_load(text)
        parse_config(data, base_dir=path.resolve().parent, path=path)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: the change would make the file invalid YAML ({exc}); nothing changed"
        ) from None
    except ConfigError as exc:
        raise ConfigError(
            f"{path}: the change would make the file invalid ({exc}); nothing changed"
        ) from None
