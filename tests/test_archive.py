"""The public web archive, built from published issues in a real store.

Fixture issues are published rows whose snapshots follow the contract
(fixtures_archive.py); the end-to-end test publishes through the real
collect → select → publish path.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import lxml.html
import pytest
from fixtures_archive import (
    add_draft,
    build_folders,
    check_links,
    check_page,
    html_pages,
    insert_published,
    item_entry,
    make_snapshot,
    touch_draft,
    weekly_snapshots,
)

from pressreview.archive import BuildReport, build_archive
from pressreview.archive.serve import make_server
from pressreview.config import Config
from pressreview.errors import NotFound, RenderError, UsageError
from pressreview.signup import drain_confirmations
from pressreview.store import Store
from pressreview.subscribers import get_subscriber
from pressreview.typography import typeset
from pressreview.urls import issue_url
from pressreview.web import create_app
from tests.fixtures_deliver import SECRET


@pytest.fixture
def archive_config(make_config: Callable[..., Config], store_url: str) -> Config:
    return make_config(
        database_url=store_url, archive={"base_url": "https://veille.example.org/", "per_page": 5}
    )


@pytest.fixture
def sqlite_archive_config(make_config: Callable[..., Config]) -> Config:
    return make_config(archive={"base_url": "https://veille.example.org/", "per_page": 5})


@pytest.fixture
def store(archive_config: Config, store_for: Callable[[Config], Store]) -> Store:
    return store_for(archive_config)


@pytest.fixture
def sqlite_store(sqlite_archive_config: Config, store_for: Callable[[Config], Store]) -> Store:
    return store_for(sqlite_archive_config)


def site_dir(config: Config) -> Path:
    return config.resolve(config.archive.out_dir)


# -- building ------------------------------------------------------------------


def test_site_from_published_issues(archive_config: Config, store: Store) -> None:
    insert_published(store, weekly_snapshots(23, start=date(2025, 11, 3)))
    add_draft(store, "Brouillon secret à ne pas publier")
    report = build_archive(archive_config, store, search_index=False)
    site = site_dir(archive_config)
    assert isinstance(report, BuildReport)
    assert report.issues == 23 and report.latest_issue == 23
    assert site.is_symlink() and report.build_dir.is_dir()
    expected = [
        "index.html",
        "page/2/index.html",
        "page/5/index.html",
        "numeros/1/index.html",
        "numeros/23/index.html",
        "rubriques/index.html",
        "rubriques/signatures/index.html",
        "rubriques/signatures/2025/index.html",
        "rubriques/signatures/2026/index.html",
        "rubriques/autres/index.html",
        "territoires/index.html",
        "territoires/amiens-metropole/index.html",
        "territoires/metropole-europeenne-de-lille/index.html",
        "a-propos/index.html",
        "recherche/index.html",
        "404.html",
        "atom.xml",
        "sitemap.xml",
        "robots.txt",
    ]
    for path in expected:
        assert (site / path).is_file(), path
    assert not (site / "page/6").exists() and not (site / "numeros/24").exists()
    for page in html_pages(site):
        assert "Brouillon secret" not in page.read_text("utf-8")
    # Hashed static assets, referenced by every page.
    css = list((site / "static").glob("style.*.css"))
    assert len(css) == 1 and re.fullmatch(r"style\.[0-9a-f]{10}\.css", css[0].name)
    assert f"static/{css[0].name}" in (site / "numeros/3/index.html").read_text("utf-8")
    # The home page: the latest issue first, then the list, newest first.
    home = (site / "index.html").read_text("utf-8")
    assert home.index("Dernier numéro") < home.index("Tous les numéros")
    listed = re.findall(r'href="numeros/(\d+)/"><span class="issue-number">', home)
    assert listed == ["23", "22", "21", "20", "19"]
    # Pages of the list are counted from the first issue, so that they stay the same.
    page5 = (site / "page/5/index.html").read_text("utf-8")
    assert re.findall(r'href="\.\./\.\./numeros/(\d+)/"><span', page5) == ["23", "22", "21"]
    page1 = (site / "page/1/index.html").read_text("utf-8")
    assert re.findall(r'href="\.\./\.\./numeros/(\d+)/"><span', page1) == ["5", "4", "3", "2", "1"]
    assert 'href="page/1/">n<sup>os</sup>&nbsp;1 à 5</a>' in home
    # Items of a section, newest first across issues; year pages.
    section = lxml.html.document_fromstring((site / "rubriques/signatures/index.html").read_bytes())
    dates = section.xpath("//article//p[@class='item-meta']/time/@datetime")
    assert dates and dates == sorted(dates, reverse=True)
    year_page = (site / "rubriques/signatures/2025/index.html").read_text("utf-8")
    assert "2026-" not in "".join(
        re.findall(r'datetime="([^"]+)"', year_page.split("Paru dans")[0])
    )


def test_every_page_parses_and_every_internal_link_resolves(
    archive_config: Config, store: Store
) -> None:
    insert_published(store, weekly_snapshots(12, start=date(2025, 12, 1)))
    report = build_archive(archive_config, store)
    site = site_dir(archive_config)
    assert report.search, report.search_note
    pages = html_pages(site)
    assert len(pages) > 25
    for page in pages:
        check_page(page, site)
    assert check_links(site) > 200
    # The issue page links its items to their articles and its territories to their pages.
    doc = check_page(site / "numeros/12/index.html", site)
    assert doc.xpath("//main/@data-pagefind-body") == [""]
    titles = doc.xpath("//article/h3/a/@href")
    assert titles and all(t.startswith("https://presse.example.com/") for t in titles)


def test_links_resolve_under_a_sub_path(
    sqlite_archive_config: Config, sqlite_store: Store, tmp_path: Path
) -> None:
    insert_published(sqlite_store, weekly_snapshots(4))
    out = tmp_path / "www" / "veille"
    report = build_archive(
        sqlite_archive_config,
        sqlite_store,
        out_dir=out,
        base_url="https://www.example.org/veille",
        search_index=False,
    )
    assert report.base_url == "https://www.example.org/veille/"
    assert check_links(out, "/veille/") > 50
    not_found = (out / "404.html").read_text("utf-8")
    assert 'href="/veille/rubriques/"' in not_found
    canonical = lxml.html.document_fromstring((out / "numeros/2/index.html").read_bytes())
    assert canonical.xpath("//link[@rel='canonical']/@href") == [
        "https://www.example.org/veille/numeros/2/"
    ]
    assert (
        issue_url("https://www.example.org/veille", 2)
        == "https://www.example.org/veille/numeros/2/"
    )


def test_issue_page_content_in_french(sqlite_archive_config: Config, sqlite_store: Store) -> None:
    snap = make_snapshot(12, date(2026, 11, 23), items_per_issue=7)
    insert_published(sqlite_store, [snap])
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    text = (site / "numeros/12/index.html").read_text("utf-8")
    assert "lundi 23\u00a0novembre 2026" in text
    assert "Revue de presse n°&nbsp;12" in text
    first = snap["sections"][0]["items"][0]
    assert f'id="article-{first["id"]}"' in text
    assert "Également couvert par" in text and "https://autre.example.net/articles/12000" in text
    assert "7&nbsp;articles" in (site / "index.html").read_text("utf-8")
    doc = lxml.html.document_fromstring(text)
    assert doc.xpath("//meta[@property='og:type']/@content") == ["article"]
    assert doc.xpath("//meta[@property='og:url']/@content") == [
        "https://veille.example.org/numeros/12/"
    ]
    assert "contrats de ville" in doc.xpath("//div[@class='intro']")[0].text_content()


def test_feed_content_is_escaped_and_sanitized(
    sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    evil = item_entry(7, date(2026, 3, 1))
    evil["title"] = "Titre <script>alert('titre')</script> & co"
    evil["excerpt"] = ""
    evil["summary_html"] = (
        '<p onclick="x()">Résumé<script>alert(1)</script><img src=x onerror=y></p>'
    )
    evil["url"] = "https://presse.example.com/a?b=1&c=2"
    snap = make_snapshot(1, date(2026, 3, 2), extra_item=evil, items_per_issue=2)
    snap["intro_html"] = "<p>Intro<script>alert(2)</script></p>"
    insert_published(sqlite_store, [snap])
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    for path in (
        "numeros/1/index.html",
        "index.html",
        "rubriques/signatures/index.html",
        "atom.xml",
    ):
        text = (site / path).read_text("utf-8")
        assert "<script>alert" not in text, path
        assert "onclick" not in text and "onerror" not in text, path
    page = (site / "numeros/1/index.html").read_text("utf-8")
    assert "Titre &lt;script&gt;alert(&#39;titre&#39;)&lt;/script&gt; &amp; co" in page
    assert 'href="https://presse.example.com/a?b=1&amp;c=2"' in page
    feed = feedparser.parse((site / "atom.xml").read_bytes())
    assert not feed.bozo
    assert "<script" not in feed.entries[0].content[0].value


# -- the Atom feed, sitemap, robots.txt --------------------------------------------


def test_atom_feed_round_trips_through_feedparser(archive_config: Config, store: Store) -> None:
    snapshots = weekly_snapshots(25, start=date(2025, 6, 2))
    insert_published(store, snapshots)
    build_archive(archive_config, store, search_index=False)
    site = site_dir(archive_config)
    feed = feedparser.parse((site / "atom.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == archive_config.archive.title
    assert feed.feed.language == "fr"
    assert feed.feed.id == "https://veille.example.org/"
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [
        "https://veille.example.org/atom.xml"
    ]
    assert len(feed.entries) == 20
    newest = feed.entries[0]
    snap = snapshots[-1]
    assert newest.title == typeset(snap["title"])
    assert newest.link == "https://veille.example.org/numeros/25/"
    assert newest.id == f"tag:veille.example.org,{snap['date']}:numeros/25"
    assert newest.published_parsed[:3] == tuple(int(x) for x in snap["date"].split("-"))
    html = newest.content[0].value
    for section in snap["sections"]:
        for item in section["items"]:
            assert item["url"].replace("&", "&amp;") in html
            assert typeset(item["title"]) in html
    assert 'href="https://veille.example.org/territoires/' in html  # absolute links in entries
    assert [e.link for e in feed.entries][-1] == "https://veille.example.org/numeros/6/"
    # Ids are stable: rebuilding with a new issue keeps the old entries' ids.
    ids = {e.link: e.id for e in feed.entries}
    insert_published(store, [make_snapshot(26, date(2025, 12, 1))])
    build_archive(archive_config, store, search_index=False)
    again = feedparser.parse((site / "atom.xml").read_bytes())
    assert again.entries[0].link == "https://veille.example.org/numeros/26/"
    for entry in again.entries[1:]:
        assert ids[entry.link] == entry.id


def test_sitemap_and_robots(sqlite_archive_config: Config, sqlite_store: Store) -> None:
    insert_published(sqlite_store, weekly_snapshots(3))
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ET.fromstring((site / "sitemap.xml").read_bytes())
    locs = {
        u.findtext("s:loc", namespaces=ns): u.findtext("s:lastmod", namespaces=ns)
        for u in root.findall("s:url", ns)
    }
    assert locs["https://veille.example.org/numeros/3/"] == "2025-01-20"
    assert "https://veille.example.org/" in locs and "https://veille.example.org/a-propos/" in locs
    assert not any("404" in loc for loc in locs)
    for loc in locs:
        path = loc.removeprefix("https://veille.example.org/")
        assert (site / path / "index.html").is_file(), loc
    robots = (site / "robots.txt").read_text()
    assert "Sitemap: https://veille.example.org/sitemap.xml" in robots


# -- incremental and atomic builds -------------------------------------------------


def test_issue_pages_unchanged_when_unrelated_data_changes(
    archive_config: Config, store: Store
) -> None:
    insert_published(store, weekly_snapshots(8, start=date(2025, 9, 1)))
    add_draft(store)
    build_archive(archive_config, store, search_index=False)
    site = site_dir(archive_config)
    before = {n: (site / f"numeros/{n}/index.html").read_bytes() for n in range(1, 9)}
    inodes = {n: (site / f"numeros/{n}/index.html").stat().st_ino for n in range(1, 9)}
    # Unrelated changes: a draft edited, a new issue published (new items, sections, territories).
    touch_draft(store, "Un autre titre de brouillon")
    extra = item_entry(99001, date(2025, 10, 30))
    extra["territories"] = ["Nouvelle Communauté d'agglomération"]
    insert_published(store, [make_snapshot(9, date(2025, 11, 3), extra_item=extra)])
    report = build_archive(archive_config, store, search_index=False)
    for n in range(1, 9):
        page = site / f"numeros/{n}/index.html"
        assert page.read_bytes() == before[n], n
        assert page.stat().st_ino == inodes[n], f"numeros/{n}/ was rewritten"
        assert f"numeros/{n}/index.html" not in report.written_paths
    assert "numeros/9/index.html" in report.written_paths
    assert "index.html" in report.written_paths  # the home page lists the new issue
    assert "page/2/index.html" in report.written_paths  # the last page of the list, 6 to 9
    assert "page/1/index.html" not in report.written_paths  # full: never changes
    assert "territoires/nouvelle-communaute-d-agglomeration/index.html" in report.written_paths
    # The issue before the new one links back, never forward: nothing to change in it.
    assert "numeros/9/" not in before[8].decode()
    assert 'href="../../numeros/8/" rel="prev"' in (site / "numeros/9/index.html").read_text(
        "utf-8"
    )


def test_rebuild_without_changes_writes_nothing(
    sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    insert_published(sqlite_store, weekly_snapshots(5))
    first = build_archive(sqlite_archive_config, sqlite_store)
    second = build_archive(sqlite_archive_config, sqlite_store)
    assert first.written == first.files and first.volumes_indexed == 1
    assert second.written == 0 and second.reused == second.files
    assert second.volumes_indexed == 0 and second.volumes_reused == 1
    assert second.build_dir != first.build_dir
    # The build before the live one is kept; older ones are removed.
    third = build_archive(sqlite_archive_config, sqlite_store)
    folders = build_folders(site_dir(sqlite_archive_config))
    assert folders == sorted([second.build_dir.name, third.build_dir.name])


def test_search_reindexes_only_the_year_of_the_new_issue(
    sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    insert_published(sqlite_store, weekly_snapshots(6, start=date(2025, 12, 1)))
    first = build_archive(sqlite_archive_config, sqlite_store)
    assert first.search and first.volumes_indexed == 2  # 2025 and 2026
    site = site_dir(sqlite_archive_config)
    old_index = next((site / "pagefind/2025").glob("pagefind-entry.json"))
    inode = old_index.stat().st_ino
    insert_published(sqlite_store, [make_snapshot(7, date(2026, 1, 12))])
    second = build_archive(sqlite_archive_config, sqlite_store)
    assert (second.volumes_indexed, second.volumes_reused) == (1, 1)
    assert (site / "pagefind/2025/pagefind-entry.json").stat().st_ino == inode
    search_page = (site / "recherche/index.html").read_text("utf-8")
    assert 'data-volumes="2026,2025"' in search_page
    assert (site / "pagefind/2026/pagefind-ui.js").is_file()


def test_template_change_rebuilds_every_page(
    sqlite_archive_config: Config,
    sqlite_store: Store,
    make_config: Callable[..., Config],
    tmp_path: Path,
) -> None:
    insert_published(sqlite_store, weekly_snapshots(3))
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    old_css = next((site / "static").glob("style.*.css")).name
    theme = tmp_path / "theme" / "archive" / "static"
    theme.mkdir(parents=True)
    default_css = Path(__file__).resolve().parent.parent / "templates/archive/static/style.css"
    theme.joinpath("style.css").write_text(default_css.read_text("utf-8") + "\n/* local */\n")
    config = make_config(
        archive={"base_url": "https://veille.example.org/", "per_page": 5}, templates_dir="theme"
    )
    report = build_archive(config, sqlite_store, search_index=False)
    new_css = next((site / "static").glob("style.*.css")).name
    assert new_css != old_css  # the content hash is in the name
    pages = [p.relative_to(site).as_posix() for p in html_pages(site)]
    assert set(pages) <= set(report.written_paths)  # the theme is an input of every page
    assert "static/search." not in " ".join(report.written_paths)  # unchanged asset: linked
    assert f"static/{new_css}" in (site / "numeros/1/index.html").read_text("utf-8")
    assert "/* local */" in (site / "static" / new_css).read_text("utf-8")


def test_failed_build_leaves_previous_site(
    sqlite_archive_config: Config,
    sqlite_store: Store,
    make_config: Callable[..., Config],
    tmp_path: Path,
) -> None:
    insert_published(sqlite_store, weekly_snapshots(3))
    first = build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    before = {p: p.read_bytes() for p in html_pages(site)}
    broken = tmp_path / "theme" / "archive"
    broken.mkdir(parents=True)
    (broken / "issue.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}{{ issue.no_such_field }}{% endblock %}'
    )
    config = make_config(
        archive={"base_url": "https://veille.example.org/", "per_page": 5}, templates_dir="theme"
    )
    insert_published(sqlite_store, [make_snapshot(4, date(2025, 2, 3))])
    with pytest.raises(RenderError, match=r"issue\.html\.j2"):
        build_archive(config, sqlite_store, search_index=False)
    assert site.resolve() == first.build_dir
    assert {p: p.read_bytes() for p in html_pages(site)} == before
    assert build_folders(site) == [first.build_dir.name]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pressreview.config import load_config
from pressreview.store import open_store
from pressreview.archive import build_archive
config = load_config({config!r})
store = open_store(config)
build_archive(config, store, search_index=False,
              progress=lambda message: print(message, flush=True))
print("finished", flush=True)
"""


