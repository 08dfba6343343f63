"""The poll pool: a fixed number of slots, each polling one feed at a time.

A feed is taken only for a free slot, and only if its host has a free
connection (``per_host``) at that moment: a host's limit counts before the
feed is claimed, so a publisher with 300 feeds never holds slots that other
hosts could use, and one slow feed delays nobody but itself (the batch loop
this replaces waited for the slowest feed of every batch).

A feed keeps its slot from its claim to the end of its ingest, so at most
``slots`` bodies and parse results are ever held: memory does not grow with
the number of feeds. Its lease starts at the claim, which is when its fetch
starts (there is no queue behind the claim), is short, and is renewed while
the feed is still being worked on. On shutdown the leases of unfinished
feeds are given back, so the next start polls them at once.

Two sources feed the pool: the store's due feeds (the daemon, ``run``), and
a fixed list (``poll --once``, ``run_list``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from newswatch.config import FeedConfig
from newswatch.poll.execute import Poller
from newswatch.poll.outcome import FeedOutcome, feed_host
from newswatch.poll.stats import Cycle
from newswatch.store.base import FeedState

log = logging.getLogger("newswatch.poll")

# Claims per take when feeds of a full host keep coming back: each round
# skips the hosts found full in the one before.
MAX_CLAIM_ROUNDS: Final = 4
# A feed's lease, renewed every third of it while the feed is at work: a
# process killed mid-poll frees its feeds within this long (at once when it
# restarts on the same host: newswatch.leases).
FEED_LEASE: Final = timedelta(seconds=30)

Work = tuple[FeedConfig, FeedState | None]


class Source(Protocol):
    async def take(self, limit: int, busy: Counter[str], per_host: int) -> list[Work]: ...

    @property
    def exhausted(self) -> bool: ...


def _room(host: str, busy: Counter[str], per_host: int) -> bool:
    # Local files ("" host) count against the slots only.
    return not host or busy[host] < per_host


class ListSource:
    """A fixed list of feeds, each polled once; hosts taken in turn."""

    def __init__(self, work: Iterable[Work]) -> None:
        self._queues: dict[str, deque[Work]] = {}
        for item in work:
            self._queues.setdefault(feed_host(item[0]), deque()).append(item)
        self._hosts = deque(self._queues)

    @property
    def exhausted(self) -> bool:
        return not self._hosts

    async def take(self, limit: int, busy: Counter[str], per_host: int) -> list[Work]:
        planned: Counter[str] = Counter(busy)
        taken: list[Work] = []
        idle_turns = 0
        while self._hosts and len(taken) < limit and idle_turns < len(self._hosts):
            host = self._hosts.popleft()
            queue = self._queues[host]
            if _room(host, planned, per_host):
                taken.append(queue.popleft())
                planned[host] += 1 if host else 0
                idle_turns = 0
            else:
                idle_turns += 1
            if queue:
                self._hosts.append(host)
            else:
                del self._queues[host]
        return taken


class ClaimSource:
    """The store's due feeds, leased as they are claimed."""

    def __init__(self, poller: Poller, lease: timedelta) -> None:
        self.poller = poller
        self.lease = lease

    @property
    def exhausted(self) -> bool:
        return False

    async def take(self, limit: int, busy: Counter[str], per_host: int) -> list[Work]:
        poller = self.poller
        store = poller.store
        planned: Counter[str] = Counter(busy)
        taken: list[Work] = []
        extra: list[str] = []
        for _ in range(MAX_CLAIM_ROUNDS):
            want = limit - len(taken)
            if want <= 0:
                break
            now = poller.clock()
            full = sorted(h for h, n in planned.items() if h and n >= per_host)
            states = await poller.write(
                functools.partial(store.claim_due_feeds, skip_hosts=full, owner=poller.owner),
                now,
                now + self.lease,
                want,
            )
            if not states:
                break
            accepted = 0
            feeds = poller.feeds_by_key
            for state in states:
                feed = feeds.get(state.feed_key)
                host = feed_host(feed) if feed is not None else ""
                if feed is None or not _room(host, planned, per_host):
                    extra.append(state.feed_key)  # removed by a reload, or host full
                    continue
                planned[host] += 1 if host else 0
                taken.append((feed, state))
                accepted += 1
            if accepted == 0 or len(states) < want:
                break
        if extra:
            await poller.write(store.release_feeds, extra)
        return taken


