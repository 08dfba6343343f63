"""A real HTTP/1.1 server on loopback for tests: serves feeds, records requests.

    with FeedServer() as server:
        server.route("/feed.xml", body=RSS, etag='"v1"')
        server.sequence("/flaky.xml", [Reply(status=500), Reply(body=RSS)])
        server.route("/hook", status=204)           # a webhook receiver
        server.route("/stuck", hold=True)           # answers after release()
        ... fetch server.url("/feed.xml"), post to server.url("/hook") ...
        assert server.hits("/feed.xml") == 1
        assert server.json_bodies("/hook") == [{"text": "..."}]

It runs ``http.server`` in a background thread on 127.0.0.1 and a random
free port. Routes match the path without the query string and answer every
method alike; every request is recorded in ``server.requests`` as
``(method, path, headers, body)`` with lower-cased header names. A route can
be replaced at any time with ``route`` or ``sequence``.

A ``Reply(hold=True)`` keeps each request waiting, recorded but unanswered,
until ``release()``: a send cut off mid-way, or a receiver that never
answers. ``wait_for_requests`` tells when such a request has arrived.

``stop`` (or leaving the ``with`` block) is quick and leaves nothing behind:
held, slow and trickling replies wake up and give up, and open keep-alive
connections are shut down, so a test never hangs on the server.

A pytest fixture is one line::

    @pytest.fixture
    def feed_server() -> Iterator[FeedServer]:
        with FeedServer() as server:
            yield server
"""

from __future__ import annotations

import gzip
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, NamedTuple, Self

from httpserve import TrackedServer, read_body

__all__ = ["FeedServer", "RecordedRequest", "Reply", "compressed_zeros", "http_date"]

RSS_TYPE = "application/rss+xml; charset=utf-8"
# How long stop() waits for handler threads; they exit promptly once their
# sockets are shut down, so this only matters if something is badly wrong.
_JOIN_SECONDS = 2.0
# Idle keep-alive connections are dropped after this, so a client that never
# closes its pool cannot pin a handler thread.
_IDLE_SECONDS = 10.0
_CHUNK_BYTES = 64 * 1024
# Headers of a reply that its 304 sends as well.
_NOT_MODIFIED_HEADERS = frozenset({"cache-control", "expires", "vary", "content-location"})


_BOMB_BLOCK = 1024 * 1024  # compressed_zeros builds its stream from blocks of this


def compressed_zeros(size: int, coding: str = "gzip") -> bytes:
    """A valid gzip (or zlib, for ``coding="deflate"``) stream of ``size`` zero
    bytes: a decompression bomb, e.g. 1 GiB in about 1 MiB.

    Built without compressing ``size`` bytes: after a full flush deflate
    starts afresh, so every 1 MiB block compresses to the same bytes, which
    are repeated; only the checksum runs over all the data (fast).
    ``size`` must be a multiple of 1 MiB, at least 2 MiB.
    """
    if size % _BOMB_BLOCK or size < 2 * _BOMB_BLOCK:
        raise ValueError("size must be a multiple of 1 MiB, at least 2 MiB")
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[coding]
    block = bytes(_BOMB_BLOCK)
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
    repeated = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
    if deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH) != repeated:
        raise AssertionError("deflate output of a block is not stable after a full flush")
    trailer_size = 8 if coding == "gzip" else 4
    last_block = deflater.flush()[:-trailer_size]  # the final (empty) block
    blocks = size // _BOMB_BLOCK
    if coding == "gzip":
        crc = 0
        for _ in range(blocks):
            crc = zlib.crc32(block, crc)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    else:
        adler = 1
        for _ in range(blocks):
            adler = zlib.adler32(block, adler)
        trailer = struct.pack(">I", adler)
    return first + repeated * (blocks - 1) + last_block + trailer


def http_date(epoch: float | None = None) -> str:
    """An HTTP date (Last-Modified style), e.g. 'Thu, 16 Jun 2016 00:12:00 GMT'."""
    return formatdate(time.time() if epoch is None else epoch, usegmt=True)


