"""Bad input: each failing source fails alone, with one line, and nothing stored changes.

Every case runs against real servers: pytest-httpserver for what it can play,
a small standard-library server for a server that never answers, an endless
body and a trickling body, and a closed port for a refused connection.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from fixtures_collect import (
    FAST_COLLECT,
    MisbehavingServer,
    closed_port,
    misbehaving_server,
    rss,
    snapshot,
    source_row,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pressreview.collect import collect
from pressreview.store import Store

Handler = Callable[[Request], Response]

GOOD_VICTIM = rss(
    "Victime",
    [
        ("v-1", "https://victime.example.fr/a?utm_source=rss", "Creil signe son contrat de ville"),
        ("v-2", "https://victime.example.fr/b", "Quartiers 2030 : le point à Amiens"),
    ],
)
STABLE_ENTRIES = [("s-1", "https://stable.example.fr/1", "Politique de la ville : un bilan")]
STABLE_MORE = [*STABLE_ENTRIES, ("s-2", "https://stable.example.fr/2", "QPV : nouveaux crédits")]
XML = "application/rss+xml"


class Routes:
    """One catch-all handler on pytest-httpserver; tests swap what each path answers."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.table: dict[str, Handler] = {}
        self.requests: list[Request] = []
        server.expect_request(re.compile(r"/.*")).respond_with_handler(self._dispatch)

    def _dispatch(self, request: Request) -> Response:
        self.requests.append(request)
        handler = self.table.get(request.path)
        return handler(request) if handler else Response("no route", status=404)

    def set(self, path: str, handler: Handler) -> str:
        self.table[path] = handler
        return self.server.url_for(path)

    def feed(self, path: str, body: str | bytes, **headers: str) -> str:
        ctype = headers.pop("content_type", XML)
        return self.set(path, lambda _r: Response(body, content_type=ctype, headers=headers))

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def routes(httpserver: HTTPServer) -> Routes:
    return Routes(httpserver)


@pytest.fixture
def odd_server() -> Iterator[MisbehavingServer]:
    yield from misbehaving_server()


def _config(make_config: Any, store_url: str, victim_url: str, stable_url: str, **collect: Any):
    return make_config(
        database_url=store_url,
        collect={**FAST_COLLECT, **collect},
        feeds=[
            {"name": "Stable", "url": stable_url},
            {"name": "Victime", "url": victim_url},
        ],
    )


def _redirect(target: str, status: int) -> Handler:
    return lambda _r: Response("", status=status, headers={"Location": target})