class PollPool:
    """``slots`` feeds at a time, at most ``per_host`` of them on one host."""

    def __init__(
        self,
        poller: Poller,
        *,
        slots: int,
        per_host: int,
        lease: timedelta | None = None,
        tick: float = 1.0,
        on_outcome: Callable[[FeedOutcome], None] | None = None,
        on_cycle: Callable[[Sequence[FeedOutcome], float], None] | None = None,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        if slots < 1 or per_host < 1:
            raise ValueError("slots and per_host must be at least 1")
        self.poller = poller
        self.slots = slots
        self.per_host = per_host
        self.lease = lease or FEED_LEASE
        self.tick = tick
        self.on_outcome = on_outcome
        # A cycle's outcomes (counts only: no articles) and its seconds,
        # when nothing due is left; a beat at every turn of the loop.
        self.on_cycle = on_cycle
        self.on_beat = on_beat

    async def run(self, stop: asyncio.Event) -> None:
        """Poll due feeds until ``stop`` is set (the daemon), then finish the
        feeds in flight; cancelled, it gives their leases back."""
        await self._loop(ClaimSource(self.poller, self.lease), stop, leased=True, keep=False)

    async def run_due(self) -> list[FeedOutcome]:
        """Poll every feed that is due now, then return (tests, one-shot runs)."""
        stop = asyncio.Event()
        source = _UntilIdle(ClaimSource(self.poller, self.lease))
        return await self._loop(source, stop, leased=True)

    async def run_list(self, work: Sequence[Work]) -> list[FeedOutcome]:
        """Poll each of ``work`` once, due or not (``poll --once``)."""
        return await self._loop(ListSource(work), asyncio.Event(), leased=False)

    async def _loop(
        self, source: Source, stop: asyncio.Event, *, leased: bool, keep: bool = True
    ) -> list[FeedOutcome]:
        """Run feeds from ``source``; ``keep``: return their outcomes (a
        daemon that runs for weeks keeps none)."""
        poller = self.poller
        running: dict[asyncio.Task[FeedOutcome], tuple[str, str]] = {}
        busy: Counter[str] = Counter()
        outcomes: list[FeedOutcome] = []
        cycle: _CycleClock | None = None
        renew_every = self.lease.total_seconds() / 3
        last_renew = time.monotonic()
        last_take = 0.0
        stopper = asyncio.create_task(stop.wait())
        progressed = False
        try:
            while True:
                # Progress: nothing in flight (idle and looking), or a feed
                # finished since the last turn. Feeds in flight that never
                # finish make no beat: a stuck pool shows as a stale loop.
                if self.on_beat is not None and (not running or progressed):
                    self.on_beat()
                progressed = False
                free = self.slots - len(running)
                # Claim when a good share of the slots is free or nothing is
                # running: one claim transaction per finished feed would cost
                # more than the polls at 10,000 feeds.
                eager = free >= max(1, self.slots // 4) or not running
                taken: list[Work] = []
                now_m = time.monotonic()
                if free > 0 and not stop.is_set() and (eager or now_m - last_take >= self.tick):
                    last_take = now_m
                    taken = await source.take(free, busy, self.per_host)
                for feed, state in taken:
                    host = feed_host(feed)
                    if host:
                        busy[host] += 1
                    task = asyncio.create_task(poller.poll_one(feed, state))
                    running[task] = (feed.key, host)
                if taken and cycle is None:
                    cycle = _CycleClock(poller.clock())
                if not running:
                    if cycle is not None:
                        await poller.flush()
                        done_cycle = cycle.close()
                        poller.stats.cycles.append(done_cycle)
                        if self.on_cycle is not None:
                            self.on_cycle(cycle.outcomes, done_cycle.seconds)
                        cycle = None
                    if source.exhausted or stop.is_set():
                        break
                    if poller.flush_due():
                        await poller.flush()
                    await asyncio.wait({stopper}, timeout=self.tick)
                    continue
                waiting: set[asyncio.Future[Any]] = set(running)
                if not stopper.done():  # once stopping, wait on the feeds only
                    waiting.add(stopper)
                done, _ = await asyncio.wait(
                    waiting, timeout=self.tick, return_when=asyncio.FIRST_COMPLETED
                )
                for task in running.keys() & done:
                    progressed = True
                    key, host = running.pop(task)
                    if host:
                        busy[host] -= 1
                    try:
                        outcome = task.result()
                    except Exception:
                        # Not even its failure could be recorded (the store
                        # refused): its lease runs out and it is polled again.
                        log.exception("feed %s: polling it failed", key)
                        continue
                    if keep:
                        outcomes.append(outcome)
                    if cycle is not None:
                        cycle.add(outcome)
                    if self.on_outcome is not None:
                        self.on_outcome(outcome)
                if poller.flush_due():
                    await poller.flush()
                if leased and time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    keys = [k for k, _ in running.values()] + sorted(poller.pending_keys())
                    until = poller.clock() + self.lease
                    await poller.write(poller.store.renew_feeds, keys, until)
        finally:
            stopper.cancel()
            unfinished = [key for key, _ in running.values()]
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            # Both must happen even when cancelled: shield them.
            with contextlib.suppress(Exception):
                await asyncio.shield(poller.flush())
            if leased and unfinished:
                await asyncio.shield(asyncio.to_thread(poller.store.release_feeds, unfinished))
        return outcomes


class _UntilIdle:
    """A claim source that is exhausted once a claim finds nothing due."""

    def __init__(self, inner: ClaimSource) -> None:
        self.inner = inner
        self._done = False

    @property
    def exhausted(self) -> bool:
        return self._done

    async def take(self, limit: int, busy: Counter[str], per_host: int) -> list[Work]:
        taken = await self.inner.take(limit, busy, per_host)
        if not taken and not any(busy.values()):
            self._done = True
        return taken


class _CycleClock:
    def __init__(self, started: datetime) -> None:
        self.started = started
        self.t0 = time.monotonic()
        self.feeds = 0
        self.failed = 0
        self.outcomes: list[FeedOutcome] = []

    def add(self, outcome: FeedOutcome) -> None:
        self.feeds += 1
        self.failed += outcome.failed
        self.outcomes.append(outcome)

    def close(self) -> Cycle:
        return Cycle(self.started, time.monotonic() - self.t0, self.feeds, self.failed)
