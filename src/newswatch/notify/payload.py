"""The JSON a webhook receives (and the console prints in json format):
schema version 1, documented in docs/webhook.md. Pure.

Values are the feed's text as is (a JSON string cannot inject anything);
a receiver that renders them must escape them for its own markup.
"""

from __future__ import annotations

from typing import Any

from newswatch.model import Item, Notification
from newswatch.notify.text import SUMMARY_MAX, truncate

SCHEMA_VERSION = 1


def _item(item: Item) -> dict[str, Any]:
    article = item.article
    return {
        "story_id": item.story_id,
        "rules": list(item.rules),
        "title": article.title,
        "link": article.link,
        "source": article.source,
        "author": article.author,
        "published": article.published.isoformat() if article.published else None,
        "summary": truncate(" ".join(article.summary.split()), SUMMARY_MAX),
        "matched_terms": list(item.explanation.terms),
        "snippet": item.explanation.snippet,
        "highlights": [list(span) for span in item.explanation.highlights],
        "matched_at": item.matched_at.isoformat(),
        "also": [
            {
                "source": o.source,
                "title": o.title,
                "link": o.link,
                "published": o.published.isoformat() if o.published else None,
            }
            for o in item.also
        ],
    }


def notification_payload(notification: Notification) -> dict[str, Any]:
    """The webhook body for ``notification`` (schema version 1)."""
    period = notification.period
    return {
        "version": SCHEMA_VERSION,
        "id": notification.key,
        "kind": notification.kind.value,
        "channel": notification.channel,
        "created_at": notification.created_at.isoformat(),
        "attempt": notification.attempt,
        "period": None
        if period is None
        else {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "schedule": period.schedule,
            "late": period.late,
        },
        "reason": notification.reason,
        "more": notification.more,
        "rules": list(notification.rules),
        "items": [_item(item) for item in notification.items],
    }
