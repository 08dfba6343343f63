"""Slack channel: an incoming webhook (Slack, or the Slack-compatible hooks
of Mattermost and Rocket.Chat), or a bot token posting with chat.postMessage.

Each part is one message of Block Kit blocks: a header (plain text), an
intro section, one section per story (mrkdwn) and a context footer, with a
``text`` fallback that notifications and old clients show. Mattermost and
Rocket.Chat ignore blocks, so ``format: text`` sends each part as mrkdwn
in ``text`` alone.

Every value is escaped for mrkdwn (``& < >`` as entities), so ``<!channel>``,
``<!here>`` and ``<@U123>`` in a headline stay text; ``link_names`` is never
set, so a bare ``@channel`` is text too (in ``format: text`` an "@" that
could start a mention is also followed by a zero-width space, because
Mattermost parses bare @channel).

Answers. Webhook: ``200 ok``; refusals are plain-text codes with a status
(400 ``invalid_payload``/``invalid_blocks``/``no_text``, 403
``invalid_token``/``action_prohibited``, 404 ``no_service``/
``channel_not_found``, 410 ``channel_is_archived``): permanent; 429 with
``Retry-After`` seconds and 5xx: later. Web API: HTTP 200 with ``{"ok":
false, "error": ...}`` for refusals, 429 ``ratelimited`` with
``Retry-After``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from newswatch.config.models import SlackChannelConfig
from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url, url_secrets
from newswatch.notify.render import Blocks, RenderContext, pack, pack_blocks, subject_line
from newswatch.notify.retry import parse_retry_after
from newswatch.notify.templates import MARKUPS
from newswatch.notify.text import fit

# Block Kit limits (docs.slack.dev, block reference): 50 blocks a message,
# 3,000 characters in a section's text, 150 in a header's.
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
# A context element's text: the same 3,000 as any text object; the footer
# is one line, so this only guards a long list of rule names.
CONTEXT_TEXT_MAX = 3000
# Blocks kept for the header, the intro section and the footer of a part.
FRAME_BLOCKS = 3
# The fallback text: Slack cuts ``text`` at 40,000 characters and may split
# it beyond 4,000; the fallback is one line, cut well before either.
FALLBACK_MAX = 3000
# One message's characters in all: Slack documents no total for blocks, but
# refuses very long messages (msg_too_long); 47 stories of ~400 characters
# are 20,000, so this only matters for stories with huge links.
MESSAGE_CHARS_MAX = 40_000
# format: text (Mattermost, Rocket.Chat): Rocket.Chat's default
# Message_MaxAllowedSize is 5,000 characters, Mattermost's post limit 16,383.
TEXT_FORMAT_MAX = 4000

# Web API errors that say "later", not "never" (chat.postMessage docs).
_API_RETRY = frozenset(
    {"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)
_ESCAPE = MARKUPS["slack"]
# An "@" not inside a word, outside <...> (a link or our own markup).
_TEXT_AT = re.compile(r"(<[^<>]*>)|(?<!\w)@")
_AT = re.compile(r"(?<!\w)@")
_ZWSP = "\u200b"


def _break_mentions(text: str) -> str:
    """A zero-width space after each "@" that could start a bare mention,
    except inside ``<url|label>`` link targets (their labels are escaped
    feed text and get it too)."""

    def repl(m: re.Match[str]) -> str:
        link = m.group(1)
        if link is None:
            return "@" + _ZWSP
        target, bar, label = link[1:-1].partition("|")
        return f"<{target}{bar}{_AT.sub('@' + _ZWSP, label)}>"

    return _TEXT_AT.sub(repl, text)


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


class SlackChannel(HttpChannel):
    kind = "slack"

    def __init__(self, name: str, cfg: SlackChannelConfig, ctx: ChannelContext) -> None:
        self._api = cfg.webhook is None
        if cfg.webhook is not None:
            url = cfg.webhook.get_secret_value()
            target, secrets, headers = mask_url(url), url_secrets(url), {}
        else:
            assert cfg.token is not None and cfg.channel is not None  # the model checked
            token = cfg.token.get_secret_value()
            url = cfg.api_url.rstrip("/") + "/chat.postMessage"
            target = f"chat.postMessage #{cfg.channel} via {mask_url(cfg.api_url)}"
            secrets, headers = [token], {"Authorization": f"Bearer {token}"}
        super().__init__(
            name,
            http=ctx.http,
            target=target,
            secrets=secrets,
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        self._url = url
        self._headers = headers
        self._channel = cfg.channel
        self._text_format = cfg.format == "text"

    @classmethod
    def from_config(cls, name: str, cfg: SlackChannelConfig, ctx: ChannelContext) -> SlackChannel:
        return cls(name, cfg, ctx)

    # -- render (pure)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        payloads = (
            text_payloads(notification, self._render)
            if self._text_format
            else block_payloads(notification, self._render)
        )
        if self._channel is not None:
            payloads = [{"channel": self._channel, **p} for p in payloads]
        return [HttpRequest(url=self._url, json=p, headers=self._headers) for p in payloads]

    # -- answers

    def classify(self, response: httpx.Response) -> DeliveryResult:
        if not self._api or response.status_code != 200:
            return super().classify(response)
        try:
            body = response.json()
            ok, error = bool(body.get("ok")), str(body.get("error") or "unknown error")
        except (ValueError, AttributeError):
            # Posted or not, we cannot tell: at-least-once says try again.
            return DeliveryResult.retry(self.error(f"unreadable answer{self.excerpt(response)}"))
        if ok:
            return DeliveryResult.success(answer=self.answer(response))
        message = self.error(f"refused: {error}")
        if error in _API_RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return DeliveryResult.retry(message, retry_after, answer=self.answer(response))
        return DeliveryResult.failed(message, answer=self.answer(response))

    def describe(self) -> str:
        text = ", format text" if self._text_format else ""
        return super().describe() + text


def block_payloads(notification: Notification, rc: RenderContext) -> list[dict[str, Any]]:
    """One Block Kit message per part: every text within its block's limit,
    at most ``MAX_BLOCKS`` blocks, items split at story boundaries."""
    b = Blocks(notification, "slack", rc)
    sections = [
        block if len(block) <= SECTION_TEXT_MAX else b.short(i, SECTION_TEXT_MAX)
        for i, block in enumerate(b.items)
    ]
    ranges = pack(
        [len(s) for s in sections],
        limit=MESSAGE_CHARS_MAX,
        overhead=HEADER_TEXT_MAX + SECTION_TEXT_MAX + CONTEXT_TEXT_MAX,
        max_per_part=MAX_BLOCKS - FRAME_BLOCKS,
    )
    fallback = subject_line(notification, rc)
    payloads = []
    for number, span in enumerate(ranges, start=1):
        parts = len(ranges)
        blocks: list[dict[str, Any]] = []
        title = _strip(b.part_text("title", number, parts))
        if title:
            text = _fit_markup(title, HEADER_TEXT_MAX)
            blocks.append({"type": "header", "text": {"type": "plain_text", "text": text}})
        intro = _strip(b.part_text("header", number, parts))
        if intro:
            blocks.append(
                {"type": "section", "text": _mrkdwn(_fit_markup(intro, SECTION_TEXT_MAX))}
            )
        blocks.extend({"type": "section", "text": _mrkdwn(sections[i])} for i in span)
        footer = _strip(b.part_text("footer", number, parts))
        if footer:
            text = _fit_markup(footer, CONTEXT_TEXT_MAX)
            blocks.append({"type": "context", "elements": [_mrkdwn(text)]})
        suffix = f" ({number}/{parts})" if parts > 1 else ""
        payloads.append(
            {"text": fit(fallback, FALLBACK_MAX - len(suffix), _ESCAPE) + suffix, "blocks": blocks}
        )
    return payloads


def text_payloads(notification: Notification, rc: RenderContext) -> list[dict[str, Any]]:
    """``format: text``: each part one mrkdwn ``text``, a bold title first."""
    b = Blocks(notification, "slack", rc)
    title_room = HEADER_TEXT_MAX + len("**\n")
    packed = pack_blocks(b, limit=TEXT_FORMAT_MAX - title_room, join="\n\n")
    payloads = []
    for number, pieces in enumerate(packed, start=1):
        title = _strip(b.part_text("title", number, len(packed)))
        head = [f"*{_fit_markup(title, HEADER_TEXT_MAX)}*"] if title else []
        text = "\n\n".join(p.strip("\n") for p in [*head, *pieces] if p.strip())
        payloads.append({"text": _break_mentions(text)})
    return payloads


def _strip(text: str) -> str:
    return text.strip()


_ENTITY_TAIL = re.compile(r"&[a-z]*$")


def _fit_markup(text: str, limit: int) -> str:
    """Escaped ``text`` cut to ``limit`` characters, never inside an entity."""
    if len(text) <= limit:
        return text
    cut = _ENTITY_TAIL.sub("", text[: limit - 1]).rstrip()
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut + "…"
