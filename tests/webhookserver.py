"""A small real HTTP server on loopback that receives webhooks, for tests.

    with WebhookServer() as hooks:
        hooks.replies = [Reply(500), Reply(429, {"Retry-After": "7"}), Reply(200)]
        ... POST to hooks.url("/services/T000/B000/secret") ...
        assert hooks.bodies() == [{...}, ...]

Each request takes the next reply; the last one repeats (default: 200).
``hold`` makes requests wait until ``release()`` (or ``stop()``), to test a
send that is cut off mid-way; ``arrived`` is set when a request comes in.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self

__all__ = ["Received", "Reply", "WebhookServer"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class Received(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.replies: list[Reply] = [Reply(200)]
        self.requests: list[Received] = []
        self.hold = False
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append(Received("POST", self.path, headers, body))
                    index = min(len(owner.requests), len(owner.replies)) - 1
                    reply = owner.replies[index]
                owner.arrived.set()
                if owner.hold:
                    owner._released.wait(10)
                # One request per connection: no idle keep-alive thread can
                # hold up stop().
                self.close_connection = True
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout, cancellation)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer((self.host, 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._released.set()
        httpd.shutdown()
        httpd.server_close()  # joins handler threads
        if self._thread is not None:
            self._thread.join(2)
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
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests]
