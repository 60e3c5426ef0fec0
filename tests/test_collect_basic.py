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


def test_section_is_the_best_match_not_the_first(make_config) -> None:  # type: ignore[no-untyped-def]
    from pressreview.collect.classify import Classifier

    config = make_config(
        sections=[
            {"key": "signatures", "title": "Signatures", "match": ["Quartiers 2030", "signé"]},
            {"key": "discriminations", "title": "Discriminations", "match": ["discriminations"]},
            {"key": "emploi", "title": "Emploi", "match": ["emploi", "entrepreneuriat"]},
        ]
    )
    classify = Classifier(config).classify
    # A tie on weight goes to the subject the title names first.
    assert classify("Lutte contre les discriminations : appel Quartiers 2030", "").section == (
        "discriminations"
    )
    assert classify("Entrepreneuriat Quartiers 2030 : appel à projets", "").section == "emploi"
    # More matching terms win, whatever the order of the sections.
    assert classify("Quartiers 2030 : contrat signé, emploi cité", "").section == "signatures"
    assert classify("Bilan annuel", "").section is None


FUTURE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Horloge</title>
<item><title>Contrat de ville : une date dans le futur</title><link>https://h.example.fr/1</link>
<guid>h-1</guid><pubDate>Fri, 01 Jan 2100 10:00:00 +0100</pubDate>
<description>Texte.</description></item></channel></rss>"""


def test_future_dates_fall_back_to_first_seen(
    httpserver: HTTPServer, make_config, store_for
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/h.xml").respond_with_data(
        FUTURE, content_type="application/rss+xml"
    )
    config = make_config(feeds=[{"name": "Horloge", "url": httpserver.url_for("/h.xml")}])
    store = store_for(config)
    report = collect(config, store)
    assert report.sources[0].new == 1
    with store.connect() as conn:
        row = conn.execute(q.select(q.items)).mappings().one()
    assert row.date_is_fallback is True
    assert row.published_at == row.first_seen_at


def test_edits_stay_searchable_after_a_feed_update(
    httpserver: HTTPServer, make_config, store_for
) -> None:  # type: ignore[no-untyped-def]
    from pressreview.curate import edit_item, search_items

    httpserver.expect_request("/c.xml").respond_with_data(RSS, content_type="application/rss+xml")
    config = make_config(feeds=[{"name": "Courrier", "url": httpserver.url_for("/c.xml")}])
    store = store_for(config)
    collect(config, store)
    item = next(i for i in search_items(config, store, "Amiens") if "Amiens" in i["title"])
    edit_item(store, item["id"], title="Signature à Amiens : le contrat Zanzibar", actor="test")
    httpserver.clear()
    httpserver.expect_request("/c.xml").respond_with_data(
        RSS.replace("La signature a eu lieu", "La signature a enfin eu lieu"),
        content_type="application/rss+xml",
    )
    assert collect(config, store).sources[0].updated == 1
    assert [i["id"] for i in search_items(config, store, "zanzibar")] == [item["id"]]


def test_parse_workers_are_forked_only_from_a_single_threaded_process(make_config) -> None:  # type: ignore[no-untyped-def]
    import threading

    from pressreview.collect import _parse_pool
    from pressreview.collect.classify import Classifier

    classifier = Classifier(make_config())
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert _parse_pool(classifier, 1000, None) is None
    finally:
        stop.set()
        other.join()
    pool = _parse_pool(classifier, 1000, 2)  # an explicit number is obeyed
    assert pool is not None
    pool.shutdown()


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Le Fil test",
    "language": "fr-FR",
    "authors": "Rédaction",  # a string where the format has a list of objects
    "items": [
        {
            "id": "j-1",
            "url": "/articles/roubaix?utm_source=json",
            "title": "Roubaix signe son contrat de ville Quartiers 2030",
            "content_html": '<p>Signature à <strong>Roubaix</strong>.<script>alert(1)</script><a href="/suite" onclick="x()">Suite</a></p>',
            "date_published": "2024-12-18T10:00:00+01:00",
            "authors": [{"name": "Marie Dupont"}],
            "tags": ["politique de la ville"],
        },
        # Hostile or broken: a lone surrogate escape, an item that is not an object.
        {
            "id": "j-2",
            "url": "https://fil.example.fr/b",
            "title": "Titre \ud800 cassé",
            "content_text": "Texte brut",
        },
        "not an item",
        # Fields of the wrong type: dropped, the item kept.
        {
            "id": 3,
            "url": "https://fil.example.fr/c",
            "title": {"html": "Titre"},
            "content_html": "",  # empty: the plain text is the content
            "content_text": "Troisième article\n\nDeux < trois,\net <b> reste écrit &copy=3",
            "authors": "Jean",
            "tags": ["quartiers", {"x": 1}, 7],
            "date_published": 20241218,
        },
    ],
}


def test_a_json_feed_is_collected_like_rss(
    httpserver: HTTPServer, make_config, store_url, store_for
) -> None:
    httpserver.expect_request("/fil.json").respond_with_data(
        json.dumps(JSON_FEED), content_type="application/feed+json"
    )
    httpserver.expect_request("/other.json").respond_with_data(
        '{"version": "1", "items": []}', content_type="application/json"
    )
    config = make_config(
        database_url=store_url,
        feeds=[
            {"name": "Fil", "url": httpserver.url_for("/fil.json")},
            {"name": "Pas un fil", "url": httpserver.url_for("/other.json")},
        ],
    )
    store = store_for(config)
    report = collect(config, store)
    fil, other = report.sources
    assert (fil.status, fil.parser, fil.new, fil.error) == ("ok", "json", 3, None)
    assert (other.status, other.error) == (
        "failed",
        "not a feed (JSON, but not a JSON Feed: no jsonfeed.org version)",
    )
    with store.connect() as conn:
        rows = {r.guid: r for r in conn.execute(q.select(q.items)).mappings()}
    first, second = rows["j-1"], rows["j-2"]
    base = httpserver.url_for("/")
    assert first.url == f"{base}articles/roubaix"  # resolved, tracking parameter dropped
    assert first.summary_html == (
        f'<p>Signature à <strong>Roubaix</strong>.<a href="{base}suite" rel="noopener noreferrer nofollow">Suite</a></p>'
    )
    assert first.author == "Marie Dupont" and first.language == "fr-FR"
    assert first.published_at.isoformat().startswith("2024-12-18T09:00:00")
    assert "Métropole européenne de Lille" in first.territories  # Roubaix: classified as RSS is
    assert "politique de la ville" in first.tags
    assert second.title == "Titre \ufffd cassé" and second.excerpt == "Texte brut"
    third = rows["3"]  # a numeric id is read as text
    assert (third.author, third.tags) == (None, ["quartiers"])
    assert third.title.startswith("Troisième article Deux < trois")
    # content_text is plain text: its "<" and "<b>" are shown, not read as markup
    assert (
        third.summary_html
        == "<p>Troisième article</p><p>Deux &lt; trois, et &lt;b&gt; reste écrit &amp;copy=3</p>"
    )
    assert third.date_is_fallback and "{" not in third.search_text
