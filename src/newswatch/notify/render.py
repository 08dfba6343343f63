"""Render a notification: the template context, email/console messages, and
the packing of items into platform-sized parts. Pure: the same notification
and settings always render to the same output.

A renderer builds one context per notification, with every feed string
escaped for the target platform's markup (``templates.escape``), then the
templates arrange it. Chat platforms render a header, one block per item and
a footer; ``pack`` splits the blocks into parts that fit the platform's
limit, at item boundaries, so a digest of 300 items becomes numbered parts
instead of a rejected message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import quote

from newswatch.model import Item, Message, Notification, NotificationKind
from newswatch.notify.templates import Markup, TemplateError, Templates
from newswatch.notify.text import (
    HEADLINE_MAX,
    SUMMARY_MAX,
    highlight_segments,
    keep_offsets,
    one_line,
    safe_href,
    truncate,
    when,
)

__all__ = [
    "Blocks",
    "RenderContext",
    "default_templates",
    "headline",
    "notification_context",
    "pack",
    "pack_blocks",
    "render_message",
    "render_parts",
]

# Highlight marks around matched terms, per template folder. HTML marks wrap
# text that was escaped first; chat marks are the platform's bold.
_MARKS: dict[str, tuple[str, str]] = {
    "text": ("«", "»"),
    "ntfy": ("«", "»"),
    "email": ('<mark style="background:#fde68a;">', "</mark>"),
    "telegram": ("<b>", "</b>"),
    "matrix": ("<strong>", "</strong>"),
    "slack": ("*", "*"),
    "discord": ("**", "**"),
    "teams": ("**", "**"),
}
# Characters that end or break a link in chat markup (Slack's <url|text>,
# Markdown's [text](url)); percent-encoding them keeps the URL the same URL.
_HREF_UNSAFE = " <>|()[]\"'`\\"
# Outlets listed under "also reported by" before "(+N)".
ALSO_MAX = 5

# Template parts rendered once per item (the context has ``item``).
ITEM_PARTS = frozenset({"item", "short", "line"})

_DEFAULT: Templates | None = None


def default_templates() -> Templates:
    """The shipped templates (built once; they never change at run time)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Templates()
    return _DEFAULT


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What rendering needs besides the notification: the wall clock zone,
    the template set (a user folder may override the defaults), and the
    configuration's name for footers."""

    tz: tzinfo = UTC
    templates: Templates = field(default_factory=default_templates)
    config_name: str = ""


def headline(item: Item) -> str:
    """One line naming the story: its title, else its link."""
    article = item.article
    title = one_line(article.title) or one_line(article.link) or "(untitled)"
    return truncate(title, HEADLINE_MAX)


def _href(link: str) -> str | None:
    href = safe_href(link)
    if href is None:
        return None
    return "".join(quote(ch, safe="") if ch in _HREF_UNSAFE else ch for ch in href)


def _item_context(item: Item, platform: str, rc: RenderContext, number: int) -> dict[str, Any]:
    t = rc.templates

    def esc(value: object) -> Markup:
        return t.escape(platform, value)

    article = item.article
    snippet = keep_offsets(item.explanation.snippet)
    segments = highlight_segments(snippet, item.explanation.highlights) if snippet.strip() else []
    open_mark, close_mark = _MARKS.get(platform, ("", ""))
    marked = Markup("").join(
        Markup(f"{open_mark}{esc(piece)}{close_mark}") if hit else esc(piece)
        for piece, hit in segments
    )
    # One line: line breaks in the feed's text were spaces already (offsets
    # kept); now runs of them fold (no escape sequence contains whitespace).
    marked = Markup(" ".join(str(marked).split()))
    also = [
        {
            "source": esc(one_line(o.source) or "?"),
            "title": esc(truncate(one_line(o.title), HEADLINE_MAX)),
            "link": esc(one_line(o.link)),
            "href": t.escape_href(platform, h) if (h := _href(o.link)) else None,
        }
        for o in item.also[:ALSO_MAX]
    ]
    return {
        "number": number,
        "title": esc(headline(item)),
        "link": esc(one_line(article.link)),
        "href": t.escape_href(platform, h) if (h := _href(article.link)) else None,
        "source": esc(one_line(article.source)),
        "author": esc(one_line(article.author)),
        "published": esc(when(article.published, rc.tz)),
        "matched_at": esc(when(item.matched_at, rc.tz)),
        "rules": [esc(one_line(r)) for r in item.rules],
        "rule": esc(one_line(item.rule)),
        "terms": [esc(one_line(term)) for term in item.explanation.terms],
        "segments": [(esc(piece), hit) for piece, hit in segments],
        "snippet": marked,
        "summary": esc(truncate(" ".join(article.summary.split()), SUMMARY_MAX)),
        "also": also,
        "also_more": max(0, len(item.also) - ALSO_MAX),
        # A later copy that adds to a story alerted already (`updates: true`).
        "is_update": item.update,
    }


