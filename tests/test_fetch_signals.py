"""Politeness signals (Retry-After, max-age, permanent moves, 410) and
credentials in feed URLs, on a real loopback server; pure readers as tables."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from feedserver import FeedServer, http_date
from newswatch.feeds.describe import describe_http_error
from newswatch.feeds.fetch import Fetcher, host_key
from newswatch.feeds.netguard import IPAddress, resolve
from newswatch.feeds.signals import keeps_credentials, parse_max_age, strip_userinfo

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def loopback_is_public(address: IPAddress) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


async def elsewhere(host: str, port: int) -> list[str]:
    """A second host name for the one loopback server."""
    return ["127.0.0.1"] if host == "elsewhere.test" else await resolve(host, port)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.fixture
def server(shared_server: FeedServer) -> FeedServer:
    shared_server.reset()  # one server for the module, fresh routes per test
    return shared_server


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(
        concurrency=4,
        per_host=4,
        timeout=5.0,
        max_bytes=1 << 20,
        clock=lambda: NOW,
        is_public=loopback_is_public,
        resolver=elsewhere,
    ) as f:
        yield f


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize(
    ("status", "header", "error", "retry_after"),
    [
        (429, "120", "HTTP 429 Too Many Requests (Retry-After: 120)", 120.0),
        (
            503,
            "Wed, 01 May 2024 12:10:00 GMT",
            "HTTP 503 Service Unavailable (Retry-After: Wed, 01 May 2024 12:10:00 GMT)",
            600.0,
        ),
        (503, "Mon, 01 Jan 2001 00:00:00 GMT", None, 0.0),  # a date in the past
        (429, "soon", "HTTP 429 Too Many Requests (Retry-After: soon)", None),
        (500, "120", "HTTP 500 Internal Server Error", None),  # only 429/503 count
    ],
)
async def test_retry_after(
    server: FeedServer,
    fetcher: Fetcher,
    status: int,
    header: str,
    error: str | None,
    retry_after: float | None,
) -> None:
    server.route("/feed", status=status, headers={"Retry-After": header})
    result = await fetcher.fetch("k", server.url("/feed"))
    if error is not None:
        assert result.error == error
    assert result.retry_after == retry_after
    assert not result.gone


async def test_no_retry_after_header(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed", status=429)
    result = await fetcher.fetch("k", server.url("/feed"))
    assert result.error == "HTTP 429 Too Many Requests"
    assert result.retry_after is None


async def test_gone(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed", status=410)
    result = await fetcher.fetch("k", server.url("/feed"))
    assert result.error == "HTTP 410 Gone"
    assert result.gone
    missing = await fetcher.fetch("k", server.url("/nothing-here"))
    assert missing.error == "HTTP 404 Not Found"
    assert not missing.gone


async def test_max_age_of_200_and_304(server: FeedServer, fetcher: Fetcher) -> None:
    headers = {"Cache-Control": "public, max-age=900"}
    server.route("/feed", body=RSS, etag='"v1"', headers=headers)
    first = await fetcher.fetch("k", server.url("/feed"))
    assert first.max_age == 900.0
    again = await fetcher.fetch("k", server.url("/feed"), etag=first.etag)
    assert again.not_modified
    assert again.max_age == 900.0
    server.route("/plain", body=RSS)
    assert (await fetcher.fetch("k", server.url("/plain"))).max_age is None


async def test_max_age_of_an_error_is_not_reported(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed", status=500, headers={"Cache-Control": "max-age=900"})
    assert (await fetcher.fetch("k", server.url("/feed"))).max_age is None


@pytest.mark.parametrize(
    ("chain", "moved"),
    [
        ([301], True),
        ([308], True),
        ([301, 308], True),
        ([301, 302], False),  # one temporary hop: the feed has not moved
        ([307], False),
        ([], False),
    ],
)
async def test_moved_to_only_when_every_hop_is_permanent(
    server: FeedServer, fetcher: Fetcher, chain: list[int], moved: bool
) -> None:
    server.route("/final", body=RSS)
    target = "/final"
    for i, status in reversed(list(enumerate(chain))):
        server.route(f"/hop{i}", status=status, headers={"Location": target})
        target = f"/hop{i}"
    result = await fetcher.fetch("k", server.url(target))
    assert result.body == RSS
    assert result.url == server.url("/final")
    assert result.moved_to == (server.url("/final") if moved else None)


async def test_moved_to_a_304(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/final", body=RSS, etag='"v1"')
    server.route("/old", status=301, headers={"Location": "/final"})
    result = await fetcher.fetch("k", server.url("/old"), etag='"v1"')
    assert result.not_modified
    assert result.moved_to == server.url("/final")


async def test_no_move_to_a_broken_url(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/old", status=301, headers={"Location": "/missing"})
    result = await fetcher.fetch("k", server.url("/old"))
    assert result.error == "HTTP 404 Not Found"
    assert result.moved_to is None


async def test_moved_to_has_no_credentials(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/final", body=RSS)
    location = f"http://evil:SECRET@127.0.0.1:{server.port}/final?token=T"
    server.route("/old", status=301, headers={"Location": location})
    result = await fetcher.fetch("k", server.url("/old"))
    assert result.moved_to == server.url("/final?token=T")
    assert "authorization" not in server.requests_to("/final")[0].headers


async def test_accept_asks_for_json_feed_too(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed", body=RSS)
    await fetcher.fetch("k", server.url("/feed"))
    accept = server.requests_to("/feed")[0].headers["accept"]
    assert "application/feed+json" in accept
    assert "application/json;q=0.7" in accept
    assert accept.startswith("application/rss+xml")


# --------------------------------------------------------------------------- credentials

SECRET = "pw-SECRET-42"
TOKEN = "tok-SECRET-43"


async def test_credentials_never_reach_the_result(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed", body=RSS)
    url = f"http://user:{SECRET}@127.0.0.1:{server.port}/feed?token={TOKEN}"
    result = await fetcher.fetch("k", url)
    assert result.ok
    # The query stays: relative links in the feed resolve against it.
    assert result.url == server.url(f"/feed?token={TOKEN}")
    assert SECRET not in repr(result)
    assert server.requests_to("/feed")[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "url",
    [
        "http://user:{s}@127.0.0.1:{port}/missing?token={t}",  # 404
        "http://user:{s}@127.0.0.1:{closed}/feed?token={t}",  # refused
        "http://user:{s}@127.0.0.1:99999/feed?token={t}",  # invalid port
        "http://user:{s}@127.0.0.1:{t}/feed",  # the token typed where the port goes
        "http://user:{s}@{t}.exa mple/feed",  # invalid host quoting the token
        "http://user:{s}@[::1/feed?token={t}",  # unclosed bracket
        "http://user:{s}@exa mple.com/feed?token={t}",  # a space in the host
        "http://user:{s}@/feed?token={t}",  # no host
        "http://user:{s}@127.0.0.1:{port}/loop?token={t}",  # too many redirects
        "http://user:{s}@127.0.0.1:{port}/private?token={t}",  # refused redirect
        "http://user:{s}@127.0.0.1:{port}/bad-location?token={t}",
        "http://user:{s}@127.0.0.1:{port}/busy?token={t}",
    ],
)
async def test_errors_hold_no_credentials(server: FeedServer, fetcher: Fetcher, url: str) -> None:
    server.route("/loop", status=302, headers={"Location": f"/loop?token={TOKEN}"})
    server.route("/private", status=302, headers={"Location": f"http://127.0.0.2:1/?t={TOKEN}"})
    server.route("/bad-location", status=302, headers={"Location": f"http://x:{TOKEN}/"})
    server.route("/busy", status=429, headers={"Retry-After": "5"})
    closed = _closed_port()
    source = url.format(s=SECRET, t=TOKEN, port=server.port, closed=closed)
    result = await fetcher.fetch("k", source)
    assert result.error is not None
    assert SECRET not in result.error
    assert TOKEN not in result.error
    assert SECRET not in result.url
    page = await fetcher.fetch_page(source)
    assert page.error is not None
    assert SECRET not in page.error
    assert SECRET not in page.url


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("http://user:{s}@127.0.0.1:{t}/feed", "invalid URL: bad port"),
        ("http://user:{s}@127.0.0.1:99999/feed", "invalid URL: bad port"),
        ("http://user:{s}@[::1/feed", "invalid URL: bad IPv6 address"),
        ("http://user:{s}@/feed", "invalid URL: no host name"),
        ("http://user:{s}@127.0.0.1:{port}/bad-location", "redirected to an invalid URL"),
        ("http://user:{s}@127.0.0.1:{port}/ftp", "redirected to a URL that is not http(s)"),
    ],
)
async def test_url_error_texts(
    server: FeedServer, fetcher: Fetcher, source: str, error: str
) -> None:
    server.route("/bad-location", status=302, headers={"Location": f"http://x:{TOKEN}/"})
    server.route("/ftp", status=302, headers={"Location": f"ftp://x/{TOKEN}"})
    result = await fetcher.fetch("k", source.format(s=SECRET, t=TOKEN, port=server.port))
    assert result.error == error


async def test_credentials_follow_a_same_origin_redirect_only(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.route("/feed", body=RSS)
    server.route("/same", status=301, headers={"Location": "/feed"})
    server.route(
        "/away", status=302, headers={"Location": f"http://elsewhere.test:{server.port}/feed"}
    )
    base = f"http://user:{SECRET}@127.0.0.1:{server.port}"
    assert (await fetcher.fetch("k", f"{base}/same")).ok
    assert (await fetcher.fetch("k", f"{base}/away")).ok
    same, away = server.requests_to("/feed")
    assert "authorization" in same.headers
    assert "authorization" not in away.headers


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- pure readers


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://News.Example.COM/feed", "news.example.com"),
        ("https://news.example.com./feed", "news.example.com"),
        ("http://user:pw@news.example.com:8080/x?y", "news.example.com"),
        ("https://bücher.example/feed", "xn--bcher-kva.example"),
        ("https://xn--bcher-kva.example/feed", "xn--bcher-kva.example"),
        ("http://[::1]:8080/", "::1"),
        ("http://127.0.0.1:9/", "127.0.0.1"),
        ("  https://example.com/  ", "example.com"),
        ("file:///srv/feed.xml", ""),
        ("/srv/feed.xml", ""),
        ("http://[::1/feed", ""),
        ("http:///feed", ""),
        ("", ""),
    ],
)
def test_host_key(url: str, key: str) -> None:
    assert host_key(url) == key


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=300", 300.0),
        ("public, max-age=300", 300.0),
        ("Public, MAX-AGE = 300 , must-revalidate", 300.0),
        ('max-age="60"', 60.0),
        ("max-age=0", 0.0),
        ("max-age=60, max-age=60", 60.0),
        ("max-age=60, max-age=120", None),  # conflicting: RFC 9111 says stale
        ("max-age=-1", None),
        ("max-age=1.5", None),
        ("max-age=", None),
        ("s-maxage=300", None),  # for shared caches
        ("no-cache", None),
        ("max-age=99999999999999999999", float(2**31)),
        ("", None),
        (None, None),
    ],
)
def test_parse_max_age(header: str | None, seconds: float | None) -> None:
    assert parse_max_age(header) == seconds


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://u:p@host/feed?token=T", "https://host/feed?token=T"),
        ("https://u@host:8080/", "https://host:8080/"),
        ("https://u:p@ss@host/", "https://host/"),  # the last @ ends userinfo
        ("https://host/path@x", "https://host/path@x"),  # an @ in the path is not userinfo
        ("https://host?q=a@b", "https://host?q=a@b"),
        ("http://u:p@[::1/feed", "http://[::1/feed"),  # malformed, still stripped
        ("http://u:p@host\\@evil/", "http://host\\@evil/"),
        ("/local/path@x", "/local/path@x"),
        ("", ""),
    ],
)
def test_strip_userinfo(url: str, stripped: str) -> None:
    assert strip_userinfo(url) == stripped


@pytest.mark.parametrize(
    ("configured", "hop", "keeps"),
    [
        ("https://a.example/feed", "https://a.example/other", True),
        ("https://a.example/feed", "https://a.example:443/other", True),
        ("http://a.example/feed", "https://a.example/feed", True),  # the https upgrade
        ("http://a.example:8080/feed", "https://a.example/feed", False),
        ("https://a.example/feed", "http://a.example/feed", False),  # a downgrade
        ("https://a.example/feed", "https://b.example/feed", False),
        ("https://a.example/feed", "https://a.example:8443/feed", False),
    ],
)
def test_keeps_credentials(configured: str, hop: str, keeps: bool) -> None:
    assert keeps_credentials(httpx.URL(configured), httpx.URL(hop)) is keeps


def test_http_date_helper_is_http() -> None:
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


async def test_a_broken_server_cannot_echo_our_secrets_into_errors(fetcher: Fetcher) -> None:
    # A server that answers with garbage quoting what it was sent: h11's
    # error would quote it back, Authorization header and all.
    async def echo_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2OO " + request.replace(b"\r\n", b" ") + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo_garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await fetcher.fetch("k", f"http://user:{SECRET}@127.0.0.1:{port}/?t={TOKEN}")
    assert result.error is not None
    assert result.error.startswith("127.0.0.1 broke the HTTP protocol")
    assert SECRET not in result.error
    assert TOKEN not in result.error
    assert base64.b64encode(f"user:{SECRET}".encode()).decode() not in result.error


def test_protocol_error_reasons_drop_quoted_data() -> None:
    quoting = httpx.RemoteProtocolError("illegal status line: bytearray(b'HTTP/1.1 2OO tok')")
    assert describe_http_error(quoting, "h") == "h broke the HTTP protocol: illegal status line"
    plain = httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    assert describe_http_error(plain, "h") == (
        "h broke the HTTP protocol: peer closed connection without sending complete "
        "message body (incomplete chunked read)"
    )
