"""ntfy channel: publish to a topic URL, the message as the body and the
options as headers (docs.ntfy.sh/publish).

Each part is one message: ``X-Title`` (the subject line; RFC 2047 encoded
words when it is not ASCII, which ntfy decodes), the plain-text message,
``X-Click`` (the story's link when the part holds one story), ``X-Tags``,
``X-Priority`` and ``Authorization: Bearer <token>`` when a token is set.
ntfy shows plain text (Markdown only on request, never made here), so
there is nothing to escape.

Limit: 4,096 bytes of message (ntfy's default ``message-size-limit``). A
longer body is not refused but turned into an attachment, ``attachment.txt``,
whose text the notification no longer shows (or refused with 40014 where
attachments are off), so parts stay within 4,096 bytes.

Answers: 200 with the message JSON delivered; 429 ``{"code": 42901}`` with
no Retry-After (ntfy refills a visitor one request per 5 s, so 5 s is the
hint) and 42908 (daily quota: back off) later; 5xx later; 400, 401
(40101), 403 (40301), 404 and 413 permanent.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx

from newswatch.config.models import NtfyChannelConfig
from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url, url_secrets
from newswatch.notify.render import RenderContext, render_parts, subject_line
from newswatch.notify.text import safe_href, truncate

MESSAGE_MAX = 4096  # bytes
# Titles are one line in the app; ntfy keeps more, the phone shows less.
TITLE_MAX = 250
# ntfy's default visitor-request-limit-replenish: one request every 5 s.
REPLENISH_SECONDS = 5.0
_RATE_LIMITED = 42901

# Characters a URL may keep in a header; anything else is percent-encoded
# (a header is ASCII, and "%" keeps existing escapes as they are).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def _utf8_bytes(text: str) -> int:
    return len(text.encode())


def messages(notification: Notification, rc: RenderContext) -> list[str]:
    """The message bodies of ``notification``, each at most 4,096 bytes."""
    return render_parts(notification, "ntfy", rc, limit=MESSAGE_MAX, cost=_utf8_bytes, join="\n\n")


def header_text(value: str) -> str:
    """A header value: as is when ASCII, else one RFC 2047 encoded word."""
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


class NtfyChannel(HttpChannel):
    kind = "ntfy"

    def __init__(self, name: str, cfg: NtfyChannelConfig, ctx: ChannelContext) -> None:
        url = cfg.url.get_secret_value()
        token = cfg.token.get_secret_value() if cfg.token is not None else None
        super().__init__(
            name,
            http=ctx.http,
            target=mask_url(url),
            secrets=[*url_secrets(url), *([token] if token else [])],
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        self._url = url
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cfg.tags:
            headers["X-Tags"] = header_text(",".join(cfg.tags))
        if cfg.priority != "default":
            headers["X-Priority"] = str(cfg.priority)
        self._headers = headers
        self._token = bool(token)

    @classmethod
    def from_config(cls, name: str, cfg: NtfyChannelConfig, ctx: ChannelContext) -> NtfyChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        bodies = messages(notification, self._render)
        subject = subject_line(notification, self._render)
        click = None
        if len(notification.items) == 1:
            href = safe_href(notification.items[0].article.link)
            click = quote(href, safe=_URL_SAFE) if href else None
        out = []
        for number, body in enumerate(bodies, start=1):
            suffix = f" ({number}/{len(bodies)})" if len(bodies) > 1 else ""
            headers = {
                **self._headers,
                "X-Title": header_text(truncate(subject, TITLE_MAX - len(suffix)) + suffix),
            }
            if click:
                headers["X-Click"] = click
            out.append(HttpRequest(url=self._url, content=body.encode(), headers=headers))
        return out

    def classify(self, response: httpx.Response) -> DeliveryResult:
        result = super().classify(response)
        if response.status_code != 429 or result.retry_after is not None:
            return result
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        if code == _RATE_LIMITED:
            return DeliveryResult.retry(
                result.error or "rate limited", REPLENISH_SECONDS, answer=result.answer
            )
        return result

    def describe(self) -> str:
        auth = ", token" if self._token else ""
        return super().describe() + auth
