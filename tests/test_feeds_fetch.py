"""Fetching against a real HTTP server on loopback, and from local files."""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from feedserver import FeedServer, Reply, http_date
from newswatch.feeds.describe import describe_http_error
from newswatch.feeds.fetch import MAX_REDIRECTS, Fetcher, default_user_agent

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
MiB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def make_fetcher(**overrides: object) -> Fetcher:
    settings: dict[str, object] = {
        "concurrency": 8,
        "per_host": 4,
        "timeout": 5.0,
        "max_bytes": MiB,
    }
    settings.update(overrides)
    return Fetcher(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with make_fetcher() as f:
        yield f


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- http


async def test_fetch_ok(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS, etag='"v1"', last_modified="Thu, 16 Jun 2016 00:12:00 GMT")
    result = await fetcher.fetch("kh", server.url("/feed.xml"))
    assert result.ok
    assert result.body == RSS
    assert result.status == 200
    assert result.etag == '"v1"'
    assert result.last_modified == "Thu, 16 Jun 2016 00:12:00 GMT"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.url == server.url("/feed.xml")
    assert result.feed_key == "kh"
    assert not result.not_modified
    assert 0 < result.elapsed < 5
    (request,) = server.requests
    assert request.method == "GET"
    assert request.headers["user-agent"] == default_user_agent()
    assert "application/rss+xml" in request.headers["accept"]
    assert "if-none-match" not in request.headers


def test_default_user_agent() -> None:
    assert re.fullmatch(
        r"newswatch/\S+ \(\+https://github\.com/newswatch/newswatch\)", default_user_agent()
    )


async def test_custom_user_agent_and_clock(server: FeedServer) -> None:
    server.route("/feed.xml", body=RSS)
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    async with make_fetcher(user_agent="Desk/1.0", clock=lambda: when) as f:
        result = await f.fetch("k", server.url("/feed.xml"))
    assert result.fetched_at == when
    assert server.requests[0].headers["user-agent"] == "Desk/1.0"


async def test_conditional_get_round_trip(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS, etag='"v1"', last_modified=http_date(1_000_000_000))
    first = await fetcher.fetch("k", server.url("/feed.xml"))
    assert first.body == RSS

    second = await fetcher.fetch(
        "k", server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified
    )
    assert second.ok
    assert second.not_modified
    assert second.status == 304
    assert second.body is None
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = server.requests[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == first.last_modified

    server.route("/feed.xml", body=RSS + b" ", etag='"v2"')  # the feed changes
    third = await fetcher.fetch("k", server.url("/feed.xml"), etag=second.etag)
    assert third.body == RSS + b" "
    assert third.etag == '"v2"'


async def test_conditional_get_by_last_modified_only(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS, last_modified=http_date(1_000_000_000))
    first = await fetcher.fetch("k", server.url("/feed.xml"))
    assert first.etag is None
    second = await fetcher.fetch("k", server.url("/feed.xml"), last_modified=first.last_modified)
    assert second.not_modified
    assert second.last_modified == first.last_modified


async def test_http_error_status(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch("k", server.url("/missing.xml"))
    assert result.error == "HTTP 404 Not Found"
    assert result.status == 404
    assert result.body is None
    assert not result.ok


async def test_retry_after_is_reported(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/busy", status=429, headers={"Retry-After": "120"})
    server.route("/down", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    busy = await fetcher.fetch("k", server.url("/busy"))
    down = await fetcher.fetch("k", server.url("/down"))
    assert busy.error == "HTTP 429 Too Many Requests (Retry-After: 120)"
    assert down.error == "HTTP 503 Service Unavailable (Retry-After: Wed, 21 Oct 2015 07:28:00 GMT)"


async def test_failure_then_recovery(server: FeedServer, fetcher: Fetcher) -> None:
    server.sequence("/flaky.xml", [Reply(status=500), Reply(body=RSS)])
    first = await fetcher.fetch("k", server.url("/flaky.xml"))
    second = await fetcher.fetch("k", server.url("/flaky.xml"))
    assert (first.error, first.status) == ("HTTP 500 Internal Server Error", 500)
    assert second.ok
    assert second.body == RSS
    assert server.hits("/flaky.xml") == 2


async def test_redirects_are_followed(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/old.xml", status=301, headers={"Location": "/new.xml"})
    server.route("/new.xml", body=RSS)
    result = await fetcher.fetch("k", server.url("/old.xml"))
    assert result.ok
    assert result.body == RSS
    assert result.url == server.url("/new.xml")  # the base for relative links


async def test_redirect_loop(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/loop", status=302, headers={"Location": "/loop"})
    result = await fetcher.fetch("k", server.url("/loop"))
    assert result.error == f"too many redirects (more than {MAX_REDIRECTS})"
    assert server.hits("/loop") == MAX_REDIRECTS + 1


async def test_body_size_cap(server: FeedServer) -> None:
    server.route("/big.xml", body=b"x" * 2000)
    server.route("/fits.xml", body=b"x" * 1000)
    async with make_fetcher(max_bytes=1000) as f:
        big = await f.fetch("k", server.url("/big.xml"))
        fits = await f.fetch("k", server.url("/fits.xml"))
    assert big.error == "body larger than 1000 bytes limit"
    assert big.body is None
    assert fits.ok
    assert fits.body is not None
    assert len(fits.body) == 1000


async def test_body_size_cap_without_content_length(server: FeedServer) -> None:
    # Chunked (no Content-Length): the cap is enforced while streaming.
    server.route("/big.xml", body=b"x" * (3 * MiB), chunked=True)
    server.route("/fits.xml", body=b"x" * (2 * MiB), chunked=True)
    async with make_fetcher(max_bytes=2 * MiB) as f:
        result = await f.fetch("k", server.url("/big.xml"))
        fits = await f.fetch("k", server.url("/fits.xml"))
    assert result.error == "body larger than 2.0 MiB limit"
    assert fits.body == b"x" * (2 * MiB)


async def test_gzip_is_decoded(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS * 50, gzip=True)
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.body == RSS * 50


async def test_gzip_bomb_is_capped_on_decompressed_size(server: FeedServer) -> None:
    bomb = Reply(body=b"\0" * (16 * MiB), gzip=True)
    assert len(bomb.encoded_body()) < 64 * 1024  # tiny on the wire
    server.route("/bomb.xml", bomb)
    async with make_fetcher(max_bytes=MiB) as f:
        result = await f.fetch("k", server.url("/bomb.xml"))
    assert result.error == "body larger than 1.0 MiB limit"
    assert result.body is None


async def test_trickle_is_cut_at_the_overall_deadline(server: FeedServer) -> None:
    # One byte per 0.2 s never trips a per-read timeout; the deadline must.
    server.route("/slow.xml", body=RSS, trickle=0.2)
    async with make_fetcher(timeout=1.0) as f:
        started = time.monotonic()
        result = await f.fetch("k", server.url("/slow.xml"))
        took = time.monotonic() - started
    assert result.error == "no complete response within 1.0s"
    assert result.body is None
    assert 0.9 <= took < 2.0
    assert 0.9 <= result.elapsed < 2.0


async def test_per_host_limit(server: FeedServer) -> None:
    server.route("/slow.xml", body=RSS, delay=0.25)
    async with make_fetcher(concurrency=10, per_host=2) as f:
        results = await asyncio.gather(
            *(f.fetch(f"k{i}", server.url("/slow.xml")) for i in range(6))
        )
    assert all(r.ok for r in results)
    assert server.hits("/slow.xml") == 6
    assert server.max_in_flight("/slow.xml") == 2


async def test_global_limit(server: FeedServer) -> None:
    server.route("/slow.xml", body=RSS, delay=0.25)
    async with make_fetcher(concurrency=3, per_host=10) as f:
        results = await asyncio.gather(
            *(f.fetch(f"k{i}", server.url("/slow.xml")) for i in range(7))
        )
    assert all(r.ok for r in results)
    assert server.max_in_flight("/slow.xml") == 3


async def test_a_busy_host_does_not_hold_global_slots(server: FeedServer) -> None:
    # Three feeds of one host (per_host=1) wait for that host; the per-host
    # slot is taken first, so they hold no global slot while they wait, and
    # a feed of another host ("localhost" here) gets a global slot at once.
    server.route("/held.xml", body=RSS, hold=True)
    server.route("/free.xml", body=RSS)
    async with make_fetcher(concurrency=2, per_host=1) as f:
        held = [asyncio.create_task(f.fetch(f"h{i}", server.url("/held.xml"))) for i in range(3)]
        await asyncio.to_thread(server.wait_for_requests, 1, "/held.xml")
        other = await asyncio.wait_for(f.fetch("o", f"http://localhost:{server.port}/free.xml"), 5)
        assert other.ok
        assert not any(task.done() for task in held)
        server.route("/held.xml", body=RSS)  # stop holding, answer the one waiting
        server.release()
        results = await asyncio.gather(*held)
    assert all(r.ok for r in results)
    assert server.max_in_flight("/held.xml") == 1


async def test_queue_time_does_not_count_against_the_deadline(server: FeedServer) -> None:
    server.route("/slow.xml", body=RSS, delay=0.3)
    async with make_fetcher(concurrency=1, per_host=1, timeout=1.0) as f:
        results = await asyncio.gather(
            *(f.fetch(f"k{i}", server.url("/slow.xml")) for i in range(4))
        )
    assert all(r.ok for r in results), [r.error for r in results]


async def test_connection_refused(fetcher: Fetcher) -> None:
    port = closed_port()
    result = await fetcher.fetch("k", f"http://127.0.0.1:{port}/feed.xml?token=SECRET")
    assert result.error == "connection to 127.0.0.1 refused"
    assert result.status is None


async def test_tls_failure(server: FeedServer, fetcher: Fetcher) -> None:
    # An https:// URL pointing at a plain-HTTP server: a real failed handshake.
    result = await fetcher.fetch("k", f"https://127.0.0.1:{server.port}/feed.xml")
    assert result.error is not None
    assert result.error.startswith("TLS handshake with 127.0.0.1 failed")


async def test_errors_do_not_echo_the_url(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/busy", status=429, headers={"Retry-After": "5"})
    results = [
        await fetcher.fetch("k", server.url("/missing?token=SECRET")),
        await fetcher.fetch("k", server.url("/busy?token=SECRET")),
        await fetcher.fetch("k", f"http://user:SECRET@127.0.0.1:{closed_port()}/?token=SECRET"),
    ]
    for result in results:
        assert result.error is not None
        assert "SECRET" not in result.error


async def test_userinfo_is_not_kept_in_the_result_url(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS)
    result = await fetcher.fetch("k", f"http://user:SECRET@127.0.0.1:{server.port}/feed.xml")
    assert result.ok
    assert result.url == server.url("/feed.xml")
    assert server.requests[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("ftp://example.com/feed.xml", "unsupported source 'ftp'"),
        ("http://[::1/feed", "invalid URL"),
        ("http://", "invalid URL: no host name"),
    ],
)
async def test_bad_sources_do_not_raise(fetcher: Fetcher, source: str, error: str) -> None:
    result = await fetcher.fetch("k", source)
    assert result.error is not None
    assert result.error.startswith(error)


async def test_a_passed_client_is_used_and_left_open(server: FeedServer) -> None:
    server.route("/feed.xml", body=RSS)
    async with httpx.AsyncClient() as client:
        async with make_fetcher(client=client) as f:
            result = await f.fetch("k", server.url("/feed.xml"))
        assert result.ok
        assert not client.is_closed


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make_fetcher(per_host=0)
    with pytest.raises(ValueError, match="positive"):
        make_fetcher(timeout=0)


def test_transport_error_texts() -> None:
    # Failures that need the outside world (DNS, certificates), described from
    # the exception chain httpx produces for them.
    def chained(cause: BaseException) -> httpx.ConnectError:
        exc = httpx.ConnectError("All connection attempts failed")
        exc.__cause__ = cause
        return exc

    dns = chained(socket.gaierror(-2, "Name or service not known"))
    assert describe_http_error(dns, "news.invalid") == (
        "DNS lookup for news.invalid failed: Name or service not known"
    )
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "certificate has expired"
    assert describe_http_error(chained(cert), "x.example") == (
        "TLS certificate of x.example not accepted: certificate has expired"
    )
    assert describe_http_error(httpx.ConnectTimeout("t"), "x.example") == (
        "connecting to x.example timed out"
    )
    assert describe_http_error(httpx.ReadTimeout("t"), "x.example") == (
        "x.example stopped responding (timed out)"
    )


# --------------------------------------------------------------------------- files


async def test_local_path(tmp_path: Path, fetcher: Fetcher) -> None:
    feed = tmp_path / "sample.xml"
    feed.write_bytes(RSS)
    result = await fetcher.fetch("k", str(feed))
    assert result.ok
    assert result.body == RSS
    assert result.url == feed.resolve().as_uri()
    assert result.status is None
    assert result.etag is not None

    unchanged = await fetcher.fetch("k", str(feed), etag=result.etag)
    assert unchanged.not_modified
    assert unchanged.body is None
    assert unchanged.etag == result.etag

    feed.write_bytes(RSS + b"\n<!-- edited -->")
    changed = await fetcher.fetch("k", str(feed), etag=result.etag)
    assert changed.body == RSS + b"\n<!-- edited -->"
    assert changed.etag != result.etag


async def test_file_url(tmp_path: Path, fetcher: Fetcher) -> None:
    feed = tmp_path / "with space.xml"
    feed.write_bytes(RSS)
    result = await fetcher.fetch("k", feed.as_uri())
    assert result.ok
    assert result.body == RSS
    assert result.url == feed.as_uri()


async def test_missing_file(tmp_path: Path, fetcher: Fetcher) -> None:
    missing = tmp_path / "nope.xml"
    result = await fetcher.fetch("k", str(missing))
    assert result.error == f"file not found: {missing}"
    via_url = await fetcher.fetch("k", missing.as_uri())
    assert via_url.error == f"file not found: {missing}"


async def test_directory_is_not_a_feed(tmp_path: Path, fetcher: Fetcher) -> None:
    result = await fetcher.fetch("k", str(tmp_path))
    assert result.error == f"not a regular file: {tmp_path}"


async def test_local_file_size_cap(tmp_path: Path) -> None:
    feed = tmp_path / "big.xml"
    feed.write_bytes(b"x" * 3000)
    async with make_fetcher(max_bytes=2048) as f:
        result = await f.fetch("k", str(feed))
    assert result.error == "body larger than 2.0 KiB limit"


async def test_remote_file_url_is_refused(fetcher: Fetcher) -> None:
    result = await fetcher.fetch("k", "file://fileserver/share/feed.xml")
    assert result.error == "file URL on a remote host: fileserver"


async def test_gzip_file_is_served_as_is(tmp_path: Path, fetcher: Fetcher) -> None:
    # Only HTTP Content-Encoding is decoded; a local file is its bytes.
    feed = tmp_path / "feed.xml.gz"
    feed.write_bytes(gzip.compress(RSS))
    result = await fetcher.fetch("k", str(feed))
    assert result.body == feed.read_bytes()
