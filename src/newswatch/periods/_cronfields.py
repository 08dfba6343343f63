"""Five-field cron expressions: validated by cronsim, spelled one way.

Two spellings of one schedule must give one ``Schedule`` (``0 8 * * MON-FRI``
and ``0 8 * * 1-5``), so each field that is a plain list of values, ranges
and steps is expanded to its set of values and written back compactly
(names become numbers, Sunday 7 becomes 0, runs of three or more become
``a-b``). Two things are kept exactly as written, because cronsim's meaning
depends on them:

- a field that starts with ``*``: cronsim (like Debian cron) applies its
  wall-clock DST handling only when neither the minute nor the hour field
  starts with ``*``, and ANDs day-of-month with day-of-week only when one of
  them starts with ``*`` (otherwise it ORs them);
- special forms (``L``, ``LW``, ``5L``, ``MON#2``), which cronsim checks.
"""

from __future__ import annotations

import re
from datetime import datetime

from cronsim import CronSim, CronSimError

MINUTE, HOUR, DAY, MONTH, WEEKDAY = range(5)
# (name used in errors, lowest, highest) per field; day-of-week 7 is Sunday.
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {
    MONTH: {m: i + 1 for i, m in enumerate(_MONTHS)},
    WEEKDAY: {d: i for i, d in enumerate(_WEEKDAYS)},
}
_TERM = re.compile(r"^(?P<base>\*|\w+(?:-\w+)?)(?:/(?P<step>\d+))?$")
# A run of this many consecutive values or more is written as a range.
_MIN_RUN = 3


class _Special(Exception):
    """A field form this module does not expand; cronsim validates it."""


def normalize(expr: str) -> str:
    """The canonical spelling of a five-field cron expression.

    Raises ``ValueError`` with a reason fit for a config error.
    """
    parts = expr.upper().split()
    if len(parts) != len(FIELDS):
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), not {len(parts)}"
        )
    fields = [_normalize_field(i, part) for i, part in enumerate(parts)]
    # With the other day field starting with "*" cronsim ANDs the two, so a
    # day field that allows every day means exactly "*".
    for index, other in ((DAY, WEEKDAY), (WEEKDAY, DAY)):
        if fields[other].startswith("*") and values(index, fields[index]) == _every(index):
            fields[index] = "*"
    canonical = " ".join(fields)
    try:
        CronSim(canonical, datetime(2000, 1, 1))
    except CronSimError as e:
        raise ValueError(f"bad cron expression ({e})") from None
    return canonical


def values(index: int, field: str) -> frozenset[int] | None:
    """The set of values a canonical field allows, or None for special forms."""
    try:
        expanded = _expand(index, field)
    except _Special:
        return None
    return frozenset(0 if index == WEEKDAY and v == 7 else v for v in expanded)


def _every(index: int) -> frozenset[int]:
    _, low, high = FIELDS[index]
    return frozenset(range(low, high if index == WEEKDAY else high + 1))


def render(index: int, allowed: frozenset[int] | set[int]) -> str:
    """Values written compactly: ``1-5``, ``0,6``, ``1,3,5``."""
    ordered = sorted({0 if index == WEEKDAY and v == 7 else v for v in allowed})
    pieces: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start + 1 >= _MIN_RUN:
            pieces.append(f"{ordered[start]}-{ordered[end]}")
        else:
            pieces.extend(str(v) for v in ordered[start : end + 1])
        start = end + 1
    return ",".join(pieces)


def _normalize_field(index: int, field: str) -> str:
    if field.startswith("*"):
        _check_star(index, field)
        return field
    try:
        return render(index, _expand(index, field))
    except _Special:
        return field


def _check_star(index: int, field: str) -> None:
    """``*`` and ``*/n`` are kept as written; reject what cronsim would
    silently accept but nobody means (``*/0``, a step past the range)."""
    name, low, high = FIELDS[index]
    for term in field.split(","):
        m = _TERM.match(term)
        if m is None:
            raise ValueError(f"bad {name} field {field!r}")
        step = m.group("step")
        if step is not None and not 1 <= int(step) <= high - low + 1:
            raise ValueError(f"{name} step must be 1-{high - low + 1}, not {step}")


def _expand(index: int, field: str) -> set[int]:
    name, low, high = FIELDS[index]
    allowed: set[int] = set()
    for term in field.split(","):
        m = _TERM.match(term)
        if m is None:
            if "#" in term or "L" in term or "W" in term:
                raise _Special
            raise ValueError(f"bad {name} field {field!r}")
        base, step_text = m.group("base"), m.group("step")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-")
            first, last = _value(index, a), _value(index, b)
            if last < first:
                raise ValueError(f"{name} range {base} runs backwards")
        else:
            first = _value(index, base)
            # "a/n" means from a to the end of the range in steps of n.
            last = high if step_text is not None else first
        step = 1 if step_text is None else int(step_text)
        if step < 1:
            raise ValueError(f"{name} step must be at least 1")
        allowed.update(range(first, last + 1, step))
    return allowed


def _value(index: int, text: str) -> int:
    name, low, high = FIELDS[index]
    names = _NAMES.get(index, {})
    if text in names:
        return names[text]
    if not text.isdigit():
        if any(c in text for c in "#LW"):
            raise _Special
        raise ValueError(f"bad {name} value {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}-{high}, not {value}")
    return value
