"""A TCP server on 127.0.0.1 that misbehaves, for transport-error tests.

    with RawServer("silent") as raw:   # accepts, reads, never answers (a timeout)
    with RawServer("garbage") as raw:  # answers bytes that are neither HTTP nor SMTP
    with RawServer("reset") as raw:    # reads a little, then resets the connection
        ... point a channel at raw.url (http://127.0.0.1:port) or raw.host/raw.port ...

``closed_port()`` is a port nothing listens on (connecting is refused).
Everything is released by ``stop()``; connections held open by ``silent``
are closed then, so a test never hangs on it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal, Self

__all__ = ["RawServer", "closed_port"]

Mode = Literal["silent", "garbage", "reset"]
GARBAGE = b"\x00\xff\xfe garbage, not a protocol \x07\r\n\r\n"
_ACCEPT_POLL = 0.05


def closed_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RawServer:
    def __init__(self, mode: Mode, host: str = "127.0.0.1") -> None:
        self.mode = mode
        self.host = host
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._held: list[socket.socket] = []
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(16)
        listener.settimeout(_ACCEPT_POLL)
        self._listener, self.port = listener, int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="rawserver", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.settimeout(_ACCEPT_POLL)
            if self.mode == "silent":
                self._held.append(conn)
                continue
            with contextlib.suppress(OSError):
                if self.mode == "garbage":
                    conn.sendall(GARBAGE)
                else:  # reset: read what came, then RST instead of FIN
                    with contextlib.suppress(TimeoutError):
                        conn.recv(65536)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2)
        for conn in self._held:
            conn.close()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
