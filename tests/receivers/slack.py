"""Slack stand-ins: an incoming webhook and the Web API's chat.postMessage.

Limits and answers, with their sources:

- Incoming webhook errors are plain-text bodies with an HTTP status:
  400 ``invalid_payload``, 403 ``action_prohibited``, 404
  ``channel_not_found``, 410 ``channel_is_archived``, 500 ``rollup_error``
  (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks);
  400 ``no_text`` for a payload without text or blocks (fluxcd/flagger#1031),
  400 ``invalid_blocks`` for a bad block (slackapi/java-slack-sdk#1017),
  404 ``no_service`` for an unknown hook (slackapi/slack-github-action#249),
  403 ``invalid_token`` for a known hook with the wrong token. Success is
  ``200 ok`` (python-slack-sdk webhook docs: ``response.body == "ok"``).
- Blocks: at most 50 per message; section text 3,000 characters, section
  fields 10 of 2,000 each; header text 150 (plain_text only); block_id 255;
  markdown blocks 12,000 together (docs.slack.dev block reference pages,
  slackapi/bolt-js#2509). The Web API's error detail reads
  ``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
- ``text``: truncated beyond 40,000 characters with a ``message_truncated``
  warning, on every way of posting, webhooks included
  (https://api.slack.com/changelog/2018-04-truncating-really-long-messages);
  beyond 4,000 Slack may split it into several messages (undocumented;
  recorded as a warning).
- Escaping: ``& < >`` are control characters and must be sent as
  ``&amp; &lt; &gt;`` (https://api.slack.com/reference/surfaces/formatting).
  An unescaped ``<!channel>``, ``<!here>``, ``<!everyone>``, ``<@U…>``,
  ``<#C…>`` or ``<!subteam^…>`` is recorded as a mention; ``<url|label>``
  as a link. With ``link_names`` (or ``parse: full``) bare ``@here``,
  ``@channel`` and ``@everyone`` mention too.
- Pace: about one message per second per webhook / channel, 429 with a
  ``Retry-After`` header in seconds (https://api.slack.com/docs/rate-limits);
  bursts the real service may forgive are refused here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

from .base import Answer, Mention, Message, Receiver, Request, SlidingWindow, ceil_seconds

__all__ = ["SlackApiReceiver", "SlackWebhookReceiver", "decode_mrkdwn"]

MAX_BLOCKS = 50  # blocks per message
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BLOCK_ID_MAX = 255
CONTEXT_ELEMENTS_MAX = 10
MARKDOWN_BLOCKS_TOTAL_MAX = 12000  # cumulative over all markdown blocks
TEXT_TRUNCATE_AT = 40000  # the `text` field is cut here, with a warning
TEXT_MAY_SPLIT_AT = 4000  # undocumented: longer texts may become several posts
KNOWN_BLOCKS = frozenset(
    {"section", "header", "context", "divider", "image", "actions", "rich_text", "markdown"}
)

# <...> sequences in mrkdwn: the only way to link or mention (escaped, they are text).
_CONTROL = re.compile(r"<([^<>]*)>")
_BARE_MENTION = re.compile(r"(?<![\w@])@(channel|here|everyone)\b")


def decode_mrkdwn(raw: str, where: str) -> tuple[str, list[str], list[Mention]]:
    """Visible text, links and mentions of a mrkdwn string as Slack renders it."""
    links: list[str] = []
    mentions: list[Mention] = []

    def resolve(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("!"):
            command = target[1:]
            if command in ("channel", "here", "everyone"):
                mentions.append(Mention(command, command, where))
                return label or f"@{command}"
            if command.startswith("subteam^"):
                mentions.append(Mention("usergroup", command.split("^", 1)[1], where))
                return label or "@group"
            return label or inner  # <!date^...|fallback> and friends
        if target.startswith(("@U", "@W")):
            mentions.append(Mention("user", target[1:], where))
            return label or target
        if target.startswith("#C"):
            mentions.append(Mention("channel_link", target[1:], where))
            return label or target
        links.append(_unescape(target))
        return label or target

    text = _unescape(_CONTROL.sub(resolve, raw))
    return text, links, mentions


def _unescape(text: str) -> str:
    # Only these three are entities to Slack; "&quot;" stays as typed.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _bare_mentions(raw: str, where: str) -> list[Mention]:
    """``@here`` & co. typed as words (``link_names``); <...> sequences aside."""
    words = _CONTROL.sub(" ", raw)
    return [Mention(m.group(1), m.group(1), where) for m in _BARE_MENTION.finditer(words)]


class _Decoded:
    """Visible text, links, mentions and the first block error of a payload."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.links: list[str] = []
        self.mentions: list[Mention] = []
        self.errors: list[str] = []
        self.mrkdwn: list[tuple[str, str]] = []  # (raw text, where) for link_names

    def add_mrkdwn(self, raw: str, where: str, *, visible: bool = True) -> str:
        text, links, mentions = decode_mrkdwn(raw, where)
        self.links += links
        self.mentions += mentions
        self.mrkdwn.append((raw, where))
        if visible:
            self.texts.append(text)
        return text

    def add_text_object(self, obj: Any, pointer: str, max_len: int | None) -> None:
        if not isinstance(obj, Mapping) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.errors.append(f"must be a text object [json-pointer:{pointer}]")
            return
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.errors.append(f"must be more than 0 characters [json-pointer:{pointer}/text]")
            return
        if max_len is not None and len(text) > max_len:
            self.errors.append(
                f"must be less than {max_len + 1} characters [json-pointer:{pointer}/text]"
            )
            return
        if obj["type"] == "mrkdwn":
            self.add_mrkdwn(text, pointer)
        else:  # plain_text is shown as typed: no links, no mentions
            self.texts.append(_unescape(text))


