"""What the status page shows, gathered from the configuration, the store and
the daemon's own state, and the small pure pieces it is drawn with
(sparklines, pages, safe links, times).

``gather`` runs in a worker thread (the store is synchronous). Every read
is bounded: one page of feeds, one page of rules, the last few
notifications; counts come from indexes (see ``store._stats``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup

from newswatch.config import LoadedConfig, Problem
from newswatch.store._stats import SPARK_DAYS, FeedPage, RuleActivity, StoreSummary, spark_days
from newswatch.store.base import ChannelCounts, Mute, NotificationRow, StoryUpdate

# Rows per page of feeds and of rules.
PAGE_SIZE = 50
# Recent notifications listed.
NOTIFICATIONS_SHOWN = 20
# Characters of an error text shown in a table cell (the rest is cut).
ERROR_CHARS = 240
# Sparkline geometry (px): one bar per day.
BAR_W, BAR_GAP, SPARK_H = 5, 1, 20


# Story updates listed: those of the last week, the newest first.
UPDATES_SINCE = timedelta(days=7)
UPDATES_SHOWN = 20


class PageStore(Protocol):
    """The store reads the page makes."""

    def summary(self, now: datetime) -> StoreSummary: ...
    def feed_page(self, *, offset: int = 0, limit: int = 50, failing: bool = False) -> FeedPage: ...
    def rule_activity(self, rules: Sequence[str], now: datetime) -> dict[str, RuleActivity]: ...
    def channel_counts(self) -> dict[str, ChannelCounts]: ...
    def notifications(self, status: Any = None, limit: int = 50) -> list[NotificationRow]: ...
    def mutes(self, now: datetime, *, include_ended: bool = False) -> list[Mute]: ...
    def story_updates(self, since: datetime, limit: int = 50) -> list[StoryUpdate]: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """The daemon's own state the page shows (not in the store)."""

    version: str
    started_at: datetime
    reloaded_at: datetime  # when the running configuration was loaded
    config_problems: tuple[Problem, ...] = ()  # the last refused reload's problems
    config_error_at: datetime | None = None
    failing_channels: Mapping[str, str] = field(default_factory=dict)
    stale_loops: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """The page's query string, validated: ?feeds=failing&feeds_page=2&rules_page=1."""

    failing: bool = False
    feeds_page: int = 1
    rules_page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        return cls(
            failing=params.get("feeds") == "failing",
            feeds_page=_page_number(params.get("feeds_page")),
            rules_page=_page_number(params.get("rules_page")),
        )


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1_000_000))
    except ValueError:
        return 1


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    pages: int
    total: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    @property
    def prev(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def pager(page: int, total: int, size: int = PAGE_SIZE) -> Pager:
    pages = max(1, math.ceil(total / size))
    return Pager(page=min(page, pages), pages=pages, total=total)


def sparkline(counts: Sequence[int], days: Sequence[str]) -> Markup:
    """An inline SVG bar per day (numbers and dates only: nothing to escape)."""
    top = max(counts, default=0)
    width = len(counts) * (BAR_W + BAR_GAP) - BAR_GAP
    total = sum(counts)
    bars = []
    for i, (n, day) in enumerate(zip(counts, days, strict=True)):
        h = 0 if top == 0 else max(1, round(n / top * SPARK_H)) if n else 0
        x = i * (BAR_W + BAR_GAP)
        # A zero day is a thin baseline, so the week's shape still reads.
        cls = "bar" if n else "zero"
        y, hh = (SPARK_H - h, h) if n else (SPARK_H - 1, 1)
        bars.append(
            f'<rect class="{cls}" x="{x}" y="{y}" width="{BAR_W}" height="{hh}">'
            f"<title>{day}: {n}</title></rect>"
        )
    label = f"{total} matches in {len(counts)} days"
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {SPARK_H}" width="{width}" '
        f'height="{SPARK_H}" role="img" aria-label="{label}">' + "".join(bars) + "</svg>"
    )


