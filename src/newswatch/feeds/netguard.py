"""Which addresses a fetch may connect to, checked where the connection is made.

Feed servers are hostile. A redirect, or an article link we fetch, can point
at the cloud metadata service (169.254.169.254), a router's admin page or a
database on localhost, and whatever comes back would become alerts (SSRF).
Checking the URL's host name is not enough: numeric forms (``2130706433``,
``127.1``, ``0x7f.1``) are loopback too, and DNS can answer "public" to a
first lookup and "private" to the next (rebinding). So the check runs in the
network backend, on every address DNS returned, and the socket is connected
to an address that was checked, never to the name again.

``PolicyTransport`` keeps two connection pools: an open one for requests the
operator vouched for (the configured feed URL's host), and a guarded one whose
connections all went through the check. A request picks its pool with the
``PUBLIC_ONLY`` extension; keep-alive connections never cross from one pool
to the other, so a connection to a private host opened for its own feed is
never reused by a redirect from some other feed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore
import httpx

__all__ = [
    "PUBLIC_ONLY",
    "AddressCheck",
    "GuardedBackend",
    "IPAddress",
    "NonPublicAddress",
    "PolicyTransport",
    "Resolver",
    "is_public_address",
    "parse_address",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressCheck = Callable[[IPAddress], bool]
# host, port -> numeric addresses to connect to, in preference order.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Request extension: True sends the request through the guarded pool.
PUBLIC_ONLY = "newswatch.public_only"

# IPv6 prefixes that carry an IPv4 address the packet ends up going to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215, site-local use
_IPV4_COMPATIBLE_MAX = 2**32  # ::a.b.c.d, deprecated by RFC 4291 but still routed by some


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (an IPv6 zone such as ``%eth0`` allowed), else None."""
    try:
        return ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, compatible, NAT64, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if int(address) < _IPV4_COMPATIBLE_MAX:
        return ipaddress.IPv4Address(int(address))  # also turns :: and ::1 into 0.0.0.x
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address.

    False for loopback, private (RFC 1918, fc00::/7), link-local
    (169.254/16, fe80::/10), shared CGNAT space (100.64/10), multicast,
    unspecified, documentation, reserved and site-local addresses, and for
    IPv6 forms of an IPv4 address that is one of those. ``is_global`` alone
    is not enough: it calls multicast and site-local addresses global.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL or address.is_site_local:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    return not (
        address.is_multicast
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or not address.is_global
    )


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for TCP, in the resolver's order, once each."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in found:
            found.append(sockaddr[0])
    return found


class NonPublicAddress(Exception):
    """A guarded connection would have gone to a non-public address."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to non-public address {address}")
        self.host = host
        self.address = address


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, and connects only to checked ones.

    If any address of the name is not public the connection is refused
    (:class:`NonPublicAddress`): a name that answers both public and private
    is not a public service, and trying only its public half would still let
    a rebinding name pick the order. Unix sockets are refused outright.
    """

    def __init__(
        self,
        *,
        is_public: AddressCheck = is_public_address,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._is_public = is_public
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._checked_addresses(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next checked address, like a browser
        assert failure is not None  # _checked_addresses never returns an empty list
        raise failure

    async def _checked_addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        try:
            with anyio.fail_after(seconds):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"DNS lookup for {host} timed out") from exc
        except OSError as exc:  # socket.gaierror: the describer finds it in the chain
            raise httpcore.ConnectError(str(exc)) from exc
        if not addresses:
            raise httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            parsed = parse_address(address)
            if parsed is None or not self._is_public(parsed):
                raise NonPublicAddress(host, address)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NonPublicAddress("a unix socket", path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response mapping, exception mapping),
    with a connection pool that connects through ``backend``."""

    def __init__(self, *, limits: httpx.Limits, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(limits=limits)
        # httpx has no public way to hand its pool a network backend, so the
        # pool it made (no sockets yet) is replaced by one configured the
        # same way. The SSRF tests go red if a new httpx stops using it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class PolicyTransport(httpx.AsyncBaseTransport):
    """Routes a request to the open or the guarded pool by its ``PUBLIC_ONLY``
    extension. Environment proxies are not used: behind a proxy the address
    connected to would be the proxy's, and the check would mean nothing."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        is_public: AddressCheck = is_public_address,
        resolver: Resolver = resolve,
    ) -> None:
        self._open = httpx.AsyncHTTPTransport(limits=limits)
        backend = GuardedBackend(is_public=is_public, resolver=resolver)
        self._guarded = _GuardedHTTPTransport(limits=limits, backend=backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._guarded if request.extensions.get(PUBLIC_ONLY) else self._open
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self._open.aclose()
        finally:
            await self._guarded.aclose()
