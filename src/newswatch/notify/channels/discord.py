"""Discord channel: an Execute Webhook POST with embeds, ``?wait=true`` so
the answer says the message exists.

Each story is an embed: the headline as its title, linked; the highlighted
snippet (and, for a lone alert, the summary) as its description; fields for
the rules and the other outlets; the source and time in its footer. The
message's ``content`` carries the notification's heading and part number.

Limits (discord-api-docs, "Embed Limits" and "Execute Webhook"): content
2,000 characters; 10 embeds a message; embed title 256, description 4,096,
field name 256 and value 1,024, footer 2,048; 6,000 for all embeds' text
together. Each embed is capped below 6,000 by construction, so packing
embeds into messages by their sizes always works.

Nothing pings: ``allowed_mentions: {"parse": []}`` on every message, and
Markdown is escaped, with a zero-width space after the "@" of @everyone and
@here, so a headline reads as written.

Answers: 200 (with ``wait=true``) or 204 delivered; 429 ``{"retry_after":
1.234, "global": false}`` (float seconds, more precise than the
``Retry-After`` header) later; 5xx later; 400 (50035 invalid form body),
401 (50027 invalid token), 403, 404 (10015 unknown webhook) permanent.
"""

from __future__ import annotations

from typing import Any

import httpx

from newswatch.config.models import DiscordChannelConfig
from newswatch.model import DeliveryResult, Notification, NotificationKind
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import pacer_for
from newswatch.notify.redact import mask_url, url_secrets
from newswatch.notify.render import Blocks, RenderContext, headline, pack, subject_line
from newswatch.notify.templates import MARKUPS
from newswatch.notify.text import fit, one_line, safe_href, when

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_VALUE_MAX = 1024
# Our own caps, so that one embed never exceeds 6,000 on its own:
# 256 + 3,500 + 512 + 1,024 + 256 + field names < 6,000.
DESCRIPTION_CAP = 3500
RULES_CAP = 512
FOOTER_CAP = 256
# A list embed's description, and one line of it: several list embeds fit
# in the 6,000 characters of one message (with the message's own text).
LIST_CAP = 1900
LINE_CAP = 600
# Discord refuses an embed url longer than this ("Must be 2048 or fewer").
URL_MAX = 2048

_ESCAPE = MARKUPS["markdown"]


def _chars(value: str) -> int:
    """Characters as Discord counts them toward its limits (trimmed)."""
    return len(value.strip())


def embed_size(embed: dict[str, Any]) -> int:
    """An embed's share of the 6,000 characters: title, description,
    fields' names and values, footer and author texts."""
    size = _chars(embed.get("title", "")) + _chars(embed.get("description", ""))
    size += sum(_chars(f["name"]) + _chars(f["value"]) for f in embed.get("fields", []))
    size += _chars(embed.get("footer", {}).get("text", ""))
    return size + _chars(embed.get("author", {}).get("name", ""))