def _check_blocks(blocks: Any, decoded: _Decoded) -> None:
    if not isinstance(blocks, list):
        decoded.errors.append("must be an array [json-pointer:/blocks]")
        return
    if len(blocks) > MAX_BLOCKS:
        decoded.errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
        return
    markdown_total = 0
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind not in KNOWN_BLOCKS:
            decoded.errors.append(f"unsupported type: {kind} [json-pointer:{at}/type]")
            continue
        assert isinstance(block, Mapping)
        block_id = block.get("block_id")
        if isinstance(block_id, str) and len(block_id) > BLOCK_ID_MAX:
            decoded.errors.append(f"must be less than 256 characters [json-pointer:{at}/block_id]")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                decoded.errors.append(f"must define either text or fields [json-pointer:{at}]")
            if "text" in block:
                decoded.add_text_object(block["text"], f"{at}/text", SECTION_TEXT_MAX)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
                decoded.errors.append(f"no more than 10 items allowed [json-pointer:{at}/fields]")
            else:
                for j, obj in enumerate(fields):
                    decoded.add_text_object(obj, f"{at}/fields/{j}", SECTION_FIELD_TEXT_MAX)
        elif kind == "header":
            text = block.get("text")
            if not isinstance(text, Mapping) or text.get("type") != "plain_text":
                decoded.errors.append(f"must be a plain_text object [json-pointer:{at}/text]")
            else:
                decoded.add_text_object(text, f"{at}/text", HEADER_TEXT_MAX)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_ELEMENTS_MAX:
                decoded.errors.append(f"must have 1 to 10 items [json-pointer:{at}/elements]")
                continue
            for j, element in enumerate(elements):
                if isinstance(element, Mapping) and element.get("type") == "image":
                    continue
                decoded.add_text_object(element, f"{at}/elements/{j}", None)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                decoded.errors.append(f"must be more than 0 characters [json-pointer:{at}/text]")
                continue
            markdown_total += len(text)
            decoded.texts.append(text)
            decoded.links += re.findall(r"\]\((\S+?)\)", text)
    if markdown_total > MARKDOWN_BLOCKS_TOTAL_MAX:
        decoded.errors.append("markdown blocks exceed 12000 characters [json-pointer:/blocks]")


