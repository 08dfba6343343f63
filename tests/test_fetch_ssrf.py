"""Redirects and pages may not lead into private address space (SSRF).

The tests run on loopback, so the policy is injected: 127.0.0.1 counts as
"public" and every other address (127.0.0.2, ::1, ...) as "private". The
"public" server listens on 127.0.0.1, the "private" one on 127.0.0.2. A
refused hop must never reach the private server (its hit count stays 0):
the check runs before the connection is made. The real classifier is
table-tested on its own, without any connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from feedserver import FeedServer, Reply
from newswatch.feeds.fetch import Fetcher
from newswatch.feeds.netguard import IPAddress, is_public_address, parse_address, resolve

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
INSIDE = b"<rss><channel><title>internal secrets</title></channel></rss>"
PUBLIC = ipaddress.ip_address("127.0.0.1")
NOTE = "a non-public address (the feed may set allow_private: true)"


def only_127_0_0_1(address: IPAddress) -> bool:
    return address == PUBLIC


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FeedServer, FeedServer]]:
    with FeedServer("127.0.0.1") as public, FeedServer("127.0.0.2") as private:
        yield public, private


@pytest.fixture
def public(servers: tuple[FeedServer, FeedServer]) -> FeedServer:
    servers[0].reset()  # one server for the module, fresh routes per test
    return servers[0]


@pytest.fixture
def private(servers: tuple[FeedServer, FeedServer]) -> FeedServer:
    servers[1].reset()
    servers[1].route("/inside", body=INSIDE)
    return servers[1]


def make_fetcher(**overrides: object) -> Fetcher:
    settings: dict[str, object] = {
        "concurrency": 4,
        "per_host": 4,
        "timeout": 5.0,
        "max_bytes": 1024 * 1024,
        "is_public": only_127_0_0_1,
    }
    settings.update(overrides)
    return Fetcher(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with make_fetcher() as f:
        yield f


def redirect(server: FeedServer, path: str, location: str, status: int = 302) -> str:
    server.route(path, status=status, headers={"Location": location})
    return server.url(path)


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("169.254.169.254", False),  # cloud metadata (link-local)
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("[::1]", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("64:ff9b::10.0.0.1", False),  # NAT64 of a private address
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("100.64.0.1", False),  # CGNAT shared space
        ("224.0.0.1", False),  # multicast, which is_global calls global
        ("ff02::1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("fc00::1", False),  # unique local
        ("fe80::1", False),
        ("fe80::1%1", False),
        ("fec0::1", False),  # site-local, which is_global calls global
        ("198.18.0.1", False),  # benchmarking
        ("192.0.2.1", False),  # documentation
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),  # the mapped form of a public address
        ("64:ff9b::8.8.8.8", True),
    ],
)
def test_address_classifier(address: str, public: bool) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert is_public_address(parsed) is public


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.1", "0177.0.0.1", "localhost"])
async def test_numeric_and_named_loopback_forms_resolve_to_loopback(host: str) -> None:
    # What the guard checks is what DNS (getaddrinfo) made of the name.
    try:
        addresses = await resolve(host, 80)
    except OSError as exc:  # a resolver may reject the octal form outright
        pytest.skip(f"the resolver rejects {host}: {exc}")
    parsed = [parse_address(a) for a in addresses]
    assert parsed
    assert all(p is not None and p.is_loopback and not is_public_address(p) for p in parsed)


def test_garbage_is_not_an_address() -> None:
    assert parse_address("example.com") is None
    assert parse_address("") is None


# --------------------------------------------------------------------------- redirects


async def test_configured_private_url_is_the_operators_choice(
    private: FeedServer, fetcher: Fetcher
) -> None:
    result = await fetcher.fetch("k", private.url("/inside"))
    assert result.body == INSIDE


async def test_redirect_to_a_private_address_is_refused(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    start = redirect(public, "/feed", private.url("/inside"))
    result = await fetcher.fetch("k", start)
    assert result.error == f"refused: redirect to 127.0.0.2, {NOTE}"
    assert result.body is None
    assert private.hits("/inside") == 0  # never connected


async def test_allow_private_lets_the_redirect_through(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    start = redirect(public, "/feed", private.url("/inside"))
    result = await fetcher.fetch("k", start, allow_private=True)
    assert result.body == INSIDE


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("2130706434", "2130706434 (127.0.0.2)"),  # decimal
        ("127.2", "127.2 (127.0.0.2)"),  # short form
        ("0x7f.2", "0x7f.2 (127.0.0.2)"),  # hex
        ("[::ffff:127.0.0.2]", "::ffff:127.0.0.2"),  # IPv4-mapped IPv6
    ],
)
async def test_numeric_forms_are_caught_after_dns(
    public: FeedServer, private: FeedServer, fetcher: Fetcher, host: str, shown: str
) -> None:
    start = redirect(public, "/feed", f"http://{host}:{private.port}/inside")
    result = await fetcher.fetch("k", start)
    assert result.error == f"refused: redirect to {shown}, {NOTE}"
    assert private.hits("/inside") == 0


async def test_redirect_to_ipv6_loopback_is_refused(public: FeedServer, fetcher: Fetcher) -> None:
    start = redirect(public, "/feed", "http://[::1]:9/feed")
    result = await fetcher.fetch("k", start)
    assert result.error == f"refused: redirect to ::1, {NOTE}"


async def test_redirect_on_the_configured_host_stays_allowed(
    private: FeedServer, fetcher: Fetcher
) -> None:
    start = redirect(private, "/old", "/inside", status=301)
    result = await fetcher.fetch("k", start)
    assert result.body == INSIDE


async def test_private_feed_may_redirect_to_a_public_host(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    public.route("/feed", body=RSS)
    start = redirect(private, "/old", public.url("/feed"))
    result = await fetcher.fetch("k", start)
    assert result.body == RSS


async def test_every_hop_is_checked(public: FeedServer, private: FeedServer) -> None:
    # configured -> another public host -> private: refused at the last hop.
    async def hosts(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "elsewhere.test" else await resolve(host, port)

    redirect(public, "/bounce", private.url("/inside"))
    start = redirect(public, "/start", f"http://elsewhere.test:{public.port}/bounce")
    async with make_fetcher(resolver=hosts) as f:
        result = await f.fetch("k", start)
    assert result.error == f"refused: redirect to 127.0.0.2, {NOTE}"
    assert public.hits("/bounce") == 1
    assert private.hits("/inside") == 0


async def test_a_return_to_the_configured_host_is_allowed(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    # configured (private) -> public -> the configured host again: the
    # operator's host is trusted at every hop, as at the first.
    second = redirect(public, "/bounce", private.url("/inside"))
    start = redirect(private, "/start", second)
    result = await fetcher.fetch("k", start)
    assert result.body == INSIDE


async def test_a_pooled_private_connection_is_not_reused_by_a_redirect(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    # Feed 1 is configured on the private host: its keep-alive connection
    # stays in the open pool. Feed 2's redirect to that same origin must
    # still be refused, not ride on the open connection.
    assert (await fetcher.fetch("own", private.url("/inside"))).ok
    start = redirect(public, "/feed", private.url("/inside"))
    result = await fetcher.fetch("other", start)
    assert result.error == f"refused: redirect to 127.0.0.2, {NOTE}"
    assert private.hits("/inside") == 1


async def test_a_name_with_any_private_address_is_refused(public: FeedServer) -> None:
    async def split_horizon(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "127.0.0.2"] if host == "mixed.test" else await resolve(host, port)

    public.route("/feed", body=RSS)
    start = redirect(public, "/start", f"http://mixed.test:{public.port}/feed")
    async with make_fetcher(resolver=split_horizon) as f:
        result = await f.fetch("k", start)
    assert result.error == f"refused: redirect to mixed.test (127.0.0.2), {NOTE}"
    assert public.hits("/feed") == 0


async def test_rebinding_cannot_swap_the_checked_address(public: FeedServer) -> None:
    # A rebinding name answers "public" first and "private" afterwards. The
    # connection goes to the address that was checked: the name is resolved
    # once per connection and never handed to the system resolver again
    # (rebind.test does not exist there, so a second lookup would fail).
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        if host != "rebind.test":
            return await resolve(host, port)
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["127.0.0.2"]

    public.route("/feed", body=RSS)
    start = redirect(public, "/start", f"http://rebind.test:{public.port}/feed")
    async with make_fetcher(resolver=rebinding) as f:
        result = await f.fetch("k", start)
    assert result.body == RSS
    assert lookups == ["rebind.test"]
    request = public.requests_to("/feed")[0]
    assert request.headers["host"] == f"rebind.test:{public.port}"


async def test_real_policy_refuses_a_loopback_redirect_from_another_host(
    public: FeedServer,
) -> None:
    # With the real classifier, 127.0.0.1 is private: a redirect from the
    # configured host (named "localhost") to 127.0.0.1 is refused, while a
    # redirect that stays on "localhost" is the operator's choice.
    public.route("/feed", body=RSS)
    public.route("/elsewhere", status=302, headers={"Location": public.url("/feed")})
    public.route("/same", status=302, headers={"Location": "/feed"})
    async with Fetcher(concurrency=2, per_host=2, timeout=5.0, max_bytes=1 << 20) as f:
        refused = await f.fetch("k", f"http://localhost:{public.port}/elsewhere")
        allowed = await f.fetch("k", f"http://localhost:{public.port}/same")
    assert refused.error == f"refused: redirect to 127.0.0.1, {NOTE}"
    assert allowed.body == RSS


async def test_a_passed_client_is_checked_after_connecting(
    public: FeedServer, private: FeedServer
) -> None:
    # The fetcher does not own this client's transport, so it cannot stop
    # the connection; it still refuses what the connection reached.
    start = redirect(public, "/feed", private.url("/inside"))
    async with httpx.AsyncClient() as client, make_fetcher(client=client) as f:
        result = await f.fetch("k", start)
    assert result.error == f"refused: redirect to 127.0.0.2, {NOTE}"
    assert result.body is None


# --------------------------------------------------------------------------- pages


async def test_page_on_a_private_address_is_refused(private: FeedServer, fetcher: Fetcher) -> None:
    # An article URL comes from a hostile feed: even its first hop is checked.
    result = await fetcher.fetch_page(private.url("/inside"))
    assert result.error == f"refused: page on 127.0.0.2, {NOTE}"
    assert result.feed_key == ""
    assert private.hits("/inside") == 0
    allowed = await fetcher.fetch_page(private.url("/inside"), allow_private=True)
    assert allowed.body == INSIDE


async def test_page_redirect_into_private_space_is_refused(
    public: FeedServer, private: FeedServer, fetcher: Fetcher
) -> None:
    start = redirect(public, "/article", private.url("/inside"))
    result = await fetcher.fetch_page(start)
    assert result.error == f"refused: redirect to 127.0.0.2, {NOTE}"


async def test_public_page_is_fetched_with_html_accept(
    public: FeedServer, fetcher: Fetcher
) -> None:
    public.route("/article", body=b"<html>hi</html>", content_type="text/html")
    result = await fetcher.fetch_page(public.url("/article"))
    assert result.body == b"<html>hi</html>"
    assert result.content_type == "text/html"
    assert public.requests_to("/article")[0].headers["accept"].startswith("text/html")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "/etc/passwd", "ftp://example.com/x", "javascript:alert(1)"]
)
async def test_pages_are_only_http(fetcher: Fetcher, url: str) -> None:
    result = await fetcher.fetch_page(url)
    assert result.error is not None
    assert result.error.startswith("unsupported page URL scheme")
    assert result.body is None


async def test_page_limits(public: FeedServer, fetcher: Fetcher) -> None:
    public.route("/big", Reply(body=b"x" * 5000, content_type="text/html"))
    small = await fetcher.fetch_page(public.url("/big"), max_bytes=1000)
    default = await fetcher.fetch_page(public.url("/big"))
    assert small.error == "body larger than 1000 bytes limit"
    assert default.body == b"x" * 5000
