"""Frozen values <-> table rows. Pure: no connection, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from newswatch.model import Article, Explanation, Hit, NotificationKind
from newswatch.notify.redact import mask_feed_url
from newswatch.store.base import (
    KEEP,
    FeedState,
    FeedUpdate,
    NotificationRow,
    NotificationStatus,
    OutboxRow,
    OutboxStatus,
    PendingRow,
)


def aware_utc(value: object) -> datetime | None:
    """A timestamp from an aggregate (``max``), which SQLite returns as text
    without our column type: aware UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def article_values(
    article: Article, first_seen_at: datetime, content_hash: str | None = None
) -> dict[str, Any]:
    return {
        "feed_key": article.feed_key,
        "entry_key": article.entry_key,
        "story_key": article.story_key,
        "title": article.title,
        "summary": article.summary,
        "content": article.content,
        "link": article.link,
        "canonical_url": article.canonical_url,
        "author": article.author,
        "categories": list(article.categories),
        "published": article.published,
        "source": article.source,
        "tags": list(article.tags),
        "content_hash": content_hash,
        "first_seen_at": first_seen_at,
        "last_seen_at": first_seen_at,
    }


def article_from_row(row: Mapping[Any, Any]) -> Article:
    return Article(
        feed_key=row["feed_key"],
        entry_key=row["entry_key"],
        story_key=row["story_key"],
        title=row["title"],
        summary=row["summary"],
        content=row["content"],
        link=row["link"],
        canonical_url=row["canonical_url"],
        author=row["author"],
        categories=tuple(str(c) for c in row["categories"] or ()),
        published=row["published"],
        source=row["source"],
        tags=tuple(str(t) for t in row["tags"] or ()),
    )


def explanation_to_json(explanation: Explanation) -> dict[str, Any]:
    return {
        "hits": [
            {"term": h.term, "field": h.field, "start": h.start, "end": h.end}
            for h in explanation.hits
        ],
        "snippet": explanation.snippet,
        "highlights": [[start, end] for start, end in explanation.highlights],
    }


def explanation_from_json(data: Any) -> Explanation:
    """Rebuild an Explanation; missing or odd parts become empty, never errors
    (an alert with a plain snippet beats no alert)."""
    if not isinstance(data, dict):
        return Explanation()
    hits = tuple(
        Hit(term=str(h["term"]), field=str(h["field"]), start=int(h["start"]), end=int(h["end"]))
        for h in data.get("hits") or ()
        if isinstance(h, dict) and {"term", "field", "start", "end"} <= h.keys()
    )
    highlights = tuple(
        (int(pair[0]), int(pair[1]))
        for pair in data.get("highlights") or ()
        if isinstance(pair, list | tuple) and len(pair) == 2
    )
    return Explanation(hits=hits, snippet=str(data.get("snippet") or ""), highlights=highlights)


def feed_state_from_row(row: Mapping[Any, Any]) -> FeedState:
    return FeedState(
        feed_key=row["feed_key"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        next_poll_at=row["next_poll_at"],
        lease_until=row["lease_until"],
        consecutive_errors=row["consecutive_errors"],
        last_error=row["last_error"],
        last_attempt_at=row["last_attempt_at"],
        last_success_at=row["last_success_at"],
        articles=row["article_count"],
        label=row["label"],
        title=row["title"],
        active=bool(row["active"]),
        body_hash=row["body_hash"],
        interval_s=row["interval_s"],
        last_status=row["last_status"],
        status=row["status"],
        moved_to=row["moved_to"],
        failing_since=row["failing_since"],
        alerted_at=row["alerted_at"],
        host=row["host"],
    )


def feed_update_values(update: FeedUpdate) -> dict[str, Any]:
    """The columns a poll writes. Leases are released; a success resets the
    error count, a failure is counted by the caller (an expression)."""
    values: dict[str, Any] = {
        "last_attempt_at": update.at,
        "next_poll_at": update.next_poll_at,
        "lease_until": None,
        "last_error": update.error,
        "status": update.status,
    }
    if update.last_status is not None:
        values["last_status"] = update.last_status
    if update.ok:
        values.update(consecutive_errors=0, last_success_at=update.at, failing_since=None)
    for name in ("etag", "last_modified", "body_hash", "interval_s", "moved_to", "title"):
        value = getattr(update, name)
        if value is not KEEP:
            values[name] = value
    if isinstance(values.get("moved_to"), str):
        # A redirect target keeps the feed's query, which may be its token:
        # the store keeps no URL it could leak (people see it masked anyway).
        values["moved_to"] = mask_feed_url(values["moved_to"])
    if update.alerted_at is not KEEP:
        values["alerted_at"] = update.alerted_at
    return values


def pending_from_row(row: Mapping[Any, Any]) -> PendingRow:
    return PendingRow(
        id=row["id"],
        rule=row["rule"],
        channel=row["channel"],
        target_id=row["target_id"],
        story_id=row["story_id"],
        created_at=row["created_at"],
        hold_until=row["hold_until"],
        hold_reason=row["hold_reason"],
    )


def outbox_row_from_row(row: Mapping[Any, Any]) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        rule=row["rule"],
        channel=row["channel"],
        target_id=row["target_id"],
        feed_key=row["feed_key"],
        title=row["title"],
        link=row["link"],
        status=OutboxStatus(row["status"]),
        notification_id=row["notification_id"],
        created_at=row["created_at"],
        hold_until=row["hold_until"],
        hold_reason=row["hold_reason"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
        attempts=row["attempts"] or 0,
    )


def notification_row_from_row(
    row: Mapping[Any, Any],
    titles: tuple[tuple[str, str], ...] = (),
    rules: tuple[str, ...] = (),
) -> NotificationRow:
    return NotificationRow(
        id=row["id"],
        key=row["key"],
        channel=row["channel"],
        kind=NotificationKind(row["kind"]),
        status=NotificationStatus(row["status"]),
        attempts=row["attempts"],
        items=row["items"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
        titles=titles,
        rules=rules,
        period_end=row["period_end"],
        late=bool(row["late"]),
    )