def _gzip_bomb() -> bytes:
    """About 50 KB of gzip that inflates to 50 MB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    data = b"".join(compressor.compress(block) for _ in range(50))
    return data + compressor.flush()


# name -> (how the victim misbehaves, the reason expected in the report)
def _case(routes: Routes, odd: MisbehavingServer, name: str) -> tuple[str, str]:
    base = "/victim"
    if name == "malformed-xml":
        body = '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>a</ti'
        return routes.feed(base, body), r"malformed feed, no entry readable: .*unclosed token"
    if name == "html-page":
        page = (
            "<!DOCTYPE html><html><head><title>Accueil</title></head><body>Bienvenue</body></html>"
        )
        return routes.feed(
            base, page, content_type="text/html; charset=utf-8"
        ), r"an HTML page, not a feed"
    if name == "empty-body":
        return routes.feed(base, b""), r"^empty body$"
    if name == "http-404":
        return routes.set(base, lambda _r: Response("gone", status=404)), r"^HTTP 404 Not Found$"
    if name == "http-500":
        return routes.set(
            base, lambda _r: Response("oops", status=500)
        ), r"^HTTP 500 Internal Server Error$"
    if name == "redirect-loop":
        routes.set("/loop-b", _redirect(routes.server.url_for("/victim"), 302))
        return routes.set(
            base, _redirect(routes.server.url_for("/loop-b"), 302)
        ), r"^redirect loop$"
    if name == "too-many-redirects":
        for i in range(10):
            routes.set(f"/hop{i}", _redirect(routes.server.url_for(f"/hop{i + 1}"), 307))
        return routes.set(
            base, _redirect(routes.server.url_for("/hop0"), 307)
        ), r"more than 5 redirects"
    if name == "gzip-bomb":
        bomb = _gzip_bomb()
        return routes.feed(
            base, bomb, **{"Content-Encoding": "gzip"}
        ), r"body larger than 1,000,000 bytes"
    if name == "corrupt-gzip":
        return routes.feed(
            base, b"\x1f\x8b\x08\x00garbage", **{"Content-Encoding": "gzip"}
        ), r"cannot decode the body"
    if name == "declared-too-large":
        return routes.set(
            base, lambda _r: Response("x" * 1_000_001, content_type=XML)
        ), r"body larger than"
    if name == "connection-refused":
        return f"http://127.0.0.1:{closed_port()}/feed.xml", r"^cannot connect: "
    if name == "never-answers":
        return odd.url("/hang"), r"^timed out \(read\)$"
    if name == "endless-body":
        return odd.url("/endless"), r"body larger than 1,000,000 bytes \(cut off\)"
    if name == "trickling-body":
        return odd.url("/drip"), r"^no complete answer within 2 s$"
    raise AssertionError(name)


CASES = [
    "malformed-xml", "html-page", "empty-body", "http-404", "http-500", "redirect-loop",
    "too-many-redirects", "gzip-bomb", "corrupt-gzip", "declared-too-large",
    "connection-refused", "never-answers", "endless-body", "trickling-body",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_source_fails_alone_and_changes_nothing(
    case: str, routes: Routes, odd_server: MisbehavingServer, make_config: Any, store_url: str,
    store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    victim_url = routes.feed("/victim-ok", GOOD_VICTIM)
    stable_url = routes.feed("/stable", rss("Stable", STABLE_ENTRIES))
    config = _config(make_config, store_url, victim_url, stable_url)
    store = store_for(config)
    first = collect(config, store)
    assert [s.status for s in first.sources] == ["ok", "ok"]
    victim_items = snapshot(store, "Victime")
    stable_items = snapshot(store, "Stable")
    assert len(victim_items) == 2 and len(stable_items) == 1

    bad_url, reason = _case(routes, odd_server, case)
    routes.feed("/stable", rss("Stable", STABLE_MORE))
    config = _config(make_config, store_url, bad_url, stable_url)
    store = store_for(config)
    report = collect(config, store)
    stable, victim = report.sources
    assert victim.status == "failed", victim
    assert victim.error and "\n" not in victim.error
    assert re.search(reason, victim.error), victim.error
    assert stable.status == "ok" and stable.new == 1 and stable.unchanged == 1
    assert snapshot(store, "Victime") == victim_items
    assert snapshot(store, "Stable")[:1] == stable_items
    row = source_row(store, "Victime")
    assert row["status"] == "failing" and row["failures"] == 1
    assert row["last_error"] == victim.error and row["next_attempt_at"] > datetime.now(UTC)


def test_recoverable_malformed_xml_is_read_with_a_warning(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    broken = rss("Cassé", [("b-1", "https://b.example.fr/1", "Contrat de ville signé")]).replace(
        "</item>",
        "</item><item><title>QPV &nbsp; Lille</title><link>https://b.example.fr/2</link></item>",
    )
    config = _config(
        make_config, sqlite_url, routes.feed("/b", broken), routes.feed("/s", rss("S", []))
    )
    store = store_for(config)
    report = collect(config, store)
    victim = report.sources[1]
    assert victim.status == "ok" and victim.new == 2 and victim.parser == "feedparser"
    assert victim.warning and victim.warning.startswith("malformed XML read leniently")
    titles = sorted(i["title"] for i in snapshot(store, "Victime"))
    assert titles == ["Contrat de ville signé", "QPV Lille"]


# -- charsets --------------------------------------------------------------

LATIN = "Signé à Amiens : la métropole s'engage"


@pytest.mark.parametrize(
    ("encoding_decl", "body_codec", "content_type"),
    [
        pytest.param(
            None, "latin-1", "application/rss+xml; charset=utf-8", id="latin1-bytes-labelled-utf8"
        ),
        pytest.param(
            None,
            "utf-8",
            "application/rss+xml; charset=iso-8859-1",
            id="utf8-bytes-labelled-latin1",
        ),
        pytest.param("iso-8859-1", "utf-8", "application/rss+xml", id="utf8-bytes-declared-latin1"),
        pytest.param(
            None, "latin-1", "application/rss+xml; charset=iso-8859-1", id="charset-only-in-header"
        ),
        pytest.param(None, "latin-1", "application/rss+xml", id="latin1-no-charset-anywhere"),
        pytest.param(None, "cp1252", "text/xml; charset=windows-1252", id="windows-1252-header"),
        pytest.param("utf-16", "utf-16", "application/xml", id="utf16-declared"),
    ],
)
def test_charsets(
    encoding_decl: str | None, body_codec: str, content_type: str, routes: Routes,
    make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    title = LATIN + (" – « QPV »" if body_codec == "cp1252" else "")
    body = rss("Été", [("c-1", "https://c.example.fr/1", title)], encoding=encoding_decl)
    url = routes.feed("/c", body.encode(body_codec), content_type=content_type)
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    report = collect(config, store)
    assert report.sources[1].status == "ok", report.sources[1]
    (item,) = snapshot(store, "Victime")
    assert item["title"] == title
    assert "contrat de ville avance" in item["excerpt"]


# -- HTTP semantics --------------------------------------------------------


def test_permanent_redirects_update_the_url_and_say_so(
    routes: Routes, make_config: Any, store_url: str, store_for: Callable[[Any], Store]
) -> None:
    new_url = routes.feed("/new", GOOD_VICTIM)
    routes.set("/mid", _redirect(new_url, 308))
    old_url = routes.set("/old", _redirect(routes.server.url_for("/mid"), 301))
    config = _config(make_config, store_url, old_url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    victim = collect(config, store).sources[1]
    assert victim.status == "ok" and victim.new == 2 and victim.moved_to == new_url
    assert source_row(store, "Victime")["url"] == new_url
    before = len(routes.hits("/old"))
    assert collect(config, store).sources[1].status == "unchanged"
    assert len(routes.hits("/old")) == before  # the next run goes straight to the new URL


def test_temporary_redirect_keeps_the_url(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    new_url = routes.feed("/new", GOOD_VICTIM)
    old_url = routes.set("/old", _redirect(new_url, 302))
    config = _config(make_config, sqlite_url, old_url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    victim = collect(config, store).sources[1]
    assert victim.status == "ok" and victim.new == 2 and victim.moved_to is None
    assert source_row(store, "Victime")["url"] == old_url


def test_permanent_then_temporary_redirect_keeps_the_url(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    new_url = routes.feed("/new", GOOD_VICTIM)
    routes.set("/mid", _redirect(new_url, 302))
    old_url = routes.set("/old", _redirect(routes.server.url_for("/mid"), 301))
    config = _config(make_config, sqlite_url, old_url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    victim = collect(config, store).sources[1]
    # Only the permanent hop is recorded: /mid is where the feed lives now.
    assert victim.moved_to == routes.server.url_for("/mid")
    assert source_row(store, "Victime")["url"] == routes.server.url_for("/mid")


def test_gone_disables_the_source(
    routes: Routes, make_config: Any, store_url: str, store_for: Callable[[Any], Store]
) -> None:
    url = routes.feed("/v", GOOD_VICTIM)
    config = _config(make_config, store_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    collect(config, store)
    kept = snapshot(store, "Victime")
    routes.set("/v", lambda _r: Response("", status=410))
    victim = collect(config, store).sources[1]
    assert victim.status == "failed" and "410 Gone" in (victim.error or "")
    assert "source disabled" in (victim.error or "")
    assert source_row(store, "Victime")["status"] == "disabled"
    hits = len(routes.hits("/v"))
    again = collect(config, store).sources[1]
    assert again.status == "disabled" and len(routes.hits("/v")) == hits
    assert snapshot(store, "Victime") == kept
    # Naming the source (or --force) tries it anyway.
    assert collect(config, store, only=["Victime"]).sources[0].status == "failed"
    assert len(routes.hits("/v")) == hits + 1


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured(
    status: int, form: str, routes: Routes, make_config: Any, sqlite_url: str,
    store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    value = "10800" if form == "seconds" else format_datetime(when, usegmt=True)
    url = routes.set(
        "/v", lambda _r: Response("busy", status=status, headers={"Retry-After": value})
    )
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    victim = collect(config, store).sources[1]
    assert victim.status == "failed" and victim.error and str(status) in victim.error
    row = source_row(store, "Victime")
    assert row["next_attempt_at"] == victim.next_attempt_at
    assert abs((row["next_attempt_at"] - when).total_seconds()) < 60
    # Not asked again before that time.
    hits = len(routes.hits("/v"))
    skipped = collect(config, store).sources[1]
    assert skipped.status == "skipped" and len(routes.hits("/v")) == hits


def test_503_without_retry_after_backs_off(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    url = routes.set("/v", lambda _r: Response("busy", status=503))
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    collect(config, store)
    row = source_row(store, "Victime")
    assert row["next_attempt_at"] - row["last_fetched_at"] == timedelta(minutes=30)


def test_consecutive_failures_back_off_exponentially(
    routes: Routes, make_config: Any, store_url: str, store_for: Callable[[Any], Store]
) -> None:
    url = routes.set("/v", lambda _r: Response("oops", status=500))
    config = _config(
        make_config, store_url, url, routes.feed("/s", rss("S", [])),
        backoff_minutes=10, backoff_max_hours=1,
    )  # fmt: skip
    store = store_for(config)
    delays = []
    for _ in range(5):
        collect(config, store, force=True)
        row = source_row(store, "Victime")
        delays.append((row["failures"], row["next_attempt_at"] - row["last_fetched_at"]))
    assert delays == [(1, timedelta(minutes=10)), (2, timedelta(minutes=20)),
                      (3, timedelta(minutes=40)), (4, timedelta(hours=1)),
                      (5, timedelta(hours=1))]  # fmt: skip
    assert row["status"] == "failing" and row["last_error"] == "HTTP 500 Internal Server Error"
    # A run without --force leaves it alone; a success resets the counters.
    assert collect(config, store).sources[1].status == "skipped"
    routes.feed("/v", GOOD_VICTIM)
    assert collect(config, store, only=["Victime"]).sources[0].new == 2
    row = source_row(store, "Victime")
    assert (row["status"], row["failures"], row["next_attempt_at"], row["last_error"]) == (
        "ok", 0, None, None,
    )  # fmt: skip


def test_conditional_get_sends_validators_and_304_is_not_parsed(
    routes: Routes, make_config: Any, store_url: str, store_for: Callable[[Any], Store]
) -> None:
    stamp = "Mon, 02 Dec 2024 10:00:00 GMT"

    def answer(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(
            GOOD_VICTIM, content_type=XML, headers={"ETag": '"v1"', "Last-Modified": stamp}
        )

    url = routes.set("/v", answer)
    config = _config(make_config, store_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    assert collect(config, store).sources[1].new == 2
    row = source_row(store, "Victime")
    assert (row["etag"], row["last_modified"]) == ('"v1"', stamp)
    kept = snapshot(store, "Victime")
    second = collect(config, store).sources[1]
    assert second.status == "not_modified" and second.parser is None and second.entries == 0
    last = routes.hits("/v")[-1]
    assert last.headers["If-None-Match"] == '"v1"' and last.headers["If-Modified-Since"] == stamp
    assert routes.hits("/v")[0].headers.get("If-None-Match") is None
    assert snapshot(store, "Victime") == kept


def test_unchanged_body_is_not_parsed_again(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    url = routes.feed("/v", GOOD_VICTIM)
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    assert collect(config, store).sources[1].parser in ("fast", "feedparser")
    kept = snapshot(store, "Victime")
    second = collect(config, store).sources[1]
    assert second.status == "unchanged" and second.parser is None
    assert snapshot(store, "Victime") == kept
    # A changed body is parsed again.
    routes.feed(
        "/v",
        GOOD_VICTIM.replace(
            "</channel>",
            "<item><title>QPV</title><link>https://v.example.fr/n</link></item></channel>",
        ),
    )
    third = collect(config, store).sources[1]
    assert third.status == "ok" and third.new == 1 and third.unchanged == 2


def test_gzip_body_is_inflated(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    url = routes.feed("/v", gzip.compress(GOOD_VICTIM.encode()), **{"Content-Encoding": "gzip"})
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    store = store_for(config)
    assert collect(config, store).sources[1].new == 2
    assert "gzip" in routes.hits("/v")[0].headers["Accept-Encoding"]
    assert routes.hits("/v")[0].headers["User-Agent"].startswith("pressreview/")


def test_deflate_body_is_inflated(
    routes: Routes, make_config: Any, sqlite_url: str, store_for: Callable[[Any], Store]
) -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = raw.compress(GOOD_VICTIM.encode()) + raw.flush()
    url = routes.feed("/v", body, **{"Content-Encoding": "deflate"})
    config = _config(make_config, sqlite_url, url, routes.feed("/s", rss("S", [])))
    assert collect(config, store_for(config)).sources[1].new == 2


# -- file: URLs --------------------------------------------------------------


def test_file_urls(
    tmp_path: Path, routes: Routes, make_config: Any, sqlite_url: str,
    store_for: Callable[[Any], Store],
) -> None:  # fmt: skip
    path = tmp_path / "flux local.xml"
    path.write_text(GOOD_VICTIM, "utf-8")
    config = _config(make_config, sqlite_url, path.as_uri(), routes.feed("/s", rss("S", [])))
    store = store_for(config)
    assert collect(config, store).sources[1].new == 2
    assert collect(config, store).sources[1].status == "unchanged"
    path.unlink()
    victim = collect(config, store, only=["Victime"]).sources[0]
    assert victim.status == "failed" and victim.error == f"file not found: {path}"


def test_character_references_to_lone_surrogates_do_not_lose_the_feed() -> None:
    """``&#xD800;`` is not a character: the lenient parser used to fail on it
    (UnicodeEncodeError), losing every entry of the feed."""
    from pressreview.collect.parse import parse_body

    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>A &#xD800; &#55296; &#xdfff; &#57344; x</title><link>https://ex.fr/a</link>"
        b"<description>&lt;p&gt;x &#xD800; y&lt;/p&gt;</description></item>"
        b"<item><title>B</title><link>https://ex.fr/b</link></item></channel></rss>"
    )
    parsed = parse_body(body, {"content-type": "application/rss+xml"}, base_url="https://ex.fr/")
    assert [(e.title, e.summary_html) for e in parsed.entries] == [
        ("A \ufffd \ufffd \ufffd \ue000 x", "<p>x \ufffd y</p>"),
        ("B", ""),
    ]
