"""Routing: which channels a match goes to. Pure.

Only immediate delivery exists for now; digests, throttling and quiet hours
will decide ``Route.mode`` here from the rule's notify targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from newswatch.config import RuleConfig
from newswatch.model import DeliveryMode, Match, Route


def routes_for(match: Match, targets: Mapping[str, Sequence[str]]) -> tuple[Route, ...]:
    """One immediate Route per channel named for the match's rule.

    ``targets`` maps rule name -> channel names. A channel named twice gets one
    route (the outbox would refuse the duplicate anyway); a rule with no
    targets gets none (it is matched and recorded but alerts nobody).
    """
    channels = dict.fromkeys(targets.get(match.rule, ()))
    return tuple(
        Route(rule=match.rule, channel=channel, mode=DeliveryMode.IMMEDIATE) for channel in channels
    )


def targets_from_rules(rules: Iterable[RuleConfig]) -> dict[str, tuple[str, ...]]:
    """rule name -> channel names, as ``routes_for`` wants them."""
    return {rule.name: tuple(t.channel for t in rule.notify) for rule in rules}
