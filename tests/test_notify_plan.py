"""The delivery planner and routing: table tests with the clock passed in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newswatch.config import NotifyTarget, RuleConfig
from newswatch.model import DeliveryMode, Match, NotificationKind
from newswatch.notify.plan import PlanInput, plan, throttle_window
from newswatch.notify.targets import Targets
from newswatch.store import Compose, DropRows, HoldRows, MoveRows, Mute, PendingRow
from notify_samples import article, explanation

SEOUL = ZoneInfo("Asia/Seoul")
T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Seoul, a Monday
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)


def targets(
    *notify: dict[str, object], rule: str = "r1", kinds: dict[str, str] | None = None
) -> Targets:
    rules = [RuleConfig(name=rule, query="x", notify=tuple(NotifyTarget(**n) for n in notify))]  # type: ignore[arg-type]
    return Targets.from_rules(rules, kinds or {"slack": "slack", "desk": "email"}, SEOUL)


def rows(
    n: int,
    *,
    start: datetime = T0,
    every: timedelta = S,
    rule: str = "r1",
    target: str = "slack:immediate",
    first_id: int = 1,
    hold_until: datetime | None = None,
    hold_reason: str | None = None,
) -> list[PendingRow]:
    return [
        PendingRow(
            id=first_id + i,
            rule=rule,
            channel=target.split(":")[0],
            target_id=target,
            story_id=first_id + i,
            created_at=start + i * every,
            hold_until=hold_until,
            hold_reason=hold_reason,
        )
        for i in range(n)
    ]


def decide(
    pending: Sequence[PendingRow],
    t: Targets,
    now: datetime,
    *,
    sends: dict[tuple[str, str], list[datetime]] | None = None,
    mutes: Sequence[Mute] = (),
    max_items: int = 200,
    flush: bool = False,
) -> list[object]:
    return list(
        plan(
            pending,
            PlanInput(
                targets=t, sends=sends or {}, mutes=mutes, now=now, max_items=max_items, flush=flush
            ),
        )
    )


def composed(decisions: Sequence[object]) -> list[Compose]:
    return [d for d in decisions if isinstance(d, Compose)]


# --- routing


def test_routes_follow_each_notify_entry() -> None:
    t = targets(
        {"channel": "slack"},
        {"channel": "desk", "digest": "daily 08:00"},
        {"channel": "slack", "group_wait": "2m"},  # the same target twice: the first counts
    )
    match = Match("r1", article(), explanation())
    slack, desk = t.routes(match, T0)
    assert (slack.target_id, slack.mode, slack.not_before) == (
        "slack:immediate",
        DeliveryMode.IMMEDIATE,
        T0 + 30 * S,
    )
    # 08:00 Seoul is 23:00 UTC: the next one after 12:00 Seoul is tomorrow's.
    assert (desk.target_id, desk.mode) == ("desk:digest:0 8 * * *", DeliveryMode.DIGEST)
    assert desk.not_before == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    assert t.routes(Match("unknown", article(), explanation()), T0) == ()
    assert t.digest_of("r1", "desk") is not None and t.digest_of("r1", "slack") is None
    [(digest, schedule)] = t.digests()
    assert (digest.channel, digest.schedule, str(schedule)) == (
        "desk",
        "daily 08:00",
        "daily 08:00",
    )


def test_console_does_not_wait_for_company_by_default() -> None:
    t = targets({"channel": "console"}, kinds={"console": "console"})
    [route] = t.routes(Match("r1", article(), explanation()), T0)
    assert route.not_before == T0
    assert t.policy("r1", "console:immediate").group_wait == timedelta(0)  # type: ignore[union-attr]


# --- grouping


def test_first_match_waits_group_wait_then_the_burst_goes_together() -> None:
    t = targets({"channel": "slack", "group_wait": "10s"})
    burst = rows(50, every=timedelta(milliseconds=200))  # 50 matches in 10 s
    [hold] = decide(burst[:1], t, T0 + 2 * S)
    assert hold == HoldRows((1,), T0 + 10 * S, "group")
    # At the first row's deadline every waiting row goes, in one notification.
    [group] = decide(burst, t, T0 + 10 * S)
    assert isinstance(group, Compose)
    assert (group.kind, len(group.row_ids), group.channel) == (NotificationKind.GROUP, 50, "slack")
    assert group.target_id == "slack:immediate"


def test_no_row_waits_longer_than_its_group_wait() -> None:
    t = targets({"channel": "slack", "group_wait": "30s"})
    one = rows(1)
    assert decide(one, t, T0 + 29 * S) == [HoldRows((1,), T0 + 30 * S, "group")]
    [alert] = decide(one, t, T0 + 30 * S)
    assert isinstance(alert, Compose) and alert.kind is NotificationKind.ALERT


def test_rows_already_held_to_the_deadline_are_not_rewritten() -> None:
    t = targets({"channel": "slack", "group_wait": "30s"})
    held = rows(1, hold_until=T0 + 30 * S, hold_reason="group")
    fresh = rows(1, first_id=2, start=T0 + 5 * S)
    assert decide([*held, *fresh], t, T0 + 6 * S) == [HoldRows((2,), T0 + 30 * S, "group")]


def test_flush_sends_forming_groups_now() -> None:
    t = targets({"channel": "slack", "group_wait": "5m"})
    [now] = decide(rows(3), t, T0, flush=True)
    assert isinstance(now, Compose) and len(now.row_ids) == 3


def test_a_big_burst_is_split_by_max_items_keeping_each_story_whole() -> None:
    t = targets({"channel": "slack", "group_wait": "0s"})
    pending = rows(5)
    # story 1 matched by a second rule too: its two rows stay together
    pending.append(PendingRow(9, "r2", "slack", "slack:immediate", 1, T0))
    decisions = composed(decide(pending, t, T0, max_items=2))
    assert [sorted(d.row_ids) for d in decisions] == [[1, 2, 9], [3, 4], [5]]
    assert len({d.key for d in decisions}) == 3


def test_keys_are_stable_for_the_same_rows() -> None:
    t = targets({"channel": "slack", "group_wait": "0s"})
    first = composed(decide(rows(3), t, T0))
    again = composed(decide(list(reversed(rows(3))), t, T0 + MIN))
    assert [d.key for d in first] == [d.key for d in again]


# --- quiet hours


def test_quiet_hours_hold_until_they_end_then_one_group() -> None:
    t = targets({"channel": "slack", "group_wait": "0s", "quiet_hours": "22:00-07:00"})
    night = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 23:00 Seoul
    morning = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 07:00 Seoul
    pending = rows(3, start=night)
    assert decide(pending, t, night + MIN) == [HoldRows((1, 2, 3), morning, "quiet hours")]
    held = rows(3, start=night, hold_until=morning, hold_reason="quiet hours")
    [group] = decide(held, t, morning)
    assert isinstance(group, Compose) and group.kind is NotificationKind.GROUP


# --- throttle


def test_throttle_holds_items_beyond_n_and_sends_one_summary_when_the_window_frees() -> None:
    t = targets({"channel": "slack", "group_wait": "0s", "throttle": "2/h"})
    sends = {("r1", "slack:immediate"): [T0 - 30 * MIN]}
    decisions = decide(rows(4), t, T0, sends=sends)
    [alert] = composed(decisions)
    assert alert.row_ids == (1,)  # one slot was left in the window
    [hold] = [d for d in decisions if isinstance(d, HoldRows)]
    assert hold == HoldRows((2, 3, 4), T0 + 30 * MIN, "throttle 2/h")
    released = rows(3, first_id=2, hold_until=T0 + 30 * MIN, hold_reason="throttle 2/h")
    [summary] = decide(released, t, T0 + 30 * MIN, sends=sends)
    assert isinstance(summary, Compose)
    assert (summary.kind, summary.row_ids) == (NotificationKind.SUMMARY, (2, 3, 4))
    assert summary.reason == "held back: throttled"


def test_throttled_items_go_into_the_rules_digest_when_it_has_one() -> None:
    t = targets(
        {"channel": "desk", "group_wait": "0s", "throttle": "1/h"},
        {"channel": "desk", "digest": "daily 08:00"},
    )
    decisions = decide(rows(3, target="desk:immediate"), t, T0)
    assert [type(d) for d in decisions] == [Compose, MoveRows]
    assert decisions[1] == MoveRows((2, 3), "desk:digest:0 8 * * *")


def test_throttle_window_is_the_longest_configured() -> None:
    assert throttle_window(targets({"channel": "slack", "throttle": "5/10m"})) == 10 * MIN
    assert throttle_window(targets({"channel": "slack"})) == timedelta(0)


# --- mutes


def mute(kind: str, name: str, until: datetime, *, drop: bool = False) -> Mute:
    return Mute(1, kind, name, T0 - MIN, until, drop=drop)


@pytest.mark.parametrize(("kind", "name"), [("channel", "slack"), ("rule", "r1")])
def test_a_mute_holds_until_it_ends(kind: str, name: str) -> None:
    t = targets({"channel": "slack", "group_wait": "0s"})
    m = mute(kind, name, T0 + 60 * MIN)
    assert decide(rows(2), t, T0, mutes=[m]) == [HoldRows((1, 2), T0 + 60 * MIN, "mute")]
    # An unrelated mute changes nothing.
    other = mute(kind, "other", T0 + 60 * MIN)
    assert [type(d) for d in decide(rows(2), t, T0, mutes=[other])] == [Compose]


def test_items_released_by_a_mute_go_out_as_one_summary() -> None:
    t = targets({"channel": "slack", "group_wait": "0s"})
    released = rows(2, hold_until=T0, hold_reason="mute")
    [summary] = decide(released, t, T0)
    assert isinstance(summary, Compose) and summary.kind is NotificationKind.SUMMARY
    assert summary.reason == "held back: muted"


def test_a_drop_mute_drops() -> None:
    t = targets({"channel": "slack", "group_wait": "0s"})
    m = mute("rule", "r1", T0 + MIN, drop=True)
    assert decide(rows(2), t, T0, mutes=[m]) == [DropRows((1, 2), "dropped: rule r1 muted")]


def test_rows_of_a_removed_notify_entry_still_go_to_their_channel() -> None:
    t = targets({"channel": "desk"})  # slack was removed by a reload
    [d] = decide(rows(1), t, T0 + 30 * S)
    assert isinstance(d, Compose) and d.channel == "slack"


def test_items_released_by_a_mute_go_into_the_rules_digest_when_it_has_one() -> None:
    t = targets(
        {"channel": "desk", "group_wait": "0s"}, {"channel": "desk", "digest": "daily 08:00"}
    )
    released = rows(2, target="desk:immediate", hold_until=T0, hold_reason="mute")
    assert decide(released, t, T0) == [MoveRows((1, 2), "desk:digest:0 8 * * *")]
