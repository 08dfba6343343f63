"""Digest schedules: when a spec fires on a zone's wall clock, and its periods.

A ``Schedule`` is a canonical five-field cron expression (see ``spec``). The maths is
pure: the clock is always a parameter, and every instant in or out is
timezone-aware UTC. Cron expressions are evaluated by cronsim (APScheduler
3.11's CronTrigger is not used: its issue #1021 is an open infinite loop at
DST boundaries), except ``hourly`` and ``every N``, stepped here (see
``_slots_after``).

What fires when, on the wall clock of ``tz``:

- **Fixed times** (``daily 08:00``, ``weekdays 09:00``, ``mon,thu 07:30``,
  ``monthly 1 08:00``, and cron expressions whose minute and hour fields do
  not start with ``*``) fire at that wall-clock time. A time the clock skips
  (02:30 on a Berlin spring-forward day) fires at the first valid instant
  after the gap (03:00 CEST). A time the clock shows twice (02:30 on the
  fall-back day) fires once, at the first occurrence.
- **Intervals** (``hourly``, ``every 30m``, ``every 4h``, and cron
  expressions whose minute or hour field starts with ``*``) fire at every
  instant whose wall-clock reading is a slot. ``every Nm`` slots are
  :00, :N, :2N ... of every hour (N divides 60); ``every Nh`` slots are
  00:00, N:00, 2N:00 ... from local midnight (N divides 24). A slot inside a
  gap does not happen and a slot inside a repeated hour happens twice: in
  Berlin, ``hourly`` fires 23 times on the spring-forward day and 25 times
  on the fall-back day, and ``every 4h`` (00:00, 04:00, 08:00 ...) is
  unaffected but for its 00:00-04:00 period lasting 3 or 5 real hours.

These are cronsim's rules, which follow Debian cron. (A cron expression
with a ``*`` field that is not ``hourly`` / ``every N``, such as
``*/30 9-17 * * *``, goes to cronsim, which can miss a slot where a change
shifts the clock by half an hour: Australia/Lord_Howe.)

A digest's period is the interval between two consecutive fire times: the
digest sent at fire time F covers ``[previous_fire(F), F)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from newswatch.periods._wallclock import require_aware
from newswatch.periods.spec import Schedule, parse_schedule, star_step

# Schedule and parse_schedule are re-exported: callers wired before the
# split import them from here.
__all__ = [
    "Period",
    "Schedule",
    "missed_fire",
    "next_fire",
    "parse_schedule",
    "period_ending",
    "period_of",
    "previous_fire",
]

# previous_fire searches back from 1 minute, widening 4x a step, up to the
# 50 years that cronsim itself searches forward before giving up.
_FIRST_LOOKBACK = timedelta(minutes=1)
_LOOKBACK_GROWTH = 4
_LAST_LOOKBACK = timedelta(days=366 * 50)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# UTC offsets are whole multiples of this many minutes (since the 1970s).
_OFFSET_MINUTES = 15
# Two days without a slot means an offset off the grid (before the 1970s).
_MAX_SLOT_GAP = timedelta(days=2)


@dataclass(frozen=True)
class Period:
    """The half-open interval ``[start, end)`` between two fire times (UTC)."""

    start: datetime
    end: datetime

    def __contains__(self, t: object) -> bool:
        return isinstance(t, datetime) and self.start <= t < self.end


def _fires_after(schedule: Schedule, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after ``after``, increasing, as aware UTC."""
    after = require_aware(after, "after")
    slot = _slot_minutes(schedule.cron)
    if slot is not None:
        return _slots_after(slot, tz, after)
    return _cron_fires_after(schedule.cron, tz, after)


