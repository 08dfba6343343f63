"""Digest specs: what each spelling parses to, how it prints, and its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.periods import Schedule, parse_schedule


@pytest.mark.parametrize(
    ("spec", "cron", "canonical"),
    [
        ("hourly", "0 * * * *", "hourly"),
        ("  HOURLY ", "0 * * * *", "hourly"),
        ("every 1h", "0 * * * *", "hourly"),
        ("every 60m", "0 * * * *", "hourly"),
        ("every 30m", "*/30 * * * *", "every 30m"),
        ("every 1m", "* * * * *", "every 1m"),
        ("every 4 h", "0 */4 * * *", "every 4h"),
        ("every 120m", "0 */2 * * *", "every 2h"),
        ("every 12h", "0 */12 * * *", "every 12h"),
        ("every 1d", "0 0 * * *", "daily 00:00"),
        ("every 24h", "0 0 * * *", "daily 00:00"),
        ("daily 08:00", "0 8 * * *", "daily 08:00"),
        ("daily 8:05", "5 8 * * *", "daily 08:05"),
        ("Daily   23:59", "59 23 * * *", "daily 23:59"),
        ("weekdays 09:00", "0 9 * * 1-5", "weekdays 09:00"),
        ("mon-fri 09:00", "0 9 * * 1-5", "weekdays 09:00"),
        ("weekends 10:00", "0 10 * * 0,6", "weekends 10:00"),
        ("sat,sun 10:00", "0 10 * * 0,6", "weekends 10:00"),
        ("mon,thu 07:30", "30 7 * * 1,4", "mon,thu 07:30"),
        ("thursday,monday 07:30", "30 7 * * 1,4", "mon,thu 07:30"),
        ("fri-mon 06:00", "0 6 * * 0,1,5,6", "mon,fri,sat,sun 06:00"),
        ("mon-sun 08:00", "0 8 * * *", "daily 08:00"),
        ("sun 12:00", "0 12 * * 0", "sun 12:00"),
        ("monthly 1 08:00", "0 8 1 * *", "monthly 1 08:00"),
        ("monthly 31 08:00", "0 8 31 * *", "monthly 31 08:00"),
        ("monthly last 18:00", "0 18 L * *", "monthly last 18:00"),
        ("0 8 * * 1-5", "0 8 * * 1-5", "weekdays 08:00"),
        ("0 8 * * MON-FRI", "0 8 * * 1-5", "weekdays 08:00"),
        ("0 8 * * mon,tue,wed,thu,fri", "0 8 * * 1-5", "weekdays 08:00"),
        ("0 8 * * 6,7", "0 8 * * 0,6", "weekends 08:00"),
        ("0 8 * * 0-6", "0 8 * * *", "daily 08:00"),
        ("*/15 * * * *", "*/15 * * * *", "every 15m"),
        ("0 */6 * * *", "0 */6 * * *", "every 6h"),
        ("0 */5 * * *", "0 */5 * * *", "0 */5 * * *"),
        ("*/7 * * * *", "*/7 * * * *", "*/7 * * * *"),
        # "every 60m" and "every 24h" would parse to other crons: kept as written.
        ("*/60 * * * *", "*/60 * * * *", "*/60 * * * *"),
        ("0 */24 * * *", "0 */24 * * *", "0 */24 * * *"),
        # Not "every 4h": without a leading * cronsim applies wall-clock
        # DST handling, so these are different schedules.
        ("0 0-23/4 * * *", "0 0,4,8,12,16,20 * * *", "0 0,4,8,12,16,20 * * *"),
        ("0 9 1,15 * *", "0 9 1,15 * *", "0 9 1,15 * *"),
        ("0 9 * JAN-MAR *", "0 9 * 1-3 *", "0 9 * 1-3 *"),
        ("0 9 * * MON#2", "0 9 * * MON#2", "0 9 * * MON#2"),
        ("30 6 LW * *", "30 6 LW * *", "30 6 LW * *"),
    ],
)
def test_spellings(spec: str, cron: str, canonical: str) -> None:
    schedule = parse_schedule(spec)
    assert schedule.cron == cron
    assert schedule.key == cron
    assert str(schedule) == canonical
    assert parse_schedule(canonical) == schedule
    assert repr(schedule) == f"Schedule({canonical!r})"


def test_equal_spellings_are_one_value() -> None:
    spellings = ["weekdays 09:00", "mon-fri 9:00", "0 9 * * 1-5", "0 9 * * MON-FRI"]
    schedules = {parse_schedule(s) for s in spellings}
    assert len(schedules) == 1
    assert {parse_schedule("daily 08:00"): "x"}[parse_schedule("0 8 * * *")] == "x"


def test_schedules_are_frozen() -> None:
    schedule = parse_schedule("hourly")
    with pytest.raises(AttributeError):
        schedule.cron = "0 8 * * *"  # type: ignore[misc]


def test_direct_construction_must_be_canonical() -> None:
    assert Schedule("0 8 * * 1-5") == parse_schedule("weekdays 08:00")
    with pytest.raises(ValueError, match="not canonical"):
        Schedule("0 8 * * MON-FRI")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("daily 25:00", "'daily 25:00': hour must be 0-23$"),
        ("daily 24:00", "'daily 24:00': hour must be 0-23$"),
        ("daily 08:60", "'daily 08:60': minute must be 0-59"),
        ("daily 8", "'daily 8': expected a time like 08:00, not '8'"),
        ("daily", "'daily': expected daily HH:MM, e.g. daily 08:00"),
        ("weekdays", "'weekdays': expected weekdays HH:MM"),
        ("mon,xyz 08:00", "'mon,xyz 08:00': unknown day 'xyz'"),
        ("monthly 32 08:00", "'monthly 32 08:00': day of month must be 1-31 or last"),
        ("monthly 08:00", "'monthly 08:00': expected monthly DAY HH:MM"),
        ("every 45m", "'every 45m': an interval must divide the hour"),
        ("every 5h", "'every 5h': an interval must divide the hour"),
        ("every 90m", "'every 90m': an interval must divide the hour"),
        ("every 2d", "'every 2d': an interval is at most 1d"),
        ("every 0m", "'every 0m': an interval must be longer than zero"),
        ("every 30s", "'every 30s': expected every N with m, h or d"),
        ("every", "'every': expected every N with m, h or d"),
        ("fortnightly", "'fortnightly': not a schedule; use hourly, daily 08:00"),
        ("", "'': empty schedule"),
        ("0 8 * *", "'0 8 \\* \\*': a cron expression has 5 fields"),
        ("0 0 8 * * *", "a cron expression has 5 fields .* not 6"),
        ("0 60 * * *", "hour must be 0-23, not 60"),
        ("60 0 * * *", "minute must be 0-59, not 60"),
        ("0 8 * * 8", "day of week must be 0-7, not 8"),
        ("0 8 0 * *", "day of month must be 1-31, not 0"),
        ("0 8 * 13 *", "month must be 1-12, not 13"),
        ("0 8 * * 5-1", "day of week range 5-1 runs backwards"),
        ("0 8 * * FOO", "bad day of week value 'FOO'"),
        ("*/0 * * * *", "minute step must be 1-60, not 0"),
        ("0 8 31 2 *", "bad cron expression \\(Bad day-of-month\\)"),
        ("0 8 ? * *", "bad day of month field '\\?'"),
    ],
)
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(spec)


def _friendly_specs() -> st.SearchStrategy[str]:
    at = st.builds(lambda h, m: f"{h}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
    day = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday"])
    term = st.one_of(day, st.builds(lambda a, b: f"{a}-{b}", day, day))
    days = st.lists(term, min_size=1, max_size=4).map(",".join)
    return st.one_of(
        st.just("hourly"),
        st.sampled_from([1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30]).map(lambda n: f"every {n}m"),
        st.sampled_from([1, 2, 3, 4, 6, 8, 12]).map(lambda n: f"every {n}h"),
        st.builds(lambda a, t: f"{a} {t}", st.sampled_from(["daily", "weekdays", "weekends"]), at),
        st.builds(lambda d, t: f"{d} {t}", days, at),
        st.builds(
            lambda n, t: f"monthly {n} {t}", st.one_of(st.integers(1, 31), st.just("last")), at
        ),
    )


@settings(max_examples=300, deadline=None)
@given(_friendly_specs())
def test_canonical_form_round_trips(spec: str) -> None:
    schedule = parse_schedule(spec)
    again = parse_schedule(str(schedule))
    assert again == schedule
    assert str(again) == str(schedule)
    assert parse_schedule(schedule.cron) == schedule


def test_periods_stands_alone() -> None:
    """Config validation imports newswatch.periods, so it must not import
    config (a cycle) or notify."""
    code = (
        "import sys, newswatch.periods\n"
        "bad = [m for m in sys.modules if m.startswith(('newswatch.config', 'newswatch.notify'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
