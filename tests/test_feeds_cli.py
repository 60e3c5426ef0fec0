"""`pressreview feeds ...`: list with health, check, OPML import and export."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer

from pressreview.config import load_config
from pressreview.opml import parse_opml

RSS = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Veille QPV</title>'
    "<item><title>Contrat de ville signé à Creil</title><link>https://a.example.fr/1</link>"
    "<pubDate>Tue, 07 May 2024 10:00:00 +0200</pubDate></item></channel></rss>"
)

OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>Mes flux</title></head><body>
  <outline text="Presse">
    <outline text="Journal A" type="rss" xmlUrl="https://a.example.fr/rss"/>
    <outline text="Journal B" type="rss" xmlUrl="https://b.example.fr/rss"/>
  </outline>
  <outline text="Déjà là" type="rss" xmlUrl="https://known.example.fr/rss"/>
</body></opml>"""


def test_feeds_list_shows_health(cli, make_config, httpserver: HTTPServer) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/ok.xml").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/gone.xml").respond_with_data("nope", status=404)
    config = make_config(
        feeds=[
            {"name": "Bon", "url": httpserver.url_for("/ok.xml")},
            {"name": "Cassé", "url": httpserver.url_for("/gone.xml")},
        ]
    )
    assert cli(config, "collect").exit_code == 1
    result = cli(config, "feeds", "list", "--json")
    data = {d["name"]: d for d in json.loads(result.output)}
    assert data["Bon"]["status"] == "ok" and data["Bon"]["failures"] == 0
    assert data["Cassé"]["status"] == "failing" and data["Cassé"]["failures"] == 1
    assert "404" in data["Cassé"]["last_error"]
    assert data["Cassé"]["next_attempt_at"]
    table = cli(config, "feeds", "list").output
    assert "Cassé" in table and "failing" in table and "HTTP 404" in table


def test_feeds_check_changes_nothing(cli, make_config, store_for, httpserver: HTTPServer) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/ok.xml").respond_with_data(RSS, content_type="application/rss+xml")
    config = make_config(feeds=[{"name": "Bon", "url": httpserver.url_for("/ok.xml")}])
    # The entry dates from 2024: not stale within ten years.
    result = cli(config, "feeds", "check", "--probe", "--months", "120")
    assert result.exit_code == 0, result.output
    assert "Veille QPV" in result.output
    data = json.loads(cli(config, "feeds", "check", "--probe", "--months", "120", "--json").output)
    assert data[0]["entries"] == 1 and data[0]["problem"] == "ok"
    stale = cli(config, "feeds", "check", "--probe")
    assert stale.exit_code == 1 and "no new entry for" in stale.output
    with store_for(config).connect() as conn:
        from pressreview.store.collect import count_items

        assert count_items(conn) == 0


def test_feeds_check_reports_failure(cli, make_config, httpserver: HTTPServer) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/page").respond_with_data(
        "<!DOCTYPE html><html><body>Accueil</body></html>", content_type="text/html"
    )
    config = make_config(feeds=[{"name": "Page", "url": httpserver.url_for("/page")}])
    result = cli(config, "feeds", "check", "--probe")
    assert result.exit_code == 1
    assert "this is a web page, not a feed" in result.output


def test_opml_import_keeps_comments_and_skips_known(cli, make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(feeds=[{"name": "Connu", "url": "https://known.example.fr/rss"}])
    path = config.path
    path.write_text("# Sources du centre\n" + path.read_text("utf-8"), "utf-8")
    opml = tmp_path / "sources.opml"
    opml.write_text(OPML, "utf-8")
    dry = cli(path, "feeds", "import", str(opml), "--dry-run")
    assert "would add Journal A" in dry.output
    assert len(load_config(path).feeds) == 1
    result = cli(path, "feeds", "import", str(opml))
    assert result.exit_code == 0, result.output
    assert "2 source(s) added, 1 skipped" in result.output
    reloaded = load_config(path)
    assert [f.name for f in reloaded.feeds] == ["Connu", "Journal A", "Journal B"]
    assert reloaded.feeds[1].tags == ("Presse",)
    assert path.read_text("utf-8").startswith("# Sources du centre\n")
    again = cli(path, "feeds", "import", str(opml))
    assert "0 source(s) added, 3 skipped" in again.output


def test_opml_export_round_trips(cli, make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config(
        feeds=[
            {
                "name": "Journal « A »",
                "url": "https://a.example.fr/rss?x=1&y=2",
                "tags": ["presse"],
            },
            {"name": "B", "url": "https://b.example.fr/rss"},
        ]
    )
    out = cli(config, "feeds", "export").output
    parsed = parse_opml(out.encode())
    assert [(f.name, f.url) for f in parsed] == [(f.name, f.url) for f in config.feeds]


def test_bad_opml_is_one_line(cli, make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline", "utf-8")
    result = cli(config, "feeds", "import", str(bad))
    assert result.exit_code == 2 and "not a valid OPML file" in result.output
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<opml><body>&b;</body></opml>",
        "utf-8",
    )
    result = cli(config, "feeds", "import", str(bomb))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_import_into_the_shipped_config(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = Path(__file__).resolve().parent.parent / "feeds.yaml"
    path = tmp_path / "feeds.yaml"
    path.write_text(shipped.read_text("utf-8"), "utf-8")
    before = load_config(path)
    opml = tmp_path / "sources.opml"
    opml.write_text(OPML, "utf-8")
    assert cli(path, "feeds", "import", str(opml)).exit_code == 0
    after = load_config(path)
    assert len(after.feeds) == len(before.feeds) + 3
    assert after.sections == before.sections and after.territories == before.territories
