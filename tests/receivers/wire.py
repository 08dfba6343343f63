"""The HTTP side of the receivers: request and answer values, and a
loopback server that hands every request to one callback.

The server is ``http.server`` in a background thread on 127.0.0.1, the same
pattern as ``tests/feedserver.py``: HTTP/1.1 keep-alive, one thread per
connection, and a ``stop()`` that shuts open connections down and joins
their threads with a bound, so a test never hangs on it. It can stop and
start again on the same port (``allow_reuse_address``), which is how a
receiver goes down (connection refused) and comes back.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from httpserve import TrackedServer, read_body

__all__ = ["Answer", "LoopbackServer", "Request"]

# How long stop() waits for handler threads; they exit promptly once their
# sockets are shut down, so this only matters if something is badly wrong.
_JOIN_SECONDS = 2.0
# Idle keep-alive connections are dropped after this, so a client that never
# closes its pool cannot pin a handler thread.
_IDLE_SECONDS = 10.0
# serve_forever's poll interval: stop() waits up to this long, once per test.
_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Request:
    """One HTTP request as received (header names lower-cased)."""

    method: str
    target: str  # path with the query string, as sent
    headers: Mapping[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Answer:
    """What the receiver sends back; ``disconnect`` closes without answering."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    disconnect: bool = False

    @classmethod
    def json(cls, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> Answer:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Answer:
        body = text.encode("utf-8")
        return cls(status, body, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


class LoopbackServer:
    """Serves ``dispatch(request) -> Answer`` on 127.0.0.1 (a free port,
    kept across stop/start). ``latency`` delays every answer."""

    def __init__(self, dispatch: Callable[[Request], Answer], *, name: str) -> None:
        self.dispatch = dispatch
        self.name = name
        self.host = "127.0.0.1"
        self.port = 0
        self.latency = 0.0
        self.stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_up(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError(f"{self.name} receiver already started")
        self.stopping.clear()
        self._httpd = _Server((self.host, self.port), self)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"{self.name}-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()  # wakes answers waiting out their latency
        httpd.shutdown()
        httpd.close_connections(_JOIN_SECONDS)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_SECONDS)
            self._thread = None


class _Server(TrackedServer):
    allow_reuse_address = True  # come_up() rebinds the same port at once

    def __init__(self, address: tuple[str, int], owner: LoopbackServer) -> None:
        self.owner = owner
        self.thread_name = f"{owner.name}-conn"
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    timeout = _IDLE_SECONDS
    # Headers and body go out in two writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output readable

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _handle(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, self.path, headers, read_body(self))
        answer = owner.dispatch(request)
        if answer.disconnect:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if owner.latency and owner.stopping.wait(owner.latency):
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up
