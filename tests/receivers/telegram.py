"""Telegram Bot API stand-in: ``POST /bot<token>/sendMessage`` (and ``getMe``).

Parameters come as JSON, a form or the query string, like the real server
(tdlib/telegram-bot-api, telegram-bot-api/Client.cpp, May 2026). What it
enforces, with the source of each rule:

- ``text``: 1-4096 characters after entity parsing (core.telegram.org/bots/api
  #sendmessage). "Characters" are Unicode code points: TDLib compares
  ``utf8_length`` of the parsed text with ``message_text_length_max`` = 4096
  (td/telegram/MessageContent.cpp), so an emoji counts 1, not 2 UTF-16 units,
  and markup or ``&amp;`` count only for what they render. Beyond it:
  ``Bad Request: message is too long``. A raw ``text`` over 32,768 bytes is
  ``Bad Request: text is too long``; an empty one ``Bad Request: message text
  is empty``; one that is only whitespace once parsed ``Bad Request: text
  must be non-empty``. Before measuring, TDLib turns control characters into
  spaces, drops ``\\r`` and bidi/line separators, and trims spaces and
  newlines at the ends (``fix_text``); the recorded text is that text.
- ``parse_mode: HTML``: TDLib's own parser (``telegram_html.py``); errors read
  ``Bad Request: can't parse entities: Unsupported start tag "script" at
  byte offset 12``. An unknown parse_mode is ``Bad Request: unsupported
  parse_mode``; MarkdownV2 is accepted unchecked (with a warning).
- ``chat_id`` unknown: ``Bad Request: chat not found``; missing: ``Bad
  Request: chat_id is empty``; a bad token: 401 ``Unauthorized``; an unknown
  method: 404 ``Not Found``. ``reply_parameters.message_id`` (or the legacy
  ``reply_to_message_id``) naming no message: ``Bad Request: message to be
  replied not found`` unless ``allow_sending_without_reply``.
- Every answer is ``{"ok": ..., ...}`` with the HTTP status equal to
  ``error_code``; a 429 is ``{"ok": false, "error_code": 429, "description":
  "Too Many Requests: retry after N", "parameters": {"retry_after": N}}``
  with N whole seconds and no ``Retry-After`` header (telegram-bot-api/Query.cpp).
- Pace, from the Bot FAQ ("My bot is hitting limits"): no more than one
  message per second in a chat, and 20 messages per minute in a group. Short
  bursts Telegram may forgive are refused here.
- Mentions: a ``text_mention`` (``<a href="tg://user?id=N">``) and an
  ``@username`` outside code, pre and links (TDLib's find_mentions: 4+
  characters after the ``@``) both notify the user, so both are recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

from .base import Answer, Mention, Message, Receiver, Request, SlidingWindow, ceil_seconds
from .telegram_html import Entity, HtmlError, fix_text, parse_html, utf16_len

__all__ = ["TelegramReceiver"]

TEXT_MAX = 4096  # code points after entity parsing
RAW_TEXT_MAX_BYTES = 1 << 15  # checked before parsing
CHAT_PACE = (1, 1.0)  # one message per second per chat
GROUP_PACE = (20, 60.0)  # twenty per minute per group
BOT_ID = 7000000001

_USERNAME = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{4,32})\b")
_URL = re.compile(r"https?://[^\s<>\"']+")
_NO_AUTO_ENTITIES = frozenset({"code", "pre", "text_link", "text_mention"})


def _bad(description: str, code: int = 400) -> Answer:
    prefix = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}.get(code)
    text = f"{prefix}: {description}" if prefix and description else (prefix or description)
    return Answer.json(code, {"ok": False, "error_code": code, "description": text})


def _lower_first(message: str) -> str:
    """The Bot API lower-cases the first letter of TDLib's message."""
    return message[:1].lower() + message[1:]


