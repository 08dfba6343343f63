"""Digest schedules: what a spec means, and when it fires on a zone's wall clock.

Every spec becomes one canonical five-field cron expression. The maths is
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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from newswatch.periods import _cronfields as cf
from newswatch.periods._wallclock import require_aware

_EXAMPLES = (
    "use hourly, daily 08:00, every 4h, weekdays 09:00, mon,thu 07:30, "
    "monthly 1 08:00, or a cron expression such as '0 8 * * 1-5'"
)
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = frozenset({1, 2, 3, 4, 5})  # cron numbering: 0 is Sunday
_WEEKEND = frozenset({0, 6})
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_INTERVAL = re.compile(r"^(\d+)\s*([mhd])$")
_MINUTES_PER_DAY = 24 * 60

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
class Schedule:
    """A digest schedule. Build it with :func:`parse_schedule`.

    Equal schedules have equal ``cron``, however they were spelled;
    ``str()`` gives the friendliest canonical spelling (``weekdays 09:00``)
    and parses back to an equal ``Schedule``.
    """

    cron: str

    def __post_init__(self) -> None:
        if cf.normalize(self.cron) != self.cron:
            raise ValueError(f"{self.cron!r} is not canonical; build schedules with parse_schedule")

    @property
    def key(self) -> str:
        """A stable identifier to store (the canonical cron expression): the
        same for every spelling, and unchanged by how ``str()`` renders."""
        return self.cron

    def __str__(self) -> str:
        return _friendly(self.cron)

    def __repr__(self) -> str:
        return f"Schedule({str(self)!r})"


@dataclass(frozen=True)
class Period:
    """The half-open interval ``[start, end)`` between two fire times (UTC)."""

    start: datetime
    end: datetime

    def __contains__(self, t: object) -> bool:
        return isinstance(t, datetime) and self.start <= t < self.end


# --------------------------------------------------------------------------- parsing


def parse_schedule(text: str) -> Schedule:
    """A digest spec -> Schedule; ``ValueError`` says what is wrong.

    Accepted (case and spacing are free):

    - ``hourly``; ``every Nm`` (N divides 60), ``every Nh`` (N divides 24),
      ``every 1d`` (= ``daily 00:00``): see the module doc for slots;
    - ``daily HH:MM``, ``weekdays HH:MM`` (mon-fri), ``weekends HH:MM``;
    - ``DAYS HH:MM`` with day names ``mon`` .. ``sun`` (or full names),
      comma-separated, and ranges such as ``mon-fri`` (``fri-mon`` wraps);
    - ``monthly D HH:MM`` (D 1-31: fires only in months that have day D) or
      ``monthly last HH:MM``;
    - a five-field cron expression, e.g. ``0 8 * * 1-5``.
    """
    spec = " ".join(text.split()).lower()
    try:
        return Schedule(_to_cron(spec))
    except ValueError as e:
        raise ValueError(f"{text.strip()!r}: {e}") from None


def _to_cron(spec: str) -> str:
    if not spec:
        raise ValueError(f"empty schedule; {_EXAMPLES}")
    if spec == "hourly":
        return "0 * * * *"
    words = spec.split(" ")
    head = words[0]
    if head == "every":
        return _interval(" ".join(words[1:]))
    if len(words) == 5 or head[0] in "0123456789*":
        return cf.normalize(spec)
    if head == "monthly":
        if len(words) != 3:
            raise ValueError("expected monthly DAY HH:MM, e.g. monthly 1 08:00")
        minute, hour = _time(words[2])
        return f"{minute} {hour} {_day_of_month(words[1])} * *"
    if head in ("daily", "weekdays", "weekends") or _looks_like_days(head):
        if len(words) != 2:
            raise ValueError(f"expected {head} HH:MM, e.g. {head} 08:00")
        minute, hour = _time(words[1])
        if head == "daily":
            days = "*"
        elif head == "weekdays":
            days = cf.render(cf.WEEKDAY, _WEEKDAYS)
        elif head == "weekends":
            days = cf.render(cf.WEEKDAY, _WEEKEND)
        else:
            chosen = _days(head)
            days = "*" if len(chosen) == len(_DAY_NAMES) else cf.render(cf.WEEKDAY, chosen)
        return f"{minute} {hour} * * {days}"
    raise ValueError(f"not a schedule; {_EXAMPLES}")


def _interval(amount: str) -> str:
    m = _INTERVAL.match(amount)
    if m is None:
        raise ValueError("expected every N with m, h or d, e.g. every 30m, every 4h")
    minutes = int(m.group(1)) * {"m": 1, "h": 60, "d": _MINUTES_PER_DAY}[m.group(2)]
    if minutes == 0:
        raise ValueError("an interval must be longer than zero")
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes < _MINUTES_PER_DAY and minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == _MINUTES_PER_DAY:
        return "0 0 * * *"
    if minutes > _MINUTES_PER_DAY:
        raise ValueError(
            "an interval is at most 1d; use weekdays, day names, monthly or cron for longer"
        )
    raise ValueError(
        "an interval must divide the hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30m) "
        "or the day (1, 2, 3, 4, 6, 8, 12h) so its slots line up from midnight"
    )


def _time(text: str) -> tuple[int, int]:
    m = _TIME.match(text)
    if m is None:
        raise ValueError(f"expected a time like 08:00, not {text!r}")
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 23:
        raise ValueError("hour must be 0-23")
    if minute > 59:
        raise ValueError("minute must be 0-59")
    return minute, hour


def _day_of_month(text: str) -> str:
    if text == "last":
        return "L"
    if not text.isdigit() or not 1 <= int(text) <= 31:
        raise ValueError(f"day of month must be 1-31 or last, not {text!r}")
    return str(int(text))


def _day_index(name: str) -> int:
    """Monday 0 .. Sunday 6, from a short or full English day name."""
    for names in (_DAY_NAMES, _FULL_DAY_NAMES):
        if name in names:
            return names.index(name)
    raise ValueError(f"unknown day {name!r}; use mon, tue, wed, thu, fri, sat, sun")


def _looks_like_days(head: str) -> bool:
    first = re.split(r"[,-]", head, maxsplit=1)[0]
    return first in _DAY_NAMES or first in _FULL_DAY_NAMES


def _days(text: str) -> frozenset[int]:
    """``mon,thu`` or ``mon-fri`` -> cron day numbers (0 is Sunday)."""
    chosen: set[int] = set()
    for term in text.split(","):
        if "-" in term:
            a, b = (_day_index(x) for x in term.split("-", 1))
            span = (b - a) % len(_DAY_NAMES)  # fri-mon wraps over the weekend
            chosen.update((a + i) % len(_DAY_NAMES) for i in range(span + 1))
        else:
            chosen.add(_day_index(term))
    return frozenset((d + 1) % len(_DAY_NAMES) for d in chosen)


def _friendly(cron: str) -> str:
    """The friendliest spelling that parses back to ``cron``, else ``cron``."""
    friendly = _friendly_guess(cron)
    try:
        return friendly if _to_cron(friendly) == cron else cron
    except ValueError:
        return cron


def _friendly_guess(cron: str) -> str:
    minute, hour, dom, month, dow = cron.split()
    if (dom, month, dow) == ("*", "*", "*"):
        if hour == "*" and minute == "0":
            return "hourly"
        if hour == "*" and (step := _star_step(minute)) is not None and 60 % step == 0:
            return f"every {step}m"
        if minute == "0" and (step := _star_step(hour)) is not None and 24 % step == 0:
            return "hourly" if step == 1 else f"every {step}h"
    if not (minute.isdigit() and hour.isdigit() and month == "*"):
        return cron
    at = f"{int(hour):02d}:{int(minute):02d}"
    if dom == "*" and dow == "*":
        return f"daily {at}"
    if dow == "*" and (dom.isdigit() or dom == "L"):
        return f"monthly {'last' if dom == 'L' else dom} {at}"
    days = cf.values(cf.WEEKDAY, dow) if dom == "*" else None
    if days is None:
        return cron
    days = frozenset(0 if d == 7 else d for d in days)
    if days == _WEEKDAYS:
        return f"weekdays {at}"
    if days == _WEEKEND:
        return f"weekends {at}"
    names = [_DAY_NAMES[i] for i in range(len(_DAY_NAMES)) if (i + 1) % 7 in days]
    return f"{','.join(names)} {at}"


def _star_step(field: str) -> int | None:
    if field == "*":
        return 1
    m = re.fullmatch(r"\*/(\d+)", field)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- fire times


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
    if hour == "*" and (step := _star_step(minute)) is not None and 60 % step == 0:
        return step
    if minute == "0" and (step := _star_step(hour)) is not None and 24 % step == 0:
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
