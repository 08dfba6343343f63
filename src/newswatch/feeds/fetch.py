"""Fetch feed documents over HTTP(S) or from local files -> ``FetchResult``.

This is the only module that talks to feed servers. Its contract:

- ``Fetcher.fetch`` never raises (except cancellation): every failure comes
  back as ``FetchResult.error``, a short sentence for ``newswatch feeds``.
  Error texts never contain URLs or headers, so a token in a feed URL cannot
  leak into logs through them.
- Politeness: one shared connection pool, a global limit on concurrent
  fetches and a per-host limit, conditional GET, an honest User-Agent.
- Safety: an overall deadline per fetch (a server trickling one byte per
  second is cut off; httpx's timeouts are per read, so they never fire on a
  trickle) and a cap on the decompressed body size (gzip bombs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import http
import importlib.metadata
import socket
import ssl
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import httpx

from newswatch.model import FetchResult

__all__ = ["MAX_REDIRECTS", "Fetcher", "default_user_agent"]

# Feeds move (http -> https, a new CMS, a CDN); a longer chain is a loop or a trap.
MAX_REDIRECTS = 5

PROJECT_URL = "https://github.com/newswatch/newswatch"

# Feed types first; */* last because many servers mislabel feeds as text/html.
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# Servers say when to come back on these; the hint goes into the error text.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# Characters of a server-chosen header value (Retry-After) echoed in an error.
_MAX_ECHO_CHARS = 64
# Idle keep-alive connections kept in the shared pool. Feeds are polled
# minutes apart, so more would only hold sockets open on remote servers.
_MAX_KEEPALIVE = 16


def default_user_agent() -> str:
    """``newswatch/<version> (+<project url>)``: lets feed owners find us."""
    try:
        version = importlib.metadata.version("newswatch")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"newswatch/{version} (+{PROJECT_URL})"


class Fetcher:
    """Fetches feeds with shared limits. Use as ``async with Fetcher(...) as f``.

    ``timeout`` (seconds) is the overall deadline of one fetch, from the first
    byte sent to the last byte read; time spent waiting for a free slot does
    not count. ``max_bytes`` caps the body after decompression. A ``client``
    passed in is used as is (redirects are still followed per request) and is
    not closed by the fetcher. ``clock`` stamps ``FetchResult.fetched_at``.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        per_host: int,
        timeout: float,
        max_bytes: int,
        user_agent: str | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if concurrency < 1 or per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        if timeout <= 0 or max_bytes < 1:
            raise ValueError("timeout and max_bytes must be positive")
        self._timeout = float(timeout)
        self._max_bytes = max_bytes
        self._per_host = per_host
        self._slots = asyncio.Semaphore(concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._clock = clock or _utc_now
        self._headers = {"User-Agent": user_agent or default_user_agent(), "Accept": _ACCEPT}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(
                max_connections=concurrency,
                max_keepalive_connections=min(concurrency, _MAX_KEEPALIVE),
            ),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this fetcher created it."""
        if self._owns_client:
            await self._client.aclose()

    async def fetch(
        self,
        feed_key: str,
        source: str,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """Fetch ``source``: an http(s) URL, a file:// URL or a local path.

        ``etag`` / ``last_modified`` are the validators of the previous fetch;
        when the document has not changed the result is ``not_modified`` and
        carries them on. Never raises; failures are ``FetchResult.error``.
        """
        try:
            scheme = urlsplit(source).scheme.lower()
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            return self._refuse(feed_key, source, f"invalid URL: {_first_line(exc)}")
        if scheme in ("http", "https"):
            return await self._fetch_http(feed_key, source, etag, last_modified)
        if scheme == "file" or scheme == "" or len(scheme) == 1:  # "C:\feeds" is a path
            return await self._fetch_file(feed_key, source, etag)
        return self._refuse(
            feed_key,
            source,
            f"unsupported source {scheme!r}: use an http(s) URL, a file:// URL or a path",
        )

    def _refuse(self, feed_key: str, source: str, error: str) -> FetchResult:
        return FetchResult(feed_key=feed_key, url=source, fetched_at=self._clock(), error=error)

    # ----------------------------------------------------------------- http

    @asynccontextmanager
    async def _http_slot(self, host: str) -> AsyncIterator[None]:
        # Per-host first, global second: a fetch queued behind its host's
        # limit must not sit on a global slot that another host could use.
        host_slots = self._host_slots.get(host)
        if host_slots is None:
            host_slots = self._host_slots[host] = asyncio.Semaphore(self._per_host)
        async with host_slots, self._slots:
            yield

    async def _fetch_http(
        self, feed_key: str, url: str, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        try:
            host = httpx.URL(url).host.lower()
        except (httpx.InvalidURL, ValueError) as exc:
            return self._refuse(feed_key, url, f"invalid URL: {_first_line(exc)}")
        if not host:
            return self._refuse(feed_key, url, "invalid URL: no host name")
        async with self._http_slot(host):
            fetched_at = self._clock()
            started = time.monotonic()
            # Credentials in a URL (https://user:pass@host/) become an
            # Authorization header; they are kept out of the result.
            result = FetchResult(
                feed_key=feed_key, url=_without_userinfo(url), fetched_at=fetched_at
            )
            deadline = asyncio.timeout(self._timeout)
            try:
                async with deadline:
                    result = await self._get(result, url, etag, last_modified)
            except TimeoutError:
                if not deadline.expired():
                    raise
                error = f"no complete response within {self._timeout:.1f}s"
                result = dataclasses.replace(result, error=error)
            except httpx.HTTPError as exc:
                result = dataclasses.replace(result, error=_describe_http_error(exc, host))
            except httpx.InvalidURL:  # the URL itself was checked above
                result = dataclasses.replace(result, error="redirected to an invalid URL")
            except Exception as exc:  # never let one feed's failure escape
                error = f"{type(exc).__name__}: {_first_line(exc)}"
                result = dataclasses.replace(result, error=error)
            return dataclasses.replace(result, elapsed=time.monotonic() - started)

    async def _get(
        self, result: FetchResult, url: str, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        headers = dict(self._headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._client.stream(
            "GET", url, headers=headers, follow_redirects=True
        ) as response:
            result = dataclasses.replace(
                result,
                url=_without_userinfo(str(response.url)),
                status=response.status_code,
                content_type=response.headers.get("content-type"),
            )
            if response.status_code == http.HTTPStatus.NOT_MODIFIED:
                return dataclasses.replace(
                    result,
                    not_modified=True,
                    etag=response.headers.get("etag") or etag,
                    last_modified=response.headers.get("last-modified") or last_modified,
                )
            if not response.is_success:
                return dataclasses.replace(result, error=_status_error(response))
            body = await self._read_capped(response)
            if body is None:
                return dataclasses.replace(result, error=self._too_large())
            return dataclasses.replace(
                result,
                body=body,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )

    async def _read_capped(self, response: httpx.Response) -> bytes | None:
        """The decoded body, or None when it is larger than ``max_bytes``."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        declared = response.headers.get("content-length", "")
        if encoding == "identity" and declared.isdigit() and int(declared) > self._max_bytes:
            return None  # refuse before downloading anything
        # aiter_bytes decompresses (gzip, deflate), so the cap counts what a
        # bomb expands to. httpx inflates one network read (<= 64 KiB) at a
        # time, which bounds the transient overshoot past the cap.
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"body larger than {_format_size(self._max_bytes)} limit"

    # ----------------------------------------------------------------- files

    async def _fetch_file(self, feed_key: str, source: str, etag: str | None) -> FetchResult:
        async with self._slots:
            fetched_at = self._clock()
            started = time.monotonic()
            result = FetchResult(feed_key=feed_key, url=source, fetched_at=fetched_at)
            deadline = asyncio.timeout(self._timeout)
            try:
                async with deadline:
                    # Off the event loop: a file on a slow or hung network
                    # mount must not stall every other feed.
                    read = await asyncio.to_thread(_read_file, source, self._max_bytes, etag)
            except TimeoutError:
                if not deadline.expired():
                    raise
                error = f"file not read within {self._timeout:.1f}s"
                result = dataclasses.replace(result, error=error)
            else:
                result = dataclasses.replace(
                    result,
                    url=read.url,
                    body=read.body,
                    not_modified=read.not_modified,
                    etag=read.etag,
                    error=self._too_large() if read.too_large else read.error,
                )
            return dataclasses.replace(result, elapsed=time.monotonic() - started)


# --------------------------------------------------------------------------- files


@dataclasses.dataclass(frozen=True, slots=True)
class _FileRead:
    url: str
    body: bytes | None = None
    etag: str | None = None
    not_modified: bool = False
    too_large: bool = False
    error: str | None = None


def _read_file(source: str, max_bytes: int, etag: str | None) -> _FileRead:
    """Read a local feed (runs in a worker thread).

    The validator is an ETag made of the modification time (ns) and size, so
    an unchanged file is reported ``not_modified`` without being re-parsed.
    """
    if source.lower().startswith("file:"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            return _FileRead(url=source, error=f"file URL on a remote host: {parts.netloc}")
        path = Path(url2pathname(parts.path))
    else:
        path = Path(source).expanduser()
    url = source
    try:
        url = path.resolve().as_uri()
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the thread forever
            return _FileRead(url=url, error=f"not a regular file: {path}")
        validator = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        if etag == validator:
            return _FileRead(url=url, etag=validator, not_modified=True)
        if info.st_size > max_bytes:
            return _FileRead(url=url, too_large=True)
        with path.open("rb") as f:
            body = f.read(max_bytes + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        return _FileRead(url=url, error=f"file not found: {path}")
    except PermissionError:
        return _FileRead(url=url, error=f"permission denied: {path}")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _FileRead(url=url, error=f"could not read {path}: {reason}")
    if len(body) > max_bytes:
        return _FileRead(url=url, too_large=True)
    return _FileRead(url=url, body=body, etag=validator)


# --------------------------------------------------------------------------- errors


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _format_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _first_line(value: object) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in str(value).split("\n", 1)[0])
    return text[:200].strip()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _status_error(response: httpx.Response) -> str:
    """``HTTP 404 Not Found``, plus the server's Retry-After hint if any."""
    status = response.status_code
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = _first_line(response.reason_phrase)[:_MAX_ECHO_CHARS]
    text = f"HTTP {status} {phrase}".rstrip()
    retry_after = response.headers.get("retry-after")
    if status in _RETRY_AFTER_STATUSES and retry_after:
        text += f" (Retry-After: {_first_line(retry_after)[:_MAX_ECHO_CHARS]})"
    return text


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exception-group members."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


def _describe_connect_error(exc: httpx.ConnectError, host: str) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "certificate rejected"
            return f"TLS certificate of {host} not accepted: {reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {host} failed: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup for {host} failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {host} refused"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return f"{host} unreachable: {cause.strerror}"
    return f"could not connect to {host}: {_first_line(exc) or type(exc).__name__}"


def _describe_http_error(exc: httpx.HTTPError, host: str) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting to {host} timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"{host} stopped responding (timed out)"
    if isinstance(exc, httpx.ConnectError):
        return _describe_connect_error(exc, host)
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects (more than {MAX_REDIRECTS})"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "redirected to a URL that is not http(s)"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decompress the response: {_first_line(exc)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} broke the HTTP protocol: {_first_line(exc)}"
    if isinstance(exc, httpx.NetworkError):
        return f"connection to {host} lost: {_first_line(exc) or type(exc).__name__}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def host_key(url: str) -> str:
    """The lower-cased host of ``url`` (per-host limits); "" when none."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
