"""Sample alerts for the notify tests (the seed story: Russia and North Korea)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from newswatch.model import Alert, Article, Explanation, Hit, Match

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


def alert(
    outbox_id: int = 1,
    *,
    rule: str = "russia-north-korea",
    channel: str = "desk",
    attempt: int = 1,
    **article_changes: Any,
) -> Alert:
    return Alert(
        outbox_id=outbox_id,
        rule=rule,
        channel=channel,
        article=article(**article_changes),
        explanation=explanation(),
        matched_at=T0,
        attempt=attempt,
    )


def match(rule: str = "russia-north-korea", **article_changes: Any) -> Match:
    return Match(rule=rule, article=article(**article_changes), explanation=explanation())
