"""Politeness maths (newswatch.schedule): every function with the clock and
randomness passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from newswatch.model import Article
from newswatch.schedule import (
    HINT_CAP,
    adaptive_interval,
    alertable,
    backoff_delay,
    failure_delay,
    in_window,
    jittered,
    respect_hints,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0, 10 * M),  # no failure: the interval
        (1, 10 * M),  # first failure: the interval again
        (2, 20 * M),
        (3, 40 * M),
        (4, 80 * M),
        (6, 320 * M),
        (7, 6 * H),  # 640 min capped at max_backoff
        (50, 6 * H),  # a huge count neither overflows nor passes the cap
    ],
)
def test_backoff_doubles_per_failure_up_to_the_cap(errors: int, expected: timedelta) -> None:
    assert backoff_delay(10 * M, errors, 6 * H) == expected


def test_backoff_never_polls_a_slow_feed_sooner_for_failing() -> None:
    # A daily feed with a 6 h cap stays daily.
    assert backoff_delay(24 * H, 5, 6 * H) == 24 * H


def test_failure_delay_honours_a_longer_retry_after() -> None:
    assert failure_delay(10 * M, 1, max_backoff=6 * H, retry_after=3600.0) == H
    # A shorter Retry-After does not shorten the back-off.
    assert failure_delay(10 * M, 3, max_backoff=6 * H, retry_after=5.0) == 40 * M
    # A silly one is capped.
    assert failure_delay(10 * M, 1, max_backoff=6 * H, retry_after=1e12) == HINT_CAP


def test_jitter_stays_within_its_share_and_spreads_feeds() -> None:
    rng = random.Random(7)
    times = [jittered(NOW, 10 * M, 0.1, rng) for _ in range(50)]
    assert all(NOW + 9 * M <= t <= NOW + 11 * M for t in times)
    # Feeds sharing a host polled together now drift apart: no two alike.
    assert len(set(times)) == 50
    assert max(times) - min(times) > M


def test_no_jitter_is_exact() -> None:
    assert jittered(NOW, 10 * M, 0.0, random.Random(1)) == NOW + 10 * M


def _posts(*minutes_ago: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes_ago]


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ([], 10 * M),  # no dates: the base interval
        (_posts(5), 10 * M),  # one date says nothing about a rate
        (_posts(0, 60, 120, 180, 240), 30 * M),  # hourly posts: poll every 30 min
        (_posts(0, 2, 4, 6, 8), 5 * M),  # every 2 min: the floor
        (_posts(0, 24 * 60, 48 * 60), 6 * H),  # daily: the ceiling
        (_posts(10 * 60, 11 * 60, 12 * 60), 6 * H),  # silent for 10 h: the ceiling
        (_posts(0, 60, 61, 120, 180, 240), 30 * M),  # one burst does not dominate
        (_posts(-600, 0, 60), 30 * M),  # a future date counts as now
    ],
)
def test_adaptive_interval_follows_the_publishing_rate(
    published: list[datetime], expected: timedelta
) -> None:
    got = adaptive_interval(published, now=NOW, base=10 * M, floor=5 * M, ceiling=6 * H)
    assert got == expected


def test_adaptive_interval_clamps_its_base() -> None:
    assert adaptive_interval([], now=NOW, base=M, floor=5 * M, ceiling=6 * H) == 5 * M


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ((), 10 * M),
        ((None, None), 10 * M),
        ((30 * M,), 30 * M),  # <ttl>30</ttl>
        ((5 * M, 1800.0), 30 * M),  # max-age in seconds wins over a shorter ttl
        ((60.0,), 10 * M),  # a hint below the interval changes nothing
        ((timedelta(days=365),), HINT_CAP),  # a year of max-age is capped
        ((-5.0,), 10 * M),
    ],
)
def test_hints_are_floors(hints: tuple[timedelta | float | None, ...], expected: timedelta) -> None:
    assert respect_hints(10 * M, *hints) == expected


def _article(published: datetime | None) -> Article:
    return Article(
        feed_key="f",
        entry_key="e",
        story_key="s",
        title="t",
        summary="",
        content="",
        link="",
        canonical_url="",
        author="",
        categories=(),
        published=published,
        source="src",
    )


def test_window_is_on_publication_time_then_first_seen() -> None:
    since = NOW - 24 * H
    assert in_window(_article(NOW - H), since)
    assert not in_window(_article(datetime(2019, 1, 1, tzinfo=UTC)), since, first_seen=NOW)
    assert in_window(_article(None), since, first_seen=NOW)
    assert not in_window(_article(None), since, first_seen=NOW - 48 * H)
    assert not in_window(_article(None), since)


def test_first_poll_alerts_only_within_its_backfill() -> None:
    old, new, undated = _article(NOW - 48 * H), _article(NOW - H), _article(None)
    items = [old, new, undated]
    assert alertable(items, first_poll=True, backfill=None, now=NOW) == [False] * 3
    assert alertable(items, first_poll=True, backfill="all", now=NOW) == [True] * 3
    assert alertable(items, first_poll=True, backfill=24 * H, now=NOW) == [False, True, False]
    assert alertable(items, first_poll=False, backfill=None, now=NOW) == [True] * 3
