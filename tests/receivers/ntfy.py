"""ntfy server stand-in: ``POST|PUT /<topic>`` (body = message, options in
headers or query) and ``POST /`` with a JSON message.

Behaviour ported from binwiederhier/ntfy (server/server.go, errors.go,
util.go; July 2025) and its docs (docs/publish.md, "Limitations"):

- Message: up to 4,096 bytes (``DefaultMessageSizeLimit``). A longer or
  non-UTF-8 body "is treated as an attachment": the server stores the body
  as ``attachment.txt`` and the notification reads "You received a file:
  attachment.txt". This receiver does the same (``attachments=True``, as on
  ntfy.sh): the message is accepted but its text is gone, so it carries a
  warning and its article text is not visible to ``items_seen``. With
  ``attachments=False`` (a server without an attachment cache) it answers
  ``400 {"code":40014,...,"error":"invalid request: attachments not
  allowed"}``. The body is trimmed; an empty one becomes "triggered".
- JSON publish: the body may be twice the message limit (8,192 bytes), else
  ``413 41303 "JSON body too large"``; invalid JSON is ``400 40024``, a bad
  topic ``400 40009``.
- Options: ``X-Title``/``Title``/``t``, ``X-Click``/``Click``,
  ``X-Tags``/``Tags``/``ta``, ``X-Priority``/``Priority``/``p`` (1-5 or
  min/low/default/high/max/urgent, else ``400 40007``),
  ``X-Markdown``/``Markdown``/``md``. Header values may be RFC 2047 encoded
  words (``=?UTF-8?B?...?=``) or raw UTF-8; query parameters work too.
- Auth (``token=`` set: the topic is protected): a wrong token is ``401
  {"code":40101,"http":401,"error":"unauthorized",...}``; no token ``403
  40301 "forbidden"``.
- Pace: 60 requests at once, then one per 5 s per visitor
  (``DefaultVisitorRequestLimitBurst/Replenish``), ``429
  {"code":42901,"http":429,"error":"limit reached: too many requests",...}``
  with no ``Retry-After`` header. ``daily_messages=250`` adds ntfy.sh's
  daily quota (``42908``).
- Answer: ``200`` and the message JSON (id, time, expires, event "message",
  topic, title, message, priority, tags, click, content_type, attachment).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from email.header import decode_header, make_header
from typing import Any, ClassVar

from .base import Answer, Message, Receiver, Request, TokenBucket

__all__ = ["NtfyReceiver"]

MESSAGE_SIZE_LIMIT = 4096  # bytes
JSON_BODY_LIMIT = 2 * MESSAGE_SIZE_LIMIT  # "2x to account for JSON format overhead"
REQUEST_BURST = 60
REQUEST_REPLENISH_SECONDS = 5.0
EMPTY_MESSAGE = "triggered"
ATTACHMENT_MESSAGE = "You received a file: {}"
MESSAGE_EXPIRY_SECONDS = 12 * 3600  # ntfy's default cache duration
LIMITS_LINK = "https://ntfy.sh/docs/publish/#limitations"
_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")
_PRIORITIES = {
    "": 0, "1": 1, "min": 1, "2": 2, "low": 2, "3": 3, "default": 3,
    "4": 4, "high": 4, "5": 5, "max": 5, "urgent": 5,
}  # fmt: skip
_MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_BARE_URL = re.compile(r"(?<!\()https?://[^\s<>()\[\]]+")

_ERRORS: dict[str, tuple[int, int, str, str]] = {  # name -> (code, http, error, link)
    "bad_json": (40024, 400, "invalid request: request body must be valid JSON", ""),
    "topic": (40009, 400, "invalid request: topic invalid", ""),
    "priority": (40007, 400, "invalid priority parameter", "https://ntfy.sh/docs/publish/#message-priority"),
    "not_utf8": (40011, 400, "invalid request: message must be UTF-8 encoded", ""),
    "no_attachments": (40014, 400, "invalid request: attachments not allowed", "https://ntfy.sh/docs/config/#attachments"),
    "unauthorized": (40101, 401, "unauthorized", "https://ntfy.sh/docs/publish/#authentication"),
    "forbidden": (40301, 403, "forbidden", "https://ntfy.sh/docs/publish/#authentication"),
    "not_found": (40401, 404, "page not found", ""),
    "json_too_large": (41303, 413, "JSON body too large", ""),
    "requests": (42901, 429, "limit reached: too many requests", LIMITS_LINK),
    "daily": (42908, 429, "limit reached: daily message quota reached", LIMITS_LINK),
    "internal": (50001, 500, "internal server error", ""),
}  # fmt: skip


def _error(name: str) -> Answer:
    code, http, error, link = _ERRORS[name]
    body: dict[str, Any] = {"code": code, "http": http, "error": error}
    if link:
        body["link"] = link
    return Answer(http, (json.dumps(body) + "\n").encode(), {"Content-Type": "application/json"})


def _header_text(raw: str) -> str:
    """A header value as ntfy reads it: raw UTF-8 or RFC 2047 encoded words."""
    try:
        value = raw.encode("latin-1").decode("utf-8")  # http.server decodes as latin-1
    except (UnicodeEncodeError, UnicodeDecodeError):
        value = raw
    if "=?" in value:
        with contextlib.suppress(ValueError, LookupError):  # not encoded words after all
            value = str(make_header(decode_header(value)))
    return value.strip()


class _Params:
    """ntfy's readParam: headers first (any of the names), then the query."""

    def __init__(self, request: Request, overrides: Mapping[str, str]) -> None:
        self.headers = request.headers
        self.query = request.query
        self.overrides = overrides  # from a JSON publish

    def get(self, *names: str) -> str:
        for name in names:
            value = self.overrides.get(name.lower()) or _header_text(
                self.headers.get(name.lower(), "")
            )
            if value:
                return value
        for name in names:
            values = self.query.get(name.lower())
            if values and values[0].strip():
                return values[0].strip()
        return ""

    def flag(self, *names: str) -> bool:
        return self.get(*names).lower() in ("1", "yes", "true")


