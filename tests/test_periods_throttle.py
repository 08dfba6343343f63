"""Throttles: parsing, and the sliding-window decision at its edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.periods import Throttle, parse_throttle, throttle_slot

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("spec", "limit", "window", "canonical"),
    [
        ("10/h", 10, s(3600), "10/h"),
        ("10/1h", 10, s(3600), "10/h"),
        ("5/10m", 5, s(600), "5/10m"),
        ("100/d", 100, s(86400), "100/d"),
        ("3/30s", 3, s(30), "3/30s"),
        (" 10 / 2H ", 10, s(7200), "10/2h"),
        ("1/60m", 1, s(3600), "1/h"),
        ("4/90s", 4, s(90), "4/90s"),
    ],
)
def test_parse(spec: str, limit: int, window: timedelta, canonical: str) -> None:
    throttle = parse_throttle(spec)
    assert throttle == Throttle(limit, window)
    assert str(throttle) == canonical
    assert parse_throttle(str(throttle)) == throttle


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10", "'10': expected N/period such as 10/h, 5/10m or 100/d"),
        ("10/x", "'10/x': expected N/period"),
        ("h/10", "expected N/period"),
        ("-1/h", "expected N/period"),
        ("1.5/h", "expected N/period"),
        ("0/h", "'0/h': the limit must be at least 1"),
        ("10/0m", "'10/0m': the period must be longer than zero"),
        ("", "'': expected N/period"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_throttle(spec)


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Throttle(0, s(60))
    with pytest.raises(ValueError, match="longer than zero"):
        Throttle(1, s(0))


THREE_A_MINUTE = Throttle(3, s(60))


@pytest.mark.parametrize(
    ("sent", "now", "slot"),
    [
        ([], T0, None),
        ([T0 - s(50), T0 - s(10)], T0, None),  # two of three used
        ([T0 - s(50), T0 - s(30), T0 - s(10)], T0, T0 + s(10)),  # full: the oldest frees
        ([T0 - s(10), T0 - s(50), T0 - s(30)], T0, T0 + s(10)),  # order does not matter
        # A send exactly one window ago no longer counts; a microsecond later it does.
        ([T0 - s(60), T0 - s(30), T0 - s(10)], T0, None),
        ([T0 - s(60) + US, T0 - s(30), T0 - s(10)], T0, T0 + US),
        # and the slot it names is the first instant a send may go
        ([T0 - s(50), T0 - s(30), T0 - s(10)], T0 + s(10), None),
        ([T0 - s(50), T0 - s(30), T0 - s(10)], T0 + s(10) - US, T0 + s(10)),
        # over the limit (sent before a reload lowered it): wait for enough to leave
        ([T0 - s(55), T0 - s(50), T0 - s(40), T0 - s(30), T0 - s(20)], T0, T0 + s(20)),
        # a replica's clock ahead: its send counts too
        ([T0 - s(50), T0 - s(30), T0 + s(5)], T0, T0 + s(10)),
        # history beyond the window is ignored
        ([T0 - s(500), T0 - s(400), T0 - s(300), T0 - s(10)], T0, None),
    ],
)
def test_slot(sent: list[datetime], now: datetime, slot: datetime | None) -> None:
    assert throttle_slot(THREE_A_MINUTE, sent, now) == slot


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        throttle_slot(THREE_A_MINUTE, [], datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="sent_times must be timezone-aware"):
        throttle_slot(THREE_A_MINUTE, [datetime(2026, 6, 1)], T0)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 6),
    window_s=st.integers(1, 600),
    arrivals=st.lists(st.integers(0, 3600 * 1000), min_size=1, max_size=80),
)
def test_a_sender_obeying_it_never_exceeds_and_never_idles(
    limit: int, window_s: int, arrivals: list[int]
) -> None:
    """Items arrive at random (millisecond) times, in order; each goes at
    once if throttle_slot allows, else it is held until the slot it names."""
    throttle = Throttle(limit, s(window_s))
    queue = sorted(T0 + timedelta(milliseconds=a) for a in arrivals)
    sent: list[datetime] = []
    clock = T0
    for arrival in queue:
        clock = max(clock, arrival)
        while (slot := throttle_slot(throttle, sent, clock)) is not None:
            assert slot > clock
            clock = slot
        sent.append(clock)
    for i, t in enumerate(sent):
        assert len([u for u in sent[i:] if u < t + throttle.window]) <= limit
        # Each went at the first instant it could: on arrival, after the one
        # before it, or as the send `limit` places back left the window.
        earliest = max(queue[i], sent[i - 1] if i else T0)
        if i >= limit:
            earliest = max(earliest, sent[i - limit] + throttle.window)
        assert t == earliest
