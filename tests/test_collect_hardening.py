"""What real and hostile feeds broke: dates, identity by fragment, links that are not web links.

Every feed is served over HTTP by pytest-httpserver and collected into a real store.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures_collect import FAST_COLLECT, snapshot
from pytest_httpserver import HTTPServer

from pressreview.collect import collect
from pressreview.config import Config
from pressreview.store import Store

XML = "application/rss+xml"


def _serve(httpserver: HTTPServer, path: str, body: str | bytes, ctype: str = XML) -> str:
    httpserver.expect_request(path).respond_with_data(body, content_type=ctype)
    return str(httpserver.url_for(path))


def _config(make_config: Callable[..., Config], url: str, **settings: Any) -> Config:
    return make_config(collect={**FAST_COLLECT, **settings}, feeds=[{"name": "Flux", "url": url}])


# -- dates -----------------------------------------------------------------------------

GOOGLE_FORM = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Google Actualités</title><link>https://news.google.com/</link>
<item><title>Creil signe son contrat de ville - Le Parisien</title>
  <link>https://news.example.fr/1</link><guid isPermaLink="false">g-1</guid>
  <pubDate>lun., 03 juin 2024 08:00:00 +0200</pubDate>
  <source url="https://www.leparisien.fr">Le Parisien</source></item>
<item><title>Amiens : un QPV rénové - Courrier picard</title>
  <link>https://news.example.fr/2</link><guid isPermaLink="false">g-2</guid>
  <pubDate>03/06/2024 à 08h00</pubDate>
  <source url="https://www.courrier-picard.fr">Courrier picard</source></item>
<item><title>Lille : quartier prioritaire - La Voix du Nord</title>
  <link>https://news.example.fr/3</link><guid isPermaLink="false">g-3</guid>
  <pubDate>{{datetime}}</pubDate>
  <source url="https://www.lavoixdunord.fr">La Voix du Nord</source></item>
<item><title>Roubaix : renouvellement urbain - Nord Éclair</title>
  <link>https://news.example.fr/4</link><guid isPermaLink="false">g-4</guid>
  <pubDate>Mon, 03 Jun 2024 10:00:00 +0200</pubDate>
  <source url="https://www.nordeclair.fr">Nord Éclair</source></item>
</channel></rss>"""


def test_unreadable_date_falls_back_for_that_entry_alone_and_french_dates_are_read(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _config(make_config, _serve(httpserver, "/google.xml", GOOGLE_FORM))
    store = store_for(config)
    report = collect(config, store)
    assert report.sources[0].status == "ok", report.sources[0]
    rows = {r["guid"]: r for r in snapshot(store)}
    assert sorted(rows) == ["g-1", "g-2", "g-3", "g-4"]
    six_utc = datetime(2024, 6, 3, 6, 0)
    assert rows["g-1"]["published_at"].replace(tzinfo=None) == six_utc
    assert not rows["g-1"]["date_is_fallback"]
    # A date without a zone is read as UTC, like feedparser does.
    assert rows["g-2"]["published_at"].replace(tzinfo=None) == datetime(2024, 6, 3, 8, 0)
    assert rows["g-3"]["date_is_fallback"]
    assert rows["g-4"]["published_at"].replace(tzinfo=None) == datetime(2024, 6, 3, 8, 0)
    assert rows["g-1"]["outlet"] == "Le Parisien"


def test_date_strings_feedparser_cannot_read() -> None:
    from pressreview.collect.parse import _parse_date_string

    def utc(*args: int) -> datetime:
        return datetime(*args, tzinfo=UTC)

    assert _parse_date_string("lun., 03 juin 2024 08:00:00 +0200") == utc(2024, 6, 3, 6)
    assert _parse_date_string("03/06/2024 à 08h00") == utc(2024, 6, 3, 8)
    assert _parse_date_string("mardi 4 juin 2024") == utc(2024, 6, 4)
    assert _parse_date_string("2024-06-03T08:00:00Z") == utc(2024, 6, 3, 8)
    for junk in ("{{datetime}}", "", "demain", "x" * 500, "99/99/9999", "0000-00-00"):
        assert _parse_date_string(junk) is None, junk


# -- identity: fragments ---------------------------------------------------------------

# The shape of the RSS 2.0 specification's sample (Scripting News, 2002-09-29):
# no <link>, permalink GUIDs that differ only by their fragment.
SPEC_TIMES = ["4:43:09PM", "6:56:02PM", "6:29:33PM", "6:18:08PM", "5:24:51PM", "4:11:28PM",
              "3:23:58PM", "2:57:48PM", "1:57:35PM"]  # fmt: skip
SPEC_SAMPLE = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Scripting News</title>'
    "<link>http://www.scripting.com/</link><description>A weblog about scripting and stuff"
    "</description><language>en-us</language>"
    + "".join(
        f"<item><description>Entry {i}: politique de la ville.</description>"
        f"<pubDate>Sun, 29 Sep 2002 {12 + i % 10:02d}:00:00 GMT</pubDate>"
        f"<guid>http://scriptingnews.userland.com/backissues/2002/09/29#When:{when}</guid></item>"
        for i, when in enumerate(SPEC_TIMES)
    )
    + "</channel></rss>"
)

