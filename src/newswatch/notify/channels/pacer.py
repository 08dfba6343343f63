"""The pacer a channel waits on before each request: one token bucket
(``notify.pacing``) per channel instance, on the channel's clock.

The bucket maths is pure (``pacing.take``); this object only keeps the
state between requests and sleeps with the sleep it was given (tests pass
one that advances a fake clock, so pacing is tested without waiting).

``take`` reserves a token at once, so concurrent sends of one channel get
increasing turns without a lock. A wait that would end past ``within``
reserves nothing and says how long it would be: a channel with a long
split notification returns "retry after that" with the parts it sent,
instead of being cut off by the deliverer's send timeout with none
recorded.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime

from newswatch.config.models import PacingConfig
from newswatch.notify.pacing import Bucket, BucketState, full, pacing_for, take

__all__ = ["NoPacing", "TokenBucketPacer", "bucket_for", "pacer_for"]


class NoPacing:
    """Every request may go at once (webhook, email, console, ``pacing: off``)."""

    bucket: Bucket | None = None

    async def wait(self, within: float = math.inf) -> float | None:
        return None


class TokenBucketPacer:
    """``wait()`` returns when the next request may go. ``wait(within=s)``
    waits only if the turn comes within ``s`` seconds; otherwise it reserves
    nothing and returns how many seconds away the turn is."""

    def __init__(
        self,
        bucket: Bucket,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.bucket = bucket
        self._clock = clock
        self._sleep = sleep
        self._state: BucketState | None = None

    async def wait(self, within: float = math.inf) -> float | None:
        now = self._clock()
        state = self._state if self._state is not None else full(self.bucket, now)
        after, delay = take(self.bucket, state, now)
        seconds = delay.total_seconds()
        if seconds > within:
            return seconds
        # Reserved before sleeping: a concurrent send computes its turn
        # after this one. A sleep cut short (shutdown, send timeout) leaves
        # the token spent, which only ever slows the channel down.
        self._state = after
        if seconds > 0:
            await self._sleep(seconds)
        return None

    def __repr__(self) -> str:
        b = self.bucket
        return f"<TokenBucketPacer {b.rate:g}/{b.per.total_seconds():g}s burst {b.burst}>"


Pacer = NoPacing | TokenBucketPacer


def bucket_for(kind: str, setting: PacingConfig | str | None) -> Bucket | None:
    """The bucket a channel of type ``kind`` paces with: the platform's
    default when ``setting`` is None, none for ``"off"``."""
    if setting is None:
        return pacing_for(kind)
    if isinstance(setting, PacingConfig):
        return Bucket(rate=setting.rate, per=setting.per, burst=setting.burst)
    return None


def pacer_for(
    kind: str,
    setting: PacingConfig | str | None,
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
) -> Pacer:
    bucket = bucket_for(kind, setting)
    if bucket is None:
        return NoPacing()
    return TokenBucketPacer(bucket, clock=clock, sleep=sleep)


def describe_pacing(pacer: object) -> str:
    """`` (paced 54/60s, burst 1)`` for descriptions; empty when unpaced."""
    bucket = getattr(pacer, "bucket", None)
    if not isinstance(bucket, Bucket):
        return ""
    return f", paced {bucket.rate:g}/{bucket.per.total_seconds():g}s burst {bucket.burst}"
