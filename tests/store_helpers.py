"""Values and steps the store contract tests share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from newswatch.identity import identity_keys
from newswatch.keys import group_key
from newswatch.model import (
    Article,
    DeliveryMode,
    Explanation,
    Hit,
    Match,
    Notification,
    NotificationKind,
    Route,
)
from newswatch.store import (
    KEEP,
    Compose,
    FeedSpec,
    FeedUpdate,
    IngestItem,
    IngestResult,
    SqlStore,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)

EXPLANATION = Explanation(
    hits=(Hit("russia", "summary", 0, 6), Hit("north korea", "summary", 11, 22)),
    snippet="Russia and North Korea sign a pact.",
    highlights=((0, 6), (11, 22)),
)


def article(
    entry: str,
    *,
    feed: str = "feed-a",
    story: str | None = None,
    title: str = "Title",
    url: str | None = None,
    source: str = "Korea Herald",
) -> Article:
    link = url or f"https://example.com/{story or entry}"
    return Article(
        feed_key=feed,
        entry_key=entry,
        story_key=story or f"story-{entry}",
        title=title,
        summary="Russia and North Korea sign a pact.",
        content="<p>Full text</p>",
        link=link,
        canonical_url=link,
        author="Yonhap",
        categories=("politics", "asia"),
        published=T0 - timedelta(hours=1),
        source=source,
        tags=("korea",),
    )


def item(
    a: Article,
    rules: Sequence[str] = ("r1",),
    channels: Sequence[str] = ("slack",),
    *,
    evaluated: bool = True,
    mode: DeliveryMode = DeliveryMode.IMMEDIATE,
) -> IngestItem:
    return IngestItem(
        article=a,
        matches=tuple(Match(rule, a, EXPLANATION) for rule in rules),
        routes=tuple(Route(rule, ch, mode) for rule in rules for ch in channels),
        identity_keys=identity_keys(a),
        evaluated=evaluated,
    )


def update(
    feed: str = "feed-a",
    *,
    at: datetime = T0,
    ok: bool = True,
    etag: str | None = '"v1"',
    error: str | None = None,
    status: int | None = 200,
) -> FeedUpdate:
    return FeedUpdate(
        feed,
        at,
        at + 10 * MIN,
        ok=ok,
        error=error,
        etag=etag if ok else KEEP,
        last_modified=None if ok else KEEP,
        last_status=status,
        status="ok" if ok else "failing",
    )


def ingest(
    store: SqlStore,
    items: Sequence[IngestItem],
    feed: str = "feed-a",
    at: datetime = T0,
    seen_again: Sequence[str] = (),
) -> IngestResult:
    return store.ingest(update(feed, at=at), items, seen_again=seen_again)


def counts(result: IngestResult) -> tuple[int, int, int]:
    return (result.new_articles, result.new_matches, result.new_outbox)


def specs(*keys: str) -> list[FeedSpec]:
    return [FeedSpec(key=k, label=k.upper(), host=f"{k}.example.org") for k in keys]


def compose_each(store: SqlStore, at: datetime) -> list[int]:
    """Compose every pending immediate row into its own notification (one
    per story), as the planner would without grouping."""
    rows = store.pending_due(at, 10_000)
    by_story: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        by_story.setdefault((row.channel, row.story_id), []).append(row.id)
    decisions = [
        Compose(
            channel=channel,
            kind=NotificationKind.ALERT,
            row_ids=tuple(ids),
            key=group_key(channel, ids),
            target_id=f"{channel}:immediate",
        )
        for (channel, _), ids in sorted(by_story.items())
    ]
    return store.apply(decisions, at)


def claim(store: SqlStore, at: datetime, limit: int = 10) -> list[Notification]:
    return store.claim_notifications(at, at + MIN, limit)


def race(workers: Sequence[Callable[[], list[str | int]]]) -> list[str | int]:
    """Run workers at once in threads; return everything they claimed."""
    barrier = threading.Barrier(len(workers))
    results: list[list[str | int]] = [[] for _ in workers]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = workers[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [x for r in results for x in r]
