"""Helpers for the collection tests: feed bodies, a misbehaving server, store snapshots."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select

from pressreview.store import Store
from pressreview.store.schema import items, sources

# Short timeouts so that the hanging cases stay quick.
FAST_COLLECT = {
    "connect_timeout": 1,
    "read_timeout": 1,
    "total_timeout": 2,
    "max_bytes": 1_000_000,
}


def rss(
    channel: str, entries: list[tuple[str, str, str]], *, encoding: str | None = "UTF-8"
) -> str:
    """An RSS 2.0 document; entries are (guid, link, title)."""
    decl = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else '<?xml version="1.0"?>'
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid>{escape(guid)}</guid>"
        f"<pubDate>Mon, 02 Dec 2024 10:00:00 +0100</pubDate>"
        f"<description>{escape('<p>' + title + ' : le contrat de ville avance.</p>')}</description>"
        f"</item>"
        for guid, link, title in entries
    )
    return (
        f'{decl}<rss version="2.0"><channel><title>{escape(channel)}</title>'
        f"<link>https://example.fr/</link>{body}</channel></rss>"
    )


def snapshot(store: Store, source_name: str | None = None) -> list[dict[str, Any]]:
    """Every item row (of one source, or all) as plain dicts, by id."""
    with store.connect() as conn:
        query = select(items).order_by(items.c.id)
        if source_name is not None:
            query = query.join(sources, sources.c.id == items.c.source_id).where(
                sources.c.name == source_name
            )
        return [dict(r) for r in conn.execute(query).mappings()]


def source_row(store: Store, name: str) -> dict[str, Any]:
    with store.connect() as conn:
        return dict(conn.execute(select(sources).where(sources.c.name == name)).mappings().one())


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    server: MisbehavingServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)


def _hang(h: _Handler) -> None:
    """Read the request, never answer (until the server stops)."""
    h.server.stopping.wait(30)


def _endless(h: _Handler) -> None:
    """A 200 that never ends, as fast as the client reads."""
    h.send_response(200)
    h.send_header("Content-Type", "application/rss+xml")
    h.end_headers()
    h.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>')
    chunk = b"<item><title>encore</title></item>" * 2000
    while not h.server.stopping.is_set():
        h.wfile.write(chunk)


def _drip(h: _Handler) -> None:
    """A 200 whose body trickles in: each read is quick, the whole never ends."""
    h.send_response(200)
    h.send_header("Content-Type", "application/rss+xml")
    h.end_headers()
    h.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
    h.wfile.flush()
    while not h.server.stopping.is_set():
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(0.2)


class MisbehavingServer(ThreadingHTTPServer):
    """Cases pytest-httpserver cannot play: /hang, /endless, /drip."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self.routes: dict[str, Callable[[_Handler], None]] = {
            "/hang": _hang,
            "/endless": _endless,
            "/drip": _drip,
        }

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"


def misbehaving_server() -> Iterator[MisbehavingServer]:
    server = MisbehavingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
