"""The delivery planner: which waiting outbox rows become which notification,
and which wait longer. Pure: rows, policies, recent sends, mutes and the
clock in; plain decisions out (``store.base.Decision``), which the store
applies in one transaction.

For each target (a channel's immediate stream), in order:

1. **Mutes**: a muted channel or rule holds its rows until the mute ends
   (or drops them, when the mute says ``--drop``). Rows released by a mute
   go into the rule's digest on that channel if it has one, else into one
   summary.
2. **Quiet hours** (per rule, wall clock): rows are held until they end and
   then go out together as one grouped notification.
3. **Throttle** ``N/window`` (per rule and target): beyond N items in the
   sliding window, further items are held, never dropped: they move into
   the rule's digest on that channel if it has one, else they wait for the
   window to free and go out as one "held back" summary.
4. **Grouping** (Alertmanager's group_wait): the first row of a burst waits
   its rule's ``group_wait`` for company; when the earliest deadline of the
   waiting rows comes, all of them go as one notification (an ``alert`` for
   one story, a ``group`` for several). So no row waits longer than its
   own group_wait.

A notification holds at most ``max_items`` stories; a bigger burst becomes
several notifications.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newswatch.keys import group_key
from newswatch.model import NotificationKind
from newswatch.notify.targets import DEFAULT_GROUP_WAIT, Policy, Targets
from newswatch.periods.quiet import quiet_until
from newswatch.periods.throttle import throttle_slot
from newswatch.store.base import (
    Compose,
    Decision,
    DropRows,
    HoldRows,
    MoveRows,
    Mute,
    PendingRow,
)

# hold_reason prefixes, read back by the planner on the next round.
GROUP = "group"
QUIET = "quiet hours"
THROTTLE = "throttle"
MUTE = "mute"

# Stories per notification: a burst beyond this is split into several.
MAX_ITEMS = 200


@dataclass(frozen=True, slots=True)
class PlanInput:
    """What the planner reads besides the rows."""

    targets: Targets
    sends: Mapping[tuple[str, str], Sequence[datetime]]  # (rule, target) -> composed_at
    mutes: Sequence[Mute]
    now: datetime
    max_items: int = MAX_ITEMS
    # Send forming groups now instead of waiting their group_wait (a
    # one-shot `poll --once` that exits afterwards). Holds still apply.
    flush: bool = False


def plan(rows: Sequence[PendingRow], given: PlanInput) -> list[Decision]:
    """Decisions for every row of ``rows`` that needs one now."""
    by_target: dict[str, list[PendingRow]] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        by_target.setdefault(row.target_id, []).append(row)
    decisions: list[Decision] = []
    for target_id, target_rows in by_target.items():
        decisions.extend(_plan_target(target_id, target_rows, given))
    return decisions


def _policy(row: PendingRow, given: PlanInput) -> Policy:
    """The row's policy; a row whose notify entry was removed by a reload
    keeps going to its channel with the default grouping."""
    found = given.targets.policy(row.rule, row.target_id)
    if found is not None:
        return found
    from newswatch.model import DeliveryMode

    return Policy(
        rule=row.rule,
        target_id=row.target_id,
        channel=row.channel,
        mode=DeliveryMode.IMMEDIATE,
        group_wait=DEFAULT_GROUP_WAIT,
    )


def _mute_for(row: PendingRow, mutes: Sequence[Mute], now: datetime) -> Mute | None:
    """The active mute covering the row that ends last (a drop mute wins)."""
    covering = [
        m
        for m in mutes
        if m.active(now)
        and (
            (m.kind == "channel" and m.name == row.channel)
            or (m.kind == "rule" and m.name == row.rule)
        )
    ]
    if not covering:
        return None
    drops = [m for m in covering if m.drop]
    return max(drops or covering, key=lambda m: m.until)


def _plan_target(target_id: str, rows: list[PendingRow], given: PlanInput) -> list[Decision]:
    now = given.now
    decisions: list[Decision] = []
    holds: dict[tuple[datetime, str], list[int]] = {}
    moves: dict[str, list[int]] = {}
    drops: dict[str, list[int]] = {}
    summary: list[PendingRow] = []  # released from a throttle or a mute: one summary
    summary_reason: list[str] = []
    group: list[PendingRow] = []
    counted: dict[tuple[str, str], list[datetime]] = {}

    for row in rows:
        policy = _policy(row, given)
        mute = _mute_for(row, given.mutes, now)
        if mute is not None:
            if mute.drop:
                drops.setdefault(f"dropped: {mute.kind} {mute.name} muted", []).append(row.id)
            else:
                holds.setdefault((mute.until, MUTE), []).append(row.id)
            continue
        reason = row.hold_reason or ""
        released = row.hold_until is not None and row.hold_until <= now
        if released and reason.startswith((THROTTLE, MUTE)):
            digest = given.targets.digest_of(row.rule, row.channel)
            if digest is not None:
                moves.setdefault(digest.target_id, []).append(row.id)
            else:
                summary.append(row)
                summary_reason.append("throttled" if reason.startswith(THROTTLE) else "muted")
            continue
        if (
            row.hold_until is not None
            and row.hold_until > now
            and reason.startswith((THROTTLE, MUTE))
        ):
            continue  # still held: nothing to decide
        if policy.quiet is not None:
            until = quiet_until(policy.quiet, given.targets.tz, now)
            if until is not None:
                holds.setdefault((until, QUIET), []).append(row.id)
                continue
        if policy.throttle is not None:
            pair = (row.rule, row.target_id)
            sent = counted.setdefault(pair, list(given.sends.get(pair, ())))
            slot = throttle_slot(policy.throttle, sent, now)
            if slot is not None:
                digest = given.targets.digest_of(row.rule, row.channel)
                if digest is not None:
                    moves.setdefault(digest.target_id, []).append(row.id)
                else:
                    holds.setdefault((slot, f"{THROTTLE} {policy.throttle}"), []).append(row.id)
                continue
            sent.append(now)  # this row takes a slot of the window
        group.append(row)

    channel = rows[0].channel
    if group:
        deadline = min(r.created_at + _policy(r, given).group_wait for r in group)
        if deadline <= now or given.flush:
            decisions.extend(_compose(channel, target_id, group, given.max_items))
        else:
            ids = [r.id for r in group if not (r.hold_reason == GROUP and r.hold_until == deadline)]
            if ids:
                holds.setdefault((deadline, GROUP), []).extend(ids)
    if summary:
        reason = "held back: " + ", ".join(sorted(set(summary_reason)))
        decisions.extend(
            _compose(channel, target_id, summary, given.max_items, NotificationKind.SUMMARY, reason)
        )
    for (until, why), ids in sorted(holds.items()):
        decisions.append(HoldRows(row_ids=tuple(ids), until=until, reason=why))
    for digest_target_id, ids in sorted(moves.items()):
        decisions.append(MoveRows(row_ids=tuple(ids), target_id=digest_target_id))
    for why, ids in sorted(drops.items()):
        decisions.append(DropRows(row_ids=tuple(ids), reason=why))
    return decisions


def _compose(
    channel: str,
    target_id: str,
    rows: Sequence[PendingRow],
    max_items: int,
    kind: NotificationKind | None = None,
    reason: str | None = None,
) -> list[Compose]:
    """One notification per ``max_items`` stories; a story's rows (one per
    rule) stay together."""
    stories: dict[int, list[int]] = {}
    for row in rows:
        stories.setdefault(row.story_id, []).append(row.id)
    batches = list(stories.values())
    out = []
    for start in range(0, len(batches), max_items):
        batch = batches[start : start + max_items]
        ids = tuple(i for ids in batch for i in ids)
        this_kind = kind or (NotificationKind.ALERT if len(batch) == 1 else NotificationKind.GROUP)
        out.append(
            Compose(
                channel=channel,
                kind=this_kind,
                row_ids=ids,
                key=group_key(channel, ids),
                target_id=target_id,
                reason=reason,
            )
        )
    return out


def throttle_window(targets: Targets) -> timedelta:
    """How far back recent sends matter: the longest throttle window."""
    windows = [
        p.throttle.window for policies in targets.by_rule.values() for p in policies if p.throttle
    ]
    return max(windows, default=timedelta(0))
