"""The archive at the end of the real pipeline: collect → select → publish → build."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import feedparser
import lxml.html
from fixtures_archive import check_links, check_page, html_pages
from sqlalchemy import select

from pressreview import curate, issues
from pressreview.archive import build_archive
from pressreview.collect import collect
from pressreview.config import Config
from pressreview.store import Store
from pressreview.store.schema import items
from pressreview.typography import typeset
from pressreview.urls import issue_url

DEMO = ["presse-hdf.xml", "courrier-picardie.xml", "prefecture-hdf.xml"]


def test_published_issues_appear_in_the_archive(
    make_config: Callable[..., Config],
    store_url: str,
    demo_feed_url: Callable[[str], str],
    store_for: Callable[[Config], Store],
) -> None:
    feeds = [{"name": name.removesuffix(".xml"), "url": demo_feed_url(name)} for name in DEMO]
    config = make_config(database_url=store_url, feeds=feeds)
    store = store_for(config)
    for feed in feeds:
        assert [s.status for s in collect(config, store, only=[feed["name"]]).sources] == ["ok"]
    with store.connect() as conn:
        rows = conn.execute(
            select(items.c.id, items.c.title)
            .where(items.c.status == "new", items.c.duplicate_of.is_(None))
            .order_by(items.c.id)
        ).all()
    assert len(rows) >= 6
    first, second = [r.id for r in rows[:3]], [r.id for r in rows[3:6]]

    curate.select_items(store, first, section="signatures", actor="test")
    issues.new_draft(
        config, store, title="Premier numéro", intro_md="Bonjour *tout le monde*.", actor="test"
    )
    one = issues.publish(config, store, actor="test", now=datetime(2026, 11, 16, 7, tzinfo=UTC))
    report = build_archive(config, store)
    site = config.resolve(config.archive.out_dir)
    assert report.issues == 1

    curate.select_items(store, second, section="vie-des-quartiers", actor="test")
    issues.new_draft(config, store, title="Deuxième numéro", actor="test")
    two = issues.publish(config, store, actor="test", now=datetime(2026, 11, 23, 7, tzinfo=UTC))
    first_page = (site / "numeros/1/index.html").read_bytes()
    report = build_archive(config, store)
    assert report.issues == 2 and report.search
    assert (site / "numeros/1/index.html").read_bytes() == first_page
    assert "numeros/1/index.html" not in report.written_paths

    # The email's "view in your browser" link is the issue's page.
    for snapshot in (one, two):
        number = snapshot["number"]
        assert snapshot["archive_url"] == issue_url(config.archive.base_url, number)
        page = site / snapshot["archive_url"].removeprefix(config.archive.base_url) / "index.html"
        doc = check_page(page, site)
        shown = doc.xpath("//article/h3/a/text()")
        expected = [typeset(i["title"]) for s in snapshot["sections"] for i in s["items"]]
        assert shown == expected
    doc = lxml.html.document_fromstring((site / "numeros/1/index.html").read_bytes())
    assert "Bonjour" in doc.xpath("//div[@class='intro']")[0].text_content()
    assert "lundi 16\u00a0novembre 2026" in doc.text_content()
    feed = feedparser.parse((site / "atom.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Deuxième numéro", "Premier numéro"]
    for page in html_pages(site):
        check_page(page, site)
    assert check_links(site) > 20
