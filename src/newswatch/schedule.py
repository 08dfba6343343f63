"""When to poll a feed next, and which entries a poll may alert on.

Pure functions of their inputs: the clock and randomness are passed in.
The politeness rules, in order of strength:

1. A server's word wins: Retry-After (429/503) and Cache-Control max-age,
   the feed's ``<ttl>`` and ``sy:updatePeriod`` are floors the interval
   never goes below (``respect_hints``).
2. A feed with ``every:`` is polled at that interval; one without adapts to
   how often it really publishes (``adaptive_interval``), between
   ``poll.min_interval`` and ``poll.max_interval``.
3. A failing feed backs off exponentially, capped (``backoff_delay``); it is
   never given up on without a clear status (410 Gone is ``gone``).
4. Every next poll is spread by a random share of its delay (``jittered``),
   so feeds added together, and feeds sharing a host, drift apart.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, Literal

from newswatch.model import Article

# A feed failing this many times in a row is polled at the longest back-off
# interval; the count is still recorded so `newswatch feeds` shows it.
MAX_BACKOFF_EXPONENT: Final = 10
# The adaptive interval polls this many times per typical gap between two
# posts: a story then waits a quarter of a gap on average, and a feed that
# posts hourly is fetched every 30 minutes, not every 5.
POLLS_PER_POST: Final = 2
# Gaps between the newest this-many posts estimate the publishing rate:
# recent enough to follow a change of pace, enough to ignore one burst.
RATE_SAMPLE: Final = 10
# A server hint (max-age, ttl, Retry-After) above this is read as this: a
# max-age of a year (static hosting defaults) must not stop a news feed.
HINT_CAP: Final = timedelta(days=1)


def backoff_delay(interval: timedelta, errors: int, max_backoff: timedelta) -> timedelta:
    """The delay after ``errors`` consecutive failures: the interval doubled
    per failure after the first, capped at ``max_backoff`` but never below
    the interval itself (a feed polled daily is not polled sooner for failing)."""
    if errors <= 0:
        return interval
    backoff = interval * (1 << min(errors - 1, MAX_BACKOFF_EXPONENT))
    return max(interval, min(backoff, max_backoff))


def jittered(now: datetime, delay: timedelta, jitter: float, rng: random.Random) -> datetime:
    """``now + delay``, moved by up to ``jitter`` of the delay either way."""
    spread = delay.total_seconds() * jitter
    offset = rng.uniform(-spread, spread) if spread > 0 else 0.0
    return now + delay + timedelta(seconds=offset)


def adaptive_interval(
    published: Sequence[datetime],
    *,
    now: datetime,
    base: timedelta,
    floor: timedelta,
    ceiling: timedelta,
) -> timedelta:
    """How often to poll a feed whose posts carry these publication times.

    Half the median gap between the newest ``RATE_SAMPLE`` distinct times
    (``POLLS_PER_POST``), within [floor, ceiling]. A feed silent for longer
    than the ceiling is polled at the ceiling; one with fewer than two dates
    at ``base`` (clamped too). Future dates (clock skew, scheduled posts)
    count as now.
    """
    times = sorted({min(t, now) for t in published}, reverse=True)[:RATE_SAMPLE]
    if len(times) < 2:
        return _clamp(base, floor, ceiling)
    if now - times[0] > ceiling:
        return ceiling
    gaps = sorted(a - b for a, b in itertools.pairwise(times))
    middle = len(gaps) // 2
    median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    return _clamp(median / POLLS_PER_POST, floor, ceiling)


def respect_hints(interval: timedelta, *hints: timedelta | float | None) -> timedelta:
    """``interval``, raised to the largest server hint (a timedelta, or
    seconds as a float), each hint capped at ``HINT_CAP``."""
    best = interval
    for hint in hints:
        if hint is None:
            continue
        value = hint if isinstance(hint, timedelta) else timedelta(seconds=max(0.0, hint))
        best = max(best, min(value, HINT_CAP))
    return best


def failure_delay(
    interval: timedelta,
    errors: int,
    *,
    max_backoff: timedelta,
    retry_after: float | None,
) -> timedelta:
    """The delay after a failed poll: the back-off, or the server's
    Retry-After when that is longer (429/503 ask us to wait)."""
    return respect_hints(backoff_delay(interval, errors, max_backoff), retry_after)


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, max(low, high)))


# --------------------------------------------------------------------------- alerts

Backfill = timedelta | Literal["all"] | None


def in_window(article: Article, since: datetime, first_seen: datetime | None = None) -> bool:
    """Whether an article belongs to a window starting at ``since``: by its
    publication time, or by when it was first seen when it has none. A post
    from 2019 found today is not "in the last 24 hours"."""
    when = article.published or first_seen
    return when is not None and when >= since


def alertable(
    articles: Sequence[Article],
    *,
    first_poll: bool,
    backfill: Backfill,
    now: datetime,
) -> list[bool]:
    """Which new articles may alert.

    A feed's first poll only records what it holds (no flood), unless the
    feed asks for a backfill: ``all`` of it, or the entries published within
    a window. Entries without a date count as published now on a first poll
    only with ``backfill: all`` (we cannot tell their age).
    """
    if not first_poll:
        return [True] * len(articles)
    if backfill is None:
        return [False] * len(articles)
    if backfill == "all":
        return [True] * len(articles)
    cutoff = now - backfill
    return [a.published is not None and a.published >= cutoff for a in articles]