def notification_context(
    notification: Notification, platform: str, rc: RenderContext
) -> dict[str, Any]:
    """The template context for ``notification`` rendered for ``platform``
    (a template folder: text, email, slack, discord, telegram, teams,
    matrix, ntfy). Every string in it is escaped for that platform."""
    t = rc.templates

    def esc(value: object) -> Markup:
        return t.escape(platform, value)

    items = [
        _item_context(item, platform, rc, number)
        for number, item in enumerate(notification.items, start=1)
    ]
    sections: dict[str, list[dict[str, Any]]] = {}
    for item, ctx in zip(notification.items, items, strict=True):
        sections.setdefault(item.rule, []).append(ctx)
    period = notification.period
    return {
        "kind": notification.kind.value,
        "channel": esc(notification.channel),
        "count": len(items),
        "items": items,
        "sections": [
            {"rule": esc(one_line(rule)), "stories": its} for rule, its in sections.items()
        ],
        "rules": [esc(one_line(r)) for r in notification.rules],
        "period": None
        if period is None
        else {
            "start": esc(when(period.start, rc.tz)),
            "end": esc(when(period.end, rc.tz)),
            "schedule": esc(period.schedule),
            "late": period.late,
        },
        "reason": esc(notification.reason) if notification.reason else None,
        "more": notification.more,
        "created_at": esc(when(notification.created_at, rc.tz)),
        "config": esc(rc.config_name) if rc.config_name else None,
        "part": 1,
        "parts": 1,
    }


def render_message(notification: Notification, rc: RenderContext) -> Message:
    """Subject, plain text and HTML of ``notification`` (email, console)."""
    t = rc.templates
    text_ctx = notification_context(notification, "text", rc)
    subject = one_line(t.render("text", notification.kind, "subject", text_ctx))
    text_ctx["subject"] = subject
    text = t.render("text", notification.kind, "body", text_ctx).rstrip("\n") + "\n"
    html_ctx = notification_context(notification, "email", rc)
    html_ctx["subject"] = t.escape("email", subject)
    html = t.render("email", notification.kind, "body", html_ctx).rstrip("\n") + "\n"
    return Message(subject=subject, text=text, html=html)


def subject_line(notification: Notification, rc: RenderContext) -> str:
    """The one-line subject (email subject, ntfy title, chat fallback text)."""
    ctx = notification_context(notification, "text", rc)
    return one_line(rc.templates.render("text", notification.kind, "subject", ctx))


# --------------------------------------------------------------------------- packing


def pack(
    sizes: Sequence[int], *, limit: int, overhead: int = 0, max_per_part: int = 0
) -> list[range]:
    """Split items of the given ``sizes`` into consecutive parts.

    Each part's items plus ``overhead`` (its header and footer) stay within
    ``limit``, and a part holds at most ``max_per_part`` items (0: no cap).
    An item too big for any part gets a part of its own; the caller renders
    it in a shorter form. Always at least one part (possibly empty).
    """
    parts: list[range] = []
    start = 0
    used = overhead
    for index, size in enumerate(sizes):
        count = index - start
        full = max_per_part and count >= max_per_part
        if count and (used + size > limit or full):
            parts.append(range(start, index))
            start, used = index, overhead
        used += size
    parts.append(range(start, len(sizes)))
    return parts


