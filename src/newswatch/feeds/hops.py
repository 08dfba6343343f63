"""One HTTP fetch, hop by hop: redirects, the address rule, the body.

httpx's own redirect following is not used: each hop needs its own decision
(may it reach private addresses? may it carry the configured URL's
credentials? was it permanent?), and httpx reads every redirect's body whole,
decoded, which is a bomb of its own. So each hop is one ``client.send``
without redirects; a redirect's body is never read.

The address rule (issue 7): a hop on the configured URL's host may reach any
address (the operator chose that host); any other hop, and every hop of a
page fetch, goes through the guarded pool (``netguard``) unless the feed
says ``allow_private``.
"""

from __future__ import annotations

import dataclasses

import httpx

from newswatch.feeds.decode import ACCEPT_ENCODING, DecodeError, EncodingRefused, decoder_for
from newswatch.feeds.describe import RETRY_AFTER_STATUSES, status_error, too_large
from newswatch.feeds.netguard import PUBLIC_ONLY, AddressCheck, NonPublicAddress, parse_address
from newswatch.feeds.signals import host_key, keeps_credentials, parse_max_age, strip_userinfo
from newswatch.model import FetchResult
from newswatch.notify.retry import parse_retry_after

__all__ = ["MAX_REDIRECTS", "Ask", "Hops", "Refused", "read_body", "valid_port"]

# Feeds move (http -> https, a new CMS, a CDN); a longer chain is a loop or a trap.
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Only these say "use the new URL from now on" (RFC 9110 15.4).
_PERMANENT_REDIRECTS = frozenset({301, 308})
_GONE = 410
# How httpx's RemoteProtocolError for an unparsable Location begins.
_BAD_LOCATION = "Invalid URL in location header"
_MAX_PORT = 65535
# Characters of a server-chosen host name echoed in a refusal.
_MAX_HOST_CHARS = 100


class Refused(Exception):
    """A fetch stopped on purpose; the message is the error text."""


@dataclasses.dataclass(frozen=True, slots=True)
class Ask:
    """What one fetch asks for, and which hops may reach private addresses."""

    url: httpx.URL  # without credentials
    auth: httpx.BasicAuth | None  # the URL's credentials, for its own origin only
    accept: str
    max_bytes: int
    trusted_host: str | None  # the operator's host: any address; None for pages
    allow_private: bool
    etag: str | None = None
    last_modified: str | None = None

    def public_only(self, hop: httpx.URL) -> bool:
        return not self.allow_private and host_key(str(hop)) != self.trusted_host


