"""Fixture issues for the archive tests and benchmark: published rows with snapshots.

The snapshots follow the published-issue contract (schema 1) exactly; they are
test data written into a real store, not stand-ins for our code.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from sqlalchemy import insert, update

from pressreview.store import Store
from pressreview.store.schema import issues

SECTIONS = [
    ("signatures", "Signatures"),
    ("renouvellement", "Renouvellement urbain"),
    ("vie-des-quartiers", "Vie des quartiers"),
]
TERRITORIES = ["Amiens Métropole", "Métropole européenne de Lille", "Creil Sud Oise"]
OUTLETS = ["Courrier picard", "La Voix du Nord", "Le Parisien Oise", "Préfecture du Nord"]
SUBJECTS = [
    "contrat de ville Quartiers 2030",
    "quartier prioritaire",
    "renouvellement urbain",
    "conseil citoyen",
    "abattement TFPB",
    "cité éducative",
    "gestion urbaine de proximité",
    "programme ANRU",
    "maison France services",
    "emploi des jeunes",
]
PLACES = ["Amiens", "Lille", "Creil", "Roubaix", "Tourcoing", "Beauvais", "Abbeville", "Lens"]
BASE_URL = "https://veille.example.org/"


def item_entry(
    item_id: int, published: date, *, section: int = 0, words: str = ""
) -> dict[str, Any]:
    """One snapshot item (deterministic from its id)."""
    subject = SUBJECTS[item_id % len(SUBJECTS)]
    place = PLACES[item_id % len(PLACES)]
    territories = [TERRITORIES[item_id % len(TERRITORIES)]] if item_id % 4 else []
    title = f"{place} : {subject}, étape {item_id}{(' ' + words) if words else ''}"
    excerpt = (
        f"À {place}, les partenaires du {subject} font le point sur les quartiers "
        f"prioritaires et les projets de l’année (article {item_id})."
    )
    also = (
        [
            {
                "outlet": OUTLETS[(item_id + 1) % len(OUTLETS)],
                "url": f"https://autre.example.net/articles/{item_id}",
                "title": title,
            }
        ]
        if item_id % 5 == 0
        else []
    )
    stamp = datetime.combine(published, time(9, 0), UTC)
    return {
        "id": item_id,
        "title": title,
        "url": f"https://presse.example.com/articles/{item_id}?utm_source=x&a=1",
        "outlet": OUTLETS[item_id % len(OUTLETS)],
        "published_at": stamp.isoformat(),
        "date": published.isoformat(),
        "territories": territories,
        "excerpt": excerpt,
        "summary_html": f"<p>{excerpt}</p>",
        "tags": [subject],
        "also": also,
    }


def make_snapshot(
    number: int,
    day: date,
    *,
    items_per_issue: int = 7,
    first_item_id: int | None = None,
    title: str | None = None,
    extra_item: dict[str, Any] | None = None,
    base_url: str = BASE_URL,
) -> dict[str, Any]:
    """A published-issue snapshot (schema 1) with items spread over the sections."""
    first = first_item_id if first_item_id is not None else number * 1000
    buckets: list[list[dict[str, Any]]] = [[] for _ in SECTIONS]
    others: list[dict[str, Any]] = []
    for i in range(items_per_issue):
        item_id = first + i
        published = day - timedelta(days=1 + i % 5)
        entry = item_entry(item_id, published)
        if i % 7 == 6:
            others.append(entry)
        else:
            buckets[i % len(SECTIONS)].append(entry)
    if extra_item is not None:
        buckets[0].insert(0, extra_item)
    sections = [
        {"key": key, "title": label, "items": bucket}
        for (key, label), bucket in zip(SECTIONS, buckets, strict=True)
        if bucket
    ]
    if others:
        sections.append({"key": "autres", "title": "Autres actualités", "items": others})
    published_at = datetime.combine(day, time(6, 0), UTC)
    intro_md = f"Au sommaire du numéro {number} : les **contrats de ville** et les quartiers."
    return {
        "schema": 1,
        "number": number,
        "title": title or f"Quartiers 2030 : point d’étape n° {number}",
        "intro_md": intro_md,
        "intro_html": (
            f"<p>Au sommaire du numéro {number} : les <strong>contrats de ville</strong> "
            "et les quartiers.</p>"
        ),
        "published_at": published_at.isoformat(),
        "date": day.isoformat(),
        "locale": "fr_FR",
        "organisation": {
            "name": "Centre de ressources test",
            "url": "https://crpv.example.org/",
            "logo_url": None,
            "postal_address": "1 rue de l'Exemple, 59000 Lille",
            "contact_email": "contact@crpv.example.org",
            "reason": "Vous recevez cette lettre parce que vous êtes abonné·e.",
        },
        "archive_url": f"{base_url}numeros/{number}/",
        "item_count": sum(len(s["items"]) for s in sections),
        "sections": sections,
    }


def insert_published(store: Store, snapshots: list[dict[str, Any]]) -> None:
    """Store published issues with their snapshots (as publish leaves them)."""
    rows = []
    for snap in snapshots:
        at = datetime.fromisoformat(snap["published_at"])
        rows.append(
            {
                "number": snap["number"],
                "title": snap.get("title") or "(sans titre)",
                "intro_md": snap["intro_md"],
                "status": "published",
                "created_at": at,
                "updated_at": at,
                "published_at": at,
                "snapshot": snap,
                "version": 1,
            }
        )
    with store.begin() as conn:
        for chunk_start in range(0, len(rows), 200):
            conn.execute(insert(issues), rows[chunk_start : chunk_start + 200])


def add_draft(store: Store, title: str = "Brouillon en cours") -> None:
    """An unpublished draft: never shown by the archive."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with store.begin() as conn:
        conn.execute(
            insert(issues).values(
                title=title, intro_md="", status="draft", created_at=at, updated_at=at, version=1
            )
        )


