"""Microsoft Teams channel: a Workflows webhook ("Post to a channel when a
webhook request is received") carrying one Adaptive Card per part.

The card is TextBlocks: a heading, one block per story (Teams' Markdown
subset: bold, italic, ``[title](url)`` links; feed text escaped, so a
headline cannot open a link or an ``<at>`` mention, which in any case
notifies only with a matching ``msteams.entities`` entry, never sent).

Limit: Teams refuses a card whose "message properties" exceed 28,672 bytes
(``MessageSizeExceeded``, msteams-docs#11274; "approximately 28 KB" in the
connector docs), measured on more than the body: that issue's 24,453-byte
request counted 28,897. The card serialised as a JSON *string* (quotes
escaped again) matches that growth, so that is what is measured here, and
each card is held under 20,000 bytes of it, below the ~21,000 where real
failures were reported. A long notification is split into numbered cards.

Answers: the trigger answers ``202 Accepted`` before the flow runs (a card
the flow refuses later is not seen by the sender, which is why the limits
are kept here, not discovered); 429 with ``Retry-After`` and 5xx later;
400 (body not JSON), 401 (bad signature), 404 (no such workflow) permanent.
"""

from __future__ import annotations

import json
from typing import Any

from newswatch.config.models import TeamsChannelConfig
from newswatch.model import Notification
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url, url_secrets
from newswatch.notify.render import Blocks, RenderContext, pack

MESSAGE_PROPERTIES_MAX = 28_672  # what Teams refuses beyond
CARD_BUDGET = 20_000  # what we send at most, as measured by ``card_size``
CARD_VERSION = "1.4"  # Teams renders up to 1.5; 1.4 reaches older clients too
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def _escaped_len(obj: Any) -> int:
    compact = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return len(json.dumps(compact, ensure_ascii=False).encode()) - 2


def card_size(card: Any) -> int:
    """The card as Teams measures it (estimated): its JSON as a JSON string."""
    return _escaped_len(card) + 2


def _paragraphs(text: str) -> str:
    # A TextBlock breaks lines only at a blank line.
    return "\n\n".join(line.strip() for line in text.splitlines() if line.strip())


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _paragraphs(text), "wrap": True, **style}


_HEADING = {"weight": "Bolder", "size": "Medium"}
_STORY = {"separator": True, "spacing": "Medium"}
_FOOTER = {"isSubtle": True, "size": "Small", "spacing": "Medium"}


def _card(body: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }


def cards(notification: Notification, rc: RenderContext) -> list[dict[str, Any]]:
    """The Adaptive Cards of ``notification``, each within ``CARD_BUDGET``."""
    b = Blocks(notification, "teams", rc)
    probe = [
        _block(b.part_text("header", 99, 99), **_HEADING),
        _block(b.part_text("footer", 99, 99), **_FOOTER),
    ]
    overhead = card_size(_card(probe))
    room = CARD_BUDGET - overhead
    blocks = []
    for i, text in enumerate(b.items):
        block = _block(text, **_STORY)
        # +1: the comma between two elements of the body.
        if _escaped_len(block) + 1 > room:
            block = _block(b.short(i, room // 2), **_STORY)
        blocks.append(block)
    ranges = pack([_escaped_len(x) + 1 for x in blocks], limit=CARD_BUDGET, overhead=overhead)
    out = []
    for number, span in enumerate(ranges, start=1):
        body = []
        heading = b.part_text("header", number, len(ranges))
        if heading.strip():
            body.append(_block(heading, **_HEADING))
        body.extend(blocks[i] for i in span)
        footer = b.part_text("footer", number, len(ranges))
        if footer.strip():
            body.append(_block(footer, **_FOOTER))
        out.append(_card(body))
    return out


class TeamsChannel(HttpChannel):
    kind = "teams"

    def __init__(self, name: str, cfg: TeamsChannelConfig, ctx: ChannelContext) -> None:
        url = cfg.webhook.get_secret_value()
        super().__init__(
            name,
            http=ctx.http,
            target=mask_url(url),
            secrets=url_secrets(url),
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        self._url = url

    @classmethod
    def from_config(cls, name: str, cfg: TeamsChannelConfig, ctx: ChannelContext) -> TeamsChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        return [
            HttpRequest(
                url=self._url,
                json={
                    "type": "message",
                    "attachments": [
                        {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
                    ],
                },
            )
            for card in cards(notification, self._render)
        ]