@dataclasses.dataclass(frozen=True, slots=True)
class Hops:
    """Sends the hops of one fetch through ``client``."""

    client: httpx.AsyncClient
    user_agent: str
    is_public: AddressCheck

    async def get(self, result: FetchResult, ask: Ask) -> FetchResult:
        """Follow redirects one hop at a time; answer from the last response."""
        hop = ask.url
        permanent = True
        for redirects in range(MAX_REDIRECTS + 1):
            response = await self._send(ask, hop, first=redirects == 0)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_STATUSES or location is None:
                    moved = redirects > 0 and permanent
                    return await self._answer(result, ask, response, moved=moved)
                permanent = permanent and response.status_code in _PERMANENT_REDIRECTS
                hop = _redirect_target(hop, location)
            finally:
                await response.aclose()  # a redirect's body is never read
        raise Refused(f"too many redirects (more than {MAX_REDIRECTS})")

    async def _send(self, ask: Ask, hop: httpx.URL, *, first: bool) -> httpx.Response:
        public_only = ask.public_only(hop)
        headers = {
            "User-Agent": self.user_agent,
            "Accept": ask.accept,
            # Set here, not left to httpx, which would add br and zstd
            # whenever those packages happen to be installed.
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if ask.etag:
            headers["If-None-Match"] = ask.etag
        if ask.last_modified:
            headers["If-Modified-Since"] = ask.last_modified
        request = self.client.build_request(
            "GET", hop, headers=headers, extensions={PUBLIC_ONLY: public_only}
        )
        auth = ask.auth if ask.auth is not None and keeps_credentials(ask.url, hop) else None
        kind = "page on" if first and ask.trusted_host is None else "redirect to"
        try:
            response = await self.client.send(
                request, stream=True, follow_redirects=False, auth=auth
            )
        except NonPublicAddress as exc:
            raise Refused(_non_public(kind, exc.host, exc.address)) from None
        except httpx.RemoteProtocolError as exc:
            # httpx parses a Location even when not following it, and its
            # message quotes the bad part, which may be ours (a token).
            if str(exc).startswith(_BAD_LOCATION):
                raise Refused("redirected to an invalid URL") from None
            raise
        if public_only:
            # Connections of the guarded pool were checked when made; this
            # also covers a client passed in, whose transport we do not own.
            peer = _peer_address(response)
            parsed = parse_address(peer) if peer else None
            if parsed is None or not self.is_public(parsed):
                await response.aclose()
                raise Refused(_non_public(kind, hop.host, peer or "unknown"))
        return response

    async def _answer(
        self, result: FetchResult, ask: Ask, response: httpx.Response, *, moved: bool
    ) -> FetchResult:
        url = strip_userinfo(str(response.url))
        status = response.status_code
        result = dataclasses.replace(
            result, url=url, status=status, content_type=response.headers.get("content-type")
        )
        if status == 304:
            return dataclasses.replace(
                result,
                not_modified=True,
                etag=response.headers.get("etag") or ask.etag,
                last_modified=response.headers.get("last-modified") or ask.last_modified,
                max_age=parse_max_age(response.headers.get("cache-control")),
                moved_to=url if moved else None,
            )
        if not response.is_success:
            retry_after = None
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), result.fetched_at
                )
            return dataclasses.replace(
                result, error=status_error(response), retry_after=retry_after, gone=status == _GONE
            )
        body = await read_body(response, ask.max_bytes)
        return dataclasses.replace(
            result,
            body=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            max_age=parse_max_age(response.headers.get("cache-control")),
            moved_to=url if moved else None,
        )


async def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body; ``Refused`` when refused or larger than ``max_bytes``."""
    try:
        decoder = decoder_for(response.headers.get("content-encoding"))
    except EncodingRefused as exc:
        raise Refused(str(exc)) from None
    declared = response.headers.get("content-length", "")
    if decoder.coding == "identity" and declared.isdigit() and int(declared) > max_bytes:
        raise Refused(too_large(max_bytes))  # before downloading anything
    chunks: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw():
            for piece in decoder.decode(raw):
                size += len(piece)
                if size > max_bytes:
                    raise Refused(too_large(max_bytes))
                chunks.append(piece)
            if decoder.finished:
                break  # what follows the compressed stream is ignored
        for piece in decoder.end():
            size += len(piece)
            if size > max_bytes:
                raise Refused(too_large(max_bytes))
            chunks.append(piece)
    except DecodeError as exc:
        raise Refused(str(exc)) from None
    return b"".join(chunks)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """The next hop: ``location`` resolved against ``current``, checked.

    Credentials in a Location are dropped (only the configured URL's own are
    used, for their origin), and so is the fragment, which is never sent.
    """
    try:
        target = current.join(location.strip())
        if target.scheme not in ("http", "https"):
            raise Refused("redirected to a URL that is not http(s)")
        if not target.host or not valid_port(target):
            raise Refused("redirected to an invalid URL")
        return httpx.URL(strip_userinfo(str(target.copy_with(fragment=None))))
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise Refused("redirected to an invalid URL") from None


def valid_port(url: httpx.URL) -> bool:
    """httpx accepts any number as a port; the socket layer fails on >65535
    with an exception group that would read as an internal error."""
    return url.port is None or 0 < url.port <= _MAX_PORT


def _peer_address(response: httpx.Response) -> str | None:
    """The address the response's connection is connected to, if the transport says."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    peer = stream.get_extra_info("server_addr")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def _non_public(kind: str, host: str, address: str) -> str:
    host = host[:_MAX_HOST_CHARS]
    as_address = parse_address(host)
    same = as_address is not None and as_address == parse_address(address)
    where = host if same else f"{host} ({address})"
    return f"refused: {kind} {where}, a non-public address (the feed may set allow_private: true)"
