"""When to try a failed delivery again. Pure: the clock and randomness are passed in.

Backoff is exponential with "equal jitter": the n-th retry waits a uniformly
random time between half and all of ``min(cap, base * 2**(n-1))``. Jitter
spreads the retries of many rows that failed together (a channel that was
down) so they do not return in lockstep. Unlike "full jitter" (0 .. ceiling),
the half-ceiling floor gives every row a guaranteed minimum retry window,
which is what ``MAX_ATTEMPTS`` is sized against. Decorrelated jitter would
need the previous delay persisted; the attempt count is all the outbox keeps.

A service's ``Retry-After`` wins over the backoff (it knows its own limits),
plus a little jitter so rows throttled together do not come back together,
but it is capped so a bogus value cannot park an alert for days.
"""

from __future__ import annotations

import email.utils
import math
import random
from datetime import datetime, timedelta

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
# A service asking for more than this is more likely misconfigured than right;
# we come back after 6 hours and it can tell us again.
MAX_RETRY_AFTER = timedelta(hours=6)
# Never hammer a service that says "Retry-After: 0".
MIN_DELAY = timedelta(seconds=1)
# Retry-After is honoured as a lower bound; up to this fraction (and at most a
# minute) is added on top so throttled rows spread out.
RETRY_AFTER_SPREAD = 0.1

# Attempts (the first send included) before a row becomes a dead letter.
# With the schedule above, 32 attempts span at least 12.5 hours and at most
# 25 hours (see ``retry_window``): a channel that is down overnight still gets
# every alert when it comes back. Past that an "immediate" alert is stale and
# a person should look: dead letters keep their last error, are listed by
# ``newswatch outbox --status dead`` and can be retried from the CLI.
MAX_ATTEMPTS = 32


def backoff_ceiling(
    attempt: int, *, base: timedelta = BASE_DELAY, cap: timedelta = MAX_DELAY
) -> timedelta:
    """The longest wait after failed attempt number ``attempt`` (1-based)."""
    exponent = min(max(attempt, 1) - 1, 32)  # 2**32 * base is far past any cap
    return min(cap, base * (1 << exponent))


def next_attempt_at(
    attempt: int,
    now: datetime,
    *,
    rng: random.Random,
    retry_after: float | None = None,
    base: timedelta = BASE_DELAY,
    cap: timedelta = MAX_DELAY,
) -> datetime:
    """When to try again after attempt number ``attempt`` (1-based) failed at ``now``."""
    if retry_after is not None and retry_after >= 0:  # NaN fails this test too
        wait = timedelta(seconds=min(retry_after, MAX_RETRY_AFTER.total_seconds()))
        spread = min(wait * RETRY_AFTER_SPREAD, timedelta(minutes=1))
        return now + max(wait + spread * rng.random(), MIN_DELAY)
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    wait = ceiling / 2 + (ceiling / 2) * rng.random()
    return now + max(wait, MIN_DELAY)


def retry_window(
    attempts: int = MAX_ATTEMPTS, *, base: timedelta = BASE_DELAY, cap: timedelta = MAX_DELAY
) -> tuple[timedelta, timedelta]:
    """(shortest, longest) time from the first to the last of ``attempts`` attempts."""
    longest = sum((backoff_ceiling(n, base=base, cap=cap) for n in range(1, attempts)), timedelta())
    return longest / 2, longest


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """An HTTP ``Retry-After`` (delay-seconds or HTTP-date) as seconds from ``now``.

    None when absent or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT
        when = when.replace(tzinfo=now.tzinfo)
    return max(0.0, (when - now).total_seconds())
