"""The test server itself: routes, recording, conditional replies, clean stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from feedserver import FeedServer, Reply, http_date


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_routes_and_404(server: FeedServer) -> None:
    server.route("/a", body="héllo", content_type="text/plain; charset=utf-8")
    with httpx.Client() as client:
        ok = client.get(server.url("/a?x=1"))
        missing = client.get(server.url("/nope"))
    assert (ok.status_code, ok.text, ok.headers["content-type"]) == (
        200,
        "héllo",
        "text/plain; charset=utf-8",
    )
    assert missing.status_code == 404
    assert server.hits("/a") == 1
    assert [r.path for r in server.requests] == ["/a?x=1", "/nope"]


def test_records_posted_json_like_a_webhook_receiver(server: FeedServer) -> None:
    server.route("/hook", status=204, content_type=None)
    with httpx.Client() as client:
        response = client.post(server.url("/hook"), json={"text": "alert"}, headers={"X-T": "1"})
    assert response.status_code == 204
    method, path, headers, body = server.requests[0]
    assert (method, path, headers["x-t"]) == ("POST", "/hook", "1")
    assert body == b'{"text":"alert"}'
    assert server.json_bodies("/hook") == [{"text": "alert"}]


def test_chunked_request_bodies_are_read(server: FeedServer) -> None:
    server.route("/hook")

    def parts() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    with httpx.Client() as client:
        client.post(server.url("/hook"), content=parts())
    assert server.json_bodies("/hook") == [{"a": 1}]


def test_sequence_then_last_reply_repeats(server: FeedServer) -> None:
    server.sequence("/s", [Reply(status=500), Reply(status=503), Reply(body=b"ok")])
    with httpx.Client() as client:
        codes = [client.get(server.url("/s")).status_code for _ in range(4)]
    assert codes == [500, 503, 200, 200]
    assert server.hits("/s") == 4


def test_route_can_change_at_runtime(server: FeedServer) -> None:
    server.route("/f", body=b"one")
    with httpx.Client() as client:
        first = client.get(server.url("/f")).content
        server.route("/f", body=b"two", status=201)
        second = client.get(server.url("/f"))
    assert first == b"one"
    assert (second.status_code, second.content) == (201, b"two")
    assert server.hits("/f") == 2


def test_conditional_replies(server: FeedServer) -> None:
    server.route("/e", body=b"x", etag='"v1"')
    server.route("/m", body=b"x", last_modified=http_date(1_000_000))
    with httpx.Client() as client:
        assert client.get(server.url("/e"), headers={"If-None-Match": '"v1"'}).status_code == 304
        assert client.get(server.url("/e"), headers={"If-None-Match": '"v0"'}).status_code == 200
        assert client.get(server.url("/e"), headers={"If-None-Match": "*"}).status_code == 304
        newer = {"If-Modified-Since": http_date(2_000_000)}
        older = {"If-Modified-Since": http_date(1)}
        assert client.get(server.url("/m"), headers=newer).status_code == 304
        assert client.get(server.url("/m"), headers=older).status_code == 200


def test_gzip_reply(server: FeedServer) -> None:
    server.route("/g", body=b"a" * 1000, gzip=True)
    with httpx.Client() as client:
        response = client.get(server.url("/g"))
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < 100
    assert response.content == b"a" * 1000


async def test_max_in_flight_and_wait_for_requests(server: FeedServer) -> None:
    server.route("/slow", delay=0.2)
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(client.get(server.url("/slow")) for _ in range(3)))
    assert server.max_in_flight("/slow") == 3
    assert len(await asyncio.to_thread(server.wait_for_requests, 3, "/slow", 1.0)) == 3
    with pytest.raises(TimeoutError, match="expected 4 requests, got 3"):
        server.wait_for_requests(4, "/slow", timeout=0.05)


def test_stop_is_quick_with_a_trickle_in_progress() -> None:
    server = FeedServer().start()
    server.route("/t", body=b"x" * 1000, trickle=0.2)  # would take 200 s
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with httpx.Client() as client:
                client.get(server.url("/t"))
        except httpx.HTTPError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    server.wait_for_requests(1, "/t")
    started = time.monotonic()
    server.stop()
    reader.join(5)
    assert time.monotonic() - started < 3
    assert not reader.is_alive()
    assert errors  # the client saw the connection end early
    server.stop()  # idempotent


def test_reset_and_restart_guard(server: FeedServer) -> None:
    server.route("/a")
    with httpx.Client() as client:
        client.get(server.url("/a"))
    server.reset()
    assert server.requests == []
    assert server.hits("/a") == 0
    with pytest.raises(RuntimeError):
        server.start()


async def test_held_requests_wait_for_release(server: FeedServer) -> None:
    server.route("/h", body=b"late", hold=True)
    async with httpx.AsyncClient() as client:
        first = asyncio.create_task(client.get(server.url("/h")))
        assert len(await asyncio.to_thread(server.wait_for_requests, 1, "/h")) == 1
        await asyncio.sleep(0.2)
        assert not first.done()  # arrived, and held
        server.release()
        assert (await first).content == b"late"

        # A later request holds again until the next release ...
        second = asyncio.create_task(client.get(server.url("/h")))
        await asyncio.to_thread(server.wait_for_requests, 2, "/h")
        await asyncio.sleep(0.2)
        assert not second.done()
        server.release()
        assert (await second).status_code == 200

        # ... unless the route is replaced.
        server.route("/h", body=b"now")
        assert (await client.get(server.url("/h"), timeout=2)).content == b"now"
    assert server.max_in_flight("/h") == 1


def test_stop_is_quick_with_a_request_held() -> None:
    server = FeedServer().start()
    server.route("/h", hold=True)  # never released
    errors: list[BaseException] = []

    def post() -> None:
        try:
            with httpx.Client() as client:
                client.post(server.url("/h"), json={"a": 1})
        except httpx.HTTPError as exc:
            errors.append(exc)

    poster = threading.Thread(target=post)
    poster.start()
    server.wait_for_requests(1, "/h")
    started = time.monotonic()
    server.stop()
    poster.join(5)
    assert time.monotonic() - started < 3
    assert not poster.is_alive()
    assert errors  # given up on, not answered
    assert server.json_bodies("/h") == [{"a": 1}]
