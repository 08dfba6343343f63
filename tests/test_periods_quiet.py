"""Quiet hours: parsing, windows crossing midnight, and DST nights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.periods import QuietHours, parse_quiet_hours, quiet_until

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")
US = timedelta(microseconds=1)


def at(
    tz: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold).astimezone(UTC)


@pytest.mark.parametrize(
    ("spec", "start", "end", "canonical"),
    [
        ("22:00-07:00", 22 * 60, 7 * 60, "22:00-07:00"),
        (" 7:30 - 9:00 ", 7 * 60 + 30, 9 * 60, "07:30-09:00"),
        ("00:00-24:00", 0, 24 * 60, "00:00-24:00"),
        ("22:00-00:00", 22 * 60, 24 * 60, "22:00-24:00"),
        ("23:59-00:01", 23 * 60 + 59, 1, "23:59-00:01"),
    ],
)
def test_parse(spec: str, start: int, end: int, canonical: str) -> None:
    q = parse_quiet_hours(spec)
    assert q == QuietHours(start, end)
    assert str(q) == canonical
    assert parse_quiet_hours(str(q)) == q


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("22:00", "'22:00': expected quiet hours like 22:00-07:00"),
        ("night", "'night': expected quiet hours like 22:00-07:00"),
        ("22:00-22:00", "'22:00-22:00': start and end are the same; use 00:00-24:00 for all day"),
        ("00:00-00:00", "start and end are the same"),
        ("25:00-07:00", "'25:00-07:00': hour must be 0-23"),
        ("24:00-07:00", "'24:00-07:00': hour must be 0-23 \\(or 24:00 for an end\\)"),
        ("22:00-24:30", "hour must be 0-23 \\(or 24:00 for an end\\)"),
        ("22:60-07:00", "'22:60-07:00': minute must be 0-59"),
        ("22:00-07:5", "expected quiet hours like"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quiet_hours(spec)


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ValueError, match="start and end are the same"):
        QuietHours(60, 60)
    with pytest.raises(ValueError, match="end must be 00:01-24:00"):
        QuietHours(60, 0)
    with pytest.raises(ValueError, match="start must be 00:00-23:59"):
        QuietHours(1440, 60)


NIGHT = parse_quiet_hours("22:00-07:00")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (at(SEOUL, 2026, 6, 1, 21, 59, 59), None),
        (at(SEOUL, 2026, 6, 1, 22, 0), at(SEOUL, 2026, 6, 2, 7, 0)),  # start is inside
        (at(SEOUL, 2026, 6, 1, 23, 59, 59), at(SEOUL, 2026, 6, 2, 7, 0)),
        (at(SEOUL, 2026, 6, 2, 0, 0), at(SEOUL, 2026, 6, 2, 7, 0)),
        (at(SEOUL, 2026, 6, 2, 6, 59, 59), at(SEOUL, 2026, 6, 2, 7, 0)),
        (at(SEOUL, 2026, 6, 2, 7, 0), None),  # end is outside
        (at(SEOUL, 2026, 6, 2, 12, 0), None),
    ],
)
def test_crossing_midnight(now: datetime, until: datetime | None) -> None:
    assert quiet_until(NIGHT, SEOUL, now) == until


def test_same_day_window() -> None:
    lunch = parse_quiet_hours("12:00-13:30")
    assert quiet_until(lunch, SEOUL, at(SEOUL, 2026, 6, 1, 11, 59)) is None
    assert quiet_until(lunch, SEOUL, at(SEOUL, 2026, 6, 1, 12, 0)) == at(SEOUL, 2026, 6, 1, 13, 30)
    assert quiet_until(lunch, SEOUL, at(SEOUL, 2026, 6, 1, 13, 30)) is None


def test_whole_day_ends_each_midnight() -> None:
    always = parse_quiet_hours("00:00-24:00")
    assert quiet_until(always, BERLIN, at(BERLIN, 2026, 3, 28, 15, 0)) == at(
        BERLIN, 2026, 3, 29, 0, 0
    )
    # and at that midnight the next day's window begins at once
    assert quiet_until(always, BERLIN, at(BERLIN, 2026, 3, 29, 0, 0)) == at(
        BERLIN, 2026, 3, 30, 0, 0
    )


@pytest.mark.parametrize(
    ("tz", "evening", "morning", "hours"),
    [
        (BERLIN, (2026, 3, 28), (2026, 3, 29), 8),  # spring forward: a short night
        (BERLIN, (2026, 10, 24), (2026, 10, 25), 10),  # fall back: a long one
        (NEW_YORK, (2026, 3, 7), (2026, 3, 8), 8),
        (NEW_YORK, (2026, 10, 31), (2026, 11, 1), 10),
        (SEOUL, (2026, 3, 28), (2026, 3, 29), 9),
    ],
)
def test_dst_nights_end_at_0700_local(
    tz: ZoneInfo, evening: tuple[int, int, int], morning: tuple[int, int, int], hours: int
) -> None:
    start = at(tz, *evening, 22, 0)
    end = at(tz, *morning, 7, 0)
    assert end - start == timedelta(hours=hours)
    for now in [start, start + timedelta(hours=4), end - US]:
        assert quiet_until(NIGHT, tz, now) == end
    assert quiet_until(NIGHT, tz, end) is None
    assert quiet_until(NIGHT, tz, start - US) is None


def test_edges_inside_the_gap_move_to_its_end() -> None:
    early = parse_quiet_hours("02:30-06:00")  # starts in Berlin's gap on 29 March
    assert quiet_until(early, BERLIN, at(BERLIN, 2026, 3, 29, 1, 59)) is None
    assert quiet_until(early, BERLIN, at(BERLIN, 2026, 3, 29, 3, 0)) == at(
        BERLIN, 2026, 3, 29, 6, 0
    )
    late = parse_quiet_hours("22:00-02:30")  # ends in it
    assert quiet_until(late, BERLIN, at(BERLIN, 2026, 3, 29, 1, 59)) == at(
        BERLIN, 2026, 3, 29, 3, 0
    )
    assert quiet_until(late, BERLIN, at(BERLIN, 2026, 3, 29, 3, 0)) is None


def test_repeated_edges_make_one_long_quiet() -> None:
    # 02:30 happens twice on 25 October: quiet starts at the first, ends at the second.
    late = parse_quiet_hours("22:00-02:30")
    second_0230 = at(BERLIN, 2026, 10, 25, 2, 30, fold=1)
    assert second_0230 - at(BERLIN, 2026, 10, 25, 2, 30) == timedelta(hours=1)
    for now in [at(BERLIN, 2026, 10, 25, 2, 40), at(BERLIN, 2026, 10, 25, 2, 10, fold=1)]:
        assert quiet_until(late, BERLIN, now) == second_0230
    assert quiet_until(late, BERLIN, second_0230) is None
    early = parse_quiet_hours("02:30-06:00")
    assert quiet_until(early, BERLIN, at(BERLIN, 2026, 10, 25, 2, 30)) == at(
        BERLIN, 2026, 10, 25, 6, 0
    )
    assert quiet_until(early, BERLIN, at(BERLIN, 2026, 10, 25, 2, 29)) is None


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        quiet_until(NIGHT, SEOUL, datetime(2026, 6, 1, 23, 0))


windows = (
    st.tuples(
        st.integers(0, 1439).map(lambda m: m - m % 15),
        st.integers(1, 1440).map(lambda m: max(15, m - m % 15)),
    )
    .filter(lambda se: se[0] != se[1])
    .map(lambda se: QuietHours(*se))
)
instants = st.integers(0, 366 * 86400).map(
    lambda s: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
)


@settings(max_examples=300, deadline=None)
@given(windows, instants)
def test_seoul_is_the_plain_wall_clock_rule(q: QuietHours, now: datetime) -> None:
    local = now.astimezone(SEOUL)
    minute = local.hour * 60 + local.minute
    inside = q.start <= minute < q.end if not q.crosses_midnight else not q.end <= minute < q.start
    assert (quiet_until(q, SEOUL, now) is not None) == inside


@settings(max_examples=300, deadline=None)
@given(windows, instants, st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]))
def test_quiet_runs_until_the_answer(q: QuietHours, now: datetime, tz: ZoneInfo) -> None:
    until = quiet_until(q, tz, now)
    if until is None:
        return
    assert until > now
    assert until - now <= timedelta(hours=25)
    assert quiet_until(q, tz, until - US) == until
    midway = now + (until - now) / 2
    assert quiet_until(q, tz, midway) == until
    after = quiet_until(q, tz, until)
    assert after is None or after > until  # a new window (whole day), never the same one
