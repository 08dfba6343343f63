"""Fetch feed documents and article pages -> ``FetchResult``.

This is the only module that talks to feed servers, and feed servers are
hostile. Its contract:

- ``Fetcher.fetch`` and ``Fetcher.fetch_page`` never raise (except
  cancellation): every failure comes back as ``FetchResult.error``, a short
  sentence for ``newswatch feeds`` that never holds a URL, a credential or a
  request header (``describe``).
- Memory: the body is read raw and decoded here (``decode``), one coding at
  most, bounded output per step, so the decoded-size cap holds while
  streaming and no bomb can inflate past it.
- Deadline: one per fetch, over the whole response (a server trickling a
  byte a second is cut off; httpx's timeouts are per read, so they never
  fire on a trickle). Time spent waiting for a slot does not count.
- Addresses: redirects are followed one hop at a time (``hops``). A hop that
  leaves the configured URL's host may only reach public addresses, and an
  article page (its URL comes from a feed) only public addresses at every
  hop, unless the feed says ``allow_private``; the check runs where the
  socket connects, after DNS (``netguard``).
- Politeness: one shared connection pool, a global limit on concurrent
  fetches and a per-host limit (``host_key``), conditional GET, an honest
  User-Agent, and the server's pacing signals passed on (Retry-After,
  Cache-Control max-age, permanent moves, 410 Gone).
- Credentials in a URL (``https://user:pw@host/``) become an Authorization
  header for that origin only and are stripped from ``FetchResult.url`` and
  ``moved_to``. The query stays in ``FetchResult.url`` (relative links
  resolve against it), so the poll layer must never show that URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from newswatch.feeds.describe import describe_http_error, describe_invalid_url, too_large
from newswatch.feeds.hops import MAX_REDIRECTS, Ask, Hops, Refused, valid_port
from newswatch.feeds.localfile import read_file
from newswatch.feeds.netguard import (
    AddressCheck,
    PolicyTransport,
    Resolver,
    is_public_address,
    resolve,
)
from newswatch.feeds.signals import host_key, strip_userinfo
from newswatch.model import FetchResult

__all__ = ["MAX_REDIRECTS", "Fetcher", "default_user_agent", "host_key"]

PROJECT_URL = "https://github.com/newswatch/newswatch"

# Feed types first; */* last because many servers mislabel feeds as text/html.
_FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.7, */*;q=0.5"
)
_PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# Idle keep-alive connections kept in each pool. Feeds are polled minutes
# apart, so more would only hold sockets open on remote servers.
_MAX_KEEPALIVE = 16


def default_user_agent() -> str:
    """``newswatch/<version> (+<project url>)``: lets feed owners find us."""
    try:
        version = importlib.metadata.version("newswatch")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"newswatch/{version} (+{PROJECT_URL})"


class Fetcher:
    """Fetches feeds and pages with shared limits: ``async with Fetcher(...) as f``.

    ``timeout`` (seconds) is the overall deadline of one fetch, from the first
    byte sent to the last byte read; time spent waiting for a free slot does
    not count. ``max_bytes`` caps the body after decompression. ``clock``
    stamps ``FetchResult.fetched_at``. ``is_public`` says which addresses
    count as public (tests on loopback declare some 127.x addresses private)
    and ``resolver`` turns a host name into addresses (both for the guarded
    connections). A ``client`` passed in is used as is and not closed; its
    transport makes the connections, so the address check can only look at
    the peer after connecting, and refuses a guarded hop whose peer address
    it cannot see.
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
        is_public: AddressCheck = is_public_address,
        resolver: Resolver = resolve,
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
        self._owns_client = client is None
        limits = httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=min(concurrency, _MAX_KEEPALIVE),
        )
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            transport=PolicyTransport(limits=limits, is_public=is_public, resolver=resolver),
        )
        self._hops = Hops(self._client, user_agent or default_user_agent(), is_public)

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
        *,
        allow_private: bool = False,
    ) -> FetchResult:
        """Fetch ``source``: an http(s) URL, a file:// URL or a local path.

        ``etag`` / ``last_modified`` are the validators of the previous fetch;
        when the document has not changed the result is ``not_modified`` and
        carries them on. The configured URL's host may be private (the
        operator chose it); a redirect to another host must reach public
        addresses only, unless ``allow_private``. Never raises.
        """
        try:
            scheme = urlsplit(source).scheme.lower()
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            return self._refuse(feed_key, source, describe_invalid_url(exc))
        if scheme in ("http", "https"):
            return await self._fetch_http(
                feed_key,
                source,
                accept=_FEED_ACCEPT,
                max_bytes=self._max_bytes,
                trusted=True,
                allow_private=allow_private,
                etag=etag,
                last_modified=last_modified,
            )
        if scheme == "file" or scheme == "" or len(scheme) == 1:  # "C:\feeds" is a path
            return await self._fetch_file(feed_key, source, etag)
        return self._refuse(
            feed_key,
            source,
            f"unsupported source {scheme!r}: use an http(s) URL, a file:// URL or a path",
        )

    async def fetch_page(
        self, url: str, *, allow_private: bool = False, max_bytes: int | None = None
    ) -> FetchResult:
        """Fetch an article or site page (full text, feed discovery).

        Its URL comes from a hostile feed, so every hop, the first included,
        must reach public addresses unless ``allow_private``, and only
        http(s) is fetched (never a local file). Same slots, deadline and
        signals as ``fetch``; ``max_bytes`` defaults to the fetcher's.
        ``feed_key`` of the result is empty. Never raises.
        """
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            return self._refuse("", url, describe_invalid_url(exc))
        if scheme not in ("http", "https"):
            return self._refuse("", url, f"unsupported page URL scheme {scheme!r}: only http(s)")
        limit = self._max_bytes if max_bytes is None else max_bytes
        if limit < 1:
            return self._refuse("", url, "max_bytes must be positive")
        return await self._fetch_http(
            "",
            url,
            accept=_PAGE_ACCEPT,
            max_bytes=limit,
            trusted=False,
            allow_private=allow_private,
        )

    def _refuse(self, feed_key: str, source: str, error: str) -> FetchResult:
        return FetchResult(
            feed_key=feed_key, url=strip_userinfo(source), fetched_at=self._clock(), error=error
        )

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
        self,
        feed_key: str,
        url: str,
        *,
        accept: str,
        max_bytes: int,
        trusted: bool,
        allow_private: bool,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        try:
            with_credentials = httpx.URL(url)
            target = httpx.URL(strip_userinfo(url))
        except (httpx.InvalidURL, ValueError) as exc:
            return self._refuse(feed_key, url, describe_invalid_url(exc))
        host = host_key(url)
        if not host:
            return self._refuse(feed_key, url, "invalid URL: no host name")
        if not valid_port(target):
            return self._refuse(feed_key, url, "invalid URL: bad port")
        user, password = with_credentials.username, with_credentials.password
        ask = Ask(
            url=target,
            auth=httpx.BasicAuth(user, password) if user or password else None,
            accept=accept,
            max_bytes=max_bytes,
            trusted_host=host if trusted else None,
            allow_private=allow_private,
            etag=etag,
            last_modified=last_modified,
        )
        async with self._http_slot(host):
            fetched_at = self._clock()
            started = time.monotonic()
            result = FetchResult(feed_key=feed_key, url=str(target), fetched_at=fetched_at)
            deadline = asyncio.timeout(self._timeout)
            try:
                async with deadline:
                    result = await self._hops.get(result, ask)
            except TimeoutError:
                if not deadline.expired():
                    raise
                error = f"no complete response within {self._timeout:.1f}s"
                result = dataclasses.replace(result, error=error)
            except Refused as exc:
                result = dataclasses.replace(result, error=str(exc))
            except httpx.HTTPError as exc:
                error = describe_http_error(exc, _failed_host(exc, target))
                result = dataclasses.replace(result, error=error)
            except Exception as exc:  # never let one feed's failure escape
                error = f"internal error while fetching: {type(exc).__name__}"
                result = dataclasses.replace(result, error=error)
            return dataclasses.replace(result, elapsed=time.monotonic() - started)

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
                    read = await asyncio.to_thread(read_file, source, self._max_bytes, etag)
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
                    error=too_large(self._max_bytes) if read.too_large else read.error,
                )
            return dataclasses.replace(result, elapsed=time.monotonic() - started)


# --------------------------------------------------------------------------- helpers


def _failed_host(exc: httpx.HTTPError, fallback: httpx.URL) -> str:
    """The host of the hop that failed (a redirect may lead elsewhere)."""
    try:
        return exc.request.url.host or fallback.host
    except RuntimeError:  # an exception raised outside a request
        return fallback.host


def _utc_now() -> datetime:
    return datetime.now(UTC)
