"""A real SMTP server on loopback for tests (aiosmtpd in a background thread).

    with SmtpServer() as smtp:                   # started on 127.0.0.1, random port
        ... send to smtp.host:smtp.port (no TLS) ...
        assert smtp.messages[0]["Subject"] == "..."

    smtp = SmtpServer()                          # port reserved, server *down*:
    ... connecting is refused ...
    smtp.start()                                 # up on the same port
    smtp.stop()                                  # down again (restartable)

``messages`` holds every accepted message parsed as ``EmailMessage``
(``policy.default``: decoded headers, ``get_body``), ``raw`` the bytes as
received, ``envelopes`` the SMTP envelope ``(mail_from, rcpt_tos)`` of each,
``connections`` how many client connections greeted the server (EHLO/HELO).
Failures on demand:

- ``rcpt_reply = "550 5.1.1 <x@y>: Recipient address rejected"`` refuses
  every RCPT TO with that reply (use a 4xx for a temporary refusal);
- ``data_reply = "451 4.3.0 try later"`` refuses the message after DATA;
- ``SmtpServer(credentials={"user": "secret"})`` offers AUTH (without TLS) and
  answers 535 to anything else; ``logins`` records successful logins.

The attributes can be changed while the server runs.
"""

from __future__ import annotations

import logging
import socket
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["SmtpServer"]

# aiosmtpd 1.4 logs this on every successful AUTH (it sets the field itself).
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """Real SMTP server for tests. ``start()``/``stop()`` or ``with SmtpServer()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        # Reserved now so a channel can be configured before the server is up.
        self.port = port or _free_port(host)
        self.credentials = credentials
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.connections = 0
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._controller: Controller | None = None

    # ------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("SmtpServer already running")
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        # A fresh controller per start: a stopped one has closed its loop.
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # skip the FQDN lookup
            ready_timeout=5.0,
            **kwargs,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------- inspection

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; return them all."""
        with self._received:
            if not self._received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} messages arrived, expected {count}")
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.raw.clear()
            self.envelopes.clear()
            self.logins.clear()

    # ------------------------------------------------------------- server side

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if self.credentials.get(login) == password:
                with self._lock:
                    self.logins.append(login)
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def _accept(self, envelope: Envelope) -> None:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        message = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(message, EmailMessage)
        with self._received:
            self.messages.append(message)
            self.raw.append(data)
            self.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
            self._received.notify_all()


class _Handler:
    """aiosmtpd handler hooks, delegating to the SmtpServer's settings."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.owner._lock:
            self.owner.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.owner.rcpt_reply is not None:
            return self.owner.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.owner.data_reply is not None:
            return self.owner.data_reply
        self.owner._accept(envelope)
        return "250 Message accepted for delivery"
