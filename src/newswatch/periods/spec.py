"""Digest schedule specs: what each spelling means, and its one canonical form.

Every spec becomes a canonical five-field cron expression (``Schedule.cron``,
also its stable ``key``): two spellings of one schedule are one value, and
``str()`` is the friendliest spelling that parses back to it. When it
fires is :mod:`newswatch.periods.schedule`'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newswatch.periods import _cronfields as cf

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
        if hour == "*" and (step := star_step(minute)) is not None and 60 % step == 0:
            return f"every {step}m"
        if minute == "0" and (step := star_step(hour)) is not None and 24 % step == 0:
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


def star_step(field: str) -> int | None:
    """N for a field ``*/N`` (1 for ``*``), else None."""
    if field == "*":
        return 1
    m = re.fullmatch(r"\*/(\d+)", field)
    return int(m.group(1)) if m else None