def _decode_message(payload: Mapping[str, Any]) -> tuple[_Decoded, str | None, list[str]]:
    """Decode ``payload``; returns (decoded, fallback text, warnings)."""
    decoded = _Decoded()
    warnings: list[str] = []
    if "blocks" in payload:
        _check_blocks(payload["blocks"], decoded)
    text = payload.get("text")
    fallback: str | None = None
    if isinstance(text, str) and text:
        if len(text) > TEXT_TRUNCATE_AT:
            warnings.append("message_truncated")
            text = text[:TEXT_TRUNCATE_AT]
        elif len(text) > TEXT_MAY_SPLIT_AT:
            warnings.append("text over 4,000 characters: Slack may split it")
        fallback = decoded.add_mrkdwn(text, "/text", visible=False)
    for i, attachment in enumerate(payload.get("attachments") or []):
        for key in ("pretext", "title", "text", "fallback"):
            value = attachment.get(key) if isinstance(attachment, Mapping) else None
            if isinstance(value, str) and value:
                decoded.add_mrkdwn(value, f"/attachments/{i}/{key}")
    if payload.get("link_names") in (True, 1, "1", "true") or payload.get("parse") == "full":
        for raw, where in decoded.mrkdwn:
            decoded.mentions += _bare_mentions(raw, where)
    return decoded, fallback, warnings


