"""The author of an item: read from the feed, stored, frozen in the issue, shown in the archive."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import Result

from pressreview.config import Config
from tests.fixtures_collect import FAST_COLLECT

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Presse</title><link>https://presse.example.fr/</link>
<item><title>Le contrat de ville d'Amiens signé</title><link>https://presse.example.fr/a</link>
<guid>a</guid><pubDate>Mon, 02 Dec 2024 10:00:00 +0100</pubDate>
<author>jdoe@example.fr (Jeanne Doé)</author>
<description>Le contrat de ville Quartiers 2030 est signé.</description></item>
<item><title>Quartier prioritaire : la MEL investit</title><link>https://presse.example.fr/b</link>
<guid>b</guid><pubDate>Mon, 02 Dec 2024 11:00:00 +0100</pubDate>
<dc:creator>Paul Martin</dc:creator>
<description>Le quartier prioritaire de Lille, contrat de ville.</description></item>
<item><title>Politique de la ville : un rapport</title><link>https://presse.example.fr/c</link>
<guid>c</guid><pubDate>Mon, 02 Dec 2024 12:00:00 +0100</pubDate>
<author>redaction@example.fr</author>
<description>La politique de la ville en débat, contrat de ville.</description></item>
</channel></rss>"""


def test_author_from_feed_to_archive(
    httpserver: Any, make_config: Callable[..., Config], cli: Callable[..., Result]
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        FEED, content_type="application/rss+xml"
    )
    config = make_config(
        feeds=[{"name": "Presse", "url": httpserver.url_for("/feed.xml")}],
        collect=FAST_COLLECT,
        archive={"base_url": "https://veille.example.org/", "out_dir": "site"},
    )
    assert cli(config, "collect").exit_code == 0
    listed = json.loads(cli(config, "items", "list", "--status", "all", "--json").output)
    authors = {i["title"]: i.get("author") for i in listed}
    assert authors == {
        "Le contrat de ville d'Amiens signé": "Jeanne Doé",
        "Quartier prioritaire : la MEL investit": "Paul Martin",
        # A bare address says nothing to readers and is personal data: not kept.
        "Politique de la ville : un rapport": None,
    }
    ids = [str(i["id"]) for i in listed]
    assert cli(config, "items", "select", *ids).exit_code == 0
    assert cli(config, "issue", "new", "--title", "Revue").exit_code == 0
    published = cli(config, "issue", "publish", "--json")
    assert published.exit_code == 0, published.output
    assert cli(config, "archive", "build", "--no-search").exit_code == 0
    page = (config.resolve("site") / "numeros" / "1" / "index.html").read_text("utf-8")
    assert '<span class="item-author">Jeanne Doé</span>' in page
    assert '<span class="item-author">Paul Martin</span>' in page
    assert "redaction@example.fr" not in page and "jdoe@example.fr" not in page
