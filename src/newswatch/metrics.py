"""Prometheus metrics: what the daemon did (counters fed by the poll and
delivery loops) and what the store holds (gauges read at scrape time).

One ``Metrics`` per App, on its own ``CollectorRegistry`` (never the
process-global one), so two daemons in one test process do not mix.

Labels carry only names people chose or fixed words: rule names, channel
names (config keys), feed labels (``FeedConfig.label``: the name, else the
URL without credentials and with query values masked) and error kinds from
a fixed list. Never an error text, a URL or a secret.

The poll loop reports through ``PollCycle``; ``cycle_from_outcomes`` builds
one from the Poller's outcomes today (the seam where the poll rewrite's
``PollStats`` plugs in).
"""

from __future__ import annotations

import logging
import platform
import re
from collections import Counter as Tally
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from newswatch.store._stats import OutboxDepth
from newswatch.store.base import FeedState

log = logging.getLogger("newswatch.metrics")

# What /metrics answers with (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A poll cycle polls many feeds concurrently: seconds to minutes.
CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Parsing one feed document: milliseconds, a slow one a few seconds.
PARSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

# Error kinds (the `kind` label of newswatch_fetch_errors_total), first match wins.
_ERROR_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("http_429", r"^HTTP 429\b"),
        ("http_4xx", r"^HTTP 4\d\d\b"),
        ("http_5xx", r"^HTTP 5\d\d\b"),
        ("http_other", r"^HTTP \d{3}\b"),
        ("timeout", r"timed out|deadline|no answer within"),
        ("dns", r"^DNS lookup"),
        ("tls", r"^TLS "),
        ("refused", r"refused: .*non-public|^refused\b"),
        ("connect", r"^connection to .* refused|unreachable|could not connect|connection .* lost"),
        ("protocol", r"broke the HTTP protocol"),
        ("too_large", r"larger than .* limit|too large"),
        ("invalid_url", r"^invalid URL"),
        ("parse", r"^not a feed|parse|malformed|XML"),
        ("file", r"no such file|not found|permission denied|is a directory"),
        ("internal", r"^internal error"),
    )
)


def error_kind(error: str) -> str:
    """The fixed word for a fetch or parse error text (``other`` if unknown)."""
    for kind, pattern in _ERROR_KINDS:
        if pattern.search(error):
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class PollCycle:
    """What one poll cycle did, in counts (nothing per feed but parse times)."""

    duration_s: float
    outcomes: Mapping[str, int] = field(default_factory=dict)  # updated|not_modified|failed
    errors: Mapping[str, int] = field(default_factory=dict)  # error kind -> feeds
    new_articles: int = 0
    matches: Mapping[str, int] = field(default_factory=dict)  # rule -> matches
    parse_s: tuple[float, ...] = ()  # each parsed document's parse time


class _Outcome(Protocol):
    """What ``cycle_from_outcomes`` reads of a ``poll.FeedOutcome``."""

    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def new_articles(self) -> int: ...
    @property
    def matches(self) -> Sequence[object]: ...


def cycle_from_outcomes(outcomes: Sequence[_Outcome], duration_s: float) -> PollCycle:
    """A PollCycle from the Poller's outcomes (pure)."""
    errors = Tally(error_kind(o.error) for o in outcomes if o.status == "failed" and o.error)
    rules = Tally(str(getattr(m, "rule", "?")) for o in outcomes for m in o.matches)
    parse = tuple(
        float(s) for o in outcomes if (s := getattr(o, "parse_seconds", None)) is not None
    )
    return PollCycle(
        duration_s=duration_s,
        outcomes=dict(Tally(o.status for o in outcomes)),
        errors=dict(errors),
        new_articles=sum(o.new_articles for o in outcomes),
        matches=dict(rules),
        parse_s=parse,
    )


class StoreViews(Protocol):
    """The store reads the scrape-time gauges need."""

    def outbox_depths(self) -> dict[str, OutboxDepth]: ...
    def feed_states(self, *, active_only: bool = False) -> list[FeedState]: ...