FRAGMENT_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Notes</title><id>urn:notes</id>
<updated>2026-02-16T10:00:00Z</updated>
<entry><title>Now, February</title><id>urn:n:1</id><updated>2026-02-16T10:00:00Z</updated>
  <link href="https://notes.example.org/now.html?utm_source=rss#2026-02-16"/></entry>
<entry><title>Comment 12</title><id>urn:n:2</id><updated>2026-02-15T10:00:00Z</updated>
  <link href="https://notes.example.org/now.html#comment-12"/></entry>
<entry><title>Alpine.js</title><id>urn:n:3</id><updated>2026-02-14T10:00:00Z</updated>
  <link href="https://notes.example.org/awesome#alpine-js"/></entry>
<entry><title>htmx</title><id>urn:n:4</id><updated>2026-02-13T10:00:00Z</updated>
  <link href="https://notes.example.org/awesome#htmx"/></entry>
<entry><title>Awesome</title><id>urn:n:5</id><updated>2026-02-12T10:00:00Z</updated>
  <link href="https://notes.example.org/awesome"/></entry>
<entry><title>Elsewhere</title><id>urn:n:6</id><updated>2026-02-11T10:00:00Z</updated>
  <link href="https://notes.example.org/post?utm_medium=feed#xtor=RSS-1"/></entry>
</feed>"""


def test_rss_spec_sample_stores_its_nine_entries(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    config = _config(make_config, _serve(httpserver, "/spec.xml", SPEC_SAMPLE))
    store = store_for(config)
    report = collect(config, store)
    assert report.sources[0].new == 9, report.sources[0]
    rows = snapshot(store)
    assert len(rows) == 9
    assert {r["link"].rpartition("#When:")[2] for r in rows} == set(SPEC_TIMES)
    # Collected again: the same nine items, nothing new.
    httpserver.clear()
    config2 = _config(make_config, _serve(httpserver, "/spec.xml", SPEC_SAMPLE + " "))
    again = collect(config2, store)
    assert again.sources[0].new == 0 and len(snapshot(store)) == 9


def test_entries_differing_only_by_fragment_are_not_merged(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    url = _serve(httpserver, "/notes.xml", FRAGMENT_FEED, "application/atom+xml")
    config = _config(make_config, url)
    store = store_for(config)
    collect(config, store)
    urls = sorted(r["url"] for r in snapshot(store))
    assert urls == [
        "https://notes.example.org/awesome",
        "https://notes.example.org/awesome#alpine-js",
        "https://notes.example.org/awesome#htmx",
        "https://notes.example.org/now.html#2026-02-16",  # tracking parameter still dropped
        "https://notes.example.org/now.html#comment-12",
        # A fragment that tells no entries apart is not part of the identity.
        "https://notes.example.org/post",
    ]


# -- links -----------------------------------------------------------------------------

BAD_LINKS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Liens</title><link>https://example.fr/</link>
<item><title>Relatif</title><link>foo</link><guid isPermaLink="false">l-1</guid></item>
<item><title>Absolu sur le site</title><link>/actu/2?utm_source=rss</link>
  <guid isPermaLink="false">l-2</guid></item>
<item><title>Script</title><link>javascript:alert(document.domain)</link>
  <guid isPermaLink="false">l-3</guid></item>
<item><title>Script casse</title><link>JaVaScRiPt:alert(1)</link>
  <guid isPermaLink="false">l-4</guid></item>
<item><title>Données</title><link>data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==</link>
  <guid isPermaLink="false">l-5</guid></item>
<item><title>VBScript</title><link>vbscript:msgbox(1)</link>
  <guid isPermaLink="false">l-6</guid></item>
<item><title>FTP</title><link>ftp://example.fr/file</link>
  <guid isPermaLink="false">l-7</guid></item>
</channel></rss>"""


