"""Liveness and readiness: is each daemon loop still making progress?

The daemon records when each loop's run starts and ends (``Heartbeats``);
``stale_loops`` (pure, the clock passed in) says which loops have made no
progress for longer than their limit. A loop is stuck when a run has been
going on too long, or when no run has started for too long (the scheduler
stopped ticking). ``/readyz`` fails while any loop is stale or the store
does not answer; ``/healthz`` only says the process still serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

# A loop is stale after this many of its periods without progress.
STALE_PERIODS = 3


@dataclass(frozen=True, slots=True)
class Beat:
    """One loop's last run: ``started``/``finished`` on the monotonic clock."""

    since: float  # when the loop was registered (daemon start)
    started: float | None = None
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.started is not None and (self.finished is None or self.finished < self.started)

    def age(self, now: float) -> float:
        """Seconds since the loop last made progress."""
        if self.running:
            assert self.started is not None
            return now - self.started
        return now - (self.finished if self.finished is not None else self.since)


def loop_limit(tick: timedelta, budget: timedelta = timedelta(0)) -> float:
    """Seconds without progress after which a loop is stale: STALE_PERIODS
    of its period, the period being its tick or, if longer, how long one
    run may normally take (a poll cycle waits for the fetch deadline)."""
    return STALE_PERIODS * max(tick, budget).total_seconds()


def stale_loops(beats: Mapping[str, Beat], limits: Mapping[str, float], now: float) -> list[str]:
    """The loops (of ``limits``) that made no progress within their limit."""
    out = []
    for name, limit in sorted(limits.items()):
        beat = beats.get(name)
        if beat is not None and beat.age(now) > limit:
            out.append(name)
    return out


class Heartbeats:
    """Start and end times of each loop's runs (event loop only)."""

    def __init__(self, names: tuple[str, ...], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        self._beats = {name: Beat(since=now) for name in names}

    def started(self, name: str) -> None:
        beat = self._beats.get(name) or Beat(since=self._clock())
        self._beats[name] = Beat(beat.since, self._clock(), beat.finished)

    def finished(self, name: str) -> None:
        beat = self._beats.get(name) or Beat(since=self._clock())
        self._beats[name] = Beat(beat.since, beat.started, self._clock())

    def snapshot(self) -> dict[str, Beat]:
        return dict(self._beats)

    def ages(self) -> dict[str, float]:
        now = self._clock()
        return {name: beat.age(now) for name, beat in self._beats.items()}

    def stale(self, limits: Mapping[str, float]) -> list[str]:
        return stale_loops(self._beats, limits, self._clock())
