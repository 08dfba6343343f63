"""Sample notifications for the notify tests (the seed story: Russia and North Korea)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from newswatch.model import (
    Article,
    Explanation,
    Hit,
    Item,
    Match,
    Notification,
    NotificationKind,
    Outlet,
    Period,
)

T0 = datetime(2024, 6, 19, 9, 0, tzinfo=UTC)

TITLE = "Putin arrives in Pyongyang as Russia and North Korea deepen ties"
SNIPPET = "Russian President Vladimir Putin arrived in North Korea early Wednesday"
# "Russia" (prefix of "Russian") and "North Korea"
HIGHLIGHTS = ((0, 6), (44, 55))


def article(**changes: Any) -> Article:
    base = Article(
        feed_key="https://www.koreaherald.com/rss/national",
        entry_key="20240619000123",
        story_key="story-putin-pyongyang",
        title=TITLE,
        summary=(
            "Russian President Vladimir Putin arrived in North Korea early Wednesday "
            "for a two-day state visit, his first in 24 years, as the two countries "
            "deepen military cooperation amid the war in Ukraine."
        ),
        content="",
        link="https://www.koreaherald.com/view.php?ud=20240619000123",
        canonical_url="https://www.koreaherald.com/view.php?ud=20240619000123",
        author="Yonhap",
        categories=("North Korea",),
        published=datetime(2024, 6, 18, 23, 30, tzinfo=UTC),
        source="Korea Herald National",
        tags=("korea",),
    )
    return dataclasses.replace(base, **changes)


def explanation(snippet: str = SNIPPET, highlights: Any = HIGHLIGHTS) -> Explanation:
    return Explanation(
        hits=(
            Hit("russia", "summary", 0, 6),
            Hit("north korea", "summary", 44, 55),
        ),
        snippet=snippet,
        highlights=tuple(highlights),
    )


def item(
    outbox_id: int = 1,
    *,
    rules: tuple[str, ...] = ("russia-north-korea",),
    story_id: int | None = None,
    also: tuple[Outlet, ...] = (),
    **article_changes: Any,
) -> Item:
    return Item(
        story_id=outbox_id if story_id is None else story_id,
        article=article(**article_changes),
        rules=rules,
        explanation=explanation(),
        matched_at=T0,
        also=also,
        outbox_ids=(outbox_id,),
    )


def notification(
    *items: Item,
    id: int = 1,
    channel: str = "desk",
    kind: NotificationKind | None = None,
    attempt: int = 1,
    period: Period | None = None,
    reason: str | None = None,
    more: int = 0,
    parts_sent: int = 0,
) -> Notification:
    """A notification of ``items`` (one sample item if none); its kind is
    ``alert`` for one item and ``group`` for more, unless given."""
    items = items or (item(),)
    if kind is None:
        kind = NotificationKind.ALERT if len(items) == 1 else NotificationKind.GROUP
    return Notification(
        id=id,
        key=f"nw-{id}-{channel}",
        channel=channel,
        kind=kind,
        items=items,
        created_at=T0,
        attempt=attempt,
        period=period,
        reason=reason,
        more=more,
        parts_sent=parts_sent,
    )


def alert(outbox_id: int = 1, *, attempt: int = 1, **article_changes: Any) -> Notification:
    """A one-item notification (kind ``alert``)."""
    return notification(item(outbox_id, **article_changes), id=outbox_id, attempt=attempt)


def many(
    n: int, *, kind: NotificationKind = NotificationKind.DIGEST, **changes: Any
) -> Notification:
    """``n`` distinct stories in one notification (a digest by default)."""
    items = tuple(
        item(
            i,
            title=f"Story {i}: {TITLE}",
            link=f"https://www.koreaherald.com/view.php?ud=2024061900{i:04d}",
        )
        for i in range(1, n + 1)
    )
    period = (
        Period(T0, T0.replace(hour=23), "daily 08:00") if kind is NotificationKind.DIGEST else None
    )
    return notification(*items, kind=kind, period=period, **changes)


def match(rule: str = "russia-north-korea", **article_changes: Any) -> Match:
    return Match(rule=rule, article=article(**article_changes), explanation=explanation())