@dataclass(frozen=True)
class Reply:
    """What a route answers.

    ``etag`` / ``last_modified`` make the route conditional: a matching
    If-None-Match (or, without one, an If-Modified-Since not older than
    ``last_modified``) gets 304. ``gzip`` compresses the body and sends
    ``Content-Encoding: gzip`` whatever the client accepts. ``delay`` waits
    before answering; ``trickle`` sends the body one byte per that many
    seconds after the headers. ``chunked`` sends the body with
    ``Transfer-Encoding: chunked`` (no Content-Length), in 64 KiB chunks.
    ``hold`` keeps the request waiting, before any ``delay``, until the
    server's ``release()``; ``stop()`` gives up on it without answering.
    """

    status: int = 200
    body: bytes | str = b""
    content_type: str | None = RSS_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    delay: float = 0.0
    trickle: float | None = None
    chunked: bool = False
    hold: bool = False

    def encoded_body(self) -> bytes:
        data = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
        # mtime=0: identical bytes every time, like a static file.
        return gzip.compress(data, mtime=0) if self.gzip else data


class RecordedRequest(NamedTuple):
    """One request as received. Unpacks as ``method, path, headers, body``."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Route:
    replies: list[tuple[Reply, bytes]]
    hits: int = 0  # all requests to the path, across route replacements
    position: int = 0  # index into ``replies`` of the next answer
    in_flight: int = 0
    max_in_flight: int = 0

    def next_reply(self) -> tuple[Reply, bytes]:
        """The reply for this hit: a sequence advances, its last one repeats."""
        reply = self.replies[min(self.position, len(self.replies) - 1)]
        self.position += 1
        return reply


class FeedServer:
    """Real HTTP server for tests. ``start()``/``stop()`` or ``with FeedServer()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._routes: dict[str, _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        # Held requests wait on the event current when they arrived;
        # release() sets it and puts a fresh one in its place.
        self._release = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("FeedServer already started")
        self._stopping.clear()
        self._release = threading.Event()
        self._httpd = _Server((self._host, 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="feedserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes delayed and trickling replies
        self.release()  # and held ones, which see _stopping and give up
        httpd.shutdown()
        httpd.close_connections(_JOIN_SECONDS)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_SECONDS)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FeedServer not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # ------------------------------------------------------------- routes

    def route(self, path: str, reply: Reply | None = None, **fields: Any) -> None:
        """Serve ``reply`` (or ``Reply(**fields)``) at ``path``.

        Replaces an earlier route at ``path`` (its hit count carries on), so
        a test can change what a feed serves between polls."""
        self.sequence(path, [reply if reply is not None else Reply(**fields)])

    def sequence(self, path: str, replies: Iterable[Reply]) -> None:
        """Answer hit 1 with the first reply, hit 2 with the second, ...; the
        last one repeats. E.g. ``[Reply(status=500), Reply(body=RSS)]``."""
        prepared = [(r, r.encoded_body()) for r in replies]
        if not prepared:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            old = self._routes.get(path)
            route = _Route(prepared)
            if old is not None:
                route.hits, route.max_in_flight = old.hits, old.max_in_flight
            self._routes[path] = route

    def release(self) -> None:
        """Answer every request held so far by a ``Reply(hold=True)``.

        Requests that arrive later at a route that still holds wait for the
        next ``release()``; replace the route to stop holding."""
        with self._lock:
            released = self._release
            if not self._stopping.is_set():  # once stopping, later arrivals go too
                self._release = threading.Event()
        released.set()

    def reset(self) -> None:
        """Forget all routes and recorded requests."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    # ------------------------------------------------------------- observations

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if _route_path(r.path) == path]

    def json_bodies(self, path: str) -> list[Any]:
        return [r.json() for r in self.requests_to(path)]

    def hits(self, path: str) -> int:
        with self._lock:
            route = self._routes.get(path)
            return route.hits if route else 0

    def max_in_flight(self, path: str) -> int:
        """The most requests to ``path`` that were being answered at once."""
        with self._lock:
            route = self._routes.get(path)
            return route.max_in_flight if route else 0

    def wait_for_requests(
        self, count: int, path: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``, if given) arrived.

        Blocking: from async tests call it via ``asyncio.to_thread``.
        Raises TimeoutError with what did arrive.
        """

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if path is None or _route_path(r.path) == path]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                got = [(r.method, r.path) for r in matching()]
                raise TimeoutError(f"expected {count} requests, got {len(got)}: {got}")
            return matching()

    # ------------------------------------------------------------- used by the handler

    def _begin(
        self, request: RecordedRequest
    ) -> tuple[_Route | None, Reply | None, bytes, threading.Event]:
        """Record ``request``; its route, reply, body and the event a held
        reply waits on (taken here, so a release() right after arrival counts)."""
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            route = self._routes.get(_route_path(request.path))
            if route is None:
                return None, None, b"", self._release
            route.hits += 1
            route.in_flight += 1
            route.max_in_flight = max(route.max_in_flight, route.in_flight)
            reply, body = route.next_reply()
            return route, reply, body, self._release

    def _end(self, route: _Route | None) -> None:
        if route is not None:
            with self._lock:
                route.in_flight -= 1


def _route_path(path: str) -> str:
    return path.split("?", 1)[0]


def _not_modified(reply: Reply, headers: Mapping[str, str]) -> bool:
    """RFC 9110 13.1: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if reply.etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or reply.etag.removeprefix("W/") in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or reply.last_modified is None:
        return False
    try:
        return parsedate_to_datetime(reply.last_modified) <= parsedate_to_datetime(
            if_modified_since
        )
    except (TypeError, ValueError):
        return False


class _Server(TrackedServer):
    thread_name = "feedserver-conn"

    def __init__(self, address: tuple[str, int], owner: FeedServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real feed servers
    timeout = _IDLE_SECONDS
    # Headers and body go out in separate writes: without TCP_NODELAY,
    # Nagle and the client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output readable

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _handle(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest(self.command, self.path, headers, read_body(self))
        route, reply, body, released = owner._begin(request)
        try:
            if reply is None:
                self._send(HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"no route")
                return
            if reply.hold:
                released.wait()  # stop() sets it too
                if owner._stopping.is_set():
                    self.close_connection = True
                    return
            if not reply.delay or not owner._stopping.wait(reply.delay):
                self._reply(reply, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its deadline)
        finally:
            owner._end(route)

    def _reply(self, reply: Reply, body: bytes, request_headers: Mapping[str, str]) -> None:
        headers: dict[str, str] = {}
        if reply.etag is not None:
            headers["ETag"] = reply.etag
        if reply.last_modified is not None:
            headers["Last-Modified"] = reply.last_modified
        if reply.status == 200 and _not_modified(reply, request_headers):
            # RFC 9110 15.4.5: a 304 carries the 200's caching headers too.
            headers.update(
                (k, v) for k, v in reply.headers.items() if k.lower() in _NOT_MODIFIED_HEADERS
            )
            self._send(HTTPStatus.NOT_MODIFIED, headers, b"")
            return
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        if reply.gzip:
            headers["Content-Encoding"] = "gzip"
        headers.update(reply.headers)
        if reply.chunked:
            self._send_chunked(reply.status, headers, body)
            return
        if reply.trickle is None:
            self._send(reply.status, headers, body)
            return
        self._send(reply.status, headers, b"", length=len(body))
        stopping = self.server.owner._stopping
        for i in range(len(body)):
            if stopping.wait(reply.trickle):
                self.close_connection = True
                return
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()

    def _send(
        self, status: int, headers: Mapping[str, str], body: bytes, length: int | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_chunked(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command != "HEAD":
            for start in range(0, len(body), _CHUNK_BYTES):
                chunk = body[start : start + _CHUNK_BYTES]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def hook_reply(
    status: int = 200, headers: dict[str, str] | None = None, body: str = "", hold: bool = False
) -> Reply:
    """A webhook receiver's answer: no Content-Type unless in ``headers``."""
    return Reply(status, body, content_type=None, headers=headers or {}, hold=hold)
