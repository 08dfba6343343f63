"""Tables and JSON for the command line: fit to the terminal, times in the
configured zone, a summary line, and ``--json`` documents.

``fit`` is pure (widths in, rows out); ``print_table`` measures the
terminal (``COLUMNS`` is honoured, 100 columns when not a terminal).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

# Columns are never cut below this many characters (a cut cell ends in "…").
MIN_COLUMN = 6
COLUMN_GAP = 2
# Width used when stdout is not a terminal (pipes, CI logs).
DEFAULT_WIDTH = 100
ELLIPSIS = "…"


def fit(rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Rows as aligned lines no wider than ``width``: the widest columns
    give way first, each down to ``MIN_COLUMN``; a cut cell ends in "…"."""
    if not rows:
        return []
    n = len(rows[0])
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    budget = width - COLUMN_GAP * (n - 1)
    while sum(widths) > budget:
        widest = max(range(n), key=lambda i: widths[i])
        if widths[widest] <= MIN_COLUMN:
            break  # as narrow as it goes; the terminal wraps the rest
        widths[widest] -= 1
    lines = []
    for row in rows:
        cells = [_cut(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append((" " * COLUMN_GAP).join(cells).rstrip())
    return lines


def _cut(cell: str, width: int) -> str:
    cell = " ".join(cell.split())  # one line per row
    return cell if len(cell) <= width else cell[: width - 1] + ELLIPSIS


def terminal_width() -> int:
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def print_table(rows: Sequence[Sequence[str]], summary: str | None = None) -> None:
    for line in fit(rows, terminal_width()):
        click.echo(line)
    if summary:
        click.echo(summary)


def when(moment: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    """A time in the configured zone: 14:03 today, 05-12 14:03 this year, else with the year."""
    if moment is None:
        return "never"
    local, today = moment.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%m-%d %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as JSON values (times in UTC ISO 8601)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(document: Any) -> None:
    click.echo(json.dumps(jsonable(document), indent=2, ensure_ascii=False))