def test_relative_links_are_resolved_and_other_schemes_leave_no_link(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store], cli: Callable[..., Any],
) -> None:  # fmt: skip
    url = _serve(httpserver, "/dir/links.xml", BAD_LINKS)
    config = _config(make_config, url)
    store = store_for(config)
    collect(config, store)
    rows = {r["guid"]: r for r in snapshot(store)}
    assert len(rows) == 7
    assert rows["l-1"]["link"] == httpserver.url_for("/dir/foo")
    assert rows["l-2"]["url"] == httpserver.url_for("/actu/2")
    for guid in ("l-3", "l-4", "l-5", "l-6", "l-7"):
        assert rows[guid]["link"] == "", rows[guid]
        assert rows[guid]["url"] == f"urn:pressreview:{guid}"
    # Staff see it, and add one.
    item_id = rows["l-3"]["id"]
    shown = cli(config, "items", "show", str(item_id))
    assert "none (the feed gave no web link" in shown.output
    refused = cli(config, "items", "edit", str(item_id), "--link", "javascript:alert(1)")
    assert refused.exit_code == 2 and "not a web address" in refused.output
    added = cli(config, "items", "edit", str(item_id), "--link", "https://example.fr/vrai")
    assert added.exit_code == 0, added.output
    assert "https://example.fr/vrai" in cli(config, "items", "show", str(item_id)).output
    # The next collect (the feed's text changed) keeps what staff added.
    httpserver.clear()
    changed = BAD_LINKS.replace("<title>Script</title>", "<title>Script, modifié</title>")
    collect(_config(make_config, _serve(httpserver, "/dir/links.xml", changed)), store)
    row = next(r for r in snapshot(store) if r["guid"] == "l-3")
    assert row["title"] == "Script, modifié"
    assert row["link"] == "https://example.fr/vrai"


# -- Ctrl-C ----------------------------------------------------------------------------


