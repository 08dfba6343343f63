"""Discord webhook stand-in: ``POST /api/webhooks/{id}/{token}[?wait=true]``.

Limits and answers, with their sources (discord/discord-api-docs):

- ``content`` up to 2,000 characters, up to 10 embeds; one of content,
  embeds (or a file/poll, not modelled) is required (resources/webhook.md,
  Execute Webhook). Embed title 256, description 4,096, up to 25 fields,
  field name 256 / value 1,024, footer text 2,048, author name 256, and
  6,000 for all of those across all embeds; "measured inclusively", leading
  and trailing whitespace trimmed; embeds with the same URL are deduplicated
  and only the first is shown (resources/message.md, Embed Limits).
- Errors: ``400 {"code": 50035, "errors": {...}, "message": "Invalid Form
  Body"}`` with ``BASE_TYPE_MAX_LENGTH`` "Must be 2000 or fewer in length."
  per field, ``MAX_EMBED_SIZE_EXCEEDED`` "Embed size exceeds maximum size of
  6000" at ``errors.embeds`` (NelsonDane/auto-rsa#451); ``400 {"code": 50006,
  "message": "Cannot send an empty message"}``; ``404 {"message": "Unknown
  Webhook", "code": 10015}`` (CortexPE/DiscordWebhookAPI#25); 401
  ``{"message": "Invalid Webhook Token", "code": 50027}`` for a known hook
  with a wrong token (50027 is "Invalid webhook token provided" in the
  JSON error codes; the HTTP status is from experience, not a document).
- Answer: 204, or 200 with the message object when ``wait=true``.
- Pace: 5 requests per 2 s per webhook, and 30 per minute per channel (not
  in the docs: Discord staff in discord-api-docs#367, what the
  ``X-RateLimit-*`` headers report, #6753). 429 with
  ``{"message": "You are being rate limited.", "retry_after": <float s>,
  "global": false}``, ``Retry-After`` and ``X-RateLimit-*`` headers
  (topics/rate-limits.md). Every answer carries the ``X-RateLimit-*`` headers.
- Mentions: only ``content`` pings; ``allowed_mentions`` decides what
  (resources/message.md, Allowed Mentions): absent, users, roles and
  ``@everyone``/``@here`` all ping; ``{"parse": []}`` pings nobody; ``parse``
  with "users"/"roles" and an explicit id list together is a 400. Mentions
  in embeds render but do not ping: they go to ``parts["embed_mentions"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .base import Answer, Mention, Message, Receiver, Request, SlidingWindow, ceil_seconds

__all__ = ["DiscordWebhookReceiver"]

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
FIELDS_MAX = 25
USERNAME_MAX = 80
EMBED_TEXT_LIMITS = {  # embed path -> characters
    ("title",): 256,
    ("description",): 4096,
    ("footer", "text"): 2048,
    ("author", "name"): 256,
}
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
RATE_BUCKET = "webhook-execute"  # what X-RateLimit-Bucket says

_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(everyone|here)\b")
_MD_LINK = re.compile(r"\[[^\]]*\]\((https?://[^)\s]+)\)")
_BARE_URL = re.compile(r"(?<!\()https?://[^\s<>()\[\]]+")


class _FormErrors:
    """Discord's nested ``errors`` object: path -> list of {code, message}."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def too_long(self, path: tuple[str | int, ...], limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def __bool__(self) -> bool:
        return bool(self.tree)


