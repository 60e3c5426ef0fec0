"""Page metadata for `items add`: OpenGraph, meta, JSON-LD; fetched over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pressreview.pageinfo import fetch_page_info, parse_page_info

OPENGRAPH = b"""<!doctype html><html lang="fr"><head>
<title>Onglet | Site</title>
<meta property="og:title" content="Amiens M&eacute;tropole signe l&#8217;avenant">
<meta property="og:description" content="  Le contrat   de ville est sign\xc3\xa9.  ">
<meta property="og:site_name" content="Le Courrier">
<meta property="og:url" content="https://www.example-courrier.fr/amiens-avenant">
<meta property="article:published_time" content="2026-10-14T11:42:00+02:00">
<meta property="article:tag" content="Amiens">
<meta name="keywords" content="contrat de ville, Quartiers 2030">
</head><body></body></html>"""


def test_opengraph_wins() -> None:
    info = parse_page_info(OPENGRAPH, "https://www.example-courrier.fr/amiens-avenant?utm_source=x")
    assert info.error is None
    assert info.title == "Amiens Métropole signe l’avenant"
    assert info.description == "Le contrat de ville est signé."
    assert info.site_name == "Le Courrier"
    assert info.published_at == datetime(2026, 10, 14, 9, 42, tzinfo=UTC)
    assert info.canonical_url == "https://www.example-courrier.fr/amiens-avenant"
    assert info.tags == ["Amiens", "contrat de ville", "Quartiers 2030"]
    assert info.language == "fr"


def test_json_ld_graph_and_plain_meta() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Le site"},
            {
                "@type": "NewsArticle",
                "headline": "Creil : 3 millions pour les quartiers",
                "datePublished": "2026-11-02T08:00:00Z",
                "description": "Par l'ACSO.",
                "publisher": {"@type": "Organization", "name": "Oise Hebdo"},
            },
        ],
    }
    page = (
        "<html><head><title>Creil - Oise Hebdo</title>"
        f'<script type="application/ld+json">{json.dumps(graph)}</script>'
        '<script type="application/ld+json">{not json</script>'
        '<link rel="canonical" href="/creil-3-millions">'
        "</head><body><p>Texte</body>"
    )
    info = parse_page_info(page, "https://oise.example.fr/x?id=3")
    assert info.title == "Creil : 3 millions pour les quartiers"
    assert info.description == "Par l'ACSO."
    assert info.site_name == "Oise Hebdo"
    assert info.published_at == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert info.canonical_url == "https://oise.example.fr/creil-3-millions"


def test_title_tag_meta_description_time_element_and_charset() -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        "<title> Coeur d'Ostrevent : r\xe9union publique </title>"
        '<meta name="description" content="Les habitants du quartier sont invit\xe9s.">'
        '</head><body><time datetime="2026-11-05">5 novembre</time></body></html>'
    ).encode("latin-1")
    info = parse_page_info(page, "https://example.fr/a")
    assert info.title == "Coeur d'Ostrevent : réunion publique"
    assert info.description == "Les habitants du quartier sont invités."
    assert info.published_at == datetime(2026, 11, 5, tzinfo=UTC)
    assert info.site_name == ""
    broken = parse_page_info(b"<html><head><title>Sans fin", "https://example.fr/b")
    assert broken.error is None and broken.title == ""


def test_fetch_uses_collect_rules(httpserver: Any, make_config: Any) -> None:
    config = make_config(collect={"max_bytes": 5000, "total_timeout": 10})
    httpserver.expect_request("/page").respond_with_data(OPENGRAPH, content_type="text/html")
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/page")}
    )
    httpserver.expect_request("/big").respond_with_data(
        b"<html>" + b"x" * 10_000, content_type="text/html"
    )
    httpserver.expect_request("/pdf").respond_with_data(b"%PDF-1.7", content_type="application/pdf")
    info = fetch_page_info(config, httpserver.url_for("/old"))
    assert info.error is None and info.title.startswith("Amiens Métropole")
    assert info.final_url == httpserver.url_for("/page")
    big = fetch_page_info(config, httpserver.url_for("/big"))
    assert big.error is not None and "larger than 5,000 bytes" in big.error
    pdf = fetch_page_info(config, httpserver.url_for("/pdf"))
    assert pdf.error == "not a web page (application/pdf)"
    sent = next(r for r, _ in httpserver.log if r.path == "/page")
    assert sent.headers["User-Agent"].startswith("pressreview/")
    assert "text/html" in sent.headers["Accept"]
