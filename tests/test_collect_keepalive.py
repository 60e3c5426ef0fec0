"""Keep-alive: connections serve several sources of a host, and are closed when done;
a run where every source answers 304 does no more than it needs.

Against a real HTTP/1.1 server (standard library) that counts the TCP
connections it accepts and sees closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fixtures_collect import rss

from pressreview.collect import collect
from pressreview.collect import fetch as fetch_module
from pressreview.collect.fetch import Fetcher
from pressreview.config import CollectSettings
from pressreview.store import Store


class _Counting(BaseHTTPRequestHandler):
    server: CountingServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.opened += 1

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.closed += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
        if self.path.startswith("/feed-"):
            entry = (self.path, f"https://example.fr{self.path}", "Amiens signe son contrat")
            body = rss(f"Journal {self.path}", [entry]).encode()
            etag = '"' + hashlib.sha1(body).hexdigest()[:12] + '"'
            if self.headers.get("If-None-Match") == etag:
                self._answer(304, b"", {"ETag": etag}, length=False)
            else:
                self._answer(200, body, {"ETag": etag, "Content-Type": "application/rss+xml"})
        elif self.path == "/gate":
            # A bot shield: sets a cookie, sends the client on, lets it in only with it.
            self._answer(302, b"", {"Location": "/gate/in", "Set-Cookie": "pass=1; Path=/"})
        elif self.path == "/gate/in":
            if "pass=1" in (self.headers.get("Cookie") or ""):
                self._answer(200, rss("Portail", []).encode(), {"Content-Type": "text/xml"})
            else:
                self._answer(403, b"", {})
        elif self.path == "/missing":
            self._answer(404, b"<html><body>Introuvable</body></html>", {})
        elif self.path == "/moved-big":
            # A redirect with a long body: not worth reading, its connection is closed.
            self._answer(302, b"x" * 200_000, {"Location": "/feed-moved"})
        else:
            self._answer(404, b"", {})

    def _answer(
        self, status: int, body: bytes, headers: dict[str, str], length: bool = True
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Counting)
        self.lock = threading.Lock()
        self.opened = self.closed = self.requests = 0

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def wait_closed(self, count: int, seconds: float = 3.0) -> int:
        """The number of closed connections, once it reaches ``count`` (or after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while self.closed < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.closed


def _serve(host: str) -> Iterator[CountingServer]:
    server = CountingServer(host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    yield from _serve("127.0.0.1")


@pytest.fixture
def other() -> Iterator[CountingServer]:
    """On another host name (the loopback network answers on every 127.x.y.z)."""
    yield from _serve("127.0.0.2")


def test_sources_of_a_host_share_its_connections(
    server: CountingServer, make_config: Callable[..., Any], store_for: Callable[..., Store]
) -> None:
    feeds = [{"name": f"Journal {i}", "url": server.url(f"/feed-{i}.xml")} for i in range(12)]
    config = make_config(feeds=feeds, collect={"per_host": 2})
    store = store_for(config)
    first = collect(config, store)
    assert {s.status for s in first.sources} == {"ok"}
    assert server.requests == 12 and server.opened <= 2
    # Every connection is closed at the end of the run (after the host's last source).
    assert server.wait_closed(server.opened) == server.opened
    opened = server.opened
    second = collect(config, store)
    assert {s.status for s in second.sources} == {"not_modified"}
    # 304 answers (no body) leave their connection ready for the next source.
    assert server.requests == 24 and server.opened - opened <= 2


def test_error_answers_with_a_short_body_keep_the_connection(server: CountingServer) -> None:
    async def run() -> list[fetch_module.FetchResult]:
        async with Fetcher(CollectSettings()) as fetcher:
            return [await fetcher.fetch(server.url(path))
                    for path in ("/missing", "/feed-1.xml", "/missing")]  # fmt: skip

    results = asyncio.run(run())
    assert [r.status for r in results] == [404, 200, 404]
    assert results[0].error == "HTTP 404 Not Found"
    assert server.opened == 1


def test_a_long_redirect_body_is_not_read(server: CountingServer) -> None:
    async def run() -> fetch_module.FetchResult:
        async with Fetcher(CollectSettings()) as fetcher:
            return await fetcher.fetch(server.url("/moved-big"))

    result = asyncio.run(run())
    assert result.status == 200 and result.final_url == server.url("/feed-moved")
    assert result.body is not None and b"<rss" in result.body
    assert server.opened == 2  # the first connection was closed, not drained


def test_a_host_s_connections_close_after_its_last_expected_url(
    server: CountingServer, other: CountingServer
) -> None:
    urls = [server.url("/feed-1.xml"), server.url("/feed-2.xml"), other.url("/feed-3.xml")]
    closed: list[int] = []

    async def run() -> None:
        async with Fetcher(CollectSettings()) as fetcher:
            fetcher.expect(urls)
            await fetcher.fetch(urls[0])
            closed.append(server.closed)  # one URL of this host left: kept
            await fetcher.fetch(urls[1])
            closed.append(await asyncio.to_thread(server.wait_closed, 1))
            await fetcher.fetch(urls[2])
            closed.append(await asyncio.to_thread(other.wait_closed, 1))

    asyncio.run(run())
    assert closed == [0, 1, 1] and server.opened == 1 and other.opened == 1


def test_idle_connections_are_bounded(
    server: CountingServer, other: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_module, "KEEPALIVE_MAX", 1)
    open_at_end: list[int] = []

    async def run() -> None:
        async with Fetcher(CollectSettings()) as fetcher:  # no expect(): pools are kept
            await fetcher.fetch(server.url("/feed-1.xml"))
            await fetcher.fetch(other.url("/feed-2.xml"))
            # The least recently used idle pool (the first server's) was closed.
            await asyncio.to_thread(server.wait_closed, 1)
            open_at_end.extend([server.opened - server.closed, other.opened - other.closed])
            await fetcher.fetch(other.url("/feed-3.xml"))

    asyncio.run(run())
    assert open_at_end == [0, 1] and other.opened == 1


def test_cookies_are_kept_between_requests(server: CountingServer) -> None:
    async def run() -> fetch_module.FetchResult:
        async with Fetcher(CollectSettings()) as fetcher:
            return await fetcher.fetch(server.url("/gate"))

    result = asyncio.run(run())
    assert result.status == 200 and result.error is None and server.requests == 2


def test_a_run_where_nothing_changed_builds_no_classifier(
    server: CountingServer,
    make_config: Callable[..., Any],
    store_for: Callable[..., Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pressreview.collect import classify

    built: list[int] = []
    original = classify.Classifier.__init__

    def counting(self: classify.Classifier, config: Any) -> None:
        built.append(1)
        original(self, config)

    monkeypatch.setattr(classify.Classifier, "__init__", counting)
    feeds = [{"name": f"Journal {i}", "url": server.url(f"/feed-{i}.xml")} for i in range(3)]
    config = make_config(feeds=feeds)
    store = store_for(config)
    first = collect(config, store, workers=0)
    assert first.total("new") == 3 and len(built) == 1  # built once, for the bodies
    second = collect(config, store, workers=0)
    assert {s.status for s in second.sources} == {"not_modified"} and len(built) == 1