def _strlen(value: Any) -> int:
    return len(value.strip()) if isinstance(value, str) else 0


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _check(payload: Mapping[str, Any], errors: _FormErrors) -> None:
    content = payload.get("content")
    if isinstance(content, str) and _strlen(content) > CONTENT_MAX:
        errors.too_long(("content",), CONTENT_MAX)
    username = payload.get("username")
    if isinstance(username, str):
        if not 1 <= _strlen(username) <= USERNAME_MAX:
            errors.add(("username",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.")
        for word in ("discord", "clyde"):
            if word in username.lower():
                errors.add(
                    ("username",), "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{word}"'
                )
    embeds = payload.get("embeds") or []
    if not isinstance(embeds, list):
        errors.add(("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    if len(embeds) > EMBEDS_MAX:
        errors.too_long(("embeds",), EMBEDS_MAX)
    total = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, Mapping):
            errors.add(("embeds", i), "DICT_TYPE_CONVERT", "Only dictionaries may be used")
            continue
        for path, limit in EMBED_TEXT_LIMITS.items():
            length = _strlen(_dig(embed, path))
            total += length
            if length > limit:
                errors.too_long(("embeds", i, *path), limit)
        fields = embed.get("fields") or []
        if len(fields) > FIELDS_MAX:
            errors.too_long(("embeds", i, "fields"), FIELDS_MAX)
        for j, fld in enumerate(fields):
            for key, limit in (("name", FIELD_NAME_MAX), ("value", FIELD_VALUE_MAX)):
                value = fld.get(key) if isinstance(fld, Mapping) else None
                if not isinstance(value, str) or not value.strip():
                    errors.add(
                        ("embeds", i, "fields", j, key),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    )
                    continue
                total += _strlen(value)
                if _strlen(value) > limit:
                    errors.too_long(("embeds", i, "fields", j, key), limit)
    if total > EMBED_TOTAL_MAX:
        errors.add(
            ("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    allowed = payload.get("allowed_mentions")
    if isinstance(allowed, Mapping):
        parse = allowed.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and allowed.get(kind):
                errors.add(
                    ("allowed_mentions",),
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )


def _pings(content: str, allowed: Any) -> list[Mention]:
    """The mentions in ``content`` that notify, under ``allowed_mentions``."""
    if isinstance(allowed, Mapping):
        parse = set(allowed.get("parse") or [])
        users = {str(u) for u in allowed.get("users") or []}
        roles = {str(r) for r in allowed.get("roles") or []}
    else:  # no allowed_mentions: everything in the content is parsed
        parse, users, roles = {"users", "roles", "everyone"}, set(), set()
    found: list[Mention] = []
    if "everyone" in parse:
        found += [Mention(m.group(1), m.group(1), "content") for m in _EVERYONE.finditer(content)]
    for m in _USER.finditer(content):
        if "users" in parse or m.group(1) in users:
            found.append(Mention("user", m.group(1), "content"))
    for m in _ROLE.finditer(content):
        if "roles" in parse or m.group(1) in roles:
            found.append(Mention("role", m.group(1), "content"))
    return found


def _rendered_mentions(text: str, where: str) -> list[Mention]:
    return [
        *(Mention(m.group(1), m.group(1), where) for m in _EVERYONE.finditer(text)),
        *(Mention("user", m.group(1), where) for m in _USER.finditer(text)),
        *(Mention("role", m.group(1), where) for m in _ROLE.finditer(text)),
    ]


class DiscordWebhookReceiver(Receiver):
    """Answers like discord.com/api/webhooks."""

    platform: ClassVar[str] = "discord"

    def __init__(
        self,
        *,
        webhook_id: str = "1100000000000000001",
        token: str = "secret-webhook-token-xyz",
        pace: SlidingWindow | None = None,
        channel_pace: SlidingWindow | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.webhook_id, self.token = webhook_id, token
        self.rule = pace if pace is not None else SlidingWindow(5, 2.0)
        self.channel_rule = channel_pace if channel_pace is not None else SlidingWindow(30, 60.0)
        self._next_id = 1200000000000000000

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/webhooks/{self.webhook_id}/{self.token}"

    def _reset_state(self) -> None:
        self.rule.clear()
        self.channel_rule.clear()

    def _rate_headers(self) -> dict[str, str]:
        now = self.clock()
        remaining = self.rule.remaining(self.webhook_id, now)
        return {
            "X-RateLimit-Limit": str(self.rule.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": f"{self.rule.per:.3f}",
            "X-RateLimit-Bucket": RATE_BUCKET,
        }

    def rate_limited_answer(self, retry_after: float) -> Answer:
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3)}
        headers = {
            **self._rate_headers(),
            "Retry-After": str(ceil_seconds(retry_after)),
            "X-RateLimit-Scope": "user",
        }
        return Answer.json(429, {**body, "global": False}, headers)

    def server_error_answer(self) -> Answer:
        return Answer.json(500, {"message": "500: Internal Server Error", "code": 0})

    def handle(self, request: Request) -> Answer:
        parts = request.path.strip("/").split("/")
        if parts[:2] == ["api", "v10"]:
            parts = ["api", *parts[2:]]
        if request.method != "POST" or len(parts) != 4 or parts[:2] != ["api", "webhooks"]:
            return Answer.json(404, {"message": "404: Not Found", "code": 0})
        if parts[2] != self.webhook_id:
            return Answer.json(404, {"message": "Unknown Webhook", "code": 10015})
        if parts[3] != self.token:
            return Answer.json(401, {"message": "Invalid Webhook Token", "code": 50027})
        wait = self.pace(self.rule, self.webhook_id)
        if wait is None:
            wait = self.pace(self.channel_rule, self.webhook_id)
        if wait is not None:
            return self.rate_limited_answer(wait)
        headers = self._rate_headers()
        try:
            payload = request.json()
        except (ValueError, UnicodeDecodeError):
            return Answer.json(
                400, {"message": "The request body contains invalid JSON.", "code": 50109}, headers
            )
        if not isinstance(payload, Mapping):
            return Answer.json(
                400, {"message": "The request body contains invalid JSON.", "code": 50109}, headers
            )
        content = payload.get("content") if isinstance(payload.get("content"), str) else ""
        if not (content or "").strip() and not payload.get("embeds"):
            return Answer.json(
                400, {"message": "Cannot send an empty message", "code": 50006}, headers
            )
        errors = _FormErrors()
        _check(payload, errors)
        if errors:
            body = {"message": "Invalid Form Body", "code": 50035, "errors": errors.tree}
            return Answer.json(400, body, headers)
        return self._accept(request, payload, content or "", headers)

    def _accept(
        self, request: Request, payload: Mapping[str, Any], content: str, headers: dict[str, str]
    ) -> Answer:
        texts = [content] if content.strip() else []
        links = [*_MD_LINK.findall(content), *_BARE_URL.findall(content)]
        embed_mentions: list[Mention] = []
        warnings: list[str] = []
        shown_urls: set[str] = set()
        for i, embed in enumerate(payload.get("embeds") or []):
            url = embed.get("url")
            if isinstance(url, str) and url:
                if url in shown_urls:  # Discord shows only the first embed per URL
                    warnings.append(f"embed {i} hidden: same url as an earlier embed")
                    continue
                shown_urls.add(url)
                links.append(url)
            pieces = [_dig(embed, ("author", "name")), embed.get("title"), embed.get("description")]
            for fld in embed.get("fields") or []:
                pieces += [fld.get("name"), fld.get("value")]
            pieces.append(_dig(embed, ("footer", "text")))
            for piece in pieces:
                if isinstance(piece, str) and piece.strip():
                    texts.append(piece.strip())
                    links += _MD_LINK.findall(piece)
                    embed_mentions += _rendered_mentions(piece, f"embeds/{i}")
            author_url = _dig(embed, ("author", "url"))
            if isinstance(author_url, str):
                links.append(author_url)
        pings = _pings(content, payload.get("allowed_mentions"))
        self._next_id += 1
        message_id = str(self._next_id)
        thread_id = request.param("thread_id")
        self.accept(
            Message(
                platform=self.platform,
                text="\n".join(texts),
                links=tuple(dict.fromkeys(links)),
                mentions=tuple(pings),
                parts={"embeds": payload.get("embeds") or [], "embed_mentions": embed_mentions},
                payload=payload,
                meta={"id": message_id, "thread_id": thread_id},
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
        if (request.param("wait") or "").lower() not in ("true", "1"):
            return Answer(204, b"", headers)
        message = {
            "id": message_id,
            "type": 0,
            "content": content,
            "channel_id": thread_id or "1100000000000000002",
            "author": {
                "id": self.webhook_id,
                "username": payload.get("username") or "newswatch",
                "bot": True,
            },
            "embeds": payload.get("embeds") or [],
            "mentions": [{"id": m.target} for m in pings if m.kind == "user"],
            "mention_roles": [m.target for m in pings if m.kind == "role"],
            "mention_everyone": any(m.kind in ("everyone", "here") for m in pings),
            "webhook_id": self.webhook_id,
            "flags": payload.get("flags", 0),
        }
        return Answer(
            200, json.dumps(message).encode(), {"Content-Type": "application/json", **headers}
        )