def _args(request: Request) -> dict[str, str]:
    """All parameters as strings, like the Bot API sees them."""
    args = {k: v[0] for k, v in request.query.items()}
    if request.content_type == "application/json" and request.body:
        body = request.json()
        if isinstance(body, Mapping):
            for key, value in body.items():
                if isinstance(value, (dict, list)):
                    args[key] = json.dumps(value)
                elif isinstance(value, bool):
                    args[key] = "true" if value else "false"
                elif value is not None:
                    args[key] = str(value)
    elif request.body:
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        args.update({k: v[0] for k, v in form.items()})
    return args


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _username_mentions(text: str, entities: tuple[Entity, ...]) -> list[Mention]:
    """@usernames TDLib would turn into mention entities (they notify)."""
    found = []
    for match in _USERNAME.finditer(text):
        start = utf16_len(text[: match.start()])
        inside = any(
            e.type in _NO_AUTO_ENTITIES and e.offset <= start < e.offset + e.length
            for e in entities
        )
        if not inside:
            found.append(Mention("username", match.group(1), "text"))
    return found


class TelegramReceiver(Receiver):
    """Answers like api.telegram.org for one bot."""

    platform: ClassVar[str] = "telegram"

    def __init__(
        self,
        *,
        token: str = "7000000001:AAFakeSecretTokenForTests",
        chats: Mapping[str, str] | None = None,
        chat_pace: SlidingWindow | None = None,
        group_pace: SlidingWindow | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token = token
        # chat_id -> type; ids as strings, channel usernames ("@news") too
        self.chats: dict[str, str] = dict(chats or {"-1001234567": "supergroup", "42": "private"})
        self.chat_rule = chat_pace or SlidingWindow(*CHAT_PACE)
        self.group_rule = group_pace or SlidingWindow(*GROUP_PACE)
        self._sent: dict[str, set[int]] = {}  # chat -> message ids
        self._message_id = 0

    @property
    def api_url(self) -> str:
        """What a channel's ``api_url`` should be (the real one is api.telegram.org)."""
        return self.base_url

    @property
    def url(self) -> str:
        return f"{self.base_url}/bot{self.token}/sendMessage"

    def _reset_state(self) -> None:
        self.chat_rule.clear()
        self.group_rule.clear()
        self._sent.clear()

    def rate_limited_answer(self, retry_after: float) -> Answer:
        seconds = ceil_seconds(retry_after)
        return Answer.json(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {seconds}",
                "parameters": {"retry_after": seconds},
            },
        )

    def server_error_answer(self) -> Answer:
        return Answer.json(
            500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        )

    def handle(self, request: Request) -> Answer:
        path = request.path
        if not path.startswith("/bot") or "/" not in path[4:]:
            return Answer.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, _, method = path[4:].partition("/")
        if token != self.token:
            return _bad("", 401)
        try:
            args = _args(request)
        except (ValueError, UnicodeDecodeError):
            return _bad("can't parse request JSON object")
        method = method.lower()
        if method == "getme":
            return Answer.json(200, {"ok": True, "result": self._bot()})
        if method != "sendmessage":
            return Answer.json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return self._send_message(request, args)

    def _bot(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "newswatch",
            "username": "newswatch_bot",
        }

    def _send_message(self, request: Request, args: dict[str, str]) -> Answer:
        chat = args.get("chat_id", "").strip()
        if not chat:
            return _bad("chat_id is empty")
        if chat not in self.chats:
            return _bad("chat not found")
        text = args.get("text", "")
        if not text:
            return _bad("message text is empty")
        if len(text.encode("utf-8")) > RAW_TEXT_MAX_BYTES:
            return _bad("text is too long")
        warnings: list[str] = []
        parse_mode = args.get("parse_mode", "").lower()
        if parse_mode == "html":
            try:
                parsed = parse_html(text)
            except HtmlError as exc:
                return _bad(f"can't parse entities: {exc}")
            plain, entities = parsed.text, parsed.entities
            warnings += [
                f"bare '&' at byte {pos} kept as text" for pos in parsed.literal_ampersands
            ]
            warnings += [f"link dropped: {url}" for url in parsed.dropped_links]
        elif parse_mode in ("", "none"):
            plain, entities = text, ()
        elif parse_mode in ("markdown", "markdownv2"):
            plain, entities = text, ()
            warnings.append(f"parse_mode {parse_mode} is not checked by this receiver")
        else:
            return _bad("unsupported parse_mode")
        plain, entities = fix_text(plain, entities)
        if not plain:
            return _bad("text must be non-empty")
        if len(plain) > TEXT_MAX:
            return _bad("message is too long")
        preview = args.get("link_preview_options")
        if preview:
            try:
                preview_obj = json.loads(preview)
            except ValueError:
                return _bad(_lower_first("Can't parse link preview options JSON object"))
            if not isinstance(preview_obj, Mapping):
                return _bad(_lower_first("Object expected as link preview options"))
        reply_to = self._reply_target(args)
        if isinstance(reply_to, Answer):
            return reply_to
        wait = self.pace(self.chat_rule, chat)
        if wait is None and self.chats[chat] != "private":
            wait = self.pace(self.group_rule, chat)
        if wait is not None:
            return self.rate_limited_answer(wait)
        return self._accept(request, chat, args, plain, entities, reply_to, warnings)

    def _reply_target(self, args: dict[str, str]) -> int | Answer | None:
        chat = args["chat_id"].strip()
        message_id: int | None = None
        allow_without = _true(args.get("allow_sending_without_reply"))
        if args.get("reply_parameters"):
            try:
                params = json.loads(args["reply_parameters"])
            except ValueError:
                return _bad(_lower_first("Can't parse reply parameters JSON object"))
            if not isinstance(params, Mapping):
                return _bad(_lower_first("Object expected as reply parameters"))
            message_id = int(params.get("message_id", 0) or 0)
            allow_without = allow_without or bool(params.get("allow_sending_without_reply"))
        elif args.get("reply_to_message_id"):
            message_id = int(args["reply_to_message_id"])
        if message_id is None:
            return None
        if message_id not in self._sent.get(chat, set()):
            return None if allow_without else _bad("message to be replied not found")
        return message_id

    def _accept(
        self,
        request: Request,
        chat: str,
        args: dict[str, str],
        plain: str,
        entities: tuple[Entity, ...],
        reply_to: int | None,
        warnings: list[str],
    ) -> Answer:
        self._message_id += 1
        message_id = self._message_id
        self._sent.setdefault(chat, set()).add(message_id)
        mentions = [
            Mention("text_mention", str(e.user_id), "entities")
            for e in entities
            if e.type == "text_mention"
        ]
        mentions += _username_mentions(plain, entities)
        links = [e.url for e in entities if e.url] + _URL.findall(plain)
        payload: Any = request.json() if request.content_type == "application/json" else args
        self.accept(
            Message(
                platform=self.platform,
                text=plain,
                links=tuple(dict.fromkeys(links)),
                mentions=tuple(mentions),
                parts={
                    "entities": [e.to_json() for e in entities],
                    "parse_mode": args.get("parse_mode"),
                },
                payload=payload,
                meta={
                    "chat_id": chat,
                    "message_id": message_id,
                    "reply_to_message_id": reply_to,
                    "message_thread_id": args.get("message_thread_id"),
                    "link_preview_options": args.get("link_preview_options"),
                    "disable_web_page_preview": args.get("disable_web_page_preview"),
                },
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
        chat_type = self.chats[chat]
        chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
        result: dict[str, Any] = {
            "message_id": message_id,
            "from": self._bot(),
            "chat": {"id": chat_id, "type": chat_type},
            "date": 1_700_000_000 + message_id,
            "text": plain,
        }
        if entities:
            result["entities"] = [e.to_json() for e in entities]
        if reply_to is not None:
            result["reply_to_message"] = {"message_id": reply_to, "chat": result["chat"]}
        return Answer.json(200, {"ok": True, "result": result})
