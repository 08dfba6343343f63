"""In-process poll counters, for the metrics and status page to read.

``PollStats`` is updated on the event loop only (the pool records each
feed's outcome there), so it needs no lock; readers on the loop (an HTTP
handler) see a consistent picture, and ``snapshot()`` copies it for a
reader on another thread. Totals since the process started, plus the last
``CYCLES_KEPT`` cycles. Nothing here holds a URL or a secret: feeds are not
named, errors are counted by kind.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

# Cycles kept for the status page: at a 10-minute interval, a day's worth.
CYCLES_KEPT: Final = 144

_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def error_kind(error: str, *, status: int | None = None, parse: bool = False) -> str:
    """A short label for a failure, for counting: ``http_404``, ``timeout``,
    ``too_large``, ``parse``, ``refused``, ``connect``, ``internal``, ``other``."""
    if parse:
        return "parse"
    if status is not None and status >= 400:
        return f"http_{status}"
    found = _HTTP_STATUS.search(error)
    if found:
        return f"http_{found.group(1)}"
    text = error.lower()
    for kind, words in (
        ("timeout", ("within", "timed out", "timeout", "deadline")),
        ("too_large", ("limit", "too large")),
        ("refused", ("not allowed", "refused to", "private", "loopback")),
        ("connect", ("connect", "resolve", "dns", "reset", "refused")),
        ("internal", ("internal error",)),
    ):
        if any(word in text for word in words):
            return kind
    return "other"


@dataclass(slots=True)
class Timing:
    """A sum, a count and a maximum of durations (seconds)."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def to_dict(self) -> dict[str, float]:
        return {"count": self.count, "total": round(self.total, 6), "max": round(self.max, 6)}


@dataclass(frozen=True, slots=True)
class Cycle:
    """One pass of the pool over the feeds that were due: from the first
    claim after an idle spell to the moment nothing due was left."""

    started: datetime
    seconds: float
    feeds: int
    failed: int


@dataclass(slots=True)
class PollStats:
    polls: Counter[str] = field(default_factory=Counter)  # by outcome
    errors: Counter[str] = field(default_factory=Counter)  # by error kind
    articles_new: int = 0
    edits: int = 0
    alerts_queued: int = 0
    storms: int = 0
    matches: Counter[str] = field(default_factory=Counter)  # by rule
    fetch: Timing = field(default_factory=Timing)
    parse: Timing = field(default_factory=Timing)
    ingest: Timing = field(default_factory=Timing)
    cycles: deque[Cycle] = field(default_factory=lambda: deque(maxlen=CYCLES_KEPT))
    in_flight: int = 0
    # The most feeds held at once (claimed and not yet recorded): never
    # above the pool's slots, which is what bounds memory.
    peak_in_flight: int = 0

    def started(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        """A plain copy (JSON-ready) of every counter."""
        return {
            "polls": dict(self.polls),
            "errors": dict(self.errors),
            "articles_new": self.articles_new,
            "edits": self.edits,
            "alerts_queued": self.alerts_queued,
            "key_rewrite_storms": self.storms,
            "matches": dict(self.matches),
            "fetch_seconds": self.fetch.to_dict(),
            "parse_seconds": self.parse.to_dict(),
            "ingest_seconds": self.ingest.to_dict(),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "cycles": [
                {
                    "started": c.started.isoformat(),
                    "seconds": round(c.seconds, 3),
                    "feeds": c.feeds,
                    "failed": c.failed,
                }
                for c in self.cycles
            ],
        }
