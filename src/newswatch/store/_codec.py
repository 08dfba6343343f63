"""Frozen values <-> table rows. Pure: no connection, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from newswatch.model import Alert, Article, Explanation, Hit
from newswatch.store.base import FeedState, OutboxRow, OutboxStatus


def article_values(article: Article, first_seen_at: datetime) -> dict[str, Any]:
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


def feed_state_from_row(row: Mapping[Any, Any], articles: int) -> FeedState:
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
        articles=articles,
    )


def outbox_row_from_row(row: Mapping[Any, Any]) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        rule=row["rule"],
        channel=row["channel"],
        feed_key=row["feed_key"],
        title=row["title"],
        link=row["link"],
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
    )


def alert_from_row(row: Mapping[Any, Any]) -> Alert:
    """An Alert from a ``_queries.alerts`` row."""
    return Alert(
        outbox_id=row["outbox_id"],
        rule=row["outbox_rule"],
        channel=row["outbox_channel"],
        article=article_from_row(row),
        explanation=explanation_from_json(row["explanation"]),
        # A route without a stored match (not expected) still gets sent.
        matched_at=row["matched_at"] or row["outbox_created_at"],
        attempt=row["outbox_attempts"],
    )