def test_ctrl_c_during_collect_is_one_line_and_keeps_what_was_stored(
    httpserver: HTTPServer, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    from fixtures_collect import misbehaving_server, rss

    fast = [
        _serve(httpserver, f"/fast{i}.xml",
               rss(f"F{i}", [(f"f{i}", f"https://f{i}.example.fr/a", f"Contrat de ville {i}")]))
        for i in range(3)
    ]  # fmt: skip
    for server in misbehaving_server():
        hung = [server.url(f"/hang?{i}") for i in range(3)]
        feeds = [{"name": f"Rapide {i}", "url": u} for i, u in enumerate(fast)] + [
            {"name": f"Muet {i}", "url": u} for i, u in enumerate(hung)
        ]
        config = make_config(
            collect={"connect_timeout": 5, "read_timeout": 60, "total_timeout": 60},
            feeds=feeds,
        )
        database = tmp_path / "store.db"
        process = subprocess.Popen(
            [sys.executable, "-m", "pressreview", "--config", str(config.path), "collect"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if _count(database, "SELECT count(*) FROM items") == 3:
                    break
                time.sleep(0.2)
            assert _count(database, "SELECT count(*) FROM items") == 3
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 130, (out, err)
        assert err.strip().splitlines() == [
            "Interrupted: what was saved before stays, nothing is half-written; "
            "run the command again to finish."
        ], err
        assert _count(database, "SELECT count(*) FROM items") == 3
        # The interrupted sources were not marked as failing: the next run just tries them.
        assert _count(database, "SELECT count(*) FROM sources WHERE failures > 0") == 0


def _count(database: Path, query: str) -> int:
    if not database.exists():
        return -1
    conn = sqlite3.connect(database, timeout=5)
    try:
        return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return -1
    finally:
        conn.close()


# -- many entries ----------------------------------------------------------------------


def _many(n: int, *, prefix: str = "https://many.example.fr/", shuffle: bool = True) -> str:
    """An RSS feed of n entries; entry i is dated i minutes after a start (newest = n - 1)."""
    order = list(range(n))
    if shuffle:  # feeds are not always newest first
        order = order[::2] + order[1::2]
    body = "".join(
        f"<item><title>Contrat de ville {i}</title><link>{prefix}{i}</link>"
        f'<guid isPermaLink="false">m-{i}</guid>'
        f"<pubDate>Mon, 02 Dec 2024 {i // 60 % 24:02d}:{i % 60:02d}:00 +0000</pubDate></item>"
        for i in order
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Beaucoup</title>'
        f"<link>https://many.example.fr/</link>{body}</channel></rss>"
    )


def test_max_entries_keeps_the_newest_and_says_so(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store], cli: Callable[..., Any],
) -> None:  # fmt: skip
    url = _serve(httpserver, "/many.xml", _many(30))
    config = _config(make_config, url, max_entries=10)
    store = store_for(config)
    report = collect(config, store)
    (source,) = report.sources
    assert source.entries == 10 and source.total_entries == 30
    assert "kept the newest 10 of 30 entries (collect.max_entries)" in (source.warning or "")
    assert sorted(int(r["guid"][2:]) for r in snapshot(store)) == list(range(20, 30))
    httpserver.clear()
    url = _serve(httpserver, "/many.xml", _many(31))
    table = cli(config, "collect")
    assert "kept the newest 10 of 31" in " ".join(table.output.split()), table.output


def test_default_max_entries_is_2000() -> None:
    from pressreview.config import CollectSettings

    assert CollectSettings().max_entries == 2_000


MEASURE = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "pressreview", "--config", sys.argv[1], "collect"],
                      capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(done.stdout)
print(done.stderr)
"""


def test_peak_memory_of_a_run_with_huge_feeds_stays_under_300_mb(
    httpserver: HTTPServer, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """Three feeds of 100,000 entries (14 MB each): the run's peak RSS, children included."""
    huge = _many(100_000, shuffle=False).encode()
    assert len(huge) > 13_000_000
    urls = [_serve(httpserver, f"/huge{i}.xml", huge) for i in range(3)]
    config = make_config(
        collect={"max_bytes": 20_000_000},
        feeds=[{"name": f"Énorme {i}", "url": u} for i, u in enumerate(urls)],
    )
    script = tmp_path / "measure.py"
    script.write_text(MEASURE, "utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(config.path)], capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    first, *rest = done.stdout.splitlines()
    code, peak_mb = (int(v) for v in first.split())
    output = "\n".join(rest)
    assert code == 0, output
    assert "kept the newest 2,000 of 100,000" in " ".join(output.split()), output
    assert peak_mb < 300, f"peak RSS {peak_mb} MB"


# -- invalid UTF-8 -----------------------------------------------------------------------


def test_invalid_utf8_is_replaced_not_read_as_mojibake(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    from fixtures_collect import rss

    text = rss("Été", [("u-1", "https://u.example.fr/1", "Créteil signe à Amiens STRAY fin")])
    body = text.encode("utf-8").replace(b"STRAY", b"\xff\xfe\xc3")
    assert body.decode("utf-8", "replace") != body.decode("utf-8", "ignore")
    for path, ctype in (("/declared.xml", XML + "; charset=utf-8"), ("/undeclared.xml", XML)):
        config = _config(make_config, _serve(httpserver, path, body, ctype))
        store = store_for(config)
        collect(config, store)
        (row,) = [r for r in snapshot(store) if r["guid"] == "u-1"]
        assert row["title"].startswith("Créteil signe à Amiens "), row["title"]
        assert "Ã" not in row["title"] + row["excerpt"]
        assert "\ufffd" in row["title"]
        row["title"].encode("utf-8")  # clean Unicode: no lone surrogate


def test_a_run_of_bad_bytes_does_not_turn_a_small_feed_into_mojibake(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    """Eight bad bytes in one title outnumber the accented letters of a short feed:
    counted by runs, they are one fault of a UTF-8 body, not a Latin-1 one."""
    from fixtures_collect import rss

    text = rss("Veille", [
        ("u-1", "https://u.example.fr/1", "Réunion à Lille : la maîtrise d’œuvre"),
        ("u-2", "https://u.example.fr/2", "Titre STRAY abîmé"),
    ])  # fmt: skip
    body = text.encode("utf-8").replace(b"STRAY", b"\xff" * 8)
    config = _config(make_config, _serve(httpserver, "/run.xml", body, XML))
    store = store_for(config)
    collect(config, store)
    titles = {r["guid"]: r["title"] for r in snapshot(store)}
    assert titles["u-1"] == "Réunion à Lille : la maîtrise d’œuvre"
    assert titles["u-2"].startswith("Titre \ufffd") and titles["u-2"].endswith(" abîmé")


def test_an_article_in_the_title_element_is_cut_to_a_title(
    httpserver: HTTPServer, make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
) -> None:  # fmt: skip
    from fixtures_collect import rss

    from pressreview.collect.parse import TITLE_MAX_CHARS

    long_title = "Contrat de ville signé à Creil " + "et la suite du texte " * 10_000
    body = rss("Veille", [("u-1", "https://u.example.fr/1", long_title)]).encode("utf-8")
    config = _config(make_config, _serve(httpserver, "/long.xml", body, XML))
    store = store_for(config)
    collect(config, store)
    (row,) = snapshot(store)
    assert row["title"].startswith("Contrat de ville signé à Creil et la suite")
    assert len(row["title"]) <= TITLE_MAX_CHARS + 1 and row["title"].endswith(" la…")
