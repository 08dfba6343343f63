"""The delivery loop: compose waiting outbox rows into notifications (the
planner decides, the store applies), then claim due notifications, send
them, and record the outcome.

It decides nothing itself: ``plan.plan`` groups and holds, ``retry``
paces retries and each channel classifies its own failures. What it adds is
isolation and bookkeeping:

- Channels run in separate lanes, each with its own concurrency limit, and
  every send has a timeout: a slow or failing channel never holds up another.
- A lane sends its first notification alone, then the rest concurrently,
  and stops after its first temporary failure in a round (the service is
  down or throttling): the rest of that channel's notifications are released
  untried (the attempt is not counted). So a down service sees one probe per
  round; notifications that failed wait out their backoff.
- Leases are short and renewed while a round is in flight, so a process
  killed mid-send frees its notifications within a lease (a restart resumes
  within seconds), and a slow send never outlives its lease.
- Cancellation (shutdown) releases every claimed notification whose outcome
  was not recorded. A send cut off mid-way may have reached the service:
  delivery is at-least-once, and the retry carries the same idempotency key.
- A notification for a channel that is no longer configured becomes a dead
  letter at once ("channel 'x' is not configured"): retrying cannot help
  until the config changes, and then ``newswatch outbox retry`` sends it.
- A notification split into parts records how many parts the service took,
  so a retry resumes after them instead of repeating them.

Store calls run in a worker thread (the store is synchronous and
thread-safe), except the release on cancellation, which must happen before
the task unwinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.base import Channel
from newswatch.notify.plan import MAX_ITEMS, PlanInput, plan, throttle_window
from newswatch.notify.retry import MAX_ATTEMPTS, next_attempt_at
from newswatch.notify.targets import Targets
from newswatch.store.base import Mutes, Outbox

log = logging.getLogger("newswatch.notify")

# A channel that has not answered in two minutes is down for our purposes;
# the notification is retried later. Channels' own timeouts (SMTP, HTTP) are
# lower; this bounds a split notification's parts and pacing waits too.
SEND_TIMEOUT = timedelta(minutes=2)
# Short, renewed leases: a killed process's notifications come back soon.
LEASE = timedelta(seconds=45)
# Rows looked at per compose step.
COMPOSE_BATCH = 5000


class DeliveryStore(Outbox, Mutes, Protocol):
    """The parts of the store the deliverer uses."""


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Outcomes of one or more delivery rounds.

    ``deferred`` notifications were claimed but not tried (their channel
    failed earlier in the round, or shutdown) and were handed back.
    ``composed``: notifications made from waiting rows.
    """

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    composed: int = 0

    @property
    def settled(self) -> int:
        """Notifications whose outcome was recorded."""
        return self.sent + self.retried + self.dead

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(
            sent=self.sent + other.sent,
            retried=self.retried + other.retried,
            dead=self.dead + other.dead,
            deferred=self.deferred + other.deferred,
            composed=self.composed + other.composed,
        )

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.retried} retried, {self.dead} dead"
        return f"{text}, {self.deferred} deferred" if self.deferred else text


