"""Pacing rules the receivers enforce: a sliding window and a token bucket.

Both are pure given the time passed in (``admit(key, now)``), so the
receivers can run on an injected clock and tests can step time instead of
sleeping. ``slack`` forgives a little clock jitter between a sender pacing
exactly at the limit and the moment its request arrives.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RateRule", "SlidingWindow", "TokenBucket", "ceil_seconds"]


class SlidingWindow:
    """At most ``limit`` admitted requests in any ``per`` seconds, per key.

    ``slack`` forgives that much clock jitter between a sender pacing
    exactly at the limit and the moment its request arrives here."""

    def __init__(self, limit: int, per: float, *, slack: float = 0.05) -> None:
        self.limit, self.per, self.slack = limit, per, slack
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key: str, now: float) -> float | None:
        """Record a request at ``now``; None if allowed, else seconds to wait."""
        window = self.per - self.slack
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= self.limit:
            return max(times[0] + self.per - now, 0.001)
        times.append(now)
        return None

    def clear(self) -> None:
        self._seen.clear()

    def remaining(self, key: str, now: float) -> int:
        times = self._seen.get(key, deque())
        return max(self.limit - sum(1 for t in times if t > now - self.per), 0)


class TokenBucket:
    """``burst`` requests at once, refilled at ``rate`` per second, per key
    (how Synapse and ntfy limit)."""

    def __init__(self, burst: int, rate: float, *, slack: float = 0.05) -> None:
        self.burst, self.rate, self.slack = burst, rate, slack
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def admit(self, key: str, now: float) -> float | None:
        tokens, at = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens + self.slack * self.rate < 1.0:
            self._state[key] = (tokens, now)
            return max((1.0 - tokens) / self.rate, 0.001)
        self._state[key] = (tokens - 1.0, now)  # may dip below 0 by the slack
        return None

    def clear(self) -> None:
        self._state.clear()


RateRule = SlidingWindow | TokenBucket


def ceil_seconds(seconds: float) -> int:
    """Whole seconds to wait, rounded up, at least 1 (Retry-After headers)."""
    return max(1, math.ceil(seconds))
