"""The delivery loop: claim due outbox rows, send them, record the outcome.

It decides nothing itself: ``retry.next_attempt_at`` paces retries and each
channel classifies its own failures (``DeliveryResult``). What it adds is
isolation and bookkeeping:

- Channels run in separate lanes, each with its own concurrency limit, and
  every send has a timeout: a slow or failing channel never holds up another.
- A lane sends its first row alone, then the rest concurrently, and stops
  after its first temporary failure in a batch (the service is down or
  throttling): the rest of that channel's rows are released untried (the
  store does not count the attempt) instead of each waiting out its own
  timeout. So a down service sees one probe per round; rows that failed wait
  out their backoff.
- Sends start only while the lease has room for a full send timeout, so a
  lease never runs out under a send (which would let another worker send it
  too).
- Cancellation (shutdown) releases every claimed row whose outcome was not
  recorded, so nothing waits for a lease to expire. A send cut off mid-way may
  have reached the service: delivery is at-least-once.
- An outbox row for a channel that is no longer configured becomes a dead
  letter at once ("channel 'x' is not configured"): retrying cannot help
  until the config changes, and then ``newswatch outbox retry`` sends it.
  Keeping it pending would hide the problem in a retry loop for a day.

Store calls run in a worker thread (the store is synchronous and
thread-safe), except the release on cancellation, which must happen before
the task unwinds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from newswatch.model import Alert, DeliveryResult
from newswatch.notify.channels.base import Channel
from newswatch.notify.retry import MAX_ATTEMPTS, next_attempt_at

log = logging.getLogger("newswatch.notify")

# A channel that has not answered in a minute is down for our purposes; its
# row is retried later. Channels' own timeouts (SMTP, HTTP) are usually lower.
SEND_TIMEOUT = timedelta(seconds=60)
# Time kept free at the end of a lease for recording outcomes.
_LEASE_MARGIN = 0.1  # of the lease


class OutboxQueue(Protocol):
    """The part of ``store.base.Store`` the deliverer uses."""

    def claim_outbox(self, now: datetime, lease_until: datetime, limit: int) -> list[Alert]: ...
    def mark_sent(self, outbox_id: int, now: datetime) -> None: ...
    def mark_retry(
        self, outbox_id: int, error: str, now: datetime, next_attempt_at: datetime
    ) -> None: ...
    def mark_dead(self, outbox_id: int, error: str, now: datetime) -> None: ...
    def release_outbox(self, outbox_ids: Sequence[int]) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Outcomes of one or more delivery rounds.

    ``deferred`` rows were claimed but not tried (their channel failed earlier
    in the batch, the lease ran short, or shutdown) and were handed back.
    """

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0

    @property
    def settled(self) -> int:
        """Rows whose outcome was recorded."""
        return self.sent + self.retried + self.dead

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(
            sent=self.sent + other.sent,
            retried=self.retried + other.retried,
            dead=self.dead + other.dead,
            deferred=self.deferred + other.deferred,
        )

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.retried} retried, {self.dead} dead"
        return f"{text}, {self.deferred} deferred" if self.deferred else text


@dataclass(slots=True)
class _Round:
    """Mutable bookkeeping of one ``deliver_due`` call."""

    unsettled: set[int]
    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    tripped: dict[str, str] = field(default_factory=dict)  # channel -> first error

    def stats(self) -> DeliveryStats:
        return DeliveryStats(self.sent, self.retried, self.dead, self.deferred)


