"""Matrix channel: ``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}``.

Each part is one event: ``msgtype`` (``m.notice`` by default, what bots
send), a plain ``body`` (the text templates) and ``formatted_body`` in
``org.matrix.custom.html`` (the matrix templates, the spec's tag set), and
``"m.mentions": {}``: with intentional mentions declared, servers and
clients ignore "@room" and user ids in the body (MSC3952, spec 1.7), so a
headline notifies nobody.

The transaction id is ``notification.part_key(k)``, the same on every
retry of that part: the homeserver answers a repeated transaction id (per
access token) with the first event's id and posts nothing, so a part sent
twice across a crash shows once.

Limit: the whole event "MUST NOT be larger than 65536 bytes" as federation
canonical JSON (spec, Room Events, "Size limits"). The content is held
under 60,000 bytes of JSON, leaving the rest for the envelope (event ids,
hashes, signatures, room id and sender: about 1 KB with long server
names). A long notification is split into numbered parts.

Answers: 200 ``{"event_id": ...}`` delivered; 429 ``M_LIMIT_EXCEEDED`` with
``retry_after_ms`` (or a ``Retry-After`` header) later; 5xx later; 401
``M_UNKNOWN_TOKEN``/``M_MISSING_TOKEN``, 403 ``M_FORBIDDEN`` (not in the
room), 413 ``M_TOO_LARGE``, 400 ``M_NOT_JSON`` permanent.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from newswatch.config.models import MatrixChannelConfig
from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url
from newswatch.notify.render import Blocks, RenderContext, pack

EVENT_MAX = 65536  # bytes of the whole event (PDU), canonical JSON
CONTENT_BUDGET = 60_000  # bytes of the content's JSON, EVENT_MAX less the envelope
HTML_FORMAT = "org.matrix.custom.html"
_TEXT_JOIN = "\n\n"
_HTML_JOIN = "\n"


def json_bytes(text: str) -> int:
    """Bytes ``text`` takes as a JSON string value (quotes excluded)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def contents(
    notification: Notification, rc: RenderContext, *, msgtype: str = "m.notice"
) -> list[dict[str, Any]]:
    """The event contents of ``notification``, each within ``CONTENT_BUDGET``;
    body and formatted_body are split at the same stories."""
    text = Blocks(notification, "text", rc)
    markup = Blocks(notification, "matrix", rc)
    joins = json_bytes(_TEXT_JOIN) + json_bytes(_HTML_JOIN)
    probe = [b.part_text(p, 99, 99) for b in (text, markup) for p in ("header", "footer")]
    frame = len(json.dumps(_content(msgtype, "", ""), ensure_ascii=False).encode())
    overhead = frame + sum(json_bytes(p) for p in probe) + 2 * joins
    room = CONTENT_BUDGET - overhead
    bodies, htmls = list(text.items), list(markup.items)
    for i in range(len(bodies)):
        if json_bytes(bodies[i]) + json_bytes(htmls[i]) + joins > room:
            bodies[i] = text.short(i, room // 2, json_bytes)
            htmls[i] = markup.short(i, room // 2, json_bytes)
    sizes = [json_bytes(t) + json_bytes(h) + joins for t, h in zip(bodies, htmls, strict=True)]
    ranges = pack(sizes, limit=CONTENT_BUDGET, overhead=overhead)
    out = []
    for number, span in enumerate(ranges, start=1):
        parts = len(ranges)
        body = _join(text, number, parts, [bodies[i] for i in span], _TEXT_JOIN)
        formatted = _join(markup, number, parts, [htmls[i] for i in span], _HTML_JOIN)
        out.append(_content(msgtype, body, formatted))
    return out


def _join(b: Blocks, part: int, parts: int, items: list[str], join: str) -> str:
    pieces = [b.part_text("header", part, parts), *items, b.part_text("footer", part, parts)]
    return join.join(p.strip("\n") for p in pieces if p.strip())


def _content(msgtype: str, body: str, formatted: str) -> dict[str, Any]:
    return {
        "msgtype": msgtype,
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
        "m.mentions": {},
    }


class MatrixChannel(HttpChannel):
    kind = "matrix"

    def __init__(self, name: str, cfg: MatrixChannelConfig, ctx: ChannelContext) -> None:
        token = cfg.access_token.get_secret_value()
        homeserver = cfg.homeserver.rstrip("/")
        super().__init__(
            name,
            http=ctx.http,
            target=f"room {cfg.room_id} on {mask_url(homeserver)}",
            secrets=[token],
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        room = quote(cfg.room_id, safe="")
        self._base = f"{homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._msgtype = cfg.msgtype

    @classmethod
    def from_config(cls, name: str, cfg: MatrixChannelConfig, ctx: ChannelContext) -> MatrixChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        return [
            HttpRequest(
                url=self._base + quote(notification.part_key(k), safe=""),
                json=content,
                headers=self._headers,
                method="PUT",
            )
            for k, content in enumerate(contents(notification, self._render, msgtype=self._msgtype))
        ]

    def classify(self, response: httpx.Response) -> DeliveryResult:
        result = super().classify(response)
        if response.status_code != 429:
            return result
        try:
            ms = response.json().get("retry_after_ms")
        except (ValueError, AttributeError):
            return result
        if isinstance(ms, int | float) and ms >= 0:
            return DeliveryResult.retry(
                result.error or "rate limited", ms / 1000, answer=result.answer
            )
        return result
