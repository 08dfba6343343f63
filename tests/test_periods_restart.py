"""A daemon that wakes at random instants and is down for random spans sends
each digest period once and misses none, except that fire times passed while
it was down become one late digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.periods import Schedule, missed_fire, next_fire, parse_schedule, previous_fire

BERLIN = ZoneInfo("Europe/Berlin")
SEOUL = ZoneInfo("Asia/Seoul")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_on_time_late_and_nothing_owed() -> None:
    daily = parse_schedule("daily 08:00")
    eight = utc(2026, 6, 1, 6, 0)  # 08:00 CEST
    before = utc(2026, 5, 31, 6, 0)
    assert missed_fire(daily, BERLIN, before, eight - timedelta(seconds=1)) is None
    assert missed_fire(daily, BERLIN, before, eight) == eight  # due exactly at the fire time
    assert missed_fire(daily, BERLIN, eight, eight) is None  # and sent: nothing more
    assert missed_fire(daily, BERLIN, eight, eight + timedelta(hours=23)) is None


def test_down_over_several_fires_owes_one_digest() -> None:
    daily = parse_schedule("daily 08:00")
    last_sent = utc(2026, 6, 1, 6, 0)
    back_up = utc(2026, 6, 4, 12, 0)  # missed 2, 3 and 4 June
    assert missed_fire(daily, BERLIN, last_sent, back_up) == utc(2026, 6, 4, 6, 0)


def test_never_sent_owes_the_latest_fire() -> None:
    daily = parse_schedule("daily 08:00")
    assert missed_fire(daily, SEOUL, None, utc(2026, 6, 1, 0, 0)) == utc(2026, 5, 31, 23, 0)


def test_a_replica_ahead_of_us() -> None:
    daily = parse_schedule("daily 08:00")
    assert missed_fire(daily, SEOUL, utc(2026, 6, 2, 23, 0), utc(2026, 6, 2, 22, 59)) is None


def test_naive_times_are_refused() -> None:
    daily = parse_schedule("daily 08:00")
    with pytest.raises(ValueError, match="last_sent_period_end must be timezone-aware"):
        missed_fire(daily, SEOUL, datetime(2026, 6, 1), utc(2026, 6, 2))
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        missed_fire(daily, SEOUL, None, datetime(2026, 6, 2))


SPAN_START = utc(2026, 3, 26, 0, 0)  # Thursday before Berlin's spring-forward
SPAN = timedelta(days=5)
SCHEDULES = ["hourly", "every 4h", "daily 02:30", "weekdays 09:00", "every 30m"]
# Mostly short naps between wakes, sometimes the daemon is down for hours or days.
gaps = st.one_of(
    *[st.integers(1, 900)] * 19,
    st.integers(3600, 12 * 3600),
).map(lambda s: timedelta(seconds=s))


@settings(max_examples=60, deadline=None)
@given(
    spec=st.sampled_from(SCHEDULES),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Seoul"]),
    first_wake=st.integers(0, 86400).map(lambda s: SPAN_START + timedelta(seconds=s)),
    wake_gaps=st.lists(gaps, min_size=200, max_size=600),
)
def test_restarts_send_each_period_once(
    spec: str, zone: str, first_wake: datetime, wake_gaps: list[timedelta]
) -> None:
    schedule, tz = parse_schedule(spec), ZoneInfo(zone)
    wakes = [first_wake]
    for gap in wake_gaps:
        if wakes[-1] + gap > SPAN_START + SPAN:
            break
        wakes.append(wakes[-1] + gap)

    # The ledger holds the digest sent before the simulation began.
    last_sent: datetime | None = previous_fire(schedule, tz, first_wake)
    sent: list[tuple[datetime, datetime]] = []  # (fire time, sent at)
    for now in wakes:
        fire = missed_fire(schedule, tz, last_sent, now)
        if fire is not None:
            sent.append((fire, now))
            last_sent = fire

    expected = _expected(schedule, tz, wakes)
    assert [fire for fire, _ in sent] == [fire for fire, _ in expected]
    assert sent == expected


def _expected(
    schedule: Schedule, tz: ZoneInfo, wakes: list[datetime]
) -> list[tuple[datetime, datetime]]:
    """Each fire time F is sent at the first wake in [F, next fire) if there
    is one; if the daemon was down all that time, F is superseded by a later
    fire and never sent on its own."""
    result = []
    f = next_fire(schedule, tz, wakes[0] - timedelta(microseconds=1))
    while f <= wakes[-1]:
        after = next_fire(schedule, tz, f)
        woke = [w for w in wakes if f <= w < after]
        if woke:
            result.append((f, woke[0]))
        f = after
    return result
