"""`feeds discover`, `feeds add` and `feeds check` against sites served on 127.0.0.1.

Each site is a real HTTP server (standard library, one thread per request)
serving a table of paths: a WordPress-like page announcing its feeds, a
Drupal-like site with only /rss.xml, a page listing section feeds, a bot
shield answering 403, a site that moved (301 to a host that answers 404), a
page without any feed, and hostile pages. No test leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from pressreview.collect.discover import discover
from pressreview.collect.parse import google_publisher
from pressreview.config import CollectSettings, load_config

DATA = Path(__file__).parent / "data" / "feeds_add"
NOW = datetime.now(UTC)

Route = tuple[int, dict[str, str], bytes]


class Site:
    """A local web site: a table of paths (with query) to (status, headers, body)."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, self.headers.get("User-Agent", "")))
                status, headers, body = site.routes.get(
                    self.path, (404, {"Content-Type": "text/html"}, b"<html>Not found</html>")
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Callable[..., Site]]:
    started: list[Site] = []

    def make(routes: dict[str, Route] | None = None) -> Site:
        s = Site(routes)
        started.append(s)
        return s

    yield make
    for s in started:
        s.close()


def rss(title: str, titles: list[str], *, age_days: int = 0, extra: str = "") -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://example.fr/{i}-{abs(hash(title)) % 999}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=age_days + i))}</pubDate>{extra}</item>"
        for i, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.fr/</link>{items}</channel></rss>"
    ).encode()


def feed(body: bytes) -> Route:
    return (200, {"Content-Type": "application/rss+xml; charset=utf-8"}, body)


