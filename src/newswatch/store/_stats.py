"""Read-only views for people: the status page, ``newswatch status`` and /metrics.

Every query here is bounded by an index or by a page, never by the number
of articles: feed pages come from the ``feeds`` table (one row per feed,
its article count kept at ingest), rule counts are range scans of
``ix_matches_rule_matched_at`` for one page of rules, sparklines read
``rule_stats`` (one row per rule per day), and outbox depths look at
pending and queued rows only (``ix_outbox_channel_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, literal, or_, select

from newswatch.store import _codec
from newswatch.store._codec import aware_utc
from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import FeedState, NotificationStatus, OutboxStatus
from newswatch.store.schema import articles, feeds, matches, notifications, outbox, rule_stats

# Days a rule's sparkline covers (rule_stats rows, UTC days).
SPARK_DAYS = 14


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of active feeds and the counts the page's header shows."""

    feeds: tuple[FeedState, ...]
    total: int  # active feeds (matching the filter)
    failing: int  # active feeds failing now (whatever the filter)


@dataclass(frozen=True, slots=True)
class RuleActivity:
    """Matches of one rule: last 24 h, last 7 d, per UTC day, and the last one."""

    last_24h: int = 0
    last_7d: int = 0
    daily: tuple[int, ...] = ()  # SPARK_DAYS counts, oldest first, today last
    last_match_at: datetime | None = None
    last_title: str | None = None
    last_link: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """What waits for one channel: rows not yet sent, and the oldest one's age."""

    pending: int = 0  # waiting to be composed (grouping, holds, digests)
    queued: int = 0  # in notifications not yet delivered
    oldest_at: datetime | None = None  # created_at of the oldest of either


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """The running state in one screen (``newswatch status``)."""

    feeds: int
    failing: int
    never_polled: int
    articles: int
    last_poll_at: datetime | None
    last_success_at: datetime | None
    waiting: int  # outbox rows pending or queued
    dead: int  # dead notifications
    sent_24h: int  # notifications sent in the last 24 hours
    last_sent_at: datetime | None


def spark_days(now: datetime) -> list[str]:
    """The UTC days (``rule_stats.day``) a sparkline covers, oldest first."""
    return [
        (now - timedelta(days=SPARK_DAYS - 1 - i)).strftime("%Y-%m-%d") for i in range(SPARK_DAYS)
    ]


def _failing() -> ColumnElement[bool]:
    return or_(feeds.c.consecutive_errors > 0, feeds.c.status != "ok")


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """COUNT(CASE WHEN ... THEN 1 END): a filtered count both backends run."""
    return func.count(case((condition, 1)))