def safe_href(url: str | None) -> str | None:
    """A feed's link, if it is plain http(s): never javascript:, data: and the like."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def human_interval(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:g}s"


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    delta = (when - now).total_seconds()
    future = delta > 0
    delta = abs(delta)
    if delta < 90:
        amount = f"{delta:.0f}s"
    elif delta < 5400:
        amount = f"{delta / 60:.0f}m"
    elif delta < 172800:
        amount = f"{delta / 3600:.0f}h"
    else:
        amount = f"{delta / 86400:.0f}d"
    return f"in {amount}" if future else f"{amount} ago"


def local(when: datetime | None, tz: ZoneInfo) -> str:
    if when is None:
        return ""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- gather


def gather(
    loaded: LoadedConfig, store: PageStore, runtime: Runtime, query: Query, now: datetime
) -> dict[str, Any]:
    """The template's context for one view of the status page."""
    config = loaded.config
    by_key = {f.key: f for f in config.feeds}
    summary = store.summary(now)

    wanted = pager(query.feeds_page, query.feeds_page * PAGE_SIZE)
    page = store.feed_page(offset=wanted.offset, limit=PAGE_SIZE, failing=query.failing)
    feed_pager = pager(query.feeds_page, page.total)
    if feed_pager.page != query.feeds_page:  # past the end: show the last page
        page = store.feed_page(offset=feed_pager.offset, limit=PAGE_SIZE, failing=query.failing)
    feeds = []
    for s in page.feeds:
        cfg = by_key.get(s.feed_key)
        every = (cfg.every if cfg and cfg.every else None) or config.poll.every
        interval = timedelta(seconds=s.interval_s) if s.interval_s else every
        failing = bool(s.consecutive_errors) or s.status != "ok"
        feeds.append(
            {
                "label": cfg.label if cfg else (s.label or s.feed_key[:12]),
                "status": s.status if s.status != "ok" or not failing else "failing",
                "failing": failing,
                "errors": s.consecutive_errors,
                "last_success": s.last_success_at,
                "last_error": (s.last_error or "")[:ERROR_CHARS],
                "interval": human_interval(interval),
                "next_poll": s.next_poll_at,
                "articles": s.articles,
            }
        )

    rules_pager = pager(query.rules_page, len(config.rules))
    shown_rules = config.rules[rules_pager.offset : rules_pager.offset + PAGE_SIZE]
    activity = store.rule_activity([r.name for r in shown_rules], now)
    days = spark_days(now)
    rules = []
    for rule in shown_rules:
        a = activity.get(rule.name, RuleActivity(daily=(0,) * SPARK_DAYS))
        rules.append(
            {
                "name": rule.name,
                "enabled": rule.enabled,
                "channels": [t.channel for t in rule.notify],
                "last_24h": a.last_24h,
                "last_7d": a.last_7d,
                "spark": sparkline(a.daily, days),
                "last_match_at": a.last_match_at,
                "last_title": a.last_title,
                "last_link": safe_href(a.last_link),
            }
        )

    counts = store.channel_counts()
    channels = []
    for name, channel in config.channels.items():
        c = counts.get(name, ChannelCounts())
        channels.append(
            {
                "name": name,
                "type": channel.type,
                "pending": c.pending,
                "queued": c.queued,
                "dead": c.dead,
                "last_sent": c.last_sent_at,
                "last_error": (c.last_error or "")[:ERROR_CHARS],
                "failing": name in runtime.failing_channels,
            }
        )

    notes = []
    for n in store.notifications(None, NOTIFICATIONS_SHOWN):
        notes.append(
            {
                "id": n.id,
                "created_at": n.created_at,
                "channel": n.channel,
                "kind": n.kind.value,
                "status": n.status.value,
                "count": n.items,
                "rules": list(n.rules),
                "titles": [(title, safe_href(link)) for title, link in n.titles],
                "more": max(0, n.items - len(n.titles)),
                "error": (n.last_error or "")[:ERROR_CHARS] if n.status.value != "sent" else "",
            }
        )

    return {
        "now": now,
        "tz": config.zone,
        "timezone": config.timezone,
        "runtime": runtime,
        "config_path": str(loaded.path),
        "problems": list(runtime.config_problems),
        "summary": summary,
        "query": query,
        "feeds": feeds,
        "feed_pager": feed_pager,
        "feed_failing": page.failing,
        "feed_total": summary.feeds,
        "rules": rules,
        "rules_pager": rules_pager,
        "channels": channels,
        "notifications": notes,
        "mutes": store.mutes(now),
        # Copies that added substantial text to a story: sent as threaded
        # updates for rules with `updates: true`, only listed here otherwise.
        "updates": [
            {
                "title": u.title,
                "link": safe_href(u.link),
                "source": u.source,
                "new_text": u.new_text,
                "seen": u.first_seen_at,
            }
            for u in store.story_updates(now - UPDATES_SINCE, UPDATES_SHOWN)
        ],
    }
