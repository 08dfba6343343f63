"""The values around a poll: the rules it matches against, what one feed's
poll came to (``FeedOutcome``), and the configuration's feeds as the store
knows them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from newswatch.config import Config, FeedConfig
from newswatch.feeds.fetch import host_key
from newswatch.model import Article, Match, Route
from newswatch.notify.targets import Targets
from newswatch.rules import RuleIndex
from newswatch.store.base import FeedSpec


@dataclass(frozen=True, slots=True)
class Rules:
    """The compiled rules and where each rule's matches go. Swapped as a
    whole on reload, so a poll in progress sees one consistent version."""

    index: RuleIndex
    targets: Targets

    @classmethod
    def from_config(cls, config: Config, index: RuleIndex) -> Rules:
        return cls(index=index, targets=Targets.from_config(config))

    def match(self, article: Article) -> list[Match]:
        return self.index.match(article)

    def routes(self, match: Match, now: datetime) -> tuple[Route, ...]:
        return self.targets.routes(match, now)


# deferred: fetched, but the state database stayed locked by another
# process; nothing recorded, the feed is polled again soon (not a failure).
Status = Literal["updated", "not_modified", "unchanged", "failed", "gone", "deferred"]


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    feed_key: str
    name: str
    status: Status
    entries: int = 0
    new_articles: int = 0
    new_alerts: int = 0
    edited: int = 0
    matched: int = 0
    matched_rules: tuple[str, ...] = ()  # the rule of each match (metrics)
    # Only a dry run keeps the matches themselves (it prints them).
    matches: tuple[Match, ...] = field(default=(), repr=False)
    error: str | None = None
    warning: str | None = None
    parse_seconds: float | None = None  # parsing the document, when one was parsed
    failures: int = 0  # failed polls in a row, this one included ("failed" only)
    recovered: bool = False  # succeeded after failing
    silent_first_poll: bool = False  # recorded what it holds without alerting

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "gone")


def feed_host(feed: FeedConfig) -> str:
    return host_key(feed.source)


def feed_specs(config: Config) -> list[FeedSpec]:
    """The configuration's feeds as the store knows them (no URLs)."""
    return [FeedSpec(key=f.key, label=f.label, host=feed_host(f)) for f in config.feeds]


def summarize(outcomes: Sequence[FeedOutcome]) -> str:
    ok = sum(not o.failed for o in outcomes)
    new = sum(o.new_articles for o in outcomes)
    alerts = sum(o.new_alerts for o in outcomes)
    return f"{len(outcomes)} feeds ({ok} ok), {new} new articles, {alerts} alerts queued"
