"""Pacing: token buckets on an injected clock (nothing sleeps), and the
per-platform defaults held to each platform's published limits."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newswatch.notify.pacing import (
    PLATFORM_PACING,
    PUBLISHED_LIMITS,
    Bucket,
    BucketState,
    Window,
    full,
    pacing_for,
    take,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BURST = 500
US = timedelta(microseconds=1)


def reserve_all_at_once(bucket: Bucket, n: int) -> list[datetime]:
    """A deliverer that queues n requests at T0 and schedules each at T0 + wait."""
    state, times = full(bucket, T0), []
    for _ in range(n):
        state, wait = take(bucket, state, T0)
        times.append(T0 + wait)
    return times


def one_after_another(bucket: Bucket, n: int) -> list[datetime]:
    """A deliverer that takes a token, waits, sends, then takes the next."""
    state, clock, times = full(bucket, T0), T0, []
    for _ in range(n):
        state, wait = take(bucket, state, clock)
        clock += wait
        times.append(clock)
    return times


def max_in_window(times: list[datetime], window: timedelta) -> int:
    """The most requests in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def drains(limit: Bucket, times: list[datetime]) -> bool:
    """Whether a service running ``limit`` as its own token bucket (starting
    full) accepts every request at these times."""
    tokens, last = float(limit.burst), T0
    for t in sorted(times):
        tokens = min(float(limit.burst), tokens + (t - last).total_seconds() * limit.per_second)
        last = t
        if tokens < 1 - 1e-9:
            return False
        tokens -= 1
    return True


def theory(bucket: Bucket, n: int) -> timedelta:
    """From a full bucket, request k (k > burst) goes (k - burst) / rate later."""
    return timedelta(seconds=max(0, n - bucket.burst) / bucket.per_second)


def test_the_refill_interval_is_rounded_up_exactly() -> None:
    assert Bucket(rate=3, per=timedelta(seconds=1), burst=1).interval == timedelta(
        microseconds=333_334
    )
    assert Bucket(rate=24, per=timedelta(minutes=1), burst=5).interval == timedelta(seconds=2.5)
    assert Bucket(rate=0.1, per=timedelta(seconds=1), burst=1).interval == timedelta(seconds=10)


@pytest.mark.parametrize("platform", sorted(PLATFORM_PACING))
@pytest.mark.parametrize("drive", [reserve_all_at_once, one_after_another])
def test_a_burst_of_500_never_trips_the_platform(
    platform: str, drive: Callable[[Bucket, int], list[datetime]]
) -> None:
    bucket = PLATFORM_PACING[platform]
    times = drive(bucket, BURST)
    assert len(times) == BURST
    assert times == sorted(times)
    assert sum(t == T0 for t in times) == bucket.burst  # the burst goes at once
    for limit in PUBLISHED_LIMITS[platform]:
        if isinstance(limit, Window):
            assert max_in_window(times, limit.per) <= limit.count, limit
        else:
            assert drains(limit, times), limit
    # Total time is the theory's: (N - burst) refill intervals, each the exact
    # 1/rate rounded up to a microsecond.
    total = times[-1] - T0
    assert total == (BURST - bucket.burst) * bucket.interval
    assert theory(bucket, BURST) <= total <= theory(bucket, BURST) + BURST * US


def test_discord_timeline_by_hand() -> None:
    times = reserve_all_at_once(PLATFORM_PACING["discord"], 8)
    assert [(t - T0).total_seconds() for t in times] == [0, 0, 0, 0, 0, 2.5, 5.0, 7.5]


def test_every_platform_has_its_sources_and_unpaced_kinds_have_none() -> None:
    assert set(PLATFORM_PACING) == set(PUBLISHED_LIMITS)
    assert set(PLATFORM_PACING) == {"discord", "telegram", "slack", "teams", "matrix", "ntfy"}
    for kind in ["webhook", "email", "console", "apprise", "unknown"]:
        assert pacing_for(kind) is None
    assert pacing_for("slack") is PLATFORM_PACING["slack"]


def test_waits_are_rounded_up_never_early() -> None:
    thirds = Bucket(rate=3, per=timedelta(seconds=1), burst=1)
    state = full(thirds, T0)
    state, _ = take(thirds, state, T0)
    waits = []
    for _ in range(3):
        state, wait = take(thirds, state, T0)
        waits.append(wait)
    assert waits == [timedelta(microseconds=m) for m in (333_334, 666_668, 1_000_002)]


def test_idle_refills_to_the_burst_and_no_more() -> None:
    bucket = Bucket(rate=1, per=timedelta(seconds=1), burst=3)
    state = full(bucket, T0)
    for _ in range(3):
        state, wait = take(bucket, state, T0)
        assert wait == timedelta(0)
    state, wait = take(bucket, state, T0)
    assert wait == timedelta(seconds=1)
    later = T0 + timedelta(hours=1)
    for _ in range(3):
        state, wait = take(bucket, state, later)
        assert wait == timedelta(0)
    state, wait = take(bucket, state, later)
    assert wait == timedelta(seconds=1)


def test_a_state_from_the_future_is_waited_for() -> None:
    bucket = Bucket(rate=1, per=timedelta(seconds=2), burst=1)
    ahead = BucketState(tokens=0.0, at=T0 + timedelta(seconds=10))
    state, wait = take(bucket, ahead, T0)
    assert wait == timedelta(seconds=12)
    assert state == BucketState(tokens=-1.0, at=T0 + timedelta(seconds=10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0, "per": timedelta(seconds=1), "burst": 1}, "rate must be a positive"),
        ({"rate": math.inf, "per": timedelta(seconds=1), "burst": 1}, "rate must be a positive"),
        ({"rate": 1, "per": timedelta(0), "burst": 1}, "period must be longer than zero"),
        ({"rate": 1, "per": timedelta(seconds=1), "burst": 0}, "burst must be at least 1"),
    ],
)
def test_bad_buckets(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bucket(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.01, 50),
    per_s=st.integers(1, 120),
    burst=st.integers(1, 20),
    steps=st.lists(st.integers(-5_000_000, 20_000_000), min_size=1, max_size=60),
)
# Found by this test when waits were float seconds rounded up one by one: two
# requests went 27.999999 s apart in a bucket of one per 28 s.
@example(rate=1.0, per_s=28, burst=1, steps=[0, 0, 47, 0])
def test_waits_are_never_negative_and_the_bound_holds(
    rate: float, per_s: int, burst: int, steps: list[int]
) -> None:
    """Requests come at random, even with the clock stepping back; each goes
    after its wait, and no window holds more than burst + ceil(r * W) - 1."""
    bucket = Bucket(rate=rate, per=timedelta(seconds=per_s), burst=burst)
    state, clock, times = full(bucket, T0), T0, []
    for step in steps:
        clock += timedelta(microseconds=step)
        state, wait = take(bucket, state, clock)
        assert wait >= timedelta(0)
        times.append(clock + wait)
    window = timedelta(seconds=per_s)
    bound = burst + math.ceil(Fraction(rate)) - 1  # exact: the window is the bucket's period
    assert max_in_window(times, window) <= bound
