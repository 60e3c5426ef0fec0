"""Fetching sources over HTTP (and file: URLs), politely and within bounds.

One ``Fetcher`` per run: an httpx.AsyncClient with connect/read timeouts, a
total deadline per source, a body size cap enforced while streaming (so a
gzip bomb or an endless body is cut off), a global and a per-host
concurrency limit, conditional GET (ETag / Last-Modified), and redirects
followed by hand so that permanent ones (301/308) can be reported.
Connections are kept alive per origin (see ``_PoolPerOrigin``).
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
import zlib
from collections import Counter, OrderedDict, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import getproxies

import httpx

from pressreview import __version__
from pressreview.config import CollectSettings
from pressreview.text import host_of


@dataclass
class FetchResult:
    """What one fetch gave: a body, a 304, or a failure with its reason."""

    url: str
    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    not_modified: bool = False
    error: str | None = None
    #: Set when a permanent redirect (301/308) was followed: the new URL.
    moved_to: str | None = None
    #: The source is gone for good (410): disable it.
    gone: bool = False
    #: The server asked us to come back later (429/503 with Retry-After).
    retry_after: datetime | None = None
    final_url: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class BodyTooLarge(Exception):
    pass


#: The body of a 3xx/4xx/5xx answer is read (and dropped) so that its connection can
#: serve the next request, when it declares at most this many bytes (else: closed).
DRAIN_MAX = 64 * 1024
#: ... and when it comes within this many seconds.
DRAIN_SECONDS = 1.0
#: Idle connections kept open at most, over every origin (bounds open sockets).
KEEPALIVE_MAX = 256

_Origin = tuple[bytes, bytes, int | None]


class _Pool:
    """The connections to one origin, and how many requests use them now."""

    __slots__ = ("active", "host", "peak", "transport")

    def __init__(self, transport: httpx.AsyncHTTPTransport, host: str) -> None:
        self.transport = transport
        self.host = host
        self.active = 0
        #: The most requests at once so far: its pool holds at most this many connections.
        self.peak = 0


class _PoolPerOrigin(httpx.AsyncBaseTransport):
    """One small connection pool per origin (scheme, host, port), with keep-alive.

    httpx's pool looks at every connection it holds for each request (and asks
    the kernel whether each idle one is still open), so one pool keeping
    connections to a hundred hosts costs more than it saves. Here each origin
    has its own pool of at most ``per_host`` connections. A pool is closed as
    soon as no request of the run (``expect``) is left for its host, and the
    least recently used idle pools are closed when the pools could hold more
    than ``KEEPALIVE_MAX`` connections.
    """

    def __init__(self, per_host: int) -> None:
        self._limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
        self._pools: OrderedDict[_Origin, _Pool] = OrderedDict()
        self._held = 0  # sum of the pools' peaks: connections they may hold
        self._ssl: ssl.SSLContext | None = None
        self._plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        #: Requests still to come per host name, when told (``expect``).
        self._pending: Counter[str] | None = None

    def expect(self, urls: Iterable[str]) -> None:
        """The URLs the run will fetch: a host's connections close after its last one."""
        self._pending = Counter(host_of(url) for url in urls)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            transport = httpx.AsyncHTTPTransport(verify=self._ssl_for(key[0]), limits=self._limits)
            pool = self._pools[key] = _Pool(transport, url.host.lower())
        else:
            self._pools.move_to_end(key)
        if self._pending is not None and self._pending[pool.host] > 0:
            self._pending[pool.host] -= 1
        pool.active += 1
        if pool.active > pool.peak:
            self._held += pool.active - pool.peak
            pool.peak = pool.active
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            await self._release(key, pool)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Released(response.stream, self, key, pool)
        return response

    def _ssl_for(self, scheme: bytes) -> ssl.SSLContext:
        """The certificate store is loaded once, and only when an https origin needs it."""
        if scheme != b"https":
            # Plain HTTP makes no TLS connection; if one were made, it would verify
            # against no certificate at all and fail.
            return self._plain
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def _release(self, key: _Origin, pool: _Pool) -> None:
        """A request is over (its answer read or dropped): close what is no longer needed."""
        pool.active -= 1
        if pool.active == 0 and self._pending is not None and not self._pending[pool.host]:
            await self._close(key, pool)
        if self._held > KEEPALIVE_MAX:
            for old_key, old in list(self._pools.items()):
                if self._held <= KEEPALIVE_MAX:
                    break
                if old.active == 0:
                    await self._close(old_key, old)

    async def _close(self, key: _Origin, pool: _Pool) -> None:
        if self._pools.get(key) is pool:
            del self._pools[key]
            self._held -= pool.peak
            await pool.transport.aclose()

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        self._held = 0
        for pool in pools:
            await pool.transport.aclose()