class DiscordChannel(HttpChannel):
    kind = "discord"

    def __init__(self, name: str, cfg: DiscordChannelConfig, ctx: ChannelContext) -> None:
        webhook = cfg.webhook.get_secret_value()
        super().__init__(
            name,
            http=ctx.http,
            target=mask_url(webhook),
            secrets=url_secrets(webhook),
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        params: dict[str, str] = {"wait": "true"}
        if cfg.thread_id:
            params["thread_id"] = cfg.thread_id
        self._url = str(httpx.URL(webhook).copy_merge_params(params))
        self._username = cfg.username

    @classmethod
    def from_config(
        cls, name: str, cfg: DiscordChannelConfig, ctx: ChannelContext
    ) -> DiscordChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        extra = {"username": self._username} if self._username else {}
        return [
            HttpRequest(url=self._url, json={**payload, **extra})
            for payload in payloads(notification, self._render)
        ]

    def classify(self, response: httpx.Response) -> DeliveryResult:
        result = super().classify(response)
        if response.status_code == 429:
            # The body's retry_after is a float in seconds; the header rounds up.
            try:
                seconds = float(response.json()["retry_after"])
            except (ValueError, KeyError, TypeError):
                return result
            if seconds >= 0:
                error = result.error or "rate limited"
                return DeliveryResult.retry(error, seconds, answer=result.answer)
        return result


def payloads(notification: Notification, rc: RenderContext) -> list[dict[str, Any]]:
    """The messages of ``notification``: embeds packed ten at most and
    6,000 characters at most to a message, in order.

    A group or digest of more stories than one message holds as embeds
    lists them instead, one line each, many to an embed: a burst of 1,000
    stories is then ~30 messages rather than 100, at Discord's 5 per 2 s.
    """
    b = Blocks(notification, "discord", rc)
    if len(b.items) > EMBEDS_MAX and notification.kind is not NotificationKind.ALERT:
        embeds = _list_embeds(b)
    else:
        embeds = [_embed(b, i) for i in range(len(b.items))]
    ranges = pack([embed_size(e) for e in embeds], limit=EMBED_TOTAL_MAX, max_per_part=EMBEDS_MAX)
    out = []
    for number, span in enumerate(ranges, start=1):
        parts = len(ranges)
        pieces = [b.part_text("header", number, parts), b.part_text("footer", number, parts)]
        content = "\n".join(p.strip() for p in pieces if p.strip())
        if len(content) > CONTENT_MAX:
            content = content[: CONTENT_MAX - 1].rstrip("\\") + "…"
        chosen = _unique_urls([embeds[i] for i in span])
        if not content and not chosen:  # Discord refuses an empty message
            content = fit(subject_line(notification, rc), CONTENT_MAX, _ESCAPE)
        payload: dict[str, Any] = {"allowed_mentions": {"parse": []}}
        if content:
            payload["content"] = content
        if chosen:
            payload["embeds"] = chosen
        out.append(payload)
    return out


def _list_embeds(b: Blocks) -> list[dict[str, Any]]:
    """Stories as lines packed into embed descriptions of at most
    ``LIST_CAP`` characters, each embed titled with the stories it lists."""
    lines = [b.item_text("line", i).strip() for i in range(len(b.items))]
    lines = [line if len(line) <= LINE_CAP else _cut(line, LINE_CAP) for line in lines]
    spans = pack([len(line) + 1 for line in lines], limit=LIST_CAP)
    embeds = []
    for span in spans:
        if not span:
            continue
        first, last = span.start + 1, span.stop
        title = f"Stories {first}-{last}" if last > first else f"Story {first}"
        embeds.append({"title": title, "description": "\n".join(lines[i] for i in span)})
    return embeds


def _embed(b: Blocks, index: int) -> dict[str, Any]:
    item = b.notification.items[index]
    ctx = b.context["items"][index]
    embed: dict[str, Any] = {"title": fit(headline(item), TITLE_MAX, _ESCAPE)}
    href = safe_href(item.article.link)
    if href and len(href) <= URL_MAX:
        embed["url"] = href
    description = b.items[index].strip()
    if len(description) > DESCRIPTION_CAP:
        description = b.short(index, DESCRIPTION_CAP).strip()
    if "url" not in embed and href:  # a link too long for the url field
        description = (description + "\n" + b.short(index, DESCRIPTION_CAP // 2)).strip()
    if description:
        embed["description"] = description[:DESCRIPTION_CAP]
    rules = ", ".join(str(r) for r in ctx["rules"])
    fields = [
        {
            "name": "Rules" if len(item.rules) > 1 else "Rule",
            "value": _cut(rules, RULES_CAP) or "?",
            "inline": True,
        }
    ]
    also = _also(ctx)
    if also:
        fields.append({"name": "Also reported by", "value": also, "inline": True})
    embed["fields"] = fields
    # Footers are plain text to Discord (no Markdown): the raw text.
    published = when(item.article.published, b.rc.tz)
    footer = " · ".join(s for s in (one_line(item.article.source), published) if s)
    if footer:
        embed["footer"] = {"text": fit(footer, FOOTER_CAP)}
    if item.article.published is not None:
        embed["timestamp"] = item.article.published.isoformat()
    return embed


def _also(ctx: dict[str, Any]) -> str:
    """Masked links to the other outlets, as many as fit in a field."""
    shown: list[str] = []
    for o in ctx["also"]:
        entry = f"[{o['source']}]({o['href']})" if o["href"] else str(o["source"])
        if len(", ".join([*shown, entry])) > FIELD_VALUE_MAX - len(" (+999)"):
            break
        shown.append(entry)
    rest = len(ctx["also"]) - len(shown) + ctx["also_more"]
    text = ", ".join(shown)
    return f"{text} (+{rest})" if rest else text


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip("\\") + "…"


def _unique_urls(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord shows only the first of several embeds with one url: a later
    one loses its url (its title stays) so every story is seen."""
    seen: set[str] = set()
    out = []
    for embed in embeds:
        url = embed.get("url")
        if url in seen:
            embed = {k: v for k, v in embed.items() if k != "url"}
        elif url:
            seen.add(url)
        out.append(embed)
    return out