def _cron_fires_after(cron: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """cronsim walks fixed-time schedules on the naive wall clock, so starting
    from a reading inside a repeated hour it can offer a time earlier than
    ``after`` (the first 02:30 when ``after`` is the second 02:15), and two
    skipped times can land on one instant; both are dropped here."""
    last = after
    for candidate in CronSim(cron, after.astimezone(tz)):
        fire = candidate.astimezone(UTC)
        if fire > last:
            yield fire
            last = fire


def _slot_minutes(cron: str) -> int | None:
    """The slot length of ``hourly`` / ``every N`` schedules, else None."""
    minute, hour, dom, month, dow = cron.split()
    if (dom, month, dow) != ("*", "*", "*"):
        return None
    if hour == "*" and (step := star_step(minute)) is not None and 60 % step == 0:
        return step
    if minute == "0" and (step := star_step(hour)) is not None and 24 % step == 0:
        return 60 * step
    return None


def _slots_after(slot: int, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Instants after ``after`` whose wall-clock reading is a slot: minute of
    the day a multiple of ``slot``.

    Interval schedules are stepped here rather than by cronsim, whose hour
    steps miss slots where a change shifts the clock by half an hour
    (Australia/Lord_Howe). Every UTC offset since the 1970s is a multiple
    of 15 minutes, so every slot lies on a grid of gcd(slot, 15) minutes.
    """
    grid = timedelta(minutes=math.gcd(slot, _OFFSET_MINUTES))
    t = _EPOCH + ((after - _EPOCH) // grid + 1) * grid
    misses, max_misses = 0, _MAX_SLOT_GAP // grid
    while misses < max_misses:
        local = t.astimezone(tz)
        if local.second == 0 and (local.hour * 60 + local.minute) % slot == 0:
            yield t
            misses = 0
        else:
            misses += 1
        t += grid
    raise ValueError(f"no slot of {slot} minutes found in {tz.key} after {t.isoformat()}")


def next_fire(schedule: Schedule, tz: ZoneInfo, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware UTC in and out)."""
    for fire in _fires_after(schedule, tz, after):
        return fire
    raise ValueError(f"schedule {schedule} does not fire again after {after.isoformat()}")


def previous_fire(schedule: Schedule, tz: ZoneInfo, before: datetime) -> datetime:
    """The last fire time strictly before ``before`` (aware UTC in and out).

    Found by walking forward from ever earlier points, so it agrees with
    :func:`next_fire` by construction, DST quirks included.
    """
    before = require_aware(before, "before")
    lookback = _FIRST_LOOKBACK
    while lookback <= _LAST_LOOKBACK * _LOOKBACK_GROWTH:
        latest: datetime | None = None
        for fire in _fires_after(schedule, tz, before - lookback):
            if fire >= before:
                break
            latest = fire
        if latest is not None:
            return latest
        lookback *= _LOOKBACK_GROWTH
    raise ValueError(f"schedule {schedule} never fired before {before.isoformat()}")


def period_of(schedule: Schedule, tz: ZoneInfo, t: datetime) -> Period:
    """The period holding ``t``: ``start <= t < end``, both fire times."""
    end = next_fire(schedule, tz, t)
    return Period(previous_fire(schedule, tz, end), end)


def period_ending(schedule: Schedule, tz: ZoneInfo, fire: datetime) -> Period:
    """The period the digest sent at fire time ``fire`` covers:
    ``[previous_fire(fire), fire)``."""
    fire = require_aware(fire, "fire")
    return Period(previous_fire(schedule, tz, fire), fire)


def missed_fire(
    schedule: Schedule,
    tz: ZoneInfo,
    last_sent_period_end: datetime | None,
    now: datetime,
) -> datetime | None:
    """The fire time whose digest is owed at ``now``, or None.

    That is the most recent fire time F with ``last_sent_period_end < F <=
    now``. If the daemon was down over several fire times, only the most
    recent is returned: one late digest is sent, not one per missed period
    (it should carry every item still pending, so nothing is lost). Lateness
    is ``now - F``; the caller decides what counts as late.

    ``last_sent_period_end`` None means no digest was ever recorded: then
    the most recent fire time at or before ``now`` is owed. Sending only
    items that arrived before F, and nothing when there are none (unless
    ``send_empty``), keeps a first start from sending early.
    """
    now = require_aware(now, "now")
    # Fire times are whole seconds, so "at or before now" is "before now + 1 us".
    latest = previous_fire(schedule, tz, now + timedelta(microseconds=1))
    if last_sent_period_end is not None and latest <= require_aware(
        last_sent_period_end, "last_sent_period_end"
    ):
        return None
    return latest
