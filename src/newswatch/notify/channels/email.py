"""Email channel: one multipart/alternative (text + HTML) message per
notification (an alert, a group, a digest with its table of contents), via SMTP.

Headers are built with ``email.message.EmailMessage`` and ``policy.SMTP``, so
non-ASCII subjects (Korean headlines) are RFC 2047 encoded and lines are
CRLF-terminated; feed text reaches a header only after ``render.one_line``
folded its control characters, so a title cannot inject a header. The
envelope recipients are the configured ones, never read from headers.

The Message-ID derives from the notification's key, so a retry of the same
notification carries the same Message-ID and a client that got both shows one.

One SMTP connection per delivery round: the first send of a round connects
(STARTTLS, login), later sends reuse it one at a time, and ``flush`` (the
round is over) says QUIT. A connection that fails mid-round is dropped and
the next send opens a new one.
"""

from __future__ import annotations

import asyncio
import email.header
import email.policy
import email.utils
import logging
import re
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib

from newswatch.config import EmailChannelConfig
from newswatch.model import DeliveryResult, Message, Notification
from newswatch.notify.channels.base import ChannelContext, utcnow
from newswatch.notify.redact import clean_error, login_secrets
from newswatch.notify.render import RenderContext, render_message
from newswatch.notify.text import one_line

log = logging.getLogger(__name__)

_DOMAIN_CHARS = re.compile(r"[^A-Za-z0-9.-]")
_FALLBACK_DOMAIN = "newswatch.invalid"


class _EncodedSubject(str):
    """A non-ASCII Subject that folds itself into RFC 2047 encoded words.

    CPython 3.11's ``policy.SMTP`` folder drops the space between two encoded
    words when it breaks the line there ("북한, 평양서" arrives as "북한,평양서").
    ``email.header.Header`` encodes the spaces inside the words, so they
    survive. The email package calls ``fold`` on a header value that has a
    ``name``; read back, the value is the plain text.
    """

    name: str

    def __new__(cls, value: str) -> _EncodedSubject:
        subject = super().__new__(cls, value)
        subject.name = "Subject"
        return subject

    def fold(self, *, policy: email.policy.Policy) -> str:
        linesep = policy.linesep
        if getattr(policy, "utf8", False):  # SMTPUTF8: raw UTF-8 is allowed
            return f"{self.name}: {self}{linesep}"
        header = email.header.Header(str(self), "utf-8", header_name=self.name)
        return f"{self.name}: {header.encode(linesep=linesep)}{linesep}"


def _message_id_domain(from_addr: str) -> str:
    _, addr = email.utils.parseaddr(from_addr)
    domain = _DOMAIN_CHARS.sub("", addr.rpartition("@")[2]).strip(".")
    return domain or _FALLBACK_DOMAIN


def build_email(
    notification: Notification,
    message: Message,
    *,
    from_addr: str,
    to: tuple[str, ...],
    subject_prefix: str,
    date: datetime,
) -> EmailMessage:
    """The MIME message for one notification. Pure given ``date``."""
    msg = EmailMessage(policy=email.policy.SMTP)
    subject = one_line(f"{subject_prefix} {message.subject}")
    msg["Subject"] = subject if subject.isascii() else _EncodedSubject(subject)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = f"<{notification.key}@{_message_id_domain(from_addr)}>"
    # RFC 3834: tells vacation responders and list servers not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newswatch-Rule"] = one_line(", ".join(notification.rules))
    msg["X-Newswatch-Kind"] = notification.kind.value
    msg.set_content(message.text)
    if message.html is not None:
        msg.add_alternative(message.html, subtype="html")
    return msg