class Deliverer:
    """Sends due outbox rows through their channels.

    ``channels`` is a public attribute: a config reload swaps it, and the next
    round uses the new set (a round in progress keeps the one it started with).
    ``concurrency`` is per channel.
    """

    def __init__(
        self,
        store: OutboxQueue,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], datetime],
        rng: random.Random,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 50,
        concurrency: int = 8,
        send_timeout: timedelta = SEND_TIMEOUT,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        budget = lease * (1 - _LEASE_MARGIN) - send_timeout
        if budget <= timedelta(0):
            raise ValueError(f"lease ({lease}) must leave room for a send timeout ({send_timeout})")
        self.store = store
        self.channels = channels
        self._clock = clock
        self._rng = rng
        self._lease = lease
        self._batch = batch
        self._concurrency = concurrency
        self._send_timeout = send_timeout.total_seconds()
        self._start_budget = budget.total_seconds()

    async def deliver_due(self) -> DeliveryStats:
        """One round: claim up to ``batch`` due rows, send them, record outcomes.

        If cancelled while the claim itself runs, its rows come back when their
        lease expires; at any later point they are released at once.
        """
        channels = self.channels
        now = self._clock()
        alerts = await asyncio.to_thread(
            self.store.claim_outbox, now, now + self._lease, self._batch
        )
        if not alerts:
            return DeliveryStats()
        start_by = asyncio.get_running_loop().time() + self._start_budget
        state = _Round(unsettled={a.outbox_id for a in alerts})
        try:
            async with asyncio.TaskGroup() as lanes:
                for name, group in _by_channel(alerts).items():
                    channel = channels.get(name)
                    if channel is None:
                        for alert in group:
                            error = f"channel {name!r} is not configured"
                            await self._settle(alert, DeliveryResult.failed(error), state)
                    else:
                        lanes.create_task(self._lane(channel, group, state, start_by))
        finally:
            self._release(state)
        for name, error in state.tripped.items():
            log.info("channel %r is failing (%s); its other due alerts wait", name, error)
        return state.stats()

    async def drain(self, *, max_rounds: int = 1000) -> DeliveryStats:
        """Run rounds until nothing due is left to try now.

        Stops when a round records no outcome (nothing due, or only rows of a
        failing channel handed back); rows waiting for a retry are not waited for.
        """
        total = DeliveryStats()
        for _ in range(max_rounds):
            stats = await self.deliver_due()
            total += stats
            if stats.settled == 0:
                break
        return total

    # ----------------------------------------------------------------- steps

    async def _lane(
        self, channel: Channel, alerts: Sequence[Alert], state: _Round, start_by: float
    ) -> None:
        gate = asyncio.Semaphore(self._concurrency)
        loop = asyncio.get_running_loop()
        name = alerts[0].channel  # the config key (all alerts here share it)

        async def one(alert: Alert) -> None:
            async with gate:
                if name in state.tripped or loop.time() >= start_by:
                    return  # stays unsettled: released untried
                result = await self._attempt(channel, alert)
                if not result.ok and not result.permanent:
                    state.tripped.setdefault(name, result.error or "failed")
                await self._settle(alert, result, state)

        # The first send goes alone: if the service is down, that is one
        # connection per round instead of ``concurrency`` of them.
        await one(alerts[0])
        async with asyncio.TaskGroup() as sends:
            for alert in alerts[1:]:
                sends.create_task(one(alert))

    async def _attempt(self, channel: Channel, alert: Alert) -> DeliveryResult:
        try:
            async with asyncio.timeout(self._send_timeout):
                return await channel.send(alert)
        except TimeoutError:
            return DeliveryResult.retry(
                f"{channel.kind} channel {channel.name!r}: no answer within {self._send_timeout:g}s"
            )
        except Exception as exc:
            # Channels report failures, they do not raise: this is a bug. The
            # message may quote secrets, so only the type and place are logged.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{frame.filename}:{frame.lineno} in {frame.name}"
            log.error("channel %r raised %s at %s", channel.name, type(exc).__name__, where)
            return DeliveryResult.retry(
                f"{channel.kind} channel {channel.name!r}: internal error {type(exc).__name__}"
            )

    async def _settle(self, alert: Alert, result: DeliveryResult, state: _Round) -> None:
        """Record one outcome. A store error is logged and the row left leased:
        it comes back when the lease expires (one bad row never stops the rest)."""
        # Settled before the await: if cancelled now, the store call still
        # completes in its thread and the row must not also be released.
        state.unsettled.discard(alert.outbox_id)
        now = self._clock()
        what = f"alert {alert.outbox_id} (rule {alert.rule!r}) via {alert.channel!r}"
        try:
            if result.ok:
                state.sent += 1
                await asyncio.to_thread(self.store.mark_sent, alert.outbox_id, now)
                log.info("sent %s", what)
            elif result.permanent or alert.attempt >= MAX_ATTEMPTS:
                error = result.error or "failed"
                if not result.permanent:
                    error = f"gave up after {alert.attempt} attempts: {error}"
                state.dead += 1
                await asyncio.to_thread(self.store.mark_dead, alert.outbox_id, error, now)
                log.warning("dead letter %s: %s", what, error)
            else:
                error = result.error or "failed"
                when = next_attempt_at(
                    alert.attempt, now, rng=self._rng, retry_after=result.retry_after
                )
                state.retried += 1
                await asyncio.to_thread(self.store.mark_retry, alert.outbox_id, error, now, when)
                log.info(
                    "retry %s at %s (attempt %d): %s",
                    what,
                    when.isoformat(timespec="seconds"),
                    alert.attempt,
                    error,
                )
        except Exception as exc:
            log.error("could not record the outcome of %s: %s", what, type(exc).__name__)

    def _release(self, state: _Round) -> None:
        if not state.unsettled:
            return
        ids = sorted(state.unsettled)
        try:
            self.store.release_outbox(ids)
        except Exception as exc:
            log.error("could not release %d claimed alerts: %s", len(ids), type(exc).__name__)
            return
        state.deferred += len(ids)
        state.unsettled.clear()


def _by_channel(alerts: Sequence[Alert]) -> dict[str, list[Alert]]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.channel, []).append(alert)
    return groups
