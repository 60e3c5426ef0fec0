"""Collection end to end: a real HTTP server, a real store."""

# ruff: noqa: E501 - feed documents are clearer on one line per element

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from pressreview.collect import collect
from pressreview.store import collect as q

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Le Courrier test</title><link>https://courrier.example.fr/</link>
<item><title>Amiens Métropole signe son contrat de ville Quartiers 2030</title>
<link>https://courrier.example.fr/amiens-contrat?utm_source=rss&amp;utm_medium=feed</link>
<guid>c-1</guid><pubDate>Wed, 18 Dec 2024 10:00:00 +0100</pubDate>
<description>&lt;p&gt;La signature a eu lieu à &lt;strong&gt;Amiens&lt;/strong&gt;.&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</description></item>
<item><title>Match de football à Creil</title><link>https://courrier.example.fr/foot</link>
<guid>c-2</guid><pubDate>Wed, 18 Dec 2024 11:00:00 +0100</pubDate><description>Le club gagne.</description></item>
</channel></rss>"""

OTHER = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Autre journal</title>
<item><title>Amiens Métropole signe son contrat de ville « Quartiers 2030 »</title>
<link>https://autre.example.fr/articles/amiens</link><guid>a-1</guid>
<pubDate>Wed, 18 Dec 2024 12:00:00 +0100</pubDate><description>Dépêche reprise.</description></item>
<item><title>Même URL que le Courrier</title>
<link>https://courrier.example.fr/amiens-contrat</link><guid>a-2</guid></item>
</channel></rss>"""


@pytest.fixture
def two_feeds(httpserver: HTTPServer, make_config, store_url):
    httpserver.expect_request("/courrier.xml").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    httpserver.expect_request("/autre.xml").respond_with_data(
        OTHER, content_type="application/rss+xml"
    )
    return make_config(
        database_url=store_url,
        feeds=[
            {"name": "Courrier", "url": httpserver.url_for("/courrier.xml"), "tags": ["presse"]},
            {"name": "Autre", "url": httpserver.url_for("/autre.xml")},
        ],
    )


def test_collect_stores_classifies_and_groups(two_feeds, store_for) -> None:
    store = store_for(two_feeds)
    report = collect(two_feeds, store, only=["Courrier"])
    assert [s.status for s in report.sources] == ["ok"]
    report = collect(two_feeds, store, only=["Autre"])
    autre = report.sources[0]
    assert autre.new == 1 and autre.duplicates == 1
    with store.connect() as conn:
        rows = {r.url: r for r in conn.execute(q.select(q.items)).mappings()}
    lead = rows["https://courrier.example.fr/amiens-contrat"]
    assert lead.status == "new" and lead.section == "signatures"
    assert lead.territories == ["Amiens Métropole"]
    assert "script" not in lead.summary_html and "<strong>" in lead.summary_html
    assert lead.published_at.isoformat() == "2024-12-18T09:00:00+00:00"
    assert rows["https://courrier.example.fr/foot"].status == "filtered"
    dup = rows["https://autre.example.fr/articles/amiens"]
    assert dup.duplicate_of == lead.id
    assert len(rows) == 3  # the same canonical URL from the other feed is the same item


def test_second_run_is_unchanged_and_cli_json(two_feeds, cli) -> None:
    first = cli(two_feeds, "collect", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["totals"]["new"] == 3
    second = cli(two_feeds, "collect", "--json")
    data = json.loads(second.output)
    assert [s["status"] for s in data["sources"]] == ["unchanged", "unchanged"]
    assert data["totals"]["new"] == 0