class _Released(httpx.AsyncByteStream):
    """An answer's body; closing it gives its connection back (``_PoolPerOrigin``)."""

    def __init__(
        self, stream: httpx.AsyncByteStream, owner: _PoolPerOrigin, key: _Origin, pool: _Pool
    ) -> None:
        self._stream = stream
        self._owner = owner
        self._key = key
        self._pool: _Pool | None = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                await self._owner._release(self._key, pool)


def user_agent(settings: CollectSettings) -> str:
    return f"pressreview/{__version__} (+{settings.contact_url})"


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=min(int(value), 7 * 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when, now)


class Fetcher:
    """Fetch many URLs concurrently with global and per-host limits."""

    def __init__(
        self,
        settings: CollectSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._pools: _PoolPerOrigin | None = None
        self._headers: dict[str, str] = {}
        self._timeout: dict[str, float | None] = {}
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        if self._transport is None and not _proxied():
            # (With a proxy from the environment, httpx's own pool holds connections to it.)
            self._pools = _PoolPerOrigin(s.per_host)
        timeout = httpx.Timeout(s.read_timeout, connect=s.connect_timeout)
        self._timeout = timeout.as_dict()
        self._headers = {
            "User-Agent": user_agent(s),
            "Accept": (
                "application/atom+xml, application/rss+xml, application/rdf+xml, "
                "application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
            ),
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
        }
        self.client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=s.concurrency,
                max_keepalive_connections=s.concurrency,
            ),
            headers=self._headers,
            follow_redirects=False,
            transport=self._transport or self._pools,
        )
        return self

    def expect(self, urls: Iterable[str]) -> None:
        """Say which URLs will be fetched: connections to a host close after its last one."""
        if self._pools is not None:
            self._pools.expect(urls)

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> FetchResult:
        """Fetch one URL within the total deadline; never raises for network trouble."""
        started = time.perf_counter()
        if url.startswith("file:"):
            result = await asyncio.to_thread(self._read_file, url)
        else:
            result = await self._fetch_http(url, etag, last_modified, accept)
        result.elapsed = time.perf_counter() - started
        return result

    def _read_file(self, url: str) -> FetchResult:
        parts = urlsplit(url)
        path = Path(unquote(parts.path))
        try:
            size = path.stat().st_size
            if size > self.settings.max_bytes:
                return FetchResult(
                    url=url, error=f"file larger than {self.settings.max_bytes} bytes"
                )
            return FetchResult(url=url, status=200, body=path.read_bytes(), final_url=url)
        except FileNotFoundError:
            return FetchResult(url=url, error=f"file not found: {path}")
        except OSError as exc:
            return FetchResult(url=url, error=f"cannot read {path}: {exc.strerror or exc}")

    async def _fetch_http(
        self, url: str, etag: str | None, last_modified: str | None, accept: str | None
    ) -> FetchResult:
        assert self.client is not None, "use Fetcher as an async context manager"
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        current = url
        moved_to: str | None = None
        seen = {url}
        permanent_chain = True
        # The total deadline counts time spent talking to servers, not time spent
        # waiting for a free slot behind other sources.
        budget = self.settings.total_timeout
        for _hop in range(self.settings.max_redirects + 1):
            host = host_of(current)
            try:
                # Host slot first: a source waiting for its busy host holds no global slot.
                async with self._hosts[host], self._global:
                    started = time.perf_counter()
                    try:
                        response, body = await asyncio.wait_for(
                            self._get(current, headers), timeout=max(budget, 0.001)
                        )
                    finally:
                        budget -= time.perf_counter() - started
            except TimeoutError:
                return FetchResult(
                    url=url, error=f"no complete answer within {self.settings.total_timeout:g} s"
                )
            except BodyTooLarge:
                return FetchResult(
                    url=url, error=f"body larger than {self.settings.max_bytes:,} bytes (cut off)"
                )
            except httpx.TimeoutException as exc:
                kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
                return FetchResult(url=url, error=f"timed out ({kind})")
            except httpx.ConnectError as exc:
                return FetchResult(url=url, error=f"cannot connect: {_reason(exc)}")
            except httpx.DecodingError as exc:
                return FetchResult(url=url, error=f"cannot decode the body: {_reason(exc)}")
            except httpx.HTTPError as exc:
                reason = _reason(exc)
                if reason == type(exc).__name__ or type(exc).__name__ in _PLAIN_REASONS:
                    return FetchResult(url=url, error=reason)
                return FetchResult(url=url, error=f"{type(exc).__name__}: {reason}")
            except ValueError as exc:  # malformed URL or headers
                return FetchResult(url=url, error=f"invalid request: {exc}")
            status = response.status_code
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            if status in (301, 302, 303, 307, 308) and "location" in resp_headers:
                target = urljoin(current, resp_headers["location"])
                if target in seen:
                    return FetchResult(url=url, status=status, error="redirect loop")
                seen.add(target)
                permanent_chain = permanent_chain and status in (301, 308)
                if permanent_chain:
                    moved_to = target
                current = target
                continue
            now = datetime.now(UTC)
            if status == 304:
                return FetchResult(
                    url=url, status=304, not_modified=True, headers=resp_headers,
                    moved_to=moved_to, final_url=current,
                )  # fmt: skip
            if status == 410:
                return FetchResult(
                    url=url, status=410, gone=True, error="410 Gone: the source was removed",
                    final_url=current,
                )  # fmt: skip
            if status in (429, 503):
                return FetchResult(
                    url=url,
                    status=status,
                    error=_status_text(status),
                    retry_after=parse_retry_after(resp_headers.get("retry-after"), now),
                )
            if status >= 400:
                return FetchResult(
                    url=url, status=status, error=_status_text(status), headers=resp_headers,
                    final_url=current,
                )  # fmt: skip
            if not body:
                return FetchResult(url=url, status=status, error="empty body", moved_to=moved_to)
            return FetchResult(
                url=url, status=status, body=body, headers=resp_headers,
                moved_to=moved_to, final_url=current,
            )  # fmt: skip
        return FetchResult(url=url, error=f"more than {self.settings.max_redirects} redirects")

    async def _get(self, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
        assert self.client is not None
        if self._pools is None:
            async with self.client.stream("GET", url, headers=headers) as response:
                return response, await self._read(response)
        # Straight to the pools: the client's layers (authentication, redirects, event
        # hooks, its own copy of every header) are a fifth of the CPU of a request and
        # do nothing here. Cookies are kept as the client keeps them.
        request = httpx.Request(
            "GET", url, headers={**self._headers, **headers}, extensions={"timeout": self._timeout}
        )
        cookies = self.client.cookies
        if cookies:
            cookies.set_cookie_header(request)
        response = await self._pools.handle_async_request(request)
        response.request = request
        try:
            if "set-cookie" in response.headers:
                cookies.extract_cookies(response)
            return response, await self._read(response)
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response) -> bytes:
        """The body (inflated, at most ``max_bytes``), or b"" for a 3xx, 4xx or 5xx answer."""
        cap = self.settings.max_bytes
        if response.status_code >= 300:
            await _drain(response)
            return b""
        declared = response.headers.get("content-length")
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if declared and declared.isdigit() and int(declared) > cap:
            raise BodyTooLarge
        # Raw bytes, inflated here with a bound on the output of every step: httpx
        # would inflate a whole network chunk at once, and a few kilobytes of a
        # gzip bomb are gigabytes once inflated.
        inflate = _Inflater(encoding, cap)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            for chunk in inflate.feed(raw):
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge
                chunks.append(chunk)
        tail = inflate.flush()
        size += len(tail)
        if size > cap:
            raise BodyTooLarge
        chunks.append(tail)
        return b"".join(chunks)