def more_at_once(stats: DeliveryStats, batch: int) -> bool:
    """Whether to start another round now rather than at the next tick: the
    last one was full (a burst may wait behind it) and went well. Any
    failure waits for the tick, so a down service is not probed in a tight
    loop. Pure."""
    clean = not (stats.retried or stats.deferred or stats.dead)
    return clean and stats.settled >= batch


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
    """Composes and sends notifications through their channels.

    ``channels`` and ``targets`` are public attributes: a config reload swaps
    them, and the next round uses the new ones (a round in progress keeps
    the ones it started with). ``concurrency`` is per channel.
    """

    def __init__(
        self,
        store: DeliveryStore,
        channels: Mapping[str, Channel],
        *,
        targets: Targets,
        clock: Callable[[], datetime],
        rng: random.Random,
        lease: timedelta = LEASE,
        batch: int = 50,
        concurrency: int = 4,
        send_timeout: timedelta = SEND_TIMEOUT,
        max_items: int = MAX_ITEMS,
        owner: str | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        if lease <= timedelta(seconds=3):
            raise ValueError(f"lease ({lease}) is too short to be renewed")
        self.store = store
        self.channels = channels
        self.targets = targets
        self.max_items = max_items
        self._clock = clock
        self._rng = rng
        self._lease = lease
        self._batch = batch
        self._concurrency = concurrency
        self._send_timeout = send_timeout.total_seconds()
        self._owner = owner  # recorded with each lease (newswatch.leases)
        # Channels whose last round failed, for one WARNING when they start
        # failing and one INFO when they recover.
        self._failing: dict[str, str] = {}
        # Told (channel, "sent" | "failed" | "dead") for each recorded
        # outcome: the daemon's metrics. Must not raise or block.
        self.observer: Callable[[str, str], None] | None = None
        # Set on shutdown: sends already started finish, no new one starts
        # (the rest of the round is released untried).
        self.stopping = False

    @property
    def batch(self) -> int:
        """Notifications claimed per round at most."""
        return self._batch

    # ----------------------------------------------------------------- compose

    async def compose(self, *, flush: bool = False) -> int:
        """Plan the waiting immediate rows and apply the decisions; returns
        the number of notifications made. ``flush``: do not wait out group
        windows (a one-shot run that exits afterwards)."""
        now = self._clock()
        rows = await asyncio.to_thread(self.store.pending_due, now, COMPOSE_BATCH)
        if not rows:
            return 0
        targets = self.targets
        pairs = sorted({(r.rule, r.target_id) for r in rows})
        window = throttle_window(targets)
        sends = (
            await asyncio.to_thread(self.store.recent_sends, pairs, now - window)
            if window > timedelta(0)
            else {}
        )
        mutes = await asyncio.to_thread(self.store.mutes, now)
        decisions = plan(
            rows,
            PlanInput(
                targets=targets,
                sends=sends,
                mutes=mutes,
                now=now,
                max_items=self.max_items,
                flush=flush,
            ),
        )
        if not decisions:
            return 0
        created = await asyncio.to_thread(self.store.apply, decisions, now)
        return len(created)

    # ----------------------------------------------------------------- send

    async def deliver_due(
        self, *, flush: bool = False, only: Sequence[int] | None = None
    ) -> DeliveryStats:
        """One round: compose what is due, claim up to ``batch`` due
        notifications, send them, record outcomes.

        If cancelled while the claim itself runs, its notifications come back
        when their lease expires; at any later point they are released at once.
        ``only``: send just these notifications (and compose nothing).
        """
        composed = 0 if only is not None else await self.compose(flush=flush)
        channels = self.channels
        now = self._clock()
        claimed = await asyncio.to_thread(
            functools.partial(
                self.store.claim_notifications,
                now,
                now + self._lease,
                self._batch,
                only=only,
                owner=self._owner,
            )
        )
        if not claimed:
            return DeliveryStats(composed=composed)
        state = _Round(unsettled={n.id for n in claimed})
        renewer = asyncio.get_running_loop().create_task(self._renew(state))
        try:
            async with asyncio.TaskGroup() as lanes:
                for name, group in _by_channel(claimed).items():
                    channel = channels.get(name)
                    if channel is None:
                        for n in group:
                            error = f"channel {name!r} is not configured"
                            await self._settle(n, DeliveryResult.failed(error), state)
                    else:
                        lanes.create_task(self._lane(channel, group, state))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._release(state)
            for name in {n.channel for n in claimed}:
                channel = channels.get(name)
                if channel is not None:
                    with contextlib.suppress(Exception):
                        await channel.flush()
        self._report(state, {n.channel for n in claimed})
        return dataclasses.replace(state.stats(), composed=composed)

    async def drain(self, *, max_rounds: int = 1000, flush: bool = False) -> DeliveryStats:
        """Run rounds until nothing due is left to try now.

        Stops when a round composes and records nothing (nothing due, or only
        notifications of a failing channel handed back); notifications
        waiting for a retry, and rows waiting for a group or digest, are not
        waited for.
        """
        total = DeliveryStats()
        for _ in range(max_rounds):
            stats = await self.deliver_due(flush=flush)
            total += stats
            if stats.settled == 0 and stats.composed == 0:
                break
        return total

    # ----------------------------------------------------------------- steps

    async def _renew(self, state: _Round) -> None:
        """Keep the round's leases ahead of the clock while it runs."""
        period = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            ids = sorted(state.unsettled)
            if not ids:
                continue
            until = self._clock() + self._lease
            try:
                await asyncio.to_thread(self.store.renew_notifications, ids, until)
            except Exception as exc:
                log.error("could not renew %d leases: %s", len(ids), type(exc).__name__)

    async def _lane(self, channel: Channel, group: Sequence[Notification], state: _Round) -> None:
        gate = asyncio.Semaphore(self._concurrency)
        name = group[0].channel  # the config key (all notifications here share it)

        async def one(notification: Notification) -> None:
            async with gate:
                if name in state.tripped or self.stopping:
                    return  # stays unsettled: released untried
                result = await self._attempt(channel, notification)
                if not result.ok and not result.permanent and not result.deferred:
                    state.tripped.setdefault(name, result.error or "failed")
                await self._settle(notification, result, state)

        # The first send goes alone: if the service is down, that is one
        # connection per round instead of ``concurrency`` of them.
        await one(group[0])
        async with asyncio.TaskGroup() as sends:
            for notification in group[1:]:
                sends.create_task(one(notification))

    async def _attempt(self, channel: Channel, notification: Notification) -> DeliveryResult:
        try:
            async with asyncio.timeout(self._send_timeout):
                return await channel.send(notification)
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

    async def _settle(self, n: Notification, result: DeliveryResult, state: _Round) -> None:
        """Record one outcome. A store error is logged and the notification
        left leased: it comes back when the lease expires."""
        # Settled before the await: if cancelled now, the store call still
        # completes in its thread and the notification must not also be released.
        state.unsettled.discard(n.id)
        now = self._clock()
        plural = "s" if len(n.items) != 1 else ""
        what = f"{n.kind.value} {n.id} ({len(n.items)} item{plural}) via {n.channel!r}"
        parts = result.parts_sent  # absolute: channels skip n.parts_sent themselves
        try:
            if result.ok:
                state.sent += 1
                self._observe(n.channel, "sent")
                await asyncio.to_thread(self.store.mark_sent, n.id, now, parts)
                log.info("sent %s", what)
            elif result.deferred:
                # Paced, not failed: the rest of its parts go when the
                # platform's limit allows; the attempt does not count.
                when = now + timedelta(seconds=max(result.retry_after or 1.0, 1.0))
                error = result.error or "paced"
                state.deferred += 1
                await asyncio.to_thread(
                    self.store.defer_notification, n.id, error, when, result.parts_sent
                )
                log.debug("%s paced: %s", what, error)
            elif result.permanent or n.attempt >= MAX_ATTEMPTS:
                error = result.error or "failed"
                if not result.permanent:
                    error = f"gave up after {n.attempt} attempts: {error}"
                state.dead += 1
                self._observe(n.channel, "dead")
                await asyncio.to_thread(self.store.mark_dead, n.id, error, now)
                log.warning("dead letter %s: %s", what, error)
            else:
                error = result.error or "failed"
                when = next_attempt_at(
                    n.attempt, now, rng=self._rng, retry_after=result.retry_after
                )
                state.retried += 1
                self._observe(n.channel, "failed")
                await asyncio.to_thread(self.store.mark_retry, n.id, error, now, when, parts)
                log.debug(
                    "retry %s at %s (attempt %d): %s",
                    what,
                    when.isoformat(timespec="seconds"),
                    n.attempt,
                    error,
                )
        except Exception as exc:
            log.error("could not record the outcome of %s: %s", what, type(exc).__name__)

    def _observe(self, channel: str, outcome: str) -> None:
        if self.observer is not None:
            try:
                self.observer(channel, outcome)
            except Exception:  # metrics never stop a delivery
                log.exception("delivery observer failed")

    def _release(self, state: _Round) -> None:
        if not state.unsettled:
            return
        ids = sorted(state.unsettled)
        try:
            self.store.release_notifications(ids)
        except Exception as exc:
            log.error(
                "could not release %d claimed notifications: %s", len(ids), type(exc).__name__
            )
            return
        state.deferred += len(ids)
        state.unsettled.clear()

    def _report(self, state: _Round, channels: set[str]) -> None:
        """A channel that starts failing is a WARNING; its recovery one INFO."""
        for name in sorted(channels):
            error = state.tripped.get(name)
            if error is not None and name not in self._failing:
                log.warning(
                    "channel %r is failing (%s); its notifications wait and retry", name, error
                )
                self._failing[name] = error
            elif error is None and name in self._failing:
                del self._failing[name]
                log.info("channel %r recovered", name)

    @property
    def failing(self) -> Mapping[str, str]:
        """Channels failing now, with their first error."""
        return dict(self._failing)


def _by_channel(notifications: Sequence[Notification]) -> dict[str, list[Notification]]:
    groups: dict[str, list[Notification]] = {}
    for n in notifications:
        groups.setdefault(n.channel, []).append(n)
    return groups
