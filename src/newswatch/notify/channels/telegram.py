"""Telegram channel: the Bot API's ``sendMessage`` with ``parse_mode: HTML``.

Text is Telegram HTML with only tags it supports (``b``, ``i``, ``a href``)
and every value escaped (``&lt; &gt; &amp; &quot;``, numeric references for
the rest; an "@" that could start a mention is followed by a zero-width
space, so a headline's "@everyone" notifies nobody). Link previews are off:
a digest would otherwise show the first story's picture.

Limits (core.telegram.org/bots/api#sendmessage): 1-4,096 characters of
text *after entity parsing*, so tags and entities count only for what they
show. TDLib counts Unicode code points; we count UTF-16 code units, never
fewer, so the limit holds under either reading. The raw text is held under
32 KiB too (the Bot API refuses longer bodies before parsing). A long
notification is split into numbered parts at story boundaries.

The bot token is in the URL path (``/bot<token>/sendMessage``): descriptions
show the API host and the chat only, and every error is scrubbed of it.

Answers: ``{"ok": true, ...}`` delivered; ``429`` with
``parameters.retry_after`` (whole seconds; no Retry-After header) later;
5xx later; 400 (chat not found, can't parse entities), 401 (bad token) and
403 (bot blocked or removed) permanent; a group that became a supergroup
answers 400 with ``parameters.migrate_to_chat_id``, named in the error so
the config can be fixed.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import httpx

from newswatch.config.models import TelegramChannelConfig
from newswatch.model import DeliveryResult, Notification, NotificationKind
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url
from newswatch.notify.render import RenderContext, render_parts

TEXT_MAX = 4096  # characters after entity parsing
RAW_TEXT_MAX = 32 * 1024  # bytes of the text as sent, checked before parsing

_TAG = re.compile(r"<[^<>]*>")


def visible_length(text: str) -> int:
    """What Telegram counts of a Telegram-HTML text: tags removed, entities
    decoded, in UTF-16 code units (at least the code points TDLib counts).
    Our texts escape every "<" of their values, so a tag is always ours."""
    shown = html.unescape(_TAG.sub("", text))
    return len(shown.encode("utf-16-le")) // 2


def cost(text: str) -> int:
    """The larger of the shown length and the raw size scaled to the same
    4,096: a part within 4,096 is within both limits. Never more for two
    texts joined than for the two apart, as ``render_parts`` needs."""
    raw = math.ceil(len(text.encode()) * TEXT_MAX / RAW_TEXT_MAX)
    return max(visible_length(text), raw)


def texts(notification: Notification, rc: RenderContext) -> list[str]:
    """The message texts of ``notification``, each within Telegram's limits.

    A group or digest of more than ``LIST_AFTER`` stories lists them one
    line each (linked title, source): at Telegram's 20 messages a minute in a
    group, a burst of 1,000 stories is then ~15 messages instead of 50.
    """
    if len(notification.items) > LIST_AFTER and notification.kind is not NotificationKind.ALERT:
        return render_parts(
            notification, "telegram", rc, limit=TEXT_MAX, cost=cost, join="\n", block="line"
        )
    return render_parts(notification, "telegram", rc, limit=TEXT_MAX, cost=cost, join="\n\n")


# Stories past which a notification is listed compactly, a line each.
LIST_AFTER = 10


class TelegramChannel(HttpChannel):
    kind = "telegram"

    def __init__(self, name: str, cfg: TelegramChannelConfig, ctx: ChannelContext) -> None:
        token = cfg.token.get_secret_value()
        api = cfg.api_url.rstrip("/")
        super().__init__(
            name,
            http=ctx.http,
            target=f"chat {cfg.chat_id} via {mask_url(api)}",
            # The part after "bot<id>:" is the secret; the whole token too.
            secrets=[token, token.partition(":")[2]],
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        self._url = f"{api}/bot{token}/sendMessage"
        self._chat_id = cfg.chat_id
        self._thread = cfg.message_thread_id

    @classmethod
    def from_config(
        cls, name: str, cfg: TelegramChannelConfig, ctx: ChannelContext
    ) -> TelegramChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        out = []
        for text in texts(notification, self._render):
            body: dict[str, Any] = {
                "chat_id": self._chat_id,
                "text": text,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
                # Bot API servers older than 7.0 know only this form.
                "disable_web_page_preview": True,
            }
            if self._thread is not None:
                body["message_thread_id"] = self._thread
            out.append(HttpRequest(url=self._url, json=body))
        return out

    def classify(self, response: httpx.Response) -> DeliveryResult:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return super().classify(response)
        status = response.status_code
        if 200 <= status < 300 and body.get("ok") is not False:
            return DeliveryResult.success(answer=self.answer(response))
        description = str(body.get("description") or f"HTTP {status}")
        params = body.get("parameters")
        if not isinstance(params, dict):
            params = {}
        answer = self.answer(response)
        code = body.get("error_code")
        code = code if isinstance(code, int) else status
        if code == 429:
            retry_after = params.get("retry_after")
            seconds = float(retry_after) if isinstance(retry_after, int | float) else None
            return DeliveryResult.retry(self.error(description), seconds, answer=answer)
        if code >= 500 or code in (408, 425):
            return DeliveryResult.retry(self.error(description), answer=answer)
        moved = params.get("migrate_to_chat_id")
        if moved is not None:
            description += f" (the group is now the supergroup {moved}: set chat_id to it)"
        return DeliveryResult.failed(self.error(description), answer=answer)