def _proxied() -> bool:
    """Whether the environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) for httpx."""
    proxies = getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


async def _drain(response: httpx.Response) -> None:
    """Read a small answer body to its end, so that its connection can be used again.

    Only a body known to be short (none for a 304, or a Content-Length of at
    most ``DRAIN_MAX``) and only for ``DRAIN_SECONDS``; any other connection is
    closed with the response.
    """
    declared = response.headers.get("content-length", "")
    if response.status_code != 304 and not (declared.isdigit() and int(declared) <= DRAIN_MAX):
        return
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in response.aiter_raw():
                pass
    except (httpx.HTTPError, TimeoutError):
        pass  # the connection is dropped; the answer's status stands


class _Inflater:
    """Content-Encoding (gzip, deflate, identity) undone with bounded output."""

    STEP = 256 * 1024

    def __init__(self, encoding: str, cap: int) -> None:
        codings = [c.strip() for c in encoding.split(",") if c.strip() not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")
        self.coding = codings[0] if codings else None
        self.cap = cap
        self._obj: Any = self._new() if self.coding else None
        self._first = True
        self._produced = False

    def _new(self, raw_deflate: bool = False) -> Any:
        if self.coding == "deflate":
            return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.coding is None:
            yield data
            return
        try:
            while data:
                if self._first and self.coding == "deflate":
                    self._first = False
                    # Some servers send raw deflate without the zlib header.
                    try:
                        out = self._obj.decompress(data, self.STEP)
                    except zlib.error:
                        self._obj = self._new(raw_deflate=True)
                        out = self._obj.decompress(data, self.STEP)
                else:
                    self._first = False
                    out = self._obj.decompress(data, self.STEP)
                if out:
                    self._produced = True
                    yield out
                data = self._obj.unconsumed_tail
                if self._obj.eof:
                    # Concatenated gzip members: start a new one on what is left.
                    rest = self._obj.unused_data
                    if not rest.strip(b"\x00"):
                        return
                    self._obj = self._new()
                    data = rest
        except zlib.error as exc:
            raise httpx.DecodingError(f"corrupt {self.coding} body ({exc})") from None

    def flush(self) -> bytes:
        if self.coding is None:
            return b""
        try:
            tail = bytes(self._obj.flush(self.cap + 1))
        except zlib.error as exc:  # pragma: no cover - flush rarely raises
            raise httpx.DecodingError(f"corrupt {self.coding} body ({exc})") from None
        if not self._produced and not tail and not self._obj.eof:
            raise httpx.DecodingError(f"truncated or corrupt {self.coding} body")
        return tail


def _status_text(status: int) -> str:
    """``HTTP 404 Not Found``: the standard phrase, whatever the server wrote."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


_PLAIN_REASONS = {
    "ReadError": "connection lost while reading the answer",
    "WriteError": "connection lost while sending the request",
    "RemoteProtocolError": "the server broke the HTTP protocol",
    "LocalProtocolError": "invalid request",
}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if not text and cause is not None:
        text = str(cause).strip()
    if text:
        return text.splitlines()[0]
    return _PLAIN_REASONS.get(type(exc).__name__, type(exc).__name__)
