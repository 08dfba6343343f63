"""Scheduled digests: once per period, on the configured wall clock.

Each (channel, schedule) digest is due at its schedule's fire times. The
digest job asks, for each digest, which fire time is owed now
(``periods.missed_fire``: the latest fire time after the last period
recorded, so a daemon that was down over several fire times sends one late
digest, not one per missed period), and has the store compose that period:
a ledger row unique on (digest, period end) and the notifications of every
pending row created before the fire time, in one transaction. Restarts and
replicas therefore send each period exactly once; the notifications are
then delivered (and retried) like any other.

A muted channel's digest waits: its period is not recorded, so the next
fire time after the mute collects everything. A muted rule's rows stay out
of the digest until the mute ends (or are dropped, for ``--drop``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newswatch.notify.targets import Targets
from newswatch.periods.schedule import Schedule, missed_fire, next_fire, period_ending
from newswatch.store.base import DigestLedger, DigestOutcome, DigestTarget, Mute

log = logging.getLogger("newswatch.digest")

# A digest composed more than this after its fire time is marked late (the
# daemon was not running at fire time); the tick itself runs every 30 s.
LATE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DigestDue:
    """A digest period owed now. Pure result of ``due_digests``."""

    digest: DigestTarget
    schedule: Schedule
    period_start: datetime
    period_end: datetime
    late: bool


def due_digests(
    targets: Targets,
    last_ends: dict[str, datetime | None],
    mutes: list[Mute],
    now: datetime,
) -> list[DigestDue]:
    """Which digest periods are owed at ``now``. Pure.

    ``last_ends``: each digest's last recorded period end (None: never).
    """
    tz: ZoneInfo = targets.tz
    due = []
    for digest, schedule in targets.digests():
        if any(m.active(now) and m.kind == "channel" and m.name == digest.channel for m in mutes):
            continue
        fire = missed_fire(schedule, tz, last_ends.get(digest.key), now)
        if fire is None:
            continue
        period = period_ending(schedule, tz, fire)
        due.append(
            DigestDue(
                digest=digest,
                schedule=schedule,
                period_start=period.start,
                period_end=period.end,
                late=now - fire > LATE_AFTER,
            )
        )
    return due


def muted_rules(mutes: list[Mute], now: datetime) -> list[str]:
    return sorted({m.name for m in mutes if m.active(now) and m.kind == "rule"})


def run_digests(
    store: DigestLedger,
    targets: Targets,
    mutes: list[Mute],
    now: datetime,
    *,
    max_items: int,
    send_empty: bool,
) -> list[tuple[DigestDue, DigestOutcome]]:
    """Compose every digest period owed now (sync: run it in a thread)."""
    last = {d.key: store.last_period_end(d.key) for d, _ in targets.digests()}
    done = []
    for item in due_digests(targets, last, mutes, now):
        outcome = store.compose_digest(
            item.digest,
            period_start=item.period_start,
            period_end=item.period_end,
            cutoff=item.period_end,
            now=now,
            late=item.late,
            max_items=max_items,
            send_empty=send_empty,
            exclude_rules=muted_rules(mutes, now),
        )
        if not outcome.done_before:
            log.info(
                "digest %s for %s (period ending %s%s): %d stories in %d notifications",
                item.schedule,
                item.digest.channel,
                item.period_end.astimezone(targets.tz).strftime("%Y-%m-%d %H:%M %Z"),
                ", late" if item.late else "",
                outcome.items,
                len(outcome.notifications),
            )
        done.append((item, outcome))
    return done


def send_now(
    store: DigestLedger,
    targets: Targets,
    channel: str,
    now: datetime,
    *,
    max_items: int,
    schedule_text: str | None = None,
) -> list[tuple[DigestTarget, DigestOutcome]]:
    """Compose the upcoming period of ``channel``'s digests now, counted as
    that period's digest (its fire time then finds it done)."""
    out = []
    for digest, schedule in targets.digests():
        if digest.channel != channel:
            continue
        if schedule_text is not None and digest.schedule != schedule_text:
            continue
        end = next_fire(schedule, targets.tz, now)
        start = period_ending(schedule, targets.tz, end).start
        outcome = store.compose_digest(
            digest,
            period_start=start,
            period_end=end,
            cutoff=now,
            now=now,
            late=False,
            max_items=max_items,
            send_empty=True,
        )
        out.append((digest, outcome))
    return out
