"""`issue preview`: the email and the archive page of a draft, viewable from a folder.

The store is filled by collecting the demo feeds from a real HTTP server; the
page is made by the archive's own model, theme and template
(``archive.render_issue_page``), and compared with the page a real build
writes for the same published issue.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import lxml.html
import pytest
from fixtures_archive import StrictChecker
from fixtures_issues import distinct_colours, png_pixels
from sqlalchemy import select

from pressreview import curate, issues
from pressreview.archive import build_archive, render_issue_page
from pressreview.collect import collect
from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.store import Store
from pressreview.store.schema import items
from pressreview.templating import TEMPLATES_ROOT
from pressreview.typography import typeset
from pressreview.urls import issue_url

DEMO = ["google-actualites.xml", "presse-hdf.xml", "courrier-picardie.xml", "prefecture-hdf.xml"]
BASE_URL = "https://veille.example.org/"

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@pytest.fixture
def filled(
    make_config: Callable[..., Config],
    store_url: str,
    demo_feed_url: Callable[[str], str],
    store_for: Callable[[Config], Store],
) -> tuple[Config, Store]:
    feeds = [{"name": name.removesuffix(".xml"), "url": demo_feed_url(name)} for name in DEMO]
    config = make_config(database_url=store_url, feeds=feeds)
    store = store_for(config)
    for feed in feeds:
        report = collect(config, store, only=[feed["name"]])
        assert [s.status for s in report.sources] == ["ok"]
    return config, store


def start_draft(config: Config, store: Store) -> dict[str, Any]:
    """Select five collected items in two sections and start a draft; its snapshot."""
    with store.connect() as conn:
        ids = [r.id for r in conn.execute(select(items.c.id).order_by(items.c.id).limit(5))]
    assert len(ids) == 5
    curate.select_items(store, ids[:3], section="signatures", actor="test")
    curate.select_items(store, ids[3:], section="renouvellement", actor="test")
    issues.new_draft(
        config,
        store,
        title="Quartiers 2030 : où en sont les signatures ?",
        intro_md="Bonjour,\n\nvoici **la revue** de la semaine.",
        actor="test",
    )
    snapshot = issues.draft_snapshot(config, store)
    assert snapshot["draft"] is True and snapshot["item_count"] == 5
    return snapshot


def titles(snapshot: dict[str, Any]) -> list[str]:
    """The titles as pages show them (typeset)."""
    return [typeset(i["title"]) for section in snapshot["sections"] for i in section["items"]]


def parse(text: str) -> lxml.html.HtmlElement:
    checker = StrictChecker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors[:5], checker.stack)
    return lxml.html.document_fromstring(text)


def references(doc: lxml.html.HtmlElement) -> list[str]:
    return [str(v) for v in doc.xpath(".//@href | .//@src")]


def test_preview_writes_the_email_and_the_page_of_the_draft(
    filled: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path
) -> None:
    config, store = filled
    snapshot = start_draft(config, store)
    out = tmp_path / "preview"

    result = cli(config, "issue", "preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["email.html", "email.txt", "page.html"]
    for name in ("email.html", "email.txt", "page.html"):
        assert f"wrote {out / name}" in result.output

    doc = parse((out / "page.html").read_text("utf-8"))
    assert doc.get("lang") == "fr"
    main = doc.xpath("//main")[0]
    assert main.xpath("string(.//h1)") == typeset(snapshot["title"])
    assert [h.text_content() for h in main.xpath(".//*[@class='item-title']")] == titles(snapshot)
    assert "voici la revue de la semaine" in " ".join(main.text_content().split())
    assert f"n°\u00a0{snapshot['number']}" in main.xpath("string(.//p[@class='kicker'])")
    # The theme's stylesheet is in the page; nothing is loaded from elsewhere.
    assert not doc.xpath(
        "//link[@rel='stylesheet'] | //script[@src and not(starts-with(@src, 'data:'))]"
    )
    css = (TEMPLATES_ROOT / "archive" / "static" / "style.css").read_text("utf-8")
    assert ".site-header" in css and css.strip() in doc.xpath("string(//style)")
    # Every reference resolves from a folder: absolute, inline data or in the page.
    refs = references(doc)
    assert refs and all(
        r.startswith(("https://", "http://", "mailto:", "data:", "#")) for r in refs
    )
    archive_links = [r for r in refs if r.startswith(BASE_URL)]
    assert f"{BASE_URL}a-propos/#abonnement" in archive_links
    assert f"{BASE_URL}rubriques/signatures/" in archive_links
    assert not any("static/" in r or "pagefind" in r or "recherche" in r for r in refs)
    # A draft's address does not exist yet: no canonical link, not indexed.
    assert not doc.xpath("//link[@rel='canonical']")
    assert doc.xpath("//meta[@name='robots']/@content") == ["noindex"]


def test_published_page_shows_what_the_built_site_shows(
    filled: tuple[Config, Store], tmp_path: Path
) -> None:
    config, store = filled
    start_draft(config, store)
    issues.publish(config, store, actor="test")
    snapshot = issues.get_snapshot(store, 1)
    build_archive(config, store, out_dir=tmp_path / "site", search_index=False)
    built = parse((tmp_path / "site" / "numeros" / "1" / "index.html").read_text("utf-8"))
    preview = parse(render_issue_page(config, snapshot))

    built_main, preview_main = built.xpath("//main")[0], preview.xpath("//main")[0]

    def cards(main: lxml.html.HtmlElement, page_url: str) -> list[tuple[str | None, str, str]]:
        return [
            (h.get("id"), h.text_content(), urljoin(page_url, h.xpath("string(a/@href)")))
            for h in main.xpath(".//*[@class='item-title']")
        ]

    page_url = issue_url(BASE_URL, 1)
    assert cards(preview_main, page_url) == cards(built_main, page_url)
    assert [c[1] for c in cards(preview_main, page_url)] == titles(snapshot)
    assert " ".join(preview_main.text_content().split()) == " ".join(
        built_main.text_content().split()
    )
    # Same links once the built page's relative ones are resolved at its address.
    resolved = [urljoin(page_url, r) for r in references(preview_main)]
    assert [urljoin(page_url, r) for r in references(built_main)] == resolved
    assert all(r.startswith(("https://", "#")) for r in references(preview_main))
    assert preview.xpath("//link[@rel='canonical']/@href") == [page_url]
    assert preview.findtext(".//title") == built.findtext(".//title")


def test_a_broken_archive_template_writes_no_preview(
    filled: tuple[Config, Store],
    make_config: Callable[..., Config],
    cli: Callable[..., Any],
    tmp_path: Path,
) -> None:
    config, store = filled
    start_draft(config, store)
    theme = tmp_path / "theme" / "archive"
    theme.mkdir(parents=True)
    (theme / "issue.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}{{ issue.nope }}{% endblock %}',
        encoding="utf-8",
    )
    broken = make_config(
        database_url=config.database_url,
        feeds=[{"name": f.name, "url": f.url} for f in config.feeds],
        templates_dir=str(tmp_path / "theme"),
    )
    out = tmp_path / "preview"
    result = cli(broken, "issue", "preview", "--out", str(out))
    assert result.exit_code != 0
    assert "issue.html.j2" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_snapshot_without_a_number_is_refused(filled: tuple[Config, Store]) -> None:
    config, store = filled
    snapshot = start_draft(config, store)
    with pytest.raises(RenderError, match="no valid number"):
        render_issue_page(config, {**snapshot, "number": None})


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (chromium) is not installed")
def test_preview_page_is_styled_when_opened_as_a_file(
    filled: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path
) -> None:
    config, store = filled
    start_draft(config, store)
    out = tmp_path / "preview"
    assert cli(config, "issue", "preview", "--out", str(out)).exit_code == 0
    png = tmp_path / "page.png"
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1600",
        f"--screenshot={png}", (out / "page.html").resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    width, _height, rows = png_pixels(png)
    channels = len(rows[0]) // width
    # The header band of the theme (background #f3f5f8): the stylesheet applied.
    assert tuple(rows[10][10 * channels : 10 * channels + 3]) == (0xF3, 0xF5, 0xF8)
    assert distinct_colours(png) > 50
    keep = os.environ.get("PRESSREVIEW_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / "preview-page.png")
