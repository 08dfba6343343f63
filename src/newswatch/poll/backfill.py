"""Rule backfills: a rule with ``backfill: 24h`` alerts, once, on stored
articles published within that window (first seen, for articles without a
date), so a new rule catches up on the last day without a post from 2019
coming back as news."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from newswatch.config import Config
from newswatch.model import Match
from newswatch.poll.outcome import Rules
from newswatch.schedule import in_window
from newswatch.store.base import IngestItem, Store

log = logging.getLogger("newswatch.poll")


def run_rule_backfills(
    config: Config, rules: Rules, store: Store, clock: Callable[[], datetime]
) -> list[tuple[str, int]]:
    """Run each pending rule backfill; (rule, alerts queued) for each that ran."""
    wanted = {r.name: r.backfill for r in config.rules if r.backfill and r.enabled}
    if not wanted:
        return []
    done = []
    for name in sorted(store.rules_to_backfill(list(wanted))):
        window = wanted[name]
        now = clock()
        since = None if window == "all" or window is None else now - window
        items = []
        # The store filters by first-seen time (never later than a post's
        # publication for posts found once published); the window is then
        # applied to the publication time.
        for article in store.iter_articles(since):
            if since is not None and not in_window(article, since, first_seen=since):
                continue
            verdict = rules.index.explain(name, article)
            if verdict.matched:
                match = Match(rule=name, article=article, explanation=verdict.explanation)
                items.append(IngestItem(article, (match,), rules.routes(match, now)))
        result = store.record_backfill(name, items, now)
        log.info(
            "rule %s: backfill over stored articles (%s): %d matches, %d alerts queued",
            name,
            "all" if since is None else f"published since {since:%Y-%m-%d %H:%M} UTC",
            result.new_matches,
            result.new_outbox,
        )
        done.append((name, result.new_outbox))
    return done
