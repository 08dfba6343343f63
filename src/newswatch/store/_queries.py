"""The statements the store runs, and the steps it repeats inside a transaction.

``sql.SqlStore`` decides which of these run together in one transaction;
this module only says what each one is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.engine import Connection

from newswatch.model import DeliveryMode, Route
from newswatch.store._dialect import insert_ignore
from newswatch.store.base import OutboxStatus
from newswatch.store.schema import articles, feeds, matches, outbox

# Keys per IN (...) list: far below SQLite's bound-parameter limit (32766
# since 3.32, 999 before) and PostgreSQL's (65535).
IN_CHUNK = 500

ARTICLE_FIELDS = (
    "feed_key",
    "entry_key",
    "story_key",
    "title",
    "summary",
    "content",
    "link",
    "canonical_url",
    "author",
    "categories",
    "published",
    "source",
    "tags",
)

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = IN_CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- feeds


def new_feed(feed_key: str, now: datetime) -> dict[str, Any]:
    return {"feed_key": feed_key, "next_poll_at": now, "consecutive_errors": 0, "created_at": now}


def due_feeds(feed_keys: Sequence[str], now: datetime, limit: int) -> Select[Any]:
    """Keys of due, unleased feeds, most overdue first, locked for the claim.

    SQLite's compiler drops FOR UPDATE; its write transaction (BEGIN
    IMMEDIATE) already keeps other claimers out.
    """
    return (
        select(feeds.c.feed_key)
        .where(
            feeds.c.feed_key.in_(feed_keys),
            or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now),
            or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now),
        )
        .order_by(feeds.c.next_poll_at.nulls_first(), feeds.c.feed_key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def write_feed(conn: Connection, feed_key: str, now: datetime, values: dict[str, Any]) -> None:
    """Update a feed's state row, creating it first if the feed is unknown."""
    conn.execute(insert_ignore(conn, feeds, "feed_key").values(new_feed(feed_key, now)))
    conn.execute(update(feeds).where(feeds.c.feed_key == feed_key).values(values))


def article_counts(conn: Connection, feed_keys: Sequence[str] | None) -> dict[str, int]:
    """Stored articles per feed, for ``feed_keys`` or all feeds."""
    stmt = select(articles.c.feed_key, func.count()).group_by(articles.c.feed_key)
    if feed_keys is None:
        return {key: n for key, n in conn.execute(stmt)}
    counts: dict[str, int] = {}
    for chunk in chunks(feed_keys):
        counts.update(
            {key: n for key, n in conn.execute(stmt.where(articles.c.feed_key.in_(chunk)))}
        )
    return counts


# --- outbox


def outbox_values(route: Route, article_id: int, story_key: str, now: datetime) -> dict[str, Any]:
    return {
        "rule": route.rule,
        "channel": route.channel,
        "mode": DeliveryMode(route.mode).value,
        "article_id": article_id,
        "story_key": story_key,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def insert_outbox(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping any (rule, channel, story) already there.

    Sorted by that key so that concurrent ingests (PostgreSQL replicas polling
    feeds that syndicate the same story) take row locks in the same order and
    cannot deadlock.
    """
    stmt = insert_ignore(conn, outbox, "rule", "channel", "story_key").returning(outbox.c.id)
    written = 0
    for row in sorted(rows, key=lambda r: (r["rule"], r["channel"], r["story_key"])):
        written += conn.execute(stmt, row).first() is not None
    return written


def due_outbox(now: datetime, limit: int, mode: DeliveryMode, channel: str | None) -> Select[Any]:
    """Ids of rows to send, oldest due first, locked for the claim (see due_feeds)."""
    conditions = [
        or_(
            and_(
                outbox.c.status == OutboxStatus.PENDING.value,
                or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
            ),
            # A worker that died mid-send: its lease ran out.
            and_(
                outbox.c.status == OutboxStatus.SENDING.value,
                or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
            ),
        ),
        outbox.c.mode == DeliveryMode(mode).value,
    ]
    if channel is not None:
        conditions.append(outbox.c.channel == channel)
    return (
        select(outbox.c.id)
        .where(*conditions)
        .order_by(outbox.c.next_attempt_at.nulls_first(), outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def alerts(outbox_ids: Sequence[int]) -> Select[Any]:
    """What an Alert is built from (``_codec.alert_from_row``)."""
    return (
        select(
            outbox.c.id.label("outbox_id"),
            outbox.c.rule.label("outbox_rule"),
            outbox.c.channel.label("outbox_channel"),
            outbox.c.attempts.label("outbox_attempts"),
            outbox.c.created_at.label("outbox_created_at"),
            matches.c.explanation,
            matches.c.matched_at,
            *(articles.c[name] for name in ARTICLE_FIELDS),
        )
        .select_from(
            outbox.join(articles, articles.c.id == outbox.c.article_id).outerjoin(
                matches,
                and_(matches.c.rule == outbox.c.rule, matches.c.article_id == outbox.c.article_id),
            )
        )
        .where(outbox.c.id.in_(outbox_ids))
    )


def outbox_listing(status: OutboxStatus | None, limit: int) -> Select[Any]:
    stmt = (
        select(
            outbox.c.id,
            outbox.c.rule,
            outbox.c.channel,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.next_attempt_at,
            outbox.c.sent_at,
            outbox.c.last_error,
            articles.c.feed_key,
            articles.c.title,
            articles.c.link,
        )
        .select_from(outbox.join(articles, articles.c.id == outbox.c.article_id))
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(outbox.c.status == OutboxStatus(status).value)
    return stmt


# --- articles


def article_page(
    since: datetime | None, after: tuple[datetime, int] | None, size: int
) -> Select[Any]:
    """One page of articles in (first_seen_at, id) order, after ``after``."""
    stmt = select(articles).order_by(articles.c.first_seen_at, articles.c.id).limit(size)
    if since is not None:
        stmt = stmt.where(articles.c.first_seen_at >= since)
    if after is not None:
        seen, last_id = after
        stmt = stmt.where(
            or_(
                articles.c.first_seen_at > seen,
                and_(articles.c.first_seen_at == seen, articles.c.id > last_id),
            )
        )
    return stmt