class Blocks:
    """A notification rendered for one platform as the pieces a channel packs:
    one block per item (``items``), and the header, footer or any other
    per-part template (``part_text``) for a given part number.

    ``context`` is the template context (every string escaped for the
    platform); ``context["items"][i]`` is item i's, for channels that put
    some values in structured fields (an embed's title, a link button).
    """

    def __init__(
        self,
        notification: Notification,
        platform: str,
        rc: RenderContext,
        *,
        block: str = "item",
    ) -> None:
        self.notification = notification
        self.platform = platform
        self.rc = rc
        self.templates = rc.templates
        self.context = notification_context(notification, platform, rc)
        # ``block``: the template for each item (``line`` for a compact list).
        self.items = [self.item_text(block, i) for i in range(len(notification.items))]

    @property
    def kind(self) -> NotificationKind:
        return self.notification.kind

    def item_text(self, template: str, index: int) -> str:
        """Item ``index`` rendered by ``<platform>/[<kind>.]<template>.j2``."""
        item = self.context["items"][index]
        return self.templates.render(
            self.platform, self.kind, template, {**self.context, "item": item}
        )

    def part_text(self, template: str, part: int = 1, parts: int = 1) -> str:
        """``<platform>/[<kind>.]<template>.j2`` for part ``part`` of ``parts``."""
        ctx = {**self.context, "part": part, "parts": parts}
        return self.templates.render(self.platform, self.kind, template, ctx)

    def short(self, index: int, room: int, cost: Callable[[str], int] = len) -> str:
        """Item ``index`` in its ``short`` form (number, title, link), or
        only its number when even that does not fit ``room``."""
        block = self.item_text("short", index)
        if cost(block) <= room:
            return block
        # Even title + link is too long (a link of thousands of characters).
        number = self.context["items"][index]["number"]
        return str(self.templates.escape(self.platform, f"{number}. (too long to show)"))


# Part numbers are not known until the parts are packed; the overhead of a
# part's header and footer is measured with numbers at least this wide.
_PROBE_PARTS = 99


def render_parts(
    notification: Notification,
    platform: str,
    rc: RenderContext,
    *,
    limit: int,
    cost: Callable[[str], int] = len,
    max_per_part: int = 0,
    join: str = "\n",
    block: str = "item",
) -> list[str]:
    """Header + item blocks + footer of ``platform``'s templates, split into
    parts of at most ``limit`` (as measured by ``cost``). An item whose block
    alone does not fit is rendered by the ``short`` template (title and link,
    cut to fit). Part headers know their number (``part``/``parts``).

    ``cost`` must not grow when two texts are joined (``cost(a + b) <=
    cost(a) + cost(b)``): the parts are packed by the sum of their pieces.
    """
    b = Blocks(notification, platform, rc, block=block)
    return [
        join.join(p.strip("\n") for p in pieces if p.strip())
        for pieces in pack_blocks(b, limit=limit, cost=cost, max_per_part=max_per_part, join=join)
    ]


def pack_blocks(
    b: Blocks,
    *,
    limit: int,
    cost: Callable[[str], int] = len,
    max_per_part: int = 0,
    join: str = "\n",
) -> list[list[str]]:
    """The pieces of each part, ``[header, item, ..., footer]``, packed as
    ``render_parts`` does; for channels that join them their own way."""
    probe_header = b.part_text("header", _PROBE_PARTS, _PROBE_PARTS)
    probe_footer = b.part_text("footer", _PROBE_PARTS, _PROBE_PARTS)
    overhead = cost(probe_header) + cost(probe_footer) + 2 * cost(join)
    room = max(1, limit - overhead)
    blocks = list(b.items)
    for i, block in enumerate(blocks):
        if cost(block) + cost(join) > room:
            blocks[i] = b.short(i, room - cost(join), cost)
    ranges = pack(
        [cost(block) + cost(join) for block in blocks],
        limit=limit,
        overhead=overhead,
        max_per_part=max_per_part,
    )
    parts = []
    for number, span in enumerate(ranges, start=1):
        pieces = [b.part_text("header", number, len(ranges))]
        pieces.extend(blocks[i] for i in span)
        pieces.append(b.part_text("footer", number, len(ranges)))
        parts.append(pieces)
    return parts


