"""Throttles: at most N sends in any sliding window of a given length.

A send at time s counts against every instant in ``[s, s + window)``: its
slot frees exactly ``window`` after it. Beyond the limit, items are held
(never dropped) until the instant :func:`throttle_slot` names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newswatch.periods._wallclock import require_aware

_SPEC = re.compile(r"^(\d+)\s*/\s*(\d*)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` sends in any window of length ``window``."""

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a throttle limit must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError("a throttle window must be longer than zero")

    def __str__(self) -> str:
        seconds = int(self.window.total_seconds())
        for unit in ("d", "h", "m"):
            if seconds % _UNITS[unit] == 0:
                count = seconds // _UNITS[unit]
                return f"{self.limit}/{'' if count == 1 else count}{unit}"
        return f"{self.limit}/{seconds}s"


def parse_throttle(text: str) -> Throttle:
    """``"10/h"``, ``"5/10m"``, ``"100/d"``, ``"3/30s"`` -> Throttle.

    ``ValueError`` says what is wrong.
    """
    spec = text.strip().lower()
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"{text.strip()!r}: expected N/period such as 10/h, 5/10m or 100/d")
    limit, count, unit = int(m.group(1)), int(m.group(2) or 1), m.group(3)
    if limit < 1:
        raise ValueError(f"{text.strip()!r}: the limit must be at least 1")
    if count < 1:
        raise ValueError(f"{text.strip()!r}: the period must be longer than zero")
    return Throttle(limit, timedelta(seconds=count * _UNITS[unit]))


def throttle_slot(
    throttle: Throttle, sent_times: Sequence[datetime], now: datetime
) -> datetime | None:
    """None if one more send may go at ``now``, else when a slot frees.

    One more may go when fewer than ``limit`` sends fall in the window
    ``(now - window, now]`` (sends stamped after ``now``, from a replica whose
    clock runs ahead, count too). Otherwise the answer is the instant enough
    of them have left the window: the ``(n - limit + 1)``-th oldest of the n
    counted sends plus ``window``. Times outside the window are ignored, so
    the caller may pass a longer history than it needs.
    """
    now = require_aware(now, "now")
    oldest_counted = now - throttle.window
    counted = sorted(
        t for t in (require_aware(s, "sent_times") for s in sent_times) if t > oldest_counted
    )
    if len(counted) < throttle.limit:
        return None
    return counted[len(counted) - throttle.limit] + throttle.window