@pytest.mark.slow
def test_kill_during_build_leaves_previous_site(
    sqlite_archive_config: Config, sqlite_store: Store, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    insert_published(sqlite_store, weekly_snapshots(2))
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    insert_published(sqlite_store, [make_snapshot(3, date(2025, 1, 20))])
    # Two builds: the killed one recycles the folder of the first, not the live one.
    first = build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    # Enough new issues that the build takes seconds, then kill -9 once pages are being written.
    more = [
        make_snapshot(n, date(2025, 1, 6).replace(year=2025 + n // 52), items_per_issue=40)
        for n in range(4, 300)
    ]
    insert_published(sqlite_store, more)
    script = tmp_path / "build.py"
    script.write_text(
        KILL_SCRIPT.format(tests=str(Path(__file__).parent), config=str(sqlite_archive_config.path))
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("building into "), line
        new_dir = Path(line.removeprefix("building into ").strip())
        deadline = time.monotonic() + 120
        while sum(1 for _ in new_dir.rglob("*.html")) < 20:
            assert process.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert new_dir.is_dir()  # half-built, and not served
    assert site.resolve() == first.build_dir
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before
    assert check_links(site) > 20
    # The next build cleans up the remains and publishes everything.
    report = build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    assert not new_dir.exists()
    assert report.issues == 299 and (site / "numeros/299/index.html").is_file()


def test_output_folder_not_made_by_the_builder_is_refused(
    sqlite_archive_config: Config, sqlite_store: Store, tmp_path: Path
) -> None:
    insert_published(sqlite_store, weekly_snapshots(1))
    precious = tmp_path / "www"
    precious.mkdir()
    (precious / "index.html").write_text("mon site")
    with pytest.raises(UsageError, match="not made by `pressreview archive build`"):
        build_archive(sqlite_archive_config, sqlite_store, out_dir=precious, search_index=False)
    assert (precious / "index.html").read_text() == "mon site"
    assert list(precious.iterdir()) == [precious / "index.html"]
    empty = tmp_path / "empty"
    empty.mkdir()
    build_archive(sqlite_archive_config, sqlite_store, out_dir=empty, search_index=False)
    assert empty.is_symlink() and (empty / "numeros/1/index.html").is_file()
    with pytest.raises(UsageError, match="not an http"):
        build_archive(sqlite_archive_config, sqlite_store, base_url="ftp://x", search_index=False)


def test_empty_archive_builds(sqlite_archive_config: Config, sqlite_store: Store) -> None:
    report = build_archive(sqlite_archive_config, sqlite_store)
    site = site_dir(sqlite_archive_config)
    assert report.issues == 0 and report.latest_issue is None
    assert "Aucun numéro n’a encore été publié" in (site / "index.html").read_text("utf-8")
    feed = feedparser.parse((site / "atom.xml").read_bytes())
    assert not feed.bozo and feed.entries == []
    for page in html_pages(site):
        check_page(page, site)
    check_links(site)


def test_search_disabled_when_pagefind_is_missing(
    sqlite_archive_config: Config,
    sqlite_store: Store,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    insert_published(sqlite_store, weekly_snapshots(2))
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(tmp_path / "no-such-pagefind"))
    report = build_archive(sqlite_archive_config, sqlite_store)
    assert not report.search and "search disabled" in report.search_note
    site = site_dir(sqlite_archive_config)
    assert not (site / "pagefind").exists()
    assert "La recherche n’est pas disponible" in (site / "recherche/index.html").read_text("utf-8")
    assert 'href="recherche/"' not in (site / "index.html").read_text("utf-8")
    check_links(site)


def test_the_archive_subscribe_form_subscribes_through_the_web_app(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], tmp_path: Path
) -> None:
    """The about page's real form, submitted as a browser would, reaches a route that serves it."""
    config = make_config(
        web={"base_url": "https://veille.example.org/abonnement/"},
        delivery={"outbox_dir": str(tmp_path / "outbox")},
    )
    store = store_for(config)
    build_archive(config, store, search_index=False)
    about = lxml.html.document_fromstring((site_dir(config) / "a-propos/index.html").read_bytes())
    form = about.xpath("//form[@class='subscribe']")[0]
    assert form.get("method") == "post"
    assert form.xpath(".//input[@type='email'][@name='email'][@required]")
    action = urlsplit(form.get("action"))
    assert (action.scheme, action.netloc) == ("https", "veille.example.org")
    fields = {field.get("name"): field.get("value") or "" for field in form.xpath(".//input")}
    fields.update(email="lecteur@example.fr", name="Un lecteur")
    environ = {"PRESSREVIEW_SECRET_KEY": SECRET}
    client = create_app(config, store, environ=environ, background=False).test_client()
    page_origin = urlsplit(config.archive.base_url)  # the browser sends the page's origin
    answer = client.post(
        action.path,
        data=fields,
        base_url=f"{action.scheme}://{action.netloc}",
        headers={"Origin": f"{page_origin.scheme}://{page_origin.netloc}"},
    )
    assert answer.status_code == 200, answer.text
    assert "Vérifiez votre messagerie" in answer.text
    assert drain_confirmations(config, store, environ=environ).sent == 1
    assert get_subscriber(store, "lecteur@example.fr").status == "pending"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    unconfigured = make_config(web={})
    build_archive(unconfigured, store, search_index=False)
    about_text = (site_dir(unconfigured) / "a-propos/index.html").read_text("utf-8")
    assert "<form" not in about_text and "mailto:contact@crpv.example.org" in about_text


# -- the command line and the local server -------------------------------------------


def test_cli_build_and_errors(
    sqlite_archive_config: Config, sqlite_store: Store, cli: Any, tmp_path: Path
) -> None:
    insert_published(sqlite_store, weekly_snapshots(2))
    out = tmp_path / "public"
    result = cli(
        sqlite_archive_config,
        "archive",
        "build",
        "--out",
        str(out),
        "--base-url",
        "https://archive.example.net/revue/",
        "--no-search",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["issues"] == 2 and data["out_dir"] == str(out)
    assert data["base_url"] == "https://archive.example.net/revue/"
    assert "https://archive.example.net/revue/numeros/2/" in (out / "sitemap.xml").read_text()
    result = cli(sqlite_archive_config, "archive", "build")
    assert result.exit_code == 0, result.output
    assert "2 issue(s)" in result.output and "search:" in result.output
    bad = cli(sqlite_archive_config, "archive", "build", "--base-url", "veille.example.org")
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "Error: base URL 'veille.example.org': not an http(s) URL (e.g. https://veille.example.org/)"
    ]
    missing = cli(None, "archive", "serve", "--dir", str(tmp_path / "nothing"))
    assert missing.exit_code == 1 and "build it first" in missing.output


@pytest.fixture
def served(sqlite_archive_config: Config, sqlite_store: Store) -> Iterator[str]:
    insert_published(sqlite_store, weekly_snapshots(3))
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    server = make_server(site_dir(sqlite_archive_config), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_shows_pages_and_the_404_page(
    served: str, sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    with urllib.request.urlopen(served + "numeros/2/") as response:
        assert response.status == 200
        assert typeset("Quartiers 2030 : point d’étape n° 2") in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(served + "numeros/999/")
    assert info.value.code == 404
    assert "Page introuvable" in info.value.read().decode()
    # A rebuild is served at once: the server follows the switched folder.
    insert_published(sqlite_store, [make_snapshot(4, date(2025, 2, 3))])
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    with urllib.request.urlopen(served + "numeros/4/") as response:
        assert response.status == 200


def test_serve_refuses_a_folder_without_a_site(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="build it first"):
        make_server(tmp_path, port=0)


def test_build_report_paths_are_absolute(
    sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    report = build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    assert report.out_dir.is_absolute() and os.path.isabs(report.build_dir)
    assert report.as_dict()["out_dir"] == str(report.out_dir)


def test_bad_snapshot_is_one_clear_error_and_the_site_stays(
    sqlite_archive_config: Config, sqlite_store: Store
) -> None:
    insert_published(sqlite_store, weekly_snapshots(2))
    first = build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    broken = make_snapshot(3, date(2025, 1, 20))
    del broken["title"]
    insert_published(sqlite_store, [broken])
    with pytest.raises(RenderError, match=r"^issue 3: the published snapshot has no 'title'"):
        build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    site = site_dir(sqlite_archive_config)
    assert site.resolve() == first.build_dir
    assert not (site / "numeros/3").exists()


def test_settings_used_by_one_page_rewrite_only_that_page(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> None:
    archive = {"base_url": "https://veille.example.org/", "per_page": 5}
    config = make_config(archive=archive, web={"base_url": "https://a.example.org/"})
    store = store_for(config)
    insert_published(store, weekly_snapshots(4))
    build_archive(config, store, search_index=False)
    other = make_config(archive=archive, web={"base_url": "https://b.example.org/"})
    report = build_archive(other, store, search_index=False)
    assert report.written_paths == ["a-propos/index.html"]
    about = (site_dir(other) / "a-propos/index.html").read_text("utf-8")
    assert 'action="https://b.example.org/"' in about


def test_one_build_at_a_time(
    sqlite_archive_config: Config, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from pressreview.archive import output
    from pressreview.errors import Conflict

    site = site_dir(sqlite_archive_config)
    builds = site.parent / ".site.builds"
    builds.mkdir()
    monkeypatch.setattr(output, "LOCK_WAIT_SECONDS", 0.3)
    with open(builds / ".lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="another archive build"):
            build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    assert not site.exists()
    build_archive(sqlite_archive_config, sqlite_store, search_index=False)
    assert (site / "index.html").is_file()


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_incremental_builds_give_the_same_site_as_a_full_build(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], tmp_path: Path
) -> None:
    two = make_config(archive={"base_url": "https://veille.example.org/", "per_page": 2})
    store = store_for(two)
    insert_published(store, weekly_snapshots(6, start=date(2025, 12, 8)))
    build_archive(two, store)
    insert_published(store, [make_snapshot(7, date(2026, 1, 19))])
    build_archive(two, store)
    assert sorted(p.name for p in (site_dir(two) / "page").iterdir()) == ["1", "2", "3", "4"]
    # Another page size: the third build recycles the first one's folder, which
    # must lose the list pages that no longer exist.
    five = make_config(archive={"base_url": "https://veille.example.org/", "per_page": 5})
    third = build_archive(five, store)
    site = site_dir(five)
    live_then = _files(site)
    insert_published(store, [make_snapshot(8, date(2026, 1, 26))])
    fourth = build_archive(five, store)
    assert fourth.kept > 0  # the second build's folder was recycled
    # The build that was live is kept, and was not changed through shared links.
    assert _files(third.build_dir) == live_then
    fresh = tmp_path / "fresh"
    build_archive(five, store, out_dir=fresh)
    incremental, full = _files(site), _files(fresh)
    assert sorted(incremental) == sorted(full)
    differing = [p for p in full if incremental[p] != full[p] and not p.startswith("pagefind/")]
    assert differing == []
    assert sorted(p.name for p in (site / "page").iterdir()) == ["1", "2"]
