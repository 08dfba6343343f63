"""Email channel: one multipart/alternative (text + HTML) message per alert, via SMTP.

Headers are built with ``email.message.EmailMessage`` and ``policy.SMTP``, so
non-ASCII subjects (Korean headlines) are RFC 2047 encoded and lines are
CRLF-terminated; feed text reaches a header only after ``render.one_line``
folded its control characters, so a title cannot inject a header. The
envelope recipients are the configured ones, never read from headers.

The Message-ID derives from the outbox id and the story, so a retry of the
same alert carries the same Message-ID and a client that got both shows one.

One SMTP connection per alert: simple and robust; alerts are few. A burst
could share a connection later.
"""

from __future__ import annotations

import email.header
import email.policy
import email.utils
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage

import aiosmtplib

from newswatch.config import EmailChannelConfig
from newswatch.model import Alert, DeliveryResult, Message
from newswatch.notify.channels.base import ChannelContext, utcnow
from newswatch.notify.redact import clean_error, login_secrets
from newswatch.notify.render import delivery_key, one_line, render_alert

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
    alert: Alert,
    message: Message,
    *,
    from_addr: str,
    to: tuple[str, ...],
    subject_prefix: str,
    date: datetime,
) -> EmailMessage:
    """The MIME message for one alert. Pure given ``date``."""
    msg = EmailMessage(policy=email.policy.SMTP)
    subject = one_line(f"{subject_prefix} {message.subject}")
    msg["Subject"] = subject if subject.isascii() else _EncodedSubject(subject)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = f"<{delivery_key(alert)}@{_message_id_domain(from_addr)}>"
    # RFC 3834: tells vacation responders and list servers not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newswatch-Rule"] = one_line(alert.rule)
    msg.set_content(message.text)
    if message.html is not None:
        msg.add_alternative(message.html, subtype="html")
    return msg


class EmailChannel:
    kind = "email"
    max_length: int | None = None

    def __init__(
        self,
        name: str,
        cfg: EmailChannelConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        tz: tzinfo = UTC,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._tz = tz
        smtp = cfg.smtp
        password = smtp.password.get_secret_value() if smtp.password is not None else ""
        self._secrets = login_secrets(smtp.username, password) if password else []

    @classmethod
    def from_config(cls, name: str, cfg: EmailChannelConfig, ctx: ChannelContext) -> EmailChannel:
        return cls(name, cfg, clock=ctx.clock, tz=ctx.tz)

    def describe(self) -> str:
        smtp = self._cfg.smtp
        security = "tls" if smtp.tls else "starttls" if smtp.starttls else "plain"
        login = f", login {smtp.username}" if smtp.username else ""
        to = ", ".join(self._cfg.to)
        return f"email {self._cfg.from_} -> {to} via {smtp.host}:{smtp.port} ({security}{login})"

    def __repr__(self) -> str:
        return f"<EmailChannel {self.name!r}: {self.describe()}>"

    async def aclose(self) -> None:
        """Nothing held between sends."""

    async def send(self, alert: Alert) -> DeliveryResult:
        cfg, smtp = self._cfg, self._cfg.smtp
        msg = build_email(
            alert,
            render_alert(alert, self._tz),
            from_addr=cfg.from_,
            to=cfg.to,
            subject_prefix=cfg.subject_prefix,
            date=self._clock(),
        )
        password = smtp.password.get_secret_value() if smtp.password is not None else None
        login = smtp.username is not None and password is not None
        try:
            refused, _ = await aiosmtplib.send(
                msg,
                sender=email.utils.parseaddr(cfg.from_)[1] or cfg.from_,
                recipients=[email.utils.parseaddr(a)[1] or a for a in cfg.to],
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username if login else None,
                password=password if login else None,
                use_tls=smtp.tls,
                # False, not None: None would mean "upgrade if offered".
                start_tls=smtp.starttls,
                timeout=smtp.timeout.total_seconds(),
            )
        except Exception as exc:  # mapped, never raised: see classify()
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
        return DeliveryResult.success()

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