class NtfyReceiver(Receiver):
    """Answers like an ntfy server (ntfy.sh defaults)."""

    platform: ClassVar[str] = "ntfy"

    def __init__(
        self,
        *,
        token: str | None = None,
        attachments: bool = True,
        daily_messages: int | None = None,
        pace: TokenBucket | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token = token  # None: every topic is open
        self.attachments = attachments
        self.daily_messages = daily_messages
        self.rule = (
            pace if pace is not None else TokenBucket(REQUEST_BURST, 1 / REQUEST_REPLENISH_SECONDS)
        )
        self._published = 0
        self._next_id = 0

    def topic_url(self, topic: str) -> str:
        return f"{self.base_url}/{topic}"

    def _reset_state(self) -> None:
        self.rule.clear()
        self._published = 0

    def rate_limited_answer(self, retry_after: float) -> Answer:
        return _error("requests")  # ntfy says no more than this: no Retry-After

    def server_error_answer(self) -> Answer:
        return _error("internal")

    def handle(self, request: Request) -> Answer:
        auth = request.headers.get("authorization", "")
        authenticated = False
        if auth and self.token is not None:
            if auth.removeprefix("Bearer ").strip() != self.token:
                return _error("unauthorized")
            authenticated = True
        if request.method not in ("POST", "PUT"):
            return _error("not_found")
        overrides: dict[str, str] = {}
        if request.path == "/":
            parsed = self._from_json(request)
            if isinstance(parsed, Answer):
                return parsed
            topic, body, overrides = parsed
        else:
            topic, body = request.path.strip("/"), request.body
            if not _TOPIC.match(topic):
                return _error("not_found")
        if self.pace(self.rule, "visitor") is not None:
            return self.rate_limited_answer(0)
        if self.token is not None and not authenticated:
            return _error("forbidden")
        if self.daily_messages is not None and self._published >= self.daily_messages:
            return _error("daily")
        return self._publish(request, topic, body, _Params(request, overrides))

    def _from_json(self, request: Request) -> tuple[str, bytes, dict[str, str]] | Answer:
        if len(request.body) > JSON_BODY_LIMIT:
            return _error("json_too_large")
        try:
            obj = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return _error("bad_json")
        if not isinstance(obj, Mapping):
            return _error("bad_json")
        topic = obj.get("topic")
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            return _error("topic")
        fields = {
            "x-title": obj.get("title"),
            "x-click": obj.get("click"),
            "x-icon": obj.get("icon"),
            "x-priority": obj.get("priority") or None,
            "x-tags": ",".join(obj.get("tags") or []) or None,
            "x-markdown": "yes" if obj.get("markdown") else None,
            "x-actions": json.dumps(obj["actions"]) if obj.get("actions") else None,
            "x-attach": obj.get("attach"),
        }
        overrides = {k: str(v) for k, v in fields.items() if v not in (None, "")}
        message = obj.get("message") or EMPTY_MESSAGE
        return topic, str(message).encode("utf-8"), overrides

    def _publish(self, request: Request, topic: str, body: bytes, params: _Params) -> Answer:
        priority_raw = params.get("x-priority", "priority", "prio", "p").lower()
        if priority_raw not in _PRIORITIES:
            return _error("priority")
        warnings: list[str] = []
        attachment: dict[str, Any] | None = None
        try:
            text = body.decode("utf-8")
            too_big = len(body) > MESSAGE_SIZE_LIMIT
        except UnicodeDecodeError:
            text, too_big = "", True
        if too_big:
            if not self.attachments:
                return _error("no_attachments")
            self._next_id += 1
            attachment = {
                "name": "attachment.txt",
                "type": "text/plain; charset=utf-8",
                "size": len(body),
                "url": f"{self.base_url}/file/att{self._next_id}.txt",
            }
            text = ATTACHMENT_MESSAGE.format("attachment.txt")
            warnings.append(
                f"message of {len(body)} bytes became an attachment; its text is not shown"
            )
        text = text.strip() or EMPTY_MESSAGE
        title = params.get("x-title", "title", "t")
        click = params.get("x-click", "click")
        tags = [
            t.strip() for t in params.get("x-tags", "tags", "tag", "ta").split(",") if t.strip()
        ]
        markdown = params.flag("x-markdown", "markdown", "md") or (
            params.get("content-type", "content_type").lower() == "text/markdown"
        )
        links = [u for u in (click, params.get("x-attach", "attach", "a")) if u]
        links += _BARE_URL.findall(text) + (_MD_LINK.findall(text) if markdown else [])
        actions = params.get("x-actions", "actions")
        if actions.startswith("["):
            urls = [a.get("url") for a in json.loads(actions) if isinstance(a, Mapping)]
            links += [u for u in urls if isinstance(u, str) and u]
        self._published += 1
        self._next_id += 1
        message_id = f"msg{self._next_id:09d}"
        now = 1_700_000_000 + self._next_id
        out: dict[str, Any] = {
            "id": message_id,
            "time": now,
            "expires": now + MESSAGE_EXPIRY_SECONDS,
            "event": "message",
            "topic": topic,
            "message": text,
        }
        for key, value in (
            ("title", title),
            ("priority", _PRIORITIES[priority_raw]),
            ("tags", tags),
            ("click", click),
            ("content_type", "text/markdown" if markdown else ""),
            ("attachment", attachment),
        ):
            if value:
                out[key] = value
        visible = f"{title}\n{text}" if title else text
        self.accept(
            Message(
                platform=self.platform,
                text=visible,
                links=tuple(dict.fromkeys(links)),
                parts={"title": title, "message": text, "tags": tags, "attachment": attachment},
                payload=body.decode("utf-8", "replace"),
                meta={
                    "id": message_id,
                    "topic": topic,
                    "priority": out.get("priority", 3),
                    "markdown": markdown,
                },
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
        return Answer(
            200,
            (json.dumps(out, ensure_ascii=False) + "\n").encode(),
            {"Content-Type": "application/json"},
        )