def page(html: str) -> Route:
    return (200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


WORDPRESS_HOME = """<!DOCTYPE html><html><head><title>Mediacités – Lille</title>
<link rel="alternate" type="application/rss+xml" title="Mediacités &raquo; Flux" href="/feed/">
<link rel="alternate" type="application/rss+xml" title="Commentaires" href="/comments/feed/">
</head><body><a href="/contact">Contact</a></body></html>"""


def wordpress(site: Callable[..., Site]) -> Site:
    return site(
        {
            "/": page(WORDPRESS_HOME),
            "/feed/": feed(rss("Mediacités Lille", ["Roubaix : le contrat de ville signé",
                                                    "Logement social à Lille", "QPV du Nord"])),
            "/comments/feed/": feed(rss("Commentaires sur Mediacités", ["Re: Roubaix"])),
        }
    )  # fmt: skip


def drupal(site: Callable[..., Site]) -> Site:
    return site(
        {
            "/": page("<!DOCTYPE html><html><head><title>URH</title></head><body>"
                      "<p>Accueil <a href='/actualites'>Actualités</a></p></body></html>"),
            "/rss.xml": feed(rss("Union régionale pour l'habitat", ["Abattement TFPB"])),
            "/robots.txt": (200, {"Content-Type": "text/plain"},
                            b"User-agent: *\nDisallow: /admin/\n"),
        }
    )  # fmt: skip


def sections(site: Callable[..., Site]) -> Site:
    listing = """<!DOCTYPE html><html><head><title>Flux RSS</title></head><body><ul>
<li><a href="/rss2/1/cible_principale">À la une</a></li>
<li><a href="/rss2/610477/cible_principale">Lille</a></li>
<li><a href="javascript:alert(1)">rss</a><a href="mailto:x@y.fr">feed</a></li>
</ul></body></html>"""
    return site(
        {
            "/": page('<!DOCTYPE html><html><head><title>La Voix du Nord</title></head><body>'
                      '<a href="/services/rss">Nos flux RSS</a></body></html>'),
            "/services/rss": page(listing),
            "/rss2/1/cible_principale": feed(rss("La Voix du Nord – À la une",
                                                 ["Tempête sur le littoral"])),
            "/rss2/610477/cible_principale": feed(rss("La Voix du Nord – Lille",
                                                      ["Le contrat de ville de la MEL", "Fives"])),
        }
    )  # fmt: skip


SHIELD: Route = (
    403,
    {"Content-Type": "text/html", "Server": "cloudflare", "cf-mitigated": "challenge"},
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>",
)


def shield(site: Callable[..., Site]) -> Site:
    s = site()
    for path in ("/", "/rss", "/feed/", "/rss.xml", "/RSS", "/robots.txt"):
        s.routes[path] = SHIELD
    return s


def moved(site: Callable[..., Site]) -> tuple[Site, Site]:
    new = site()  # answers 404 everywhere
    old = site()
    for path in ("/", "/rss", "/feed/", "/rss.xml", "/RSS"):
        old.routes[path] = (301, {"Location": new.url(path)}, b"")
    return old, new


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text((DATA / "feeds.yaml").read_text("utf-8"), "utf-8")
    return path


def expected(name: str, site: Site) -> str:
    return (DATA / name).read_text("utf-8").replace("{site}", site.base)


def one_line_error(result: Result) -> str:
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


# -- feeds add ------------------------------------------------------------------


def test_add_from_a_wordpress_page(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    path = config_file(tmp_path)
    listed = cli(path, "feeds", "discover", wp.url("/"))
    assert listed.exit_code == 0, listed.output
    assert f"Feeds found from {wp.url('/')} (Mediacités – Lille):" in listed.output
    assert "[1] Mediacités Lille  (announced)" in listed.output
    assert "3 entries, newest" in listed.output and "1 entry, newest" in listed.output
    assert "- Roubaix : le contrat de ville signé" in listed.output
    assert "[2] Commentaires sur Mediacités" in listed.output
    # The page announces its feeds: no CMS path is guessed, no robots.txt asked.
    assert "/rss.xml" not in wp.paths() and "/robots.txt" not in wp.paths()
    assert path.read_text("utf-8") == (DATA / "feeds.yaml").read_text("utf-8")
    result = cli(path, "feeds", "add", wp.url("/"), "--pick", "1", "--name", "Mediacités Lille")
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == expected("wordpress.yaml", wp)
    # Every request of the tool says who it is.
    assert all(ua.startswith("pressreview/") and "crpv.example.org/contact" in ua
               for _, ua in wp.requests)  # fmt: skip


def test_add_from_a_drupal_site_probes_rss_xml(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dr = drupal(site)
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", dr.url("/"), "--yes", "--tags", "logement, bailleurs")
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == expected("drupal.yaml", dr)
    assert "/robots.txt" in dr.paths() and "/rss.xml" in dr.paths()
    # Each candidate was fetched once.
    assert dr.paths().count("/rss.xml") == 1 and dr.paths().count("/feed/") == 1


def test_add_a_section_feed_from_a_listing_page(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lv = sections(site)
    path = config_file(tmp_path)
    listed = json.loads(cli(path, "feeds", "discover", lv.url("/"), "--json").output)
    urls = [c["url"] for c in listed["feeds"]]
    assert urls == [lv.url("/rss2/1/cible_principale"), lv.url("/rss2/610477/cible_principale")]
    assert listed["feeds"][1]["sample"] == ["Le contrat de ville de la MEL", "Fives"]
    result = cli(
        path, "feeds", "add", lv.url("/"), "--pick", "2", "--territory", "Nord",
        "--tags", "presse-regionale,nord", "--section", "regional",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == expected("sections.yaml", lv)
    assert load_config(path).feeds[2].territory == "Nord"


def test_add_a_feed_address_directly(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", wp.url("/feed/"), "--name", "Mediacités Lille")
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == expected("wordpress.yaml", wp)
    assert wp.paths() == ["/feed/"]
    again = cli(path, "feeds", "add", wp.url("/feed/"))
    assert again.exit_code == 1 and "already configured, as 'Mediacités Lille'" in again.output
    # A feed that moved permanently is added at its new address.
    wp.routes["/old-feed"] = (301, {"Location": "/comments/feed/"}, b"")
    moved_feed = cli(path, "feeds", "add", wp.url("/old-feed"), "--name", "Commentaires")
    assert moved_feed.exit_code == 0, moved_feed.output
    assert load_config(path).feeds[-1].url == wp.url("/comments/feed/")


def test_add_without_a_terminal_needs_pick(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", wp.url("/"))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"2 feed(s) found on {wp.url('/')}; pass --pick N (1-2) to choose one "
        f"(`pressreview feeds discover {wp.url('/')}` lists them)"
    )
    assert cli(path, "feeds", "add", wp.url("/"), "--pick", "3").exit_code == 2
    assert path.read_text("utf-8") == (DATA / "feeds.yaml").read_text("utf-8")


def test_add_refuses_what_would_not_load(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    path = config_file(tmp_path)
    before = path.read_text("utf-8")
    bad = cli(path, "feeds", "add", wp.url("/feed/"), "--territory", "Gironde")
    assert bad.exit_code == 2
    assert "'Gironde' is not one of the territories" in one_line_error(bad)
    assert "nothing changed" in bad.output
    clash = cli(path, "feeds", "add", wp.url("/feed/"), "--name", "localtis")
    assert clash.exit_code == 2 and "already exists" in clash.output
    group = cli(path, "feeds", "add", wp.url("/feed/"), "--section", "Agenda")
    assert group.exit_code == 2
    assert "groups: National sources; Regional press; Google Actualités searches" in group.output
    assert path.read_text("utf-8") == before


def test_add_on_a_bot_shield(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = shield(site)
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", s.url("/"), "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "the site refuses automated clients (HTTP 403)" in line
    assert "give it to `pressreview feeds add`" in line
    assert path.read_text("utf-8") == (DATA / "feeds.yaml").read_text("utf-8")


def test_add_on_a_moved_site(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old, new = moved(site)
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", old.url("/"), "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert f"the site moved: the address now leads to {new.url('/')}" in line
    assert path.read_text("utf-8") == (DATA / "feeds.yaml").read_text("utf-8")


def test_add_on_a_page_without_feed(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = site({"/": page("<!DOCTYPE html><html><head><title>Mairie</title></head>"
                        "<body><a href='/agenda'>Agenda</a></body></html>")})  # fmt: skip
    path = config_file(tmp_path)
    result = cli(path, "feeds", "add", s.url("/"), "--yes")
    assert result.exit_code == 1
    assert "no feed found: the page announces none" in one_line_error(result)
    assert sorted(s.paths()) == ["/", "/RSS", "/feed/", "/robots.txt", "/rss.xml"]
    assert path.read_text("utf-8") == (DATA / "feeds.yaml").read_text("utf-8")


def test_discover_honours_robots_txt(site) -> None:  # type: ignore[no-untyped-def]
    s = site(
        {
            "/": page("<html><head><title>Préfecture</title></head><body></body></html>"),
            "/robots.txt": (200, {"Content-Type": "text/plain"},
                            b"User-agent: *\nDisallow: /RSS\nDisallow: /feed/\n"),
            "/rss.xml": feed(rss("Préfecture", ["Arrêté"])),
        }
    )  # fmt: skip
    found = discover(s.url("/"), CollectSettings(contact_url="https://crpv.example.org/"))
    assert [c.url for c in found.feeds] == [s.url("/rss.xml")]
    assert found.disallowed == [s.url("/feed/"), s.url("/RSS")]
    assert "/RSS" not in s.paths() and "/feed/" not in s.paths()


def test_hostile_pages_do_not_break_discovery(site) -> None:  # type: ignore[no-untyped-def]
    garbage = (
        b"\x00\xff<html><head><link rel=alternate type='application/rss+xml' href='/f.xml'>"
        b"<title>x</ti\xfe\x00<<<><a href='http://[::1'>rss</a><a href='/f.xml#x'>rss</a"
    )
    huge = b"<!DOCTYPE html><html><body>" + b"<p>spam</p>" * 200_000
    s = site(
        {
            "/garbage": (200, {"Content-Type": "text/html"}, garbage),
            "/f.xml": feed(rss("Flux", ["Un"])),
            "/huge": (200, {"Content-Type": "text/html"}, huge),
            "/loop": (301, {"Location": "/loop2"}, b""),
            "/loop2": (301, {"Location": "/loop"}, b""),
            "/empty": (200, {"Content-Type": "text/html"}, b""),
            "/many": page("<html><body>" + "".join(
                f'<a href="/rss/{i}.xml">flux {i}</a>' for i in range(500)) + "</body></html>"),
        }
    )  # fmt: skip
    settings = CollectSettings(contact_url="https://crpv.example.org/", max_bytes=1_000_000)
    assert [c.url for c in discover(s.url("/garbage"), settings).feeds] == [s.url("/f.xml")]
    big = discover(s.url("/huge"), settings)
    assert big.page_error is not None and "larger than" in big.page_error
    loop = discover(s.url("/loop"), settings)
    assert loop.page_error == "redirect loop" and loop.feeds == []
    assert discover(s.url("/empty"), settings).page_error == "empty body"
    many = discover(s.url("/many"), settings)
    assert len(many.rejected) + len(many.feeds) <= 30
    assert s.paths().count("/rss/0.xml") == 1


# -- feeds check after a real collect ---------------------------------------------


GOOGLE_QUERY = '"contrat de ville" Tartempion'


def google_proxy(site: Callable[..., Site]) -> Site:
    """Plays news.google.com through an HTTP proxy (httpx honours HTTP_PROXY)."""
    empty = rss("Google Actualités", [])
    item = (
        # A publisher whose name holds " - ": only the description tells where it starts.
        "<item><title>Lens : le contrat de ville signé - Journal des Flandres - Lens</title>"
        "<link>https://news.google.com/rss/articles/CBMiAbC?oc=5</link>"
        f"<pubDate>{format_datetime(NOW)}</pubDate>"
        '<description>&lt;a href="https://news.google.com/rss/articles/CBMiAbC?oc=5"&gt;Lens : '
        'le contrat de ville signé&lt;/a&gt;&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;'
        "Journal des Flandres - Lens&lt;/font&gt;</description></item>"
    )
    found = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Google Actualités</title>{item}</channel></rss>"
    ).encode()
    return site(
        {
            "http://news.google.com/rss/search?q=%22contrat%20de%20ville%22%20Tartempion&hl=fr":
                feed(empty),
            "http://news.google.com/rss/search?q=%22contrat%20de%20ville%22%20Lens&hl=fr":
                feed(found),
        }
    )  # fmt: skip


def test_check_after_a_collect(cli, site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    wp, s = wordpress(site), shield(site)
    old, new = moved(site)
    stale = site({"/rss.xml": feed(rss("Ancien blog", ["Vieux billet"], age_days=400))})
    proxy = google_proxy(site)
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    path = tmp_path / "feeds.yaml"
    path.write_text(
        (DATA / "feeds.yaml").read_text("utf-8").split("feeds:\n")[0] + "feeds:\n" + "".join(
            f'  - name: "{name}"\n    url: "{url}"\n' for name, url in [
                ("Mediacités", wp.url("/feed/")),
                ("Bouclier", s.url("/rss")),
                ("Déménagé", old.url("/rss")),
                ("Page", wp.url("/")),
                ("Vieux", stale.url("/rss.xml")),
                ("Google vide", "http://news.google.com/rss/search?q=%22contrat%20de%20ville%22%20Tartempion&hl=fr"),
                ("Google Lens", "http://news.google.com/rss/search?q=%22contrat%20de%20ville%22%20Lens&hl=fr"),
                ("Pas encore", wp.url("/comments/feed/")),
            ]
        ),
        "utf-8",
    )  # fmt: skip
    before = cli(path, "feeds", "check")
    assert before.exit_code == 0 and "8 not fetched yet" in before.output
    collected = cli(path, "collect", "--json")
    assert collected.exit_code == 1
    result = cli(path, "feeds", "check", "--json")
    assert result.exit_code == 1
    got = {d["name"]: d for d in json.loads(result.output)}
    assert got["Mediacités"]["problem"] == "ok" and got["Mediacités"]["entries"] == 3
    assert got["Google Lens"]["problem"] == "ok"
    assert got["Bouclier"]["problem"] == "bot_shield"
    assert got["Bouclier"]["advice"].startswith(
        f"try its section feeds with `pressreview feeds discover {s.url('/')}`"
    )
    assert got["Déménagé"]["problem"] == "moved"
    assert f"leads to {new.url('/rss')}, which answers HTTP 404" in got["Déménagé"]["summary"]
    home = f"`pressreview feeds discover {new.url('/')}` on its home page"
    assert home in got["Déménagé"]["advice"]
    assert got["Page"]["problem"] == "html_page"
    lists = f"`pressreview feeds discover {wp.url('/')}` lists the feeds it announces"
    assert got["Page"]["advice"] == lists
    assert got["Vieux"]["problem"] == "stale"
    assert "no new entry for 13 months" in got["Vieux"]["summary"]
    assert got["Google vide"]["problem"] == "empty_search"
    assert got["Google vide"]["summary"].endswith(f"returns nothing: {GOOGLE_QUERY}")
    assert got["Pas encore"]["problem"] == "ok"  # it was collected with the others
    # The most urgent first.
    assert [d["name"] for d in json.loads(result.output)][:2] == ["Bouclier", "Déménagé"]
    table = cli(path, "feeds", "check").output
    assert "bot shield" in table and "5 source(s) need action, 3 fine." in table
    only = cli(path, "feeds", "check", "--source", "Mediacités")
    assert only.exit_code == 0
    # The Google item: publisher from the description, link kept as Google gave it.
    items = json.loads(cli(path, "items", "list", "--json", "--status", "all").output)
    lens = next(i for i in items if i["title"] == "Lens : le contrat de ville signé")
    assert lens["outlet"] == "Journal des Flandres - Lens"
    assert lens["link"] == "https://news.google.com/rss/articles/CBMiAbC?oc=5"
    # A source whose address changes in feeds.yaml is "not fetched yet" again.
    path.write_text(path.read_text("utf-8").replace(s.url("/rss"), s.url("/autre")), "utf-8")
    again = {d["name"]: d for d in json.loads(cli(path, "feeds", "check", "--json").output)}
    assert again["Bouclier"]["problem"] == "not_collected"


# -- the shipped feeds.yaml -----------------------------------------------------------


def test_shipped_sources_carry_their_evidence() -> None:
    shipped = Path(__file__).resolve().parent.parent / "feeds.yaml"
    config = load_config(shipped)
    text = shipped.read_text("utf-8")
    block = text.split("\nfeeds:\n", 1)[1].split("\nterritories:\n", 1)[0]
    url_lines = [line for line in block.splitlines() if line.strip().startswith("url:")]
    assert len(url_lines) == len(config.feeds)
    for line in url_lines:
        mark = line.split("#", 1)[1].strip() if "#" in line else ""
        assert mark.split(":")[0].split()[0] in ("confirmed", "likely", "UNCONFIRMED"), line
    by_name = {f.name: f for f in config.feeds}
    # The addresses public evidence contradicts are gone.
    assert "https://www.lavoixdunord.fr/rss" not in {f.url for f in config.feeds}
    assert not any("francetvinfo.fr" in f.url for f in config.feeds)
    assert not any(f.url.endswith(".gouv.fr/rss") for f in config.feeds)
    # France 3 by département, each with its territory.
    france3 = {f.territory for n, f in by_name.items() if n.startswith("France 3 ")}
    assert france3 == {None, "Nord", "Pas-de-Calais", "Somme", "Oise", "Aisne"}
    for name in ("Maire-info", "Mediacités", "ici Nord", "ici Picardie", "actu.fr Hauts-de-France",
                 "Union régionale pour l'habitat Hauts-de-France", "La Gazette des communes",
                 "Réseau national des centres de ressources politique de la ville"):  # fmt: skip
        assert name in by_name
    assert sum(1 for n in by_name if n.startswith("Localtis")) >= 3


def test_add_asks_on_a_terminal(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    path = config_file(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pressreview", "--config", str(path), "feeds", "add", wp.url("/")],
        stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, close_fds=True,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )  # fmt: skip
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            output += data
            if not answered and b"Feed to add (1-2, 0 to cancel):" in output:
                os.write(master, b"2\n")
                answered = True
        elif proc.poll() is not None:
            break
    os.close(master)
    text = output.decode("utf-8", "replace")
    assert proc.wait(timeout=30) == 0, text
    assert "[1] Mediacités Lille  (announced)" in text and answered
    added = load_config(path).feeds[-1]
    assert (added.name, added.url) == ("Commentaires sur Mediacités", wp.url("/comments/feed/"))


@pytest.mark.parametrize(
    ("description", "publisher"),
    [
        ('<a href="https://news.google.com/x">T</a>&nbsp;&nbsp;<font color="#6f6f6f">Le Monde'
         "</font>", "Le Monde"),
        ('<a href="x">T</a>\xa0\xa0<font color="#6f6f6f">La Voix du Nord</font>',
         "La Voix du Nord"),
        # A cluster of stories: the item's own publisher comes first.
        ('<ol><li><a href="x">T</a>&nbsp;&nbsp;<font color="#6f6f6f">ici Nord</font></li>'
         '<li><a href="y">U</a>&nbsp;&nbsp;<font color="#6f6f6f">Libération</font></li></ol>',
         "ici Nord"),
        ("<font>Not after a link</font>", ""),
        ("Texte sans balise", ""),
    ],
)  # fmt: skip
def test_google_publisher_from_the_description(description: str, publisher: str) -> None:
    assert google_publisher(description) == publisher


def test_check_knows_calendar_sources(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start = (NOW + timedelta(days=10)).strftime("%Y%m%dT100000Z")
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
        f"UID:atelier-1@crpv.example.org\r\nDTSTAMP:{start}\r\nDTSTART:{start}\r\n"
        "SUMMARY:Atelier contrats de ville\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    cal = site({
        "/agenda.ics": (200, {"Content-Type": "text/calendar"}, ics),
        "/agenda": page("<html><body>Agenda</body></html>"),
    })  # fmt: skip
    path = tmp_path / "feeds.yaml"
    path.write_text(
        (DATA / "feeds.yaml").read_text("utf-8").split("feeds:\n")[0] + "feeds:\n"
        f'  - name: "Agenda"\n    url: "{cal.url("/agenda.ics")}"\n    kind: ical\n'
        f'  - name: "Page agenda"\n    url: "{cal.url("/agenda")}"\n    kind: ical\n',
        "utf-8",
    )  # fmt: skip
    for args in (["feeds", "check", "--probe", "--json"], ["collect", "--json"]):
        result = cli(path, *args)
        assert result.exit_code == 1, result.output
    for probe in (["--probe"], []):
        got = {
            d["name"]: d for d in json.loads(cli(path, "feeds", "check", "--json", *probe).output)
        }
        assert got["Agenda"]["problem"] == "ok", got
        assert got["Agenda"]["summary"] == "calendar: 1 event(s) in the agenda's window"
        assert got["Page agenda"]["problem"] == "not_a_feed"
        assert "iCalendar (.ics) export" in got["Page agenda"]["advice"]


def test_add_into_the_shipped_config(cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = wordpress(site)
    shipped = (Path(__file__).resolve().parent.parent / "feeds.yaml").read_text("utf-8")
    path = tmp_path / "feeds.yaml"
    path.write_text(shipped, "utf-8")
    result = cli(path, "feeds", "add", wp.url("/feed/"), "--section", "social housing",
                 "--territory", "Nord", "--tags", "logement")  # fmt: skip
    assert result.exit_code == 0, result.output
    after = path.read_text("utf-8").splitlines()
    before = shipped.splitlines()
    # Only the new entry's lines were inserted, right after the group's last source.
    anchor = before.index("    tags: [habitat, bailleurs-sociaux]") + 1
    assert after[:anchor] == before[:anchor] and after[anchor + 5 :] == before[anchor:]
    assert after[anchor : anchor + 5] == [
        "  - name: Mediacités Lille", f"    url: {wp.url('/feed/')}", "    territory: Nord",
        "    tags:", "    - logement",
    ]  # fmt: skip
    names = [f.name for f in load_config(path).feeds]
    assert (
        names.index("Mediacités Lille")
        == names.index("Union régionale pour l'habitat Hauts-de-France") + 1
    )