class StatsMixin(Transactional):
    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query (readiness)."""
        with self._tx(write=False) as conn:
            conn.execute(select(literal(1))).scalar_one()

    def feed_page(self, *, offset: int = 0, limit: int = 50, failing: bool = False) -> FeedPage:
        """Active feeds ordered by label (failing ones only with ``failing``)."""
        active = feeds.c.active.is_(True)
        stmt = select(feeds).where(active)
        if failing:
            stmt = stmt.where(_failing())
        stmt = stmt.order_by(feeds.c.label, feeds.c.feed_key).offset(max(0, offset)).limit(limit)
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).mappings().all()
            total, failing_n = conn.execute(
                select(func.count(), _count_if(_failing())).where(active)
            ).one()
        shown = failing_n if failing else total
        return FeedPage(
            feeds=tuple(_codec.feed_state_from_row(r) for r in rows),
            total=int(shown),
            failing=int(failing_n),
        )

    def rule_activity(self, rules: Sequence[str], now: datetime) -> dict[str, RuleActivity]:
        """Match counts for these rules (one page of them), from indexed ranges."""
        names = list(dict.fromkeys(rules))
        day0 = (now - timedelta(days=SPARK_DAYS - 1)).strftime("%Y-%m-%d")
        days = [
            (now - timedelta(days=SPARK_DAYS - 1 - i)).strftime("%Y-%m-%d")
            for i in range(SPARK_DAYS)
        ]
        n24: dict[str, int] = {}
        n7: dict[str, int] = {}
        daily: dict[str, dict[str, int]] = {}
        last_at: dict[str, datetime | None] = {}
        last: dict[str, tuple[str, str]] = {}
        with self._tx(write=False) as conn:
            for chunk in chunks(names):
                for since, into in (
                    (now - timedelta(hours=24), n24),
                    (now - timedelta(days=7), n7),
                ):
                    stmt = (
                        select(matches.c.rule, func.count())
                        .where(matches.c.rule.in_(chunk), matches.c.matched_at >= since)
                        .group_by(matches.c.rule)
                    )
                    into.update({rule: int(n) for rule, n in conn.execute(stmt)})
                stats = select(rule_stats.c.rule, rule_stats.c.day, rule_stats.c.matches).where(
                    rule_stats.c.rule.in_(chunk), rule_stats.c.day >= day0
                )
                for rule, day, n in conn.execute(stats):
                    daily.setdefault(rule, {})[day] = int(n)
                latest = (
                    select(rule_stats.c.rule, func.max(rule_stats.c.last_match_at))
                    .where(rule_stats.c.rule.in_(chunk))
                    .group_by(rule_stats.c.rule)
                )
                last_at.update({rule: aware_utc(at) for rule, at in conn.execute(latest)})
            for rule in names:
                # The newest match of the rule: one backward step on the index.
                row = conn.execute(
                    select(articles.c.title, articles.c.link)
                    .select_from(matches.join(articles, articles.c.id == matches.c.article_id))
                    .where(matches.c.rule == rule)
                    .order_by(matches.c.matched_at.desc(), matches.c.id.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    last[rule] = (row.title, row.link)
        return {
            rule: RuleActivity(
                last_24h=n24.get(rule, 0),
                last_7d=n7.get(rule, 0),
                daily=tuple(daily.get(rule, {}).get(day, 0) for day in days),
                last_match_at=last_at.get(rule),
                last_title=last.get(rule, (None, None))[0],
                last_link=last.get(rule, (None, None))[1],
            )
            for rule in names
        }

    def outbox_depths(self) -> dict[str, OutboxDepth]:
        """Per channel: rows pending and queued, and when the oldest was created."""
        waiting = [OutboxStatus.PENDING.value, OutboxStatus.QUEUED.value]
        stmt = (
            select(outbox.c.channel, outbox.c.status, func.count(), func.min(outbox.c.created_at))
            .where(outbox.c.status.in_(waiting))
            .group_by(outbox.c.channel, outbox.c.status)
        )
        found: dict[str, dict[str, tuple[int, datetime | None]]] = {}
        with self._tx(write=False) as conn:
            for channel, status, n, oldest in conn.execute(stmt):
                found.setdefault(channel, {})[status] = (int(n), aware_utc(oldest))
        out: dict[str, OutboxDepth] = {}
        for channel, by_status in sorted(found.items()):
            pending = by_status.get(OutboxStatus.PENDING.value, (0, None))
            queued = by_status.get(OutboxStatus.QUEUED.value, (0, None))
            oldest = [at for _, at in (pending, queued) if at is not None]
            out[channel] = OutboxDepth(pending[0], queued[0], min(oldest) if oldest else None)
        return out

    def summary(self, now: datetime) -> StoreSummary:
        active = feeds.c.active.is_(True)
        with self._tx(write=False) as conn:
            feed_row = conn.execute(
                select(
                    func.count(),
                    _count_if(_failing()),
                    _count_if(feeds.c.last_attempt_at.is_(None)),
                    func.coalesce(func.sum(feeds.c.article_count), 0),
                    func.max(feeds.c.last_attempt_at),
                    func.max(feeds.c.last_success_at),
                ).where(active)
            ).one()
            waiting = conn.execute(
                select(func.count()).where(
                    outbox.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.QUEUED.value])
                )
            ).scalar_one()
            dead = conn.execute(
                select(func.count()).where(notifications.c.status == NotificationStatus.DEAD.value)
            ).scalar_one()
            sent = notifications.c.status == NotificationStatus.SENT.value
            sent_24h, last_sent = conn.execute(
                select(func.count(), func.max(notifications.c.sent_at)).where(
                    sent, notifications.c.created_at >= now - timedelta(hours=24)
                )
            ).one()
            if last_sent is None:  # nothing in the last day: the last ever (one index step)
                last_sent = conn.execute(
                    select(notifications.c.sent_at)
                    .where(sent)
                    .order_by(notifications.c.created_at.desc())
                    .limit(1)
                ).scalar()
        return StoreSummary(
            feeds=int(feed_row[0]),
            failing=int(feed_row[1]),
            never_polled=int(feed_row[2]),
            articles=int(feed_row[3]),
            last_poll_at=aware_utc(feed_row[4]),
            last_success_at=aware_utc(feed_row[5]),
            waiting=int(waiting),
            dead=int(dead),
            sent_24h=int(sent_24h),
            last_sent_at=aware_utc(last_sent),
        )