def touch_draft(store: Store, title: str) -> None:
    with store.begin() as conn:
        conn.execute(update(issues).where(issues.c.status == "draft").values(title=title))


def weekly_snapshots(
    count: int,
    *,
    start: date = date(2025, 1, 6),
    items_per_issue: int = 7,
    base_url: str = BASE_URL,
) -> list[dict[str, Any]]:
    """``count`` issues, one a week from ``start``."""
    return [
        make_snapshot(
            n, start + timedelta(weeks=n - 1), items_per_issue=items_per_issue, base_url=base_url
        )
        for n in range(1, count + 1)
    ]


# -- checks of a built site ------------------------------------------------------

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def build_folders(site: Path) -> list[str]:
    """The build folders next to the site, once old ones have been removed."""
    for thread in threading.enumerate():
        if thread.name == "archive-cleanup":
            thread.join()
    builds = site.parent / f".{site.name}.builds"
    return sorted(p.name for p in builds.iterdir() if p.is_dir() and not p.name.startswith("."))


def html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "pagefind" not in p.relative_to(site).parts)


# -- checks --------------------------------------------------------------------


class StrictChecker(HTMLParser):
    """Fails on unbalanced or misnested tags (the HTML5 parsers would repair them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, tuple[int, int]]] = []
        self.errors: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element {tag} at {self.getpos()}")
            return
        if not self.stack or self.stack[-1][0] != tag:
            expected = self.stack[-1] if self.stack else None
            self.errors.append(f"</{tag}> at {self.getpos()} but open element is {expected}")
            return
        self.stack.pop()


def check_page(path: Path, site: Path) -> lxml.html.HtmlElement:
    """Parse one page and check the rules every page follows."""
    text = path.read_text("utf-8")
    assert text.startswith("<!doctype html>"), path
    checker = StrictChecker()
    checker.feed(text)
    checker.close()
    rel = path.relative_to(site)
    assert not checker.errors, (rel, checker.errors[:5])
    assert not checker.stack, (rel, checker.stack)
    duplicates = {i for i in checker.ids if checker.ids.count(i) > 1}
    assert not duplicates, (rel, duplicates)
    doc = lxml.html.document_fromstring(text)
    assert doc.get("lang") == "fr"
    title = doc.findtext(".//title")
    assert title and title.strip(), rel
    description = doc.xpath("//meta[@name='description']/@content")
    assert description and len(description[0]) > 20, rel
    for prop in ("og:title", "og:description", "og:url", "og:type", "og:site_name", "og:locale"):
        assert doc.xpath(f"//meta[@property='{prop}']/@content"), (rel, prop)
    if rel.name != "404.html":
        canonical = doc.xpath("//link[@rel='canonical']/@href")
        assert canonical and canonical[0].startswith("https://veille.example.org/"), rel
        url_path = "" if str(rel) == "index.html" else str(rel.parent) + "/"
        assert canonical[0] == "https://veille.example.org/" + url_path, rel
    # Landmarks, skip link, one h1, headings in order.
    assert doc.xpath("//header") and doc.xpath("//footer") and doc.xpath("//nav"), rel
    mains = doc.xpath("//main")
    assert len(mains) == 1 and mains[0].get("id") == "contenu", rel
    skip = doc.xpath("//a[contains(@class, 'skip-link')]/@href")
    assert skip == ["#contenu"], rel
    levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels and levels[0] == 1 and levels.count(1) == 1, (rel, levels)
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, (rel, levels)
    for field in doc.xpath("//input[not(@type='hidden')]"):
        assert doc.xpath(f"//label[@for='{field.get('id')}']"), (rel, field.get("name"))
    return doc


def page_ids(path: Path) -> set[str]:
    doc = lxml.html.document_fromstring(path.read_bytes())
    return {e.get("id") for e in doc.iter() if isinstance(e.tag, str) and e.get("id")}


def check_links(site: Path, base_path: str = "/") -> int:
    """Every internal href/src of every page resolves to a file (and its #fragment to an id)."""
    ids_cache: dict[Path, set[str]] = {}
    checked = 0
    origin = "http://archive.test"
    for page in html_pages(site):
        rel = page.relative_to(site).as_posix()
        page_url = origin + base_path + rel
        doc = lxml.html.document_fromstring(page.read_bytes())
        for element, attribute, link, _pos in doc.iterlinks():
            if attribute not in ("href", "src") or element.tag == "form":
                continue
            target = urljoin(page_url, link)
            parts = urlsplit(target)
            if f"{parts.scheme}://{parts.netloc}" != origin:
                continue  # external article or organisation link
            assert parts.path.startswith(base_path), (rel, link)
            path = parts.path[len(base_path) :]
            file = site / (path + "index.html" if path.endswith("/") or not path else path)
            assert file.is_file(), f"{rel}: broken link {link} -> {file.relative_to(site)}"
            if parts.fragment:
                ids = ids_cache.setdefault(file, page_ids(file))
                assert parts.fragment in ids, f"{rel}: no #{parts.fragment} in {path}"
            checked += 1
    return checked
