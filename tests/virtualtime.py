"""Virtual time for pacing tests: a clock that moves only when every
participant is asleep, so waits cost nothing and happen in the right order.

    clock = VirtualClock()
    channel = build_channel(..., clock=clock.datetime, sleep=clock.sleep)
    receiver = SlackWebhookReceiver(clock=clock)       # float seconds

With one participant (the default), ``sleep(s)`` moves the clock ``s``
ahead and returns. With several (``async with clock.workers(4)``), a sleeper
waits until all four are asleep or done, then the earliest wakes at its
time: a discrete-event simulation of concurrent sends, faithful to when
each request would go (HTTP on loopback takes no virtual time).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 6, 19, 9, 0, tzinfo=UTC)


class VirtualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = 0.0  # seconds since ``start``
        self.start = start
        self.participants = 1
        self.slept: list[float] = []  # every sleep asked for, in order
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def __call__(self) -> float:
        """Float seconds, for the receivers' clocks."""
        return self.now

    def datetime(self) -> datetime:
        """The channel's clock."""
        return self.start + timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        """Time passes outside any sleep (a retry's backoff)."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, future))
        self._wake()
        await future

    def _wake(self) -> None:
        while self._sleepers and len(self._sleepers) >= self.participants:
            target, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, target)
            if not future.done():
                future.set_result(None)
                return

    def leave(self) -> None:
        """A participant is done: the others need not wait for it."""
        self.participants -= 1
        self._wake()

    @asynccontextmanager
    async def workers(self, count: int) -> AsyncIterator[None]:
        """``count`` concurrent participants; each calls ``leave()`` when done."""
        before = self.participants
        self.participants = count
        try:
            yield
        finally:
            self.participants = before
