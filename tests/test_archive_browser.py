"""The archive in a real headless Chromium, served over HTTP: no console error, search works.

Screenshots are kept in the test's tmp folder (and copied to
$PRESSREVIEW_SCREENSHOT_DIR when set, to look at them).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fixtures_archive import insert_published, item_entry, make_snapshot, weekly_snapshots

from pressreview import contracts
from pressreview.archive import build_archive
from pressreview.archive.serve import make_server
from pressreview.config import Config
from pressreview.store import Store

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KNOWN_TITLE = "Les bailleurs réhabilitent la résidence des Tilleuls à Creil"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (chromium) is not installed"),
]


@pytest.fixture
def site_url(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], tmp_path: Path
) -> Iterator[str]:
    """A built archive (two years of issues, so two search volumes) on a local HTTP server."""
    config = make_config(archive={"base_url": "https://veille.example.org/", "per_page": 5})
    store = store_for(config)
    snapshots = weekly_snapshots(8, start=date(2025, 11, 24))
    known = item_entry(424242, date(2025, 12, 10))
    known["title"] = KNOWN_TITLE
    known["territories"] = ["Creil Sud Oise"]
    snapshots[2] = make_snapshot(3, date(2025, 12, 8), extra_item=known)
    snapshots[-1]["contracts"] = _tracker_block(config)
    insert_published(store, snapshots)
    report = build_archive(config, store)
    assert report.search, report.search_note
    server = make_server(config.resolve(config.archive.out_dir), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _tracker_block(config: Config) -> dict[str, Any]:
    """The contrats de ville tracker as an issue freezes it: one signing with a long outlet."""
    item = {
        "id": 7,
        "title": "La MEL signe son contrat de ville et des solidarités",
        "outlet": "Préfecture de région – politique de la ville Hauts-de-France",
        "link": "https://www.example-presse.fr/mel-signe",
        "published_at": date(2024, 5, 8),
        "contract": {
            "generation": "2024-2030",
            "region": "hdf",
            "carriers": [{"siren": "200093201", "name": "MEL"}],
            "event": "signing",
            "event_date": "2024-05-07",
        },
    }
    tracker = contracts.build_tracker(config.contracts, [item])
    return contracts.snapshot_block(config, tracker, None)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _keep(png: Path) -> None:
    target = os.environ.get("PRESSREVIEW_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(target) / png.name)


def _open(browser: Any, url: str, width: int = 1200) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="networkidle")
    return page, problems


@pytest.mark.parametrize(
    "path", ["", "numeros/3/", "rubriques/signatures/", "a-propos/", "contrats-de-ville/"]
)
def test_pages_load_without_console_errors(
    site_url: str, browser: Any, path: str, tmp_path: Path
) -> None:
    page, problems = _open(browser, site_url + path)
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert page.title()
    assert not problems, problems
    png = tmp_path / f"archive-{path.strip('/').replace('/', '-') or 'home'}.png"
    page.screenshot(path=str(png), full_page=True)
    _keep(png)
    # The skip link is the first stop of the keyboard and becomes visible.
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0
    page.close()


def test_issue_page_on_a_phone(site_url: str, browser: Any, tmp_path: Path) -> None:
    page, problems = _open(browser, site_url + "numeros/3/", width=375)
    assert not problems, problems
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone"
    assert page.locator("h3#article-424242 a").inner_text() == KNOWN_TITLE
    png = tmp_path / "archive-issue-375.png"
    page.screenshot(path=str(png), full_page=True)
    _keep(png)
    page.close()


def test_tracker_page_on_a_phone(site_url: str, browser: Any, tmp_path: Path) -> None:
    page, problems = _open(browser, site_url + "contrats-de-ville/", width=375)
    assert not problems, problems
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the tracker page scrolls sideways on a phone"
    row = page.locator("tr.status-signed")
    assert row.locator("th").inner_text() == "Métropole européenne de Lille"
    assert row.locator("a").get_attribute("href") == "https://www.example-presse.fr/mel-signe"
    assert page.locator("nav a[aria-current=page]").inner_text() == "Contrats de ville"
    png = tmp_path / "archive-contracts-375.png"
    page.screenshot(path=str(png), full_page=True)
    _keep(png)
    page.close()


def test_search_finds_a_known_item(site_url: str, browser: Any, tmp_path: Path) -> None:
    page, problems = _open(browser, site_url + "recherche/")
    search_box = page.locator("input.pagefind-ui__search-input")
    search_box.wait_for(timeout=15_000)
    # French stemming: "réhabilitation" finds "réhabilitent".
    search_box.fill("réhabilitation Tilleuls")
    result = page.locator(".pagefind-ui__result-link", has_text="Tilleuls").first
    result.wait_for(timeout=15_000)
    href = result.get_attribute("href")
    assert href is not None and href.startswith("/numeros/3/") and href.endswith("#article-424242")
    png = tmp_path / "archive-search.png"
    page.screenshot(path=str(png), full_page=True)
    _keep(png)
    result.click()
    page.wait_for_url("**/numeros/3/#article-424242")
    assert not problems, problems
    page.close()


def test_search_query_in_the_address_and_merged_volumes(site_url: str, browser: Any) -> None:
    # An address with ?q= (what a bookmarked search or a link gives) shows the results.
    page, problems = _open(browser, site_url + "recherche/?q=Tilleuls")
    page.locator(".pagefind-ui__result-link", has_text="Tilleuls").first.wait_for(timeout=15_000)
    # Results from the older yearly index are merged in (the newest issues are in 2026).
    page.locator("input.pagefind-ui__search-input").fill("point d’étape")
    page.locator(".pagefind-ui__result-link", has_text="n° 8").first.wait_for(timeout=15_000)
    page.locator(".pagefind-ui__result-link", has_text="n° 1").first.wait_for(timeout=15_000)
    assert not problems, problems
    page.close()
