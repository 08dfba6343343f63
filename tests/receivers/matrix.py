"""Matrix homeserver stand-in for the client-server API:
``PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}``.

What it enforces, with sources (matrix-org/matrix-spec):

- Access token as ``Authorization: Bearer`` (or ``?access_token=``):
  missing is ``401 M_MISSING_TOKEN``, unknown ``401 M_UNKNOWN_TOKEN``
  (client-server API, standard error response; Synapse adds
  ``"soft_logout": false``). A room the user has not joined: ``403
  M_FORBIDDEN``. A body that is not a JSON object: ``400 M_NOT_JSON``.
- Idempotency: "Clients should generate an ID unique across requests with the
  same access token; it will be used by the server to ensure idempotency of
  requests" (data/api/client-server/room_send.yaml). The same txnId with the
  same token gets the same ``event_id`` and is *not* a new message
  (``duplicates`` counts these); another token may reuse the txnId.
- Size: "The complete event MUST NOT be larger than 65536 bytes, when
  formatted with the federation event format, including any signatures, and
  encoded as Canonical JSON" (Room events, size limits); Synapse answers
  ``413 {"errcode": "M_TOO_LARGE", "error": "event too large"}``. The PDU is
  approximated here with realistic ids, 4 auth and 2 prev events, hashes and
  one signature around the content (about 700 bytes of overhead).
- Pace: ``429 {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests",
  "retry_after_ms": N}`` (definitions/errors/rate_limited.yaml) plus a
  ``Retry-After`` header in seconds. The limit is Synapse's default
  ``rc_message``: a burst of 10, then 0.2 messages per second per user.
- Mentions (definitions/m.mentions.yaml, push rules): ``m.mentions.user_ids``
  and ``m.mentions.room`` notify. Without ``m.mentions`` the legacy rules
  apply: ``@room`` in the body notifies the room (``.m.rule.roomnotif``) and
  a user id in the body notifies that user; both are recorded.
- ``formatted_body`` (``format: org.matrix.custom.html``): tags outside the
  spec's recommended set are listed in ``warnings`` (clients strip them);
  ``m.relates_to`` (threads, replies) is kept in ``meta``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from .base import Answer, Mention, Message, Receiver, Request, TokenBucket, ceil_seconds

__all__ = ["MatrixReceiver", "pdu_size"]

EVENT_MAX_BYTES = 65536  # the whole federation PDU, canonical JSON
RC_MESSAGE_BURST = 10  # Synapse default rc_message.burst_count
RC_MESSAGE_PER_SECOND = 0.2  # Synapse default rc_message.per_second
# The tags the spec recommends clients keep in formatted_body (others are stripped).
ALLOWED_TAGS = frozenset(
    {
        "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol",
        "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "strike", "code", "hr", "br",
        "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span", "img",
        "details", "summary", "mx-reply",
    }
)  # fmt: skip
_EVENT_ID = "$" + "A" * 43  # room v4+ event ids: "$" and 43 url-safe base64 characters
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_BARE_URL = re.compile(r"https?://[^\s<>\"']+")
_MXID = re.compile(r"@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(?::\d+)?")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def pdu_size(room_id: str, sender: str, event_type: str, content: Any) -> int:
    """Bytes of the event as a federation PDU in canonical JSON (estimated)."""
    server = sender.partition(":")[2] or "example.org"
    pdu = {
        "auth_events": [_EVENT_ID] * 4,  # create, power levels, join rules, membership
        "prev_events": [_EVENT_ID] * 2,
        "content": content,
        "depth": 2**31,
        "hashes": {"sha256": "A" * 43},
        "origin_server_ts": 1_700_000_000_000,
        "room_id": room_id,
        "sender": sender,
        "signatures": {server: {"ed25519:a_AbCd": "A" * 86}},
        "type": event_type,
        "unsigned": {"age_ts": 1_700_000_000_000},
    }
    return len(canonical_json(pdu))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _disallowed_tags(html: str) -> list[str]:
    parser = _Tags()
    parser.feed(html)
    return sorted({t for t in parser.tags if t not in ALLOWED_TAGS})


def _string(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key)
    return value if isinstance(value, str) else ""


def _mentions(content: Mapping[str, Any]) -> list[Mention]:
    declared = content.get("m.mentions")
    if isinstance(declared, Mapping):
        found = [Mention("user", str(u), "m.mentions") for u in declared.get("user_ids") or []]
        if declared.get("room") is True:
            found.append(Mention("room", "@room", "m.mentions"))
        return found
    body = _string(content, "body")
    found = [Mention("user", m, "body (legacy rule)") for m in _MXID.findall(body)]
    if "@room" in body:
        found.append(Mention("room", "@room", "body (legacy .m.rule.roomnotif)"))
    return found


class MatrixReceiver(Receiver):
    """Answers like a Synapse homeserver for the send endpoint."""

    platform: ClassVar[str] = "matrix"

    def __init__(
        self,
        *,
        tokens: Mapping[str, str] | None = None,
        rooms: Mapping[str, set[str]] | None = None,
        pace: TokenBucket | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tokens = dict(tokens or {"syt_newswatch_secret_token": "@newswatch:example.org"})
        self.rooms = {
            r: set(u)
            for r, u in (rooms or {"!newsroom:example.org": {"@newswatch:example.org"}}).items()
        }
        self.rule = (
            pace if pace is not None else TokenBucket(RC_MESSAGE_BURST, RC_MESSAGE_PER_SECOND)
        )
        self._txns: dict[
            tuple[str, str], tuple[str, bytes]
        ] = {}  # (token, txn) -> (event_id, body)
        self._duplicates = 0
        self._events = 0

    @property
    def homeserver(self) -> str:
        return self.base_url

    @property
    def duplicates(self) -> int:
        """Requests answered from the transaction cache (not new messages)."""
        with self._lock:
            return self._duplicates

    def send_url(self, room_id: str, txn_id: str, event_type: str = "m.room.message") -> str:
        return (
            f"{self.base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
            f"/send/{quote(event_type, safe='')}/{quote(txn_id, safe='')}"
        )

    def _reset_state(self) -> None:
        self.rule.clear()
        self._txns.clear()
        self._duplicates = 0

    @staticmethod
    def _error(status: int, errcode: str, error: str, **extra: Any) -> Answer:
        return Answer.json(status, {"errcode": errcode, "error": error, **extra})

    def rate_limited_answer(self, retry_after: float) -> Answer:
        ms = max(1, round(retry_after * 1000))
        answer = self._error(429, "M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=ms)
        return Answer(
            429, answer.body, {**answer.headers, "Retry-After": str(ceil_seconds(retry_after))}
        )

    def server_error_answer(self) -> Answer:
        return self._error(500, "M_UNKNOWN", "Internal server error")

    def handle(self, request: Request) -> Answer:
        raw = request.target.split("?", 1)[0].strip("/").split("/")
        parts = [unquote(p) for p in raw]
        if (
            len(parts) != 8
            or parts[:2] != ["_matrix", "client"]
            or parts[2] not in ("v3", "r0")
            or (parts[3], parts[5]) != ("rooms", "send")
        ):
            return self._error(404, "M_UNRECOGNIZED", "Unrecognized request")
        if request.method != "PUT":
            return self._error(405, "M_UNRECOGNIZED", "Unrecognized request")
        room_id, event_type, txn_id = parts[4], parts[6], parts[7]
        auth = request.headers.get("authorization", "")
        token = (
            auth.removeprefix("Bearer ").strip()
            if auth.startswith("Bearer ")
            else request.param("access_token")
        )
        if not token:
            return self._error(401, "M_MISSING_TOKEN", "Missing access token")
        user = self.tokens.get(token)
        if user is None:
            return self._error(
                401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False
            )
        cached = self._txns.get((token, txn_id))
        if cached is not None:  # idempotent retry: same answer, no new event
            self._duplicates += 1
            return Answer.json(200, {"event_id": cached[0]})
        try:
            content = request.json()
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "M_NOT_JSON", "Content not JSON.")
        if not isinstance(content, Mapping):
            return self._error(400, "M_NOT_JSON", "Content not JSON.")
        if user not in self.rooms.get(room_id, set()):
            return self._error(403, "M_FORBIDDEN", f"User {user} not in room {room_id}")
        wait = self.pace(self.rule, user)
        if wait is not None:
            return self.rate_limited_answer(wait)
        size = pdu_size(room_id, user, event_type, content)
        if size > EVENT_MAX_BYTES:
            return self._error(413, "M_TOO_LARGE", "event too large")
        self._events += 1
        digest = hashlib.sha256(f"event-{self._events}".encode()).digest()
        event_id = "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        self._txns[(token, txn_id)] = (event_id, request.body)
        self._record(room_id, user, event_type, txn_id, event_id, content, size)
        return Answer.json(200, {"event_id": event_id})

    def _record(
        self,
        room_id: str,
        user: str,
        event_type: str,
        txn_id: str,
        event_id: str,
        content: Mapping[str, Any],
        size: int,
    ) -> None:
        body = _string(content, "body")
        formatted = _string(content, "formatted_body")
        warnings = [
            f"formatted_body has <{t}>: clients strip it" for t in _disallowed_tags(formatted)
        ]
        if formatted and content.get("format") != "org.matrix.custom.html":
            warnings.append("formatted_body without format org.matrix.custom.html is ignored")
        links = _HREF.findall(formatted) + _BARE_URL.findall(body)
        self.accept(
            Message(
                platform=self.platform,
                text=body,
                links=tuple(dict.fromkeys(links)),
                mentions=tuple(_mentions(content)),
                parts={"msgtype": content.get("msgtype"), "formatted_body": formatted},
                payload=dict(content),
                meta={
                    "room_id": room_id,
                    "sender": user,
                    "event_type": event_type,
                    "txn_id": txn_id,
                    "event_id": event_id,
                    "relates_to": content.get("m.relates_to"),
                    "pdu_bytes": size,
                },
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
