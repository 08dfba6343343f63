"""Retry pacing (pure): exponential, jittered, capped; Retry-After wins."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from newswatch.notify.retry import (
    BASE_DELAY,
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_RETRY_AFTER,
    MIN_DELAY,
    backoff_ceiling,
    next_attempt_at,
    parse_retry_after,
    retry_window,
)

NOW = datetime(2024, 6, 19, 9, 0, tzinfo=UTC)


def delays(attempt: int, samples: int = 200, seed: int = 1) -> list[timedelta]:
    rng = random.Random(seed)
    return [next_attempt_at(attempt, NOW, rng=rng) - NOW for _ in range(samples)]


def test_ceiling_doubles_from_base_then_caps() -> None:
    assert backoff_ceiling(1) == BASE_DELAY
    assert backoff_ceiling(2) == BASE_DELAY * 2
    assert backoff_ceiling(3) == BASE_DELAY * 4
    assert backoff_ceiling(10) == MAX_DELAY
    assert backoff_ceiling(10_000) == MAX_DELAY
    assert backoff_ceiling(0) == BASE_DELAY  # nonsense input stays sane


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 12, MAX_ATTEMPTS, 500])
def test_jitter_is_bounded_between_half_and_all_of_the_ceiling(attempt: int) -> None:
    ceiling = backoff_ceiling(attempt)
    for delay in delays(attempt):
        assert ceiling / 2 <= delay <= ceiling
        assert delay <= MAX_DELAY


def test_jitter_spreads_rows_that_failed_together() -> None:
    assert len(set(delays(6))) > 150


def test_backoff_grows_with_attempts() -> None:
    means = [sum(delays(a), timedelta()) / 200 for a in range(1, 9)]
    assert means == sorted(means)
    # Non-overlapping ranges: every draw of attempt n+1 is at least every draw of n - 1 ... n.
    for attempt in range(1, 8):
        assert min(delays(attempt + 1)) >= max(delays(attempt)) / 2


def test_deterministic_for_a_seeded_rng() -> None:
    assert delays(4, seed=7) == delays(4, seed=7)


def test_retry_after_wins_with_a_little_positive_spread() -> None:
    rng = random.Random(3)
    for seconds in (0.0, 5.0, 120.0, 3 * 3600.0):
        when = next_attempt_at(1, NOW, rng=rng, retry_after=seconds)
        wait = when - NOW
        assert wait >= max(timedelta(seconds=seconds), MIN_DELAY)
        assert wait <= timedelta(seconds=seconds * 1.1 + 60) + MIN_DELAY
    # Longer than the backoff would have waited: still honoured.
    assert next_attempt_at(1, NOW, rng=rng, retry_after=600) - NOW >= timedelta(seconds=600)


def test_retry_after_is_capped() -> None:
    rng = random.Random(3)
    for huge in (7 * 86400.0, float("inf")):
        wait = next_attempt_at(1, NOW, rng=rng, retry_after=huge) - NOW
        assert MAX_RETRY_AFTER <= wait <= MAX_RETRY_AFTER + timedelta(minutes=1)
    # NaN and negative values are ignored: plain backoff.
    for bad in (float("nan"), -5.0):
        assert next_attempt_at(1, NOW, rng=rng, retry_after=bad) - NOW <= BASE_DELAY


def test_max_attempts_covers_an_overnight_outage() -> None:
    shortest, longest = retry_window()
    assert shortest >= timedelta(hours=12)
    assert longest <= timedelta(hours=26)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Wed, 19 Jun 2024 09:02:00 GMT", 120.0),
        ("Wed, 19 Jun 2024 08:00:00 GMT", 0.0),  # in the past
        ("-3", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
