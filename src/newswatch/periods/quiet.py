"""Quiet hours: a daily wall-clock window in which items are held, not sent.

``22:00-07:00`` means every night from 22:00 until 07:00 the next morning on
the zone's wall clock, whatever the UTC offset does in between: quiet hours
over a DST change still end at 07:00 local. Each local day D has one quiet
interval of real time, from the first instant the wall clock shows the start
on D to the last instant it shows the end (on D, or D+1 if the window crosses
midnight). A start or end the clock skips moves to the end of the gap; one
the clock shows twice is taken at its first occurrence for the start and its
last for the end, so a night's quiet never ends and begins again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newswatch.periods._wallclock import day_minute_to_utc, require_aware

_MINUTES_PER_DAY = 24 * 60
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
# A quiet interval starting on the local day before, of, or after now's can
# hold now (the day after only in zones whose fall-back crosses midnight).
_DAYS_AROUND = (-1, 0, 1)


@dataclass(frozen=True)
class QuietHours:
    """``start`` and ``end`` in minutes after local midnight; ``end`` may be
    1440 (24:00). ``end <= start`` means the window crosses midnight."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < _MINUTES_PER_DAY:
            raise ValueError("quiet hours start must be 00:00-23:59")
        if not 0 < self.end <= _MINUTES_PER_DAY:
            raise ValueError("quiet hours end must be 00:01-24:00")
        if self.start == self.end:
            raise ValueError("quiet hours start and end are the same")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def parse_quiet_hours(text: str) -> QuietHours:
    """``"22:00-07:00"`` -> QuietHours; ``ValueError`` says what is wrong.

    The window may cross midnight; ``00:00-24:00`` is the whole day. An end
    of ``00:00`` means midnight, the same as ``24:00``.
    """
    spec = text.strip()
    m = _WINDOW.match(spec)
    if m is None:
        raise ValueError(f"{spec!r}: expected quiet hours like 22:00-07:00")
    sh, sm, eh, em = (int(g) for g in m.groups())
    if sh > 23 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{spec!r}: hour must be 0-23 (or 24:00 for an end)")
    if sm > 59 or em > 59:
        raise ValueError(f"{spec!r}: minute must be 0-59")
    start, end = sh * 60 + sm, eh * 60 + em
    if start == end:
        raise ValueError(f"{spec!r}: start and end are the same; use 00:00-24:00 for all day")
    return QuietHours(start, end or _MINUTES_PER_DAY)


def quiet_until(q: QuietHours, tz: ZoneInfo, now: datetime) -> datetime | None:
    """None if ``now`` is outside quiet hours, else the UTC instant they end.

    The start is inside (quiet from 22:00:00), the end is not (sending from
    07:00:00). With ``00:00-24:00`` the answer is the next local midnight,
    where the next day's window begins at once.
    """
    now = require_aware(now, "now")
    today = now.astimezone(tz).date()
    for offset in _DAYS_AROUND:
        day = today + timedelta(days=offset)
        start = day_minute_to_utc(day, q.start, tz, "first")
        end_day = day + timedelta(days=1) if q.crosses_midnight else day
        end = day_minute_to_utc(end_day, q.end, tz, "last")
        if start <= now < end:
            return end
    return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
