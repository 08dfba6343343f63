"""Time maths for delivery: digest schedules, quiet hours and throttles.

Pure functions of their inputs: the clock is always a parameter and every
instant in or out is timezone-aware UTC; wall-clock rules are evaluated in
the ``ZoneInfo`` passed in, DST-exact. Parsers raise ``ValueError`` with a
message fit for a config error. This package imports nothing from
``newswatch.config`` or ``newswatch.notify`` (config validation imports it).
"""

from newswatch.periods.quiet import QuietHours, parse_quiet_hours, quiet_until
from newswatch.periods.schedule import (
    Period,
    missed_fire,
    next_fire,
    period_ending,
    period_of,
    previous_fire,
)
from newswatch.periods.spec import Schedule, parse_schedule
from newswatch.periods.throttle import Throttle, parse_throttle, throttle_slot

__all__ = [
    "Period",
    "QuietHours",
    "Schedule",
    "Throttle",
    "missed_fire",
    "next_fire",
    "parse_quiet_hours",
    "parse_schedule",
    "parse_throttle",
    "period_ending",
    "period_of",
    "previous_fire",
    "quiet_until",
    "throttle_slot",
]