# --------------------------------------------------------------------------- checking


def sample_notifications() -> list[Notification]:
    """One notification of every kind, with feed text that exercises the
    templates (a Korean headline, markup, an also-reported-by list)."""
    from datetime import UTC, datetime

    from newswatch.model import Article, Explanation, Hit, Item, Outlet, Period

    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    article = Article(
        feed_key="sample",
        entry_key="sample-1",
        story_key="sample",
        title='Russia and North Korea <sign> a "pact" & more · 러시아·북한',
        summary="Russia and North Korea signed a treaty in Pyongyang.",
        content="",
        link="https://www.example.org/news/1?a=1&b=2",
        canonical_url="https://www.example.org/news/1",
        author="Yonhap",
        categories=("politics",),
        published=at,
        source="Example News",
        tags=("korea",),
    )
    explanation = Explanation(
        hits=(Hit("russia", "summary", 0, 6),),
        snippet="Russia and North Korea signed a treaty",
        highlights=((0, 6), (11, 22)),
    )
    item = Item(
        story_id=1,
        article=article,
        rules=("sample-rule", "other-rule"),
        explanation=explanation,
        matched_at=at,
        also=(Outlet("Other Outlet", "Same story", "https://other.example/1", at),),
        outbox_ids=(1, 2),
    )
    period = Period(at.replace(day=4), at, "daily 08:00", late=True)
    out = []
    for kind in NotificationKind:
        count = {
            NotificationKind.ALERT: 1,
            NotificationKind.TEST: 0,
            NotificationKind.OPERATOR: 0,
        }.get(kind, 2)
        items = (item,) * count
        out.append(
            Notification(
                id=1,
                key="nw-sample",
                channel="sample-channel",
                kind=kind,
                items=items,
                created_at=at,
                period=period if kind is NotificationKind.DIGEST else None,
                reason={
                    NotificationKind.SUMMARY: "held back: throttled",
                    NotificationKind.OPERATOR: "feed Sample has been failing for 25 h",
                }.get(kind),
                more=2 if kind is NotificationKind.SUMMARY else 0,
            )
        )
    return out


def check_templates(templates: Templates) -> list[TemplateError]:
    """Render every template the user folder overrides, for every kind of
    notification: each problem as ``file:line: message`` (a config error at
    load time, never a failed send at 3 a.m.)."""
    from newswatch.notify.templates import PLATFORMS

    names = templates.user_templates()
    platforms = sorted({n.split("/", 1)[0] for n in names if "/" in n})
    problems: list[TemplateError] = []
    for name in names:
        folder = name.split("/", 1)[0] if "/" in name else ""
        if folder not in PLATFORMS:
            known = ", ".join(sorted(PLATFORMS))
            where = f"{templates.user_dir}/{name}"
            problems.append(TemplateError(where, 0, f"not in a template folder (use {known})"))
    rc = RenderContext(templates=templates, config_name="sample.yaml")
    seen: set[str] = set()
    for platform in platforms:
        if platform not in PLATFORMS:
            continue
        parts = sorted(templates.parts(platform))
        for notification in sample_notifications():
            ctx = notification_context(notification, platform, rc)
            for part in parts:
                if part in ITEM_PARTS:
                    if not ctx["items"]:
                        continue
                    ctx = {**ctx, "item": ctx["items"][0]}
                try:
                    templates.render(platform, notification.kind, part, ctx)
                except TemplateError as exc:
                    if str(exc) not in seen:  # once, for the first kind it broke
                        seen.add(str(exc))
                        reason = f"{exc.reason} (rendering a sample {notification.kind.value})"
                        problems.append(TemplateError(exc.file, exc.line, reason))
    return problems
