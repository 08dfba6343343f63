"""When to poll a feed next, and which entries a poll should alert on.

Pure functions of their inputs: the clock and randomness are passed in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from newswatch.model import Article

# A feed failing this many times in a row is polled at the longest back-off
# interval; the count is still recorded so `newswatch feeds` shows it.
MAX_BACKOFF_EXPONENT = 10


def next_poll_at(
    now: datetime,
    interval: timedelta,
    *,
    errors: int,
    jitter: float,
    max_backoff: timedelta,
    rng: random.Random,
) -> datetime:
    """The next poll time: the interval, doubled for each consecutive error
    (capped at ``max_backoff``, but never below the interval), spread by up to
    ``jitter`` of itself so feeds added together drift apart."""
    delay = interval
    if errors > 0:
        backoff = interval * (2 ** min(errors - 1, MAX_BACKOFF_EXPONENT))
        delay = max(interval, min(backoff, max_backoff))
    spread = delay.total_seconds() * jitter
    return now + delay + timedelta(seconds=rng.uniform(-spread, spread) if spread else 0.0)


Backfill = timedelta | Literal["all"] | None


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
