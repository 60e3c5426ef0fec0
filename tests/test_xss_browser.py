"""Hostile feed content, end to end: collect → publish → email + archive, clicked in Chromium.

Seventeen usual XSS vectors go in every field a feed controls (title, author,
category, summary, link). The issue is published, the email rendered and the
archive built and served; headless Chromium loads the email and every archive
page that shows the items, clicks every link of the articles, and checks that
no payload ran: no dialog, and the flag every payload sets stays unset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from test_archive_browser import CHROMIUM, CHROMIUM_ARGS

from pressreview import curate, issues
from pressreview.archive import build_archive
from pressreview.archive.serve import make_server
from pressreview.collect import collect
from pressreview.config import Config
from pressreview.render import render_email
from pressreview.store import Store
from pressreview.store.schema import items
from pressreview.text import safe_url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (chromium) is not installed"),
]

RUN = "window.__xss=1;alert(1)"
VECTORS = [
    f"javascript:{RUN}",
    f"JaVaScRiPt:{RUN}",
    "data:text/html;base64,PHNjcmlwdD53aW5kb3cub3BlbmVyLl9feHNzPTE7YWxlcnQoMSk8L3NjcmlwdD4=",
    "vbscript:msgbox(1)",
    f" \tjavascript:{RUN}",
    f"java\tscript:{RUN}",
    f"&#106;avascript:{RUN}",
    f'<img src=x onerror="{RUN}">',
    f'<svg onload="{RUN}">',
    f"<script>{RUN}</script>",
    f'"><script>{RUN}</script>',
    f"'><img src=x onerror={RUN}>",
    f'<iframe src="javascript:{RUN}"></iframe>',
    f'<a href="javascript:{RUN}">clic</a>',
    f'<details open ontoggle="{RUN}">',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{RUN}">',
    f'<object data="javascript:{RUN}"></object>',
]


def hostile_feed() -> str:
    entries = []
    for i, vector in enumerate(VECTORS):
        entries.append(
            f"<item><title>Contrat de ville {i} {escape(vector)}</title>"
            f'<link>{escape(vector)}</link><guid isPermaLink="false">x-{i}</guid>'
            f"<author>{escape(vector)}</author><category>{escape(vector)}</category>"
            f"<pubDate>Mon, 02 Dec 2024 10:00:00 +0100</pubDate>"
            f"<description>{escape('<p>Le contrat de ville avance. ' + vector + '</p>')}"
            f"</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Hostile</title><link>https://hostile.example/</link>{''.join(entries)}"
        "</channel></rss>"
    )


@pytest.fixture
def published(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store], tmp_path: Path,
) -> Iterator[tuple[str, str, str]]:  # fmt: skip
    """(archive URL, email HTML, email text) of an issue holding every hostile item."""
    httpserver.expect_request("/hostile.xml").respond_with_data(
        hostile_feed(), content_type="application/rss+xml"
    )
    config = make_config(feeds=[{"name": "Hostile", "url": httpserver.url_for("/hostile.xml")}])
    store = store_for(config)
    report = collect(config, store)
    assert report.sources[0].status == "ok", report.sources[0]
    with store.connect() as conn:
        ids = [r.id for r in conn.execute(select(items.c.id).order_by(items.c.id))]
    assert len(ids) == len(VECTORS)
    curate.select_items(store, ids, section="signatures", actor="test")
    issues.new_draft(config, store, title="Numéro hostile", actor="test")
    published_at = datetime(2026, 11, 16, 7, tzinfo=UTC)
    snapshot = issues.publish(config, store, actor="test", now=published_at)
    email = render_email(config, snapshot)
    build_archive(config, store)
    server = make_server(config.resolve(config.archive.out_dir), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", email.html, email.text
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _ran(page: Any) -> bool:
    try:
        return bool(page.evaluate("() => window.__xss === 1"))
    except Exception:  # navigated to an error page: nothing of ours ran there
        return False


def _check_page(browser: Any, load: Callable[[Any], None], where: str) -> int:
    """Load a page, then click each article link on a fresh load; returns the links clicked."""
    dialogs: list[str] = []

    def fresh() -> Any:
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(f"{where}: {d.message}"), d.dismiss()))
        # Nothing leaves 127.0.0.1: links to the outlets are followed no further.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "about:", "data:"))
                else route.abort()
            ),
        )
        load(page)
        page.wait_for_timeout(100)
        return page

    page = fresh()
    assert not _ran(page), f"{where}: a payload ran on load"
    count = page.locator("article a, .pr-item a").count()
    hrefs = page.eval_on_selector_all(
        "article a, .pr-item a, a", "els => els.map(e => e.getAttribute('href') || '')"
    )
    for href in hrefs:
        assert not href.strip().lower().startswith(("javascript", "data:", "vbscript")), href
    page.close()
    for index in range(count):
        page = fresh()
        link = page.locator("article a, .pr-item a").nth(index)
        link.click(no_wait_after=True, timeout=5000)
        page.wait_for_timeout(150)
        assert not _ran(page), f"{where}: a payload ran after clicking link {index}"
        page.close()
    assert dialogs == []
    return count


@pytest.mark.timeout(600)
def test_hostile_items_run_nothing_in_email_or_archive(
    published: tuple[str, str, str], browser: Any
) -> None:
    site, email_html, email_text = published
    for line in email_text.splitlines():
        assert "javascript" not in line.lower() or "Lire" not in line, line
    clicked = _check_page(browser, lambda page: page.set_content(email_html), "email")
    assert clicked >= 3  # the items whose link survived (made absolute), "also" links
    for path in ("", "numeros/1/", "rubriques/signatures/"):
        _check_page(
            browser, lambda page, p=path: page.goto(site + p, wait_until="load"), path or "home"
        )
    # atom.xml: every link in the entries' HTML is a web link or a link of the site.
    import urllib.request

    import feedparser
    import lxml.html

    with urllib.request.urlopen(site + "atom.xml") as response:
        feed = feedparser.parse(response.read(), sanitize_html=False)
    (entry,) = feed.entries
    doc = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
    links = [*doc.xpath("//@href"), *doc.xpath("//@src")]
    assert len(links) >= 3
    for link in links:
        assert safe_url(link), link


@pytest.mark.parametrize(
    "page",
    [
        f'<article><a href="javascript:{RUN}">piège</a></article>',
        f'<article><a href="#" onclick="{RUN}">piège au clic</a></article>',
        f'<img src=x onerror="{RUN}">',
    ],
)
def test_the_check_catches_a_payload_that_runs(browser: Any, page: str) -> None:
    """The detector itself: a page whose link or markup runs script fails the check."""
    with pytest.raises(AssertionError, match=r"ran|javascript|dialog|\[\]"):
        _check_page(browser, lambda p: p.set_content(page), "trap")
