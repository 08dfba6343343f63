"""Targets and routing. Pure.

A **target** is where a rule's matches go: a channel's immediate stream
(``desk:immediate``) or one of its digest schedules
(``desk:digest:<cron>``). Its id is stable: tuning ``group_wait``,
``throttle`` or ``quiet_hours`` does not change it, so rows waiting in the
outbox keep their place across a reload; one rule may send a channel both
immediate alerts and a daily digest. The outbox keeps one row per (rule,
target, story).

Each (rule, target) carries its **policy**: the group wait, throttle and
quiet hours of that notify entry. The planner reads the policies at
delivery time, so a reload applies to rows already waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newswatch.config import Config, NotifyTarget, RuleConfig
from newswatch.model import DeliveryMode, Match, Route
from newswatch.periods.quiet import QuietHours, parse_quiet_hours
from newswatch.periods.schedule import Schedule, next_fire, parse_schedule
from newswatch.periods.throttle import Throttle, parse_throttle
from newswatch.store.base import DigestTarget

# Alertmanager's default group_wait: long enough for a burst of syndicated
# copies and related stories to arrive together, short enough to be "now".
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
# Channel types that show each item where it is read at once: grouping only
# delays them.
NO_GROUP_WAIT_KINDS = frozenset({"console"})


def immediate_target(channel: str) -> str:
    return f"{channel}:{DeliveryMode.IMMEDIATE.value}"


def digest_target(channel: str, schedule: Schedule) -> str:
    return f"{channel}:{DeliveryMode.DIGEST.value}:{schedule.key}"


@dataclass(frozen=True, slots=True)
class Policy:
    """How one rule's matches reach one target."""

    rule: str
    target_id: str
    channel: str
    mode: DeliveryMode
    schedule: Schedule | None = None
    group_wait: timedelta = DEFAULT_GROUP_WAIT
    throttle: Throttle | None = None
    quiet: QuietHours | None = None


def policy_for(rule: str, entry: NotifyTarget, channel_kind: str | None) -> Policy:
    """The policy of one ``notify:`` entry (its strings were validated when
    the configuration loaded, so parsing cannot fail here)."""
    schedule = parse_schedule(entry.digest) if entry.digest else None
    if entry.group_wait is not None:
        wait = entry.group_wait
    elif channel_kind in NO_GROUP_WAIT_KINDS:
        wait = timedelta(0)
    else:
        wait = DEFAULT_GROUP_WAIT
    return Policy(
        rule=rule,
        target_id=digest_target(entry.channel, schedule)
        if schedule
        else immediate_target(entry.channel),
        channel=entry.channel,
        mode=DeliveryMode.DIGEST if schedule else DeliveryMode.IMMEDIATE,
        schedule=schedule,
        group_wait=wait,
        throttle=parse_throttle(entry.throttle) if entry.throttle else None,
        quiet=parse_quiet_hours(entry.quiet_hours) if entry.quiet_hours else None,
    )


@dataclass(frozen=True, slots=True)
class Targets:
    """Every rule's policies, swapped as a whole on reload."""

    by_rule: Mapping[str, tuple[Policy, ...]]
    tz: ZoneInfo

    @classmethod
    def from_config(cls, config: Config) -> Targets:
        return cls.from_rules(
            config.rules, {name: c.type for name, c in config.channels.items()}, config.zone
        )

    @classmethod
    def from_rules(
        cls, rules: Iterable[RuleConfig], channel_kinds: Mapping[str, str], tz: ZoneInfo
    ) -> Targets:
        by_rule: dict[str, tuple[Policy, ...]] = {}
        for rule in rules:
            policies: dict[str, Policy] = {}
            for entry in rule.notify:
                policy = policy_for(rule.name, entry, channel_kinds.get(entry.channel))
                # A target named twice keeps its first entry (the outbox
                # would refuse the second row anyway).
                policies.setdefault(policy.target_id, policy)
            by_rule[rule.name] = tuple(policies.values())
        return cls(by_rule=by_rule, tz=tz)

    def routes(self, match: Match, now: datetime) -> tuple[Route, ...]:
        """One Route per target of the match's rule. A digest route expects
        to go at the schedule's next fire; an immediate one after its wait."""
        return tuple(self._route(p, now) for p in self.by_rule.get(match.rule, ()))

    def _route(self, policy: Policy, now: datetime) -> Route:
        if policy.schedule is not None:
            when = next_fire(policy.schedule, self.tz, now)
        else:
            when = now + policy.group_wait
        return Route(
            rule=policy.rule,
            channel=policy.channel,
            mode=policy.mode,
            target_id=policy.target_id,
            not_before=when,
        )

    def policy(self, rule: str, target_id: str) -> Policy | None:
        for policy in self.by_rule.get(rule, ()):
            if policy.target_id == target_id:
                return policy
        return None

    def digest_of(self, rule: str, channel: str) -> Policy | None:
        """The rule's first digest target on ``channel`` (throttled items go there)."""
        for policy in self.by_rule.get(rule, ()):
            if policy.channel == channel and policy.schedule is not None:
                return policy
        return None

    def digests(self) -> list[tuple[DigestTarget, Schedule]]:
        """One digest per (channel, schedule), collecting every rule's rows."""
        found: dict[str, tuple[str, Schedule]] = {}
        for policies in self.by_rule.values():
            for p in policies:
                if p.schedule is not None:
                    found.setdefault(p.target_id, (p.channel, p.schedule))
        return [
            (
                DigestTarget(
                    key=target_id, channel=channel, schedule=str(schedule), target_ids=(target_id,)
                ),
                schedule,
            )
            for target_id, (channel, schedule) in sorted(found.items())
        ]

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(self.by_rule)
