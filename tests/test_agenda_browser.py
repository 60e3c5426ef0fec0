"""The archive's agenda page in a real headless Chromium: no console error, the filter works."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_archive_browser import CHROMIUM, _open, browser  # noqa: F401

from pressreview import agenda
from pressreview.archive import build_archive
from pressreview.archive.serve import make_server
from pressreview.config import Config
from pressreview.store import Store

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (chromium) is not installed"),
]


@pytest.fixture
def agenda_url(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store]
) -> Iterator[str]:
    config = make_config(archive={"base_url": "https://veille.example.org/"})
    store = store_for(config)
    for title, territory in [
        ("Réunion publique à Amiens", "Amiens"),
        ("Atelier à Creil", "Creil"),
        ("Forum à Lille", "MEL"),
        ("Webinaire régional", None),
    ]:
        agenda.add_event(config, store, title=title, start="2099-03-01 18:00",
                         territory=territory, actor="alice")  # fmt: skip
    build_archive(config, store, search_index=False)
    server = make_server(config.resolve(config.archive.out_dir), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/agenda/"
    finally:
        server.shutdown()
        server.server_close()


def test_territory_filter(agenda_url: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    page, problems = _open(browser, agenda_url)
    assert page.locator(".event:visible").count() == 4
    page.select_option("#agenda-territoire", "Creil Sud Oise")
    visible = page.locator(".event:visible .event-title").all_inner_texts()
    assert visible == ["Atelier à Creil"]
    page.select_option("#agenda-territoire", "")
    assert page.locator(".event:visible").count() == 4
    page.screenshot(path=str(tmp_path / "agenda.png"), full_page=True)
    page.close()
    page, _ = _open(browser, agenda_url + "?territoire=Amiens%20M%C3%A9tropole")
    assert page.locator(".event:visible .event-title").all_inner_texts() == [
        "Réunion publique à Amiens"
    ]
    assert not problems, problems