class EmailChannel:
    kind = "email"

    def __init__(
        self,
        name: str,
        cfg: EmailChannelConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        render: RenderContext | None = None,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._render = render or RenderContext()
        smtp = cfg.smtp
        password = smtp.password.get_secret_value() if smtp.password is not None else ""
        self._secrets = login_secrets(smtp.username, password) if password else []
        self._smtp: aiosmtplib.SMTP | None = None
        # One connection carries one message at a time.
        self._lock = asyncio.Lock()

    @classmethod
    def from_config(cls, name: str, cfg: EmailChannelConfig, ctx: ChannelContext) -> EmailChannel:
        return cls(name, cfg, clock=ctx.clock, render=ctx.rendering)

    def describe(self) -> str:
        smtp = self._cfg.smtp
        security = "tls" if smtp.tls else "starttls" if smtp.starttls else "plain"
        login = f", login {smtp.username}" if smtp.username else ""
        to = ", ".join(self._cfg.to)
        return f"email {self._cfg.from_} -> {to} via {smtp.host}:{smtp.port} ({security}{login})"

    def __repr__(self) -> str:
        return f"<EmailChannel {self.name!r}: {self.describe()}>"

    async def flush(self) -> None:
        """The round is over: say QUIT and close the connection."""
        async with self._lock:
            await self._disconnect(polite=True)

    async def aclose(self) -> None:
        await self.flush()

    async def send(self, notification: Notification) -> DeliveryResult:
        cfg = self._cfg
        try:
            message = render_message(notification, self._render)
        except Exception as exc:  # a user template that fails at send time
            return DeliveryResult.failed(
                self._clean(f"email {self.name}: could not render: {type(exc).__name__}: {exc}")
            )
        msg = build_email(
            notification,
            message,
            from_addr=cfg.from_,
            to=cfg.to,
            subject_prefix=cfg.subject_prefix,
            date=self._clock(),
        )
        async with self._lock:
            try:
                smtp = await self._connection()
                refused, _ = await smtp.send_message(
                    msg,
                    sender=email.utils.parseaddr(cfg.from_)[1] or cfg.from_,
                    recipients=[email.utils.parseaddr(a)[1] or a for a in cfg.to],
                )
            except Exception as exc:  # mapped, never raised: see classify()
                # The connection may be half-dead: the next send opens a new one.
                await self._disconnect(polite=False)
                result = self.classify(exc)
                log.debug("email %s: %s", self.name, result.error)
                return result
        if refused:
            # Some recipients took it: re-sending would duplicate it for them,
            # so the attempt counts as delivered and the rest is logged.
            detail = "; ".join(
                f"{addr}: {resp.code} {resp.message}" for addr, resp in refused.items()
            )
            log.warning("email %s: some recipients refused: %s", self.name, self._clean(detail))
        return DeliveryResult.success(answer=f"accepted by {cfg.smtp.host}:{cfg.smtp.port}")

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp_cfg = self._cfg.smtp
        password = smtp_cfg.password.get_secret_value() if smtp_cfg.password is not None else None
        login = smtp_cfg.username is not None and password is not None
        smtp = aiosmtplib.SMTP(
            hostname=smtp_cfg.host,
            port=smtp_cfg.port,
            use_tls=smtp_cfg.tls,
            # False, not None: None would mean "upgrade if offered".
            start_tls=smtp_cfg.starttls,
            timeout=smtp_cfg.timeout.total_seconds(),
        )
        await smtp.connect()
        try:
            if login:
                assert smtp_cfg.username is not None and password is not None
                await smtp.login(smtp_cfg.username, password)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    async def _disconnect(self, *, polite: bool) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if polite and smtp.is_connected:
            try:
                await smtp.quit()
                return
            except Exception:  # the server went away first: closing is enough
                pass
        smtp.close()

    def classify(self, exc: BaseException) -> DeliveryResult:
        """An aiosmtplib/socket error -> retry or permanent failure, secrets scrubbed.

        4xx replies, connection and timeout problems are temporary; 5xx replies
        (550 recipient rejected, 535 bad credentials) and a server lacking what
        the config requires (STARTTLS, AUTH) are permanent.
        """
        where = f"smtp {self._cfg.smtp.host}:{self._cfg.smtp.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            error = self._clean(f"{where}: recipients refused: {detail}")
            if any(400 <= code < 500 for code in codes):
                return DeliveryResult.retry(error)
            return DeliveryResult.failed(error)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            what = (
                "authentication failed"
                if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
                else "refused"
            )
            error = self._clean(f"{where}: {what}: {exc.code} {exc.message}")
            if 500 <= exc.code < 600:
                return DeliveryResult.failed(error)
            return DeliveryResult.retry(error)
        if isinstance(exc, TimeoutError):
            return DeliveryResult.retry(self._clean(f"{where}: timed out: {exc}"))
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
            # aiosmtplib raises the bare base class only for what the server
            # lacks and the config requires (STARTTLS, AUTH, SMTPUTF8):
            # every retry would meet the same server, so a person must look.
            return DeliveryResult.failed(self._clean(f"{where}: {exc}"))
        if isinstance(exc, aiosmtplib.SMTPException | OSError):
            return DeliveryResult.retry(self._clean(f"{where}: {exc}"))
        # An address the client refuses to put on the wire, or a bug: retrying
        # the same message cannot help, a person has to look.
        return DeliveryResult.failed(self._clean(f"{where}: {type(exc).__name__}: {exc}"))

    def _clean(self, text: str) -> str:
        return clean_error(text, self._secrets)
