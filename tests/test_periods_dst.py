"""Fire times across DST: simulated weeks over both 2026 changes in
Europe/Berlin and America/New_York, with Asia/Seoul (no DST) alongside, and a
property test against a brute-force reference in zones with odd changes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.periods import (
    Period,
    Schedule,
    next_fire,
    parse_schedule,
    period_ending,
    period_of,
    previous_fire,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")
HOUR = timedelta(hours=1)
# name -> (spring-forward day, fall-back day); Seoul borrows Berlin's dates.
CHANGES = {
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
    "Asia/Seoul": (date(2026, 3, 29), date(2026, 10, 25)),
}
WEEKS = [(zone, day) for zone, days in CHANGES.items() for day in days]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def fires_in_week(schedule: Schedule, tz: ZoneInfo, change: date) -> list[datetime]:
    """Fire times over the local week Thursday..Wednesday around ``change``
    (a Sunday), found by stepping next_fire as a daemon's clock would."""
    first_day = change - timedelta(days=3)
    start = local_midnight(first_day, tz)
    end = local_midnight(first_day + timedelta(days=7), tz)
    fires = []
    t = start - timedelta(microseconds=1)
    while (t := next_fire(schedule, tz, t)) < end:
        fires.append(t)
    return fires


def by_local_day(fires: list[datetime], tz: ZoneInfo) -> dict[date, list[datetime]]:
    days: dict[date, list[datetime]] = {}
    for f in fires:
        days.setdefault(f.astimezone(tz).date(), []).append(f)
    return days


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_daily_fires_once_a_local_day_at_that_time(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    fires = fires_in_week(parse_schedule("daily 08:00"), tz, change)
    days = by_local_day(fires, tz)
    assert len(fires) == 7
    assert len(days) == 7
    for f in fires:
        assert f.astimezone(tz).time() == time(8, 0)
        assert f.tzinfo is UTC


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_weekdays_skip_the_weekend(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    fires = fires_in_week(parse_schedule("weekdays 09:00"), tz, change)
    weekdays = [f.astimezone(tz).weekday() for f in fires]
    assert sorted(weekdays) == [0, 1, 2, 3, 4]
    assert all(f.astimezone(tz).time() == time(9, 0) for f in fires)


def test_0230_berlin_fires_once_on_each_change_day() -> None:
    schedule = parse_schedule("daily 02:30")
    spring = by_local_day(fires_in_week(schedule, BERLIN, date(2026, 3, 29)), BERLIN)
    fall = by_local_day(fires_in_week(schedule, BERLIN, date(2026, 10, 25)), BERLIN)
    assert all(len(v) == 1 for v in [*spring.values(), *fall.values()])
    assert len(spring) == len(fall) == 7
    # 02:30 does not exist: the first valid instant after the gap, 03:00 CEST.
    assert spring[date(2026, 3, 29)] == [utc(2026, 3, 29, 1, 0)]
    assert spring[date(2026, 3, 29)][0].astimezone(BERLIN).time() == time(3, 0)
    # 02:30 happens twice: once, at the first (CEST) occurrence.
    assert fall[date(2026, 10, 25)] == [utc(2026, 10, 25, 0, 30)]
    assert spring[date(2026, 3, 30)] == [utc(2026, 3, 30, 0, 30)]
    assert fall[date(2026, 10, 26)] == [utc(2026, 10, 26, 1, 30)]


def test_new_york_skipped_and_repeated_times() -> None:
    spring = fires_in_week(parse_schedule("daily 02:30"), NEW_YORK, date(2026, 3, 8))
    assert utc(2026, 3, 8, 7, 0) in spring  # 03:00 EDT, first instant after the gap
    fall = fires_in_week(parse_schedule("daily 01:30"), NEW_YORK, date(2026, 11, 1))
    fall_day = by_local_day(fall, NEW_YORK)[date(2026, 11, 1)]
    assert fall_day == [utc(2026, 11, 1, 5, 30)]  # 01:30 EDT, not 01:30 EST


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_hourly_counts_real_hours(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    fires = fires_in_week(parse_schedule("hourly"), tz, change)
    counts = Counter(f.astimezone(tz).date() for f in fires)
    has_dst = zone != "Asia/Seoul"
    spring, fall = CHANGES[zone]
    for day, count in counts.items():
        if has_dst and day == change == spring:
            assert count == 23
        elif has_dst and day == change == fall:
            assert count == 25
        else:
            assert count == 24
    # Every fire is on the hour and exactly one real hour after the last.
    assert all(b - a == HOUR for a, b in pairwise(fires))


def test_hourly_berlin_change_days_by_the_clock() -> None:
    hourly = parse_schedule("hourly")
    spring = by_local_day(fires_in_week(hourly, BERLIN, date(2026, 3, 29)), BERLIN)
    hours = [f.astimezone(BERLIN).hour for f in spring[date(2026, 3, 29)]]
    assert hours == [0, 1, *range(3, 24)]
    fall = by_local_day(fires_in_week(hourly, BERLIN, date(2026, 10, 25)), BERLIN)
    hours = [f.astimezone(BERLIN).hour for f in fall[date(2026, 10, 25)]]
    assert hours == [0, 1, 2, 2, *range(3, 24)]


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_every_4h_keeps_its_midnight_slots(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    schedule = parse_schedule("every 4h")
    fires = fires_in_week(schedule, tz, change)
    days = by_local_day(fires, tz)
    assert len(days) == 7
    for fs in days.values():
        assert [f.astimezone(tz).time() for f in fs] == [time(h) for h in range(0, 24, 4)]
    # Periods are 4 real hours, except 00:00-04:00 on a change day.
    for f in fires[1:]:
        period = period_ending(schedule, tz, f)
        length = period.end - period.start
        local = f.astimezone(tz)
        if zone != "Asia/Seoul" and local.date() == change and local.hour == 4:
            spring = change == CHANGES[zone][0]
            assert length == (3 * HOUR if spring else 5 * HOUR)
        else:
            assert length == 4 * HOUR


def test_every_2h_slot_in_the_changed_hour() -> None:
    schedule = parse_schedule("every 2h")
    spring = by_local_day(fires_in_week(schedule, BERLIN, date(2026, 3, 29)), BERLIN)
    assert [f.astimezone(BERLIN).hour for f in spring[date(2026, 3, 29)]] == [
        0, *range(4, 24, 2)
    ]  # fmt: skip
    fall = by_local_day(fires_in_week(schedule, BERLIN, date(2026, 10, 25)), BERLIN)
    assert fall[date(2026, 10, 25)][:3] == [
        utc(2026, 10, 24, 22, 0),  # 00:00 CEST
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 1, 0),  # 02:00 CET: the repeated slot fires again
    ]


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_every_30m_periods_are_30_real_minutes(zone: str, change: date) -> None:
    fires = fires_in_week(parse_schedule("every 30m"), ZoneInfo(zone), change)
    assert {b - a for a, b in pairwise(fires)} == {timedelta(minutes=30)}


@pytest.mark.parametrize(("zone", "change"), WEEKS)
def test_periods_tile_the_week(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    for spec in ["daily 02:30", "hourly", "every 4h", "weekdays 09:00", "0 1,2,3 * * *"]:
        schedule = parse_schedule(spec)
        fires = fires_in_week(schedule, tz, change)
        for a, b in pairwise(fires):
            assert previous_fire(schedule, tz, b) == a
            assert period_ending(schedule, tz, b) == Period(a, b)
            assert period_of(schedule, tz, a) == Period(a, b)
            assert period_of(schedule, tz, b - timedelta(microseconds=1)) == Period(a, b)
            assert a in Period(a, b) and b not in Period(a, b)


def test_two_skipped_times_fire_once() -> None:
    # 02:00 and 02:30 both fall in Berlin's gap: both become 03:00 CEST, which
    # is also a fire time in its own right; the digest goes once.
    schedule = parse_schedule("0,30 2,3 * * *")
    day = by_local_day(fires_in_week(schedule, BERLIN, date(2026, 3, 29)), BERLIN)
    assert [f.astimezone(BERLIN).time() for f in day[date(2026, 3, 29)]] == [
        time(3, 0),
        time(3, 30),
    ]


def test_after_inside_the_repeated_hour() -> None:
    schedule = parse_schedule("daily 02:30")
    second_0215 = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)
    assert next_fire(schedule, BERLIN, second_0215) == utc(2026, 10, 26, 1, 30)
    first_0215 = datetime(2026, 10, 25, 2, 15, fold=0, tzinfo=BERLIN)
    assert next_fire(schedule, BERLIN, first_0215) == utc(2026, 10, 25, 0, 30)


def test_strictly_after_and_before() -> None:
    schedule = parse_schedule("daily 08:00")
    eight = utc(2026, 6, 1, 8, 0)
    assert next_fire(schedule, ZoneInfo("UTC"), eight) == utc(2026, 6, 2, 8, 0)
    assert next_fire(schedule, ZoneInfo("UTC"), eight - timedelta(microseconds=1)) == eight
    assert previous_fire(schedule, ZoneInfo("UTC"), eight) == utc(2026, 5, 31, 8, 0)
    assert previous_fire(schedule, ZoneInfo("UTC"), eight + timedelta(microseconds=1)) == eight


def test_any_aware_input_and_naive_refused() -> None:
    schedule = parse_schedule("daily 08:00")
    in_seoul = datetime(2026, 6, 1, 7, 0, tzinfo=SEOUL)
    assert next_fire(schedule, SEOUL, in_seoul) == utc(2026, 5, 31, 23, 0)
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next_fire(schedule, SEOUL, datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="before must be timezone-aware"):
        previous_fire(schedule, SEOUL, datetime(2026, 6, 1))


def test_rare_schedules_look_far_enough() -> None:
    leap = parse_schedule("0 0 29 2 *")
    assert previous_fire(leap, BERLIN, utc(2026, 1, 1)) == utc(2024, 2, 28, 23, 0)
    assert next_fire(leap, BERLIN, utc(2026, 1, 1)) == utc(2028, 2, 28, 23, 0)


# --------------------------------------------------------------------------- reference

ODD_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Seoul",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Havana",  # changes at midnight
    "America/Santiago",  # changes at 24:00 / 00:00, southern hemisphere
    "Europe/Dublin",  # "negative" DST in tzdata
    "Asia/Kathmandu",  # +05:45
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]
FRIENDLY = [
    "hourly", "every 15m", "every 30m", "every 2h", "every 3h", "every 4h", "every 12h",
    "daily 00:00", "daily 00:30", "daily 01:30", "daily 02:00", "daily 02:30", "daily 03:00",
    "daily 23:30", "daily 08:00", "weekdays 02:30", "mon,thu 00:15", "monthly 1 02:30",
    "monthly last 00:00",
]  # fmt: skip
_MINUTE = timedelta(minutes=1)


def _transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """UTC instants in ``year`` where the zone's offset changes (to the minute)."""
    found = []
    t = utc(year, 1, 1)
    end = utc(year + 1, 1, 1)
    step = timedelta(hours=6)
    while t < end:
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            lo, hi = t, t + step
            while hi - lo > _MINUTE:
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        t += step
    return found


TRANSITIONS = {
    # Zones without DST get the first of every month to start near.
    name: _transitions(ZoneInfo(name), 2011 if name == "Pacific/Apia" else 2026)
    or [utc(2026, m, 1) for m in range(1, 13)]
    for name in ODD_ZONES
}


def _wall(t: datetime, tz: ZoneInfo) -> datetime:
    return t.astimezone(tz).replace(tzinfo=None)


def _ref_first_at_or_after(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall-clock reading is ``wall`` or later."""
    t = wall.replace(tzinfo=UTC) - timedelta(hours=15)  # before any offset reaches it
    while _wall(t + HOUR, tz) < wall:
        t += HOUR
    while _wall(t, tz) < wall:
        t += _MINUTE
    return t


def _day_matches(schedule: Schedule, day: date) -> bool:
    _, _, dom, _, dow = schedule.cron.split()
    if dom == "L":
        return (day + timedelta(days=1)).day == 1
    if dom != "*":
        return day.day == int(dom)
    if dow == "*":
        return True
    cron_dow = (day.weekday() + 1) % 7
    return str(cron_dow) in dow.replace("1-5", "1,2,3,4,5").split(",")


def ref_next_fire(schedule: Schedule, tz: ZoneInfo, after: datetime) -> datetime:
    """The documented rules, written independently of cronsim."""
    minute, hour, *_ = schedule.cron.split()
    if minute.isdigit() and hour.isdigit():  # fixed time: first reading at or after it
        day = after.astimezone(tz).date() - timedelta(days=1)
        while True:
            if _day_matches(schedule, day):
                wall = datetime.combine(day, time(int(hour), int(minute)))
                fire = _ref_first_at_or_after(wall, tz)
                if fire > after:
                    return fire
            day += timedelta(days=1)
    # Interval: every whole-minute instant whose reading is a slot.
    step_m = 1 if minute == "*" else int(minute.split("/")[1]) if "/" in minute else 60
    step_h = int(hour.split("/")[1]) if "/" in hour else 1
    t = after.replace(second=0, microsecond=0) + _MINUTE
    while True:
        local = t.astimezone(tz)
        on_slot = local.second == 0 and local.minute % step_m == 0 and local.hour % step_h == 0
        if on_slot and (minute != "0" or local.minute == 0):
            return t
        t += _MINUTE


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, ZoneInfo, datetime]:
    zone = draw(st.sampled_from(ODD_ZONES))
    schedule = parse_schedule(draw(st.sampled_from(FRIENDLY)))
    near = draw(st.sampled_from(TRANSITIONS[zone]))
    shift = timedelta(seconds=draw(st.integers(-30 * 3600, 30 * 3600)))
    if draw(st.booleans()):
        shift = timedelta(minutes=shift.total_seconds() // 60)  # land on whole minutes too
    return schedule, ZoneInfo(zone), near + shift


@settings(max_examples=400, deadline=None)
@given(cases())
def test_next_fire_matches_the_reference(case: tuple[Schedule, ZoneInfo, datetime]) -> None:
    schedule, tz, after = case
    fire = next_fire(schedule, tz, after)
    assert fire == ref_next_fire(schedule, tz, after)
    assert fire > after


@settings(max_examples=200, deadline=None)
@given(cases())
def test_previous_and_next_agree(case: tuple[Schedule, ZoneInfo, datetime]) -> None:
    schedule, tz, t = case
    before = previous_fire(schedule, tz, t)
    assert before < t
    assert next_fire(schedule, tz, before - timedelta(microseconds=1)) == before
    assert next_fire(schedule, tz, before) >= t  # nothing fires in between
    period = period_of(schedule, tz, t)
    assert t in period
    assert period_ending(schedule, tz, period.end) == period