def _read_payload(request: Request) -> Any:
    """JSON body, or the ``payload=`` form field a webhook also accepts."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = parse_qs(request.body.decode("utf-8"))
        if "payload" in form:
            return json.loads(form["payload"][0])
        return {k: v[0] for k, v in form.items()}
    return json.loads(request.body)


class SlackWebhookReceiver(Receiver):
    """``POST /services/{team}/{bot}/{token}``, answered like hooks.slack.com."""

    platform: ClassVar[str] = "slack"

    def __init__(
        self,
        *,
        team: str = "T0000TEAM",
        bot: str = "B0000HOOK",
        token: str = "XXXXsecretwebhooktokenXXXX",
        pace: SlidingWindow | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.team, self.bot, self.token = team, bot, token
        self.archived = False  # True: the channel was archived (410)
        self.rule = pace if pace is not None else SlidingWindow(1, 1.0)

    @property
    def path(self) -> str:
        return f"/services/{self.team}/{self.bot}/{self.token}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def rate_limited_answer(self, retry_after: float) -> Answer:
        seconds = ceil_seconds(retry_after)
        return Answer.text(429, "rate_limited", {"Retry-After": str(seconds)})

    def server_error_answer(self) -> Answer:
        return Answer.text(500, "rollup_error")

    def _reset_state(self) -> None:
        self.rule.clear()

    def handle(self, request: Request) -> Answer:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[0] != "services":
            return Answer.text(404, "no_service")
        if parts[1:3] != [self.team, self.bot]:
            return Answer.text(404, "no_service")
        if parts[3] != self.token:
            return Answer.text(403, "invalid_token")
        if self.archived:
            return Answer.text(410, "channel_is_archived")
        wait = self.pace(self.rule, self.path)
        if wait is not None:
            return self.rate_limited_answer(wait)
        try:
            payload = _read_payload(request)
        except (ValueError, UnicodeDecodeError):
            return Answer.text(400, "invalid_payload")
        if not isinstance(payload, Mapping):
            return Answer.text(400, "invalid_payload")
        if not payload.get("text") and not payload.get("blocks") and not payload.get("attachments"):
            return Answer.text(400, "no_text")
        decoded, fallback, warnings = _decode_message(payload)
        if decoded.errors:
            return Answer.text(400, "invalid_blocks")
        visible = "\n".join(decoded.texts) if decoded.texts else (fallback or "")
        self.accept(
            Message(
                platform=self.platform,
                text=visible,
                links=tuple(decoded.links),
                mentions=tuple(decoded.mentions),
                parts={"blocks": payload.get("blocks", []), "fallback": fallback},
                payload=payload,
                meta={"thread_ts": payload.get("thread_ts")},
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
        return Answer(200, b"ok", {"Content-Type": "text/html"})


class SlackApiReceiver(Receiver):
    """``POST /api/chat.postMessage`` with a bot token, answered like
    slack.com: HTTP 200 with ``{"ok": false, "error": ...}`` for refusals,
    429 ``ratelimited`` with ``Retry-After`` for pace (chat.postMessage docs,
    slack-ruby/slack-api-ref chat.*.json error lists)."""

    platform: ClassVar[str] = "slack"

    def __init__(
        self,
        *,
        token: str = "xoxb-0000-secret-bot-token",
        channels: tuple[str, ...] = ("C0000NEWS",),
        pace: SlidingWindow | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.channels = set(channels)
        self.archived: set[str] = set()
        self.rule = pace if pace is not None else SlidingWindow(1, 1.0)
        self._posted: dict[str, str] = {}  # ts -> channel
        self._seq = 0

    @property
    def url(self) -> str:
        return self.base_url + "/api/chat.postMessage"

    def rate_limited_answer(self, retry_after: float) -> Answer:
        seconds = ceil_seconds(retry_after)
        return Answer.json(
            429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(seconds)}
        )

    def _reset_state(self) -> None:
        self.rule.clear()
        self._posted.clear()

    @staticmethod
    def _refuse(error: str, **extra: Any) -> Answer:
        return Answer.json(200, {"ok": False, "error": error, **extra})

    def handle(self, request: Request) -> Answer:
        if request.path != "/api/chat.postMessage":
            return Answer.json(404, {"ok": False, "error": "unknown_method"})
        try:
            payload = _read_payload(request)
        except (ValueError, UnicodeDecodeError):
            return self._refuse("invalid_json")
        if not isinstance(payload, Mapping):
            return self._refuse("invalid_json")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth else payload.get("token")
        if not token:
            return self._refuse("not_authed")
        if token != self.token:
            return self._refuse("invalid_auth")
        channel = payload.get("channel")
        if channel not in self.channels:
            return self._refuse("channel_not_found")
        if channel in self.archived:
            return self._refuse("is_archived")
        wait = self.pace(self.rule, str(channel))
        if wait is not None:
            return self.rate_limited_answer(wait)
        if not payload.get("text") and not payload.get("blocks") and not payload.get("attachments"):
            return self._refuse("no_text")
        decoded, fallback, warnings = _decode_message(payload)
        if decoded.errors:
            return self._refuse(
                "invalid_blocks",
                errors=decoded.errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in decoded.errors]},
            )
        thread_ts = payload.get("thread_ts")
        if thread_ts is not None and self._posted.get(str(thread_ts)) != channel:
            warnings.append("thread_ts names no message in this channel")
        self._seq += 1
        ts = f"{1_700_000_000 + self._seq}.{self._seq:06d}"
        self._posted[ts] = str(channel)
        visible = "\n".join(decoded.texts) if decoded.texts else (fallback or "")
        self.accept(
            Message(
                platform=self.platform,
                text=visible,
                links=tuple(decoded.links),
                mentions=tuple(decoded.mentions),
                parts={"blocks": payload.get("blocks", []), "fallback": fallback},
                payload=payload,
                meta={"channel": channel, "ts": ts, "thread_ts": thread_ts},
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
        body: dict[str, Any] = {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"type": "message", "text": fallback or "", "ts": ts, "bot_id": "B0000BOT"},
        }
        if thread_ts is not None:
            body["message"]["thread_ts"] = thread_ts
        if "message_truncated" in warnings:
            body["response_metadata"] = {
                "warnings": ["message_truncated"],
                "messages": [
                    "[WARN] Your message was truncated but still posted. "
                    "The `text` field accepts up to 40,000 characters."
                ],
            }
        return Answer.json(200, body)
