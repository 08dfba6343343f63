"""Polling: a pure decider (``decide``), an executor that applies its
intents (``execute``), a continuous worker pool (``pool``), rule backfills
(``backfill``) and in-process counters (``stats``)."""

from newswatch.poll.decide import PollIntent, decide_poll
from newswatch.poll.execute import LazyParser, Poller
from newswatch.poll.outcome import FeedOutcome, Rules, feed_specs, summarize
from newswatch.poll.pool import PollPool
from newswatch.poll.stats import PollStats

__all__ = [
    "FeedOutcome",
    "LazyParser",
    "PollIntent",
    "PollPool",
    "PollStats",
    "Poller",
    "Rules",
    "decide_poll",
    "feed_specs",
    "summarize",
]