class Metrics:
    """The daemon's metrics; ``render()`` is the /metrics body (call it in a
    worker thread: it reads the store)."""

    def __init__(
        self,
        *,
        version: str,
        store: StoreViews | None = None,
        clock: Callable[[], datetime],
    ) -> None:
        # Seconds since each daemon loop's last progress (the daemon sets it).
        self.ticks: Callable[[], Mapping[str, float]] | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("newswatch_polls", "Feed polls by outcome.", ["outcome"], registry=r)
        self.fetch_errors = Counter(
            "newswatch_fetch_errors", "Failed polls by error kind.", ["kind"], registry=r
        )
        self.articles_new = Counter("newswatch_articles_new", "New articles stored.", registry=r)
        self.matches = Counter(
            "newswatch_matches", "Rule matches on new articles.", ["rule"], registry=r
        )
        self.notifications = Counter(
            "newswatch_notifications",
            "Notification attempts by channel and outcome (sent, failed: will retry, dead).",
            ["channel", "outcome"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "newswatch_poll_cycle_duration_seconds",
            "Wall time of one poll cycle.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.parse_seconds = Histogram(
            "newswatch_parse_duration_seconds",
            "Time to parse one feed document.",
            buckets=PARSE_BUCKETS,
            registry=r,
        )
        self.reload_ok = Gauge(
            "newswatch_config_last_reload_successful",
            "1 if the last configuration (re)load succeeded, 0 if it was refused.",
            registry=r,
        )
        self.reload_at = Gauge(
            "newswatch_config_last_reload_success_timestamp_seconds",
            "When the configuration last loaded successfully (Unix time).",
            registry=r,
        )
        Info("newswatch_build", "Version of newswatch.", registry=r).info(
            {"version": version, "python": platform.python_version()}
        )
        self.reload_ok.set(1)
        self.reload_at.set(clock().timestamp())
        if store is not None:
            r.register(_StoreCollector(store, clock, self))

    def poll_cycle(self, cycle: PollCycle) -> None:
        self.cycle_seconds.observe(cycle.duration_s)
        for outcome, n in cycle.outcomes.items():
            self.polls.labels(outcome).inc(n)
        for kind, n in cycle.errors.items():
            self.fetch_errors.labels(kind).inc(n)
        if cycle.new_articles:
            self.articles_new.inc(cycle.new_articles)
        for rule, n in cycle.matches.items():
            self.matches.labels(rule).inc(n)
        for seconds in cycle.parse_s:
            self.parse_seconds.observe(seconds)

    def notification(self, channel: str, outcome: str) -> None:
        """One settled attempt: ``sent``, ``failed`` (retried later) or ``dead``."""
        self.notifications.labels(channel, outcome).inc()

    def reloaded(self, ok: bool, at: datetime) -> None:
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_at.set(at.timestamp())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time (outbox, feed health) and
    the age of each loop's last tick."""

    def __init__(
        self,
        store: StoreViews,
        clock: Callable[[], datetime],
        owner: Metrics,
    ) -> None:
        self._store = store
        self._clock = clock
        self._owner = owner

    def describe(self) -> list[Metric]:
        return []  # collected fresh each scrape; no fixed description

    def collect(self) -> list[Metric]:
        now = self._clock()
        up = GaugeMetricFamily("newswatch_store_up", "1 if the state database answered.")
        out: list[Metric] = [up]
        ticks = self._owner.ticks
        if ticks is not None:
            ages = GaugeMetricFamily(
                "newswatch_loop_last_tick_age_seconds",
                "Seconds since each daemon loop last made progress.",
                labels=["loop"],
            )
            for loop, age in sorted(ticks().items()):
                ages.add_metric([loop], age)
            out.append(ages)
        try:
            depths = self._store.outbox_depths()
            states = self._store.feed_states(active_only=True)
        except Exception as exc:
            # A scrape must not fail because the database is down: say so instead.
            log.warning("metrics: the state database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return out
        up.add_metric([], 1)
        depth = GaugeMetricFamily(
            "newswatch_outbox_depth",
            "Outbox rows not yet sent (pending: not composed yet; queued: in a notification).",
            labels=["channel", "state"],
        )
        oldest = GaugeMetricFamily(
            "newswatch_outbox_oldest_age_seconds",
            "Age of the oldest row not yet sent, per channel.",
            labels=["channel"],
        )
        for channel, d in depths.items():
            depth.add_metric([channel, "pending"], d.pending)
            depth.add_metric([channel, "queued"], d.queued)
            if d.oldest_at is not None:
                oldest.add_metric([channel], max(0.0, (now - d.oldest_at).total_seconds()))
        failing = GaugeMetricFamily(
            "newswatch_feed_failing", "1 while a feed's polls fail.", labels=["feed"]
        )
        errors = GaugeMetricFamily(
            "newswatch_feed_consecutive_errors", "Failed polls in a row.", labels=["feed"]
        )
        success = GaugeMetricFamily(
            "newswatch_feed_last_success_timestamp_seconds",
            "When each feed was last polled successfully (Unix time).",
            labels=["feed"],
        )
        seen: set[str] = set()
        for s in states:
            label = s.label or s.feed_key[:12]
            if label in seen:  # two feeds with one name: a sample each, not a clash
                label = f"{label} ({s.feed_key[:8]})"
            seen.add(label)
            failing.add_metric([label], 1 if (s.consecutive_errors or s.status != "ok") else 0)
            errors.add_metric([label], s.consecutive_errors)
            if s.last_success_at is not None:
                success.add_metric([label], s.last_success_at.timestamp())
        return [*out, depth, oldest, failing, errors, success]
