"""From a wall-clock reading in a zone to the instant it names, across DST.

A wall-clock time can name no instant (it falls in a spring-forward gap) or
two (it falls in the hour a fall-back repeats). Every rule in this package
resolves both cases the same way, here:

- skipped: the first valid instant after the gap (02:30 on a Berlin
  spring-forward day -> 03:00 CEST), as cron implementations that handle DST
  do (Debian cron, cronsim);
- repeated: the caller says which occurrence it wants, ``first`` (a digest
  fires once, at the earlier 02:30) or ``last`` (quiet hours end at the later
  02:30, so they do not end and begin again an hour later).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Occurrence = Literal["first", "last"]

# The longest gap tzdata knows is a whole day (Pacific/Apia skipped
# 2011-12-30); stepping further than this means a broken zone, not a gap.
_MAX_GAP = timedelta(days=2)
# Gaps begin and end on whole minutes in every zone since 1970.
_GAP_STEP = timedelta(minutes=1)


def require_aware(value: datetime, name: str) -> datetime:
    """``value`` in UTC; a naive datetime is a programming error, said loudly."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def is_skipped(wall: datetime, tz: ZoneInfo) -> bool:
    """Whether the naive wall-clock time ``wall`` falls in a DST gap of ``tz``."""
    there_and_back = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return there_and_back.replace(tzinfo=None) != wall


def wall_to_utc(wall: datetime, tz: ZoneInfo, repeated: Occurrence) -> datetime:
    """The UTC instant the naive wall-clock time ``wall`` names in ``tz``."""
    moved = wall
    while is_skipped(moved, tz):
        moved += _GAP_STEP
        if moved - wall > _MAX_GAP:
            raise ValueError(f"{wall.isoformat()} in {tz.key}: no valid time follows it")
    fold = 0 if repeated == "first" else 1
    return moved.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def day_minute_to_utc(day: date, minute: int, tz: ZoneInfo, repeated: Occurrence) -> datetime:
    """The instant ``minute`` minutes after the start of local ``day`` shows on
    the wall clock (1440 is 24:00, the next day's 00:00)."""
    return wall_to_utc(datetime.combine(day, time()) + timedelta(minutes=minute), tz, repeated)
