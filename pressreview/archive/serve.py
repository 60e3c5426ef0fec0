"""A local HTTP server for looking at the built archive (``archive serve``).

It serves the output folder by name, so after a rebuild the next request
already sees the new build (the folder is a symlink switched atomically).
Unknown addresses get the site's 404 page. For local viewing only: a public
site is served by a real web server or a static host.
"""

from __future__ import annotations

import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pressreview.errors import NotFound, UsageError


class ArchiveRequestHandler(SimpleHTTPRequestHandler):
    """Static files of the archive, with its own 404 page."""

    quiet = False

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code == 404 and page.is_file():
            body = page.read_bytes()
            self.send_response(404, message)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        super().send_error(code, message, explain)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    directory: Path, *, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False
) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` (not started: call ``serve_forever()``)."""
    if not (directory / "index.html").is_file():
        raise NotFound(
            f"{directory}: no archive there; build it first with `pressreview archive build`"
        )
    handler = functools.partial(
        type("Handler", (ArchiveRequestHandler,), {"quiet": quiet}),
        directory=os.fspath(directory),
    )
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
