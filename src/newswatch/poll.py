"""One poll of one feed, end to end: fetch -> parse -> normalize -> dedup ->
match -> route -> store (articles, matches and outbox in one transaction).

The decisions (which entries are new, which may alert, which rules match,
where they go) are made by pure code; this module only sequences them and
calls the fetcher and the store. One failing feed never stops the others:
every error is caught per feed, recorded on that feed and logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from newswatch.config import Config, FeedConfig
from newswatch.feeds.fetch import Fetcher, host_key
from newswatch.feeds.normalize import normalize_feed
from newswatch.feeds.parse import FeedParseError, parse_feed
from newswatch.identity import content_hash, edited, identity_keys
from newswatch.leases import Renewer
from newswatch.model import Article, FetchResult, Match, ParsedFeed, Route
from newswatch.notify.redact import link_base
from newswatch.notify.targets import Targets
from newswatch.rules import RuleIndex
from newswatch.schedule import alertable, next_poll_at
from newswatch.store.base import KEEP, FeedSpec, FeedState, FeedUpdate, IngestItem, Store
from newswatch.store.errors import StateBusyError
from newswatch.stories import StoryFinder

log = logging.getLogger("newswatch.poll")

# A feed is leased while it is polled, and the lease is renewed every third
# of this while the poll runs (waiting for a slot, fetching, storing): a
# process killed mid-poll frees its feeds within this long (at once if it is
# restarted on the same host: newswatch.leases).
FEED_LEASE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Rules:
    """The compiled rules and where each rule's matches go. Swapped as a
    whole on reload, so a poll in progress sees one consistent version."""

    index: RuleIndex
    targets: Targets

    @classmethod
    def from_config(cls, config: Config, index: RuleIndex) -> Rules:
        return cls(index=index, targets=Targets.from_config(config))

    def routes(self, match: Match, now: datetime) -> tuple[Route, ...]:
        return self.targets.routes(match, now)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    feed_key: str
    name: str
    # deferred: fetched, but the state database stayed locked by another
    # process; nothing recorded, the feed is polled again soon (not a failure).
    status: Literal["updated", "not_modified", "failed", "deferred"]
    entries: int = 0
    new_articles: int = 0
    new_alerts: int = 0
    matches: tuple[Match, ...] = field(default=(), repr=False)
    error: str | None = None
    warning: str | None = None
    parse_seconds: float | None = None  # parsing the document, when one was parsed
    failures: int = 0  # failed polls in a row, this one included ("failed" only)
    recovered: bool = False  # succeeded after failing
    silent_first_poll: bool = False  # recorded what it holds without alerting


class Poller:
    def __init__(
        self,
        *,
        config: Config,
        rules: Rules,
        store: Store,
        fetcher: Fetcher,
        clock: Callable[[], datetime],
        rng: random.Random,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.rules = rules
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.rng = rng
        self.stories = StoryFinder.from_settings(store, config.stories)
        self.owner = owner

    def reconfigure(self, config: Config, rules: Rules) -> None:
        if config.stories != self.config.stories:
            self.stories = StoryFinder.from_settings(self.store, config.stories)
        self.config = config
        self.rules = rules
        self.store.sync_feeds(feed_specs(config), self.clock())

    @property
    def feeds_by_key(self) -> dict[str, FeedConfig]:
        return {f.key: f for f in self.config.feeds}

    # ------------------------------------------------------------------ daemon

    async def poll_due(self) -> list[FeedOutcome]:
        """Claim the feeds that are due and poll them concurrently."""
        feeds = self.feeds_by_key
        now = self.clock()
        # Claim a few batches' worth; the fetcher's semaphores pace the rest.
        limit = self.config.poll.concurrency * 4
        states = await asyncio.to_thread(
            functools.partial(
                self.store.claim_due_feeds, now, now + FEED_LEASE, limit, owner=self.owner
            )
        )
        in_flight = {s.feed_key for s in states}

        async def poll(feed: FeedConfig, state: FeedState) -> FeedOutcome:
            try:
                return await self._poll_claimed(feed, state)
            finally:
                in_flight.discard(feed.key)

        async def renew(keys: list[str], until: datetime) -> None:
            await asyncio.to_thread(self.store.renew_feeds, keys, until)

        tasks = [poll(feeds[s.feed_key], s) for s in states if s.feed_key in feeds]
        renewer = Renewer(
            lease=FEED_LEASE, keys=lambda: in_flight, renew=renew, clock=self.clock, what="feed"
        )
        try:
            async with renewer:
                return list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:
            # Shutdown: give the leases back so the next start polls at once.
            await asyncio.shield(
                asyncio.to_thread(self.store.release_feeds, [s.feed_key for s in states])
            )
            raise

    async def poll_all(self) -> list[FeedOutcome]:
        """Poll every configured feed once, due or not (`newswatch poll --once`)."""
        now = self.clock()
        await asyncio.to_thread(self.store.sync_feeds, feed_specs(self.config), now)
        states = {s.feed_key: s for s in await asyncio.to_thread(self.store.feed_states)}
        tasks = [self._poll_claimed(f, states.get(f.key)) for f in self.config.feeds]
        return list(await asyncio.gather(*tasks))

    async def dry_run(self) -> list[FeedOutcome]:
        """Fetch and match every entry of every feed; write and send nothing."""
        return list(await asyncio.gather(*(self._dry_run_feed(f) for f in self.config.feeds)))

    def backfill_rules(self) -> list[tuple[str, int]]:
        """Run, once per rule, the backfill that rules with `backfill:` ask
        for: alert on stored articles of that window. Sync (a worker thread).
        Returns (rule, alerts queued) for each backfill that ran."""
        rules = self.rules
        wanted = {r.name: r.backfill for r in self.config.rules if r.backfill and r.enabled}
        if not wanted:
            return []
        done = []
        for name in sorted(self.store.rules_to_backfill(list(wanted))):
            window = wanted[name]
            now = self.clock()
            since = None if window == "all" or window is None else now - window
            items = []
            for article in self.store.iter_articles(since):
                verdict = rules.index.explain(name, article)
                if verdict.matched:
                    match = Match(rule=name, article=article, explanation=verdict.explanation)
                    items.append(IngestItem(article, (match,), rules.routes(match, now)))
            result = self.store.record_backfill(name, items, now)
            log.info(
                "rule %s: backfill over stored articles (%s): %d matches, %d alerts queued",
                name,
                "all" if since is None else f"since {since:%Y-%m-%d %H:%M} UTC",
                result.new_matches,
                result.new_outbox,
            )
            done.append((name, result.new_outbox))
        return done

    # ------------------------------------------------------------------ one feed

    async def _poll_claimed(self, feed: FeedConfig, state: FeedState | None) -> FeedOutcome:
        try:
            try:
                outcome = await self._poll(feed, state)
            except (asyncio.CancelledError, StateBusyError):
                raise
            except Exception as exc:  # one bad feed never stops the rest
                log.exception("feed %s: unexpected error while polling", feed.label)
                return await self._fail(feed, f"internal error: {type(exc).__name__}", state)
        except StateBusyError as exc:
            # Not the feed's fault: record nothing (its lease runs out and it
            # is polled again), count no failure.
            log.debug("feed %s: not recorded, polled again soon: %s", feed.label, exc)
            return FeedOutcome(feed.key, feed.label, "deferred", error=str(exc))
        if outcome.status != "failed" and state is not None and state.consecutive_errors:
            log.debug(
                "feed %s: recovered after %d failed polls",
                feed.label,
                state.consecutive_errors,
            )
            outcome = dataclasses.replace(outcome, recovered=True)
        return outcome

    async def _poll(self, feed: FeedConfig, state: FeedState | None) -> FeedOutcome:
        source = feed.source
        fetch = await self.fetcher.fetch(
            feed.key,
            source,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
            allow_private=feed.allow_private,
        )
        if fetch.error is not None:
            return await self._fail(feed, fetch.error, state)
        now = self.clock()
        if fetch.not_modified or fetch.body is None:
            nxt = self._next(feed, now, errors=0)
            # Validators are kept unless the server sent new ones with the 304.
            update = FeedUpdate(
                feed.key,
                now,
                nxt,
                ok=True,
                last_status=fetch.status,
                etag=fetch.etag if fetch.etag is not None else KEEP,
                last_modified=fetch.last_modified if fetch.last_modified is not None else KEEP,
            )
            await asyncio.to_thread(self.store.record_polls, [update])
            log.debug("feed %s: not modified", feed.label)
            return FeedOutcome(feed.key, feed.label, "not_modified")
        rules = self.rules
        first_poll = state is None or state.last_success_at is None
        try:
            return await asyncio.to_thread(self._ingest, feed, fetch, rules, first_poll)
        except FeedParseError as exc:
            return await self._fail(feed, str(exc), state)

    def _ingest(
        self, feed: FeedConfig, fetch: FetchResult, rules: Rules, first_poll: bool
    ) -> FeedOutcome:
        """Parse, decide and store; runs in a worker thread."""
        started = time.perf_counter()
        parsed, articles = _read(feed, fetch)
        parse_seconds = time.perf_counter() - started
        known = self.store.known_entries(feed.key, [a.entry_key for a in articles])
        new = [a for a in articles if a.entry_key not in known]
        now = self.clock()
        may_alert = alertable(new, first_poll=first_poll, backfill=feed.backfill, now=now)
        items = []
        matched: list[Match] = []
        for article, alert_ok in zip(new, may_alert, strict=True):
            matches = tuple(rules.index.match(article)) if alert_ok else ()
            routes = tuple(r for m in matches for r in rules.routes(m, now))
            matched.extend(matches)
            items.append(
                IngestItem(
                    article=article,
                    matches=matches,
                    routes=routes,
                    identity_keys=identity_keys(article),
                    evaluated=alert_ok,
                    content_hash=content_hash(article),
                )
            )
        # Edited entries: the store alerts only rules that newly match them
        # (or, for rules with `updates: true`, a substantial addition).
        hashes = {key: entry.content_hash for key, entry in known.items()}
        for article, baseline in edited(articles, hashes):
            matches = tuple(rules.index.match(article)) if baseline else ()
            matched.extend(matches)
            items.append(
                IngestItem(
                    article=article,
                    matches=matches,
                    routes=tuple(r for m in matches for r in rules.routes(m, now)),
                    identity_keys=identity_keys(article),
                    edit=True,
                    content_hash=content_hash(article),
                )
            )
        # Near-duplicate stories (issue 9): which known story each matched
        # article copies, read from the store here, OUTSIDE the ingest
        # transaction, so the write lock is not held for it. The poll-loop
        # rewrite (issue 10) keeps this call in its executor, between the
        # pure decision and `store.ingest`.
        if self.stories is not None:
            items = self.stories.annotate(items, now)
        if parsed.warning:
            log.debug("feed %s: %s", feed.label, parsed.warning)
        update = FeedUpdate(
            feed.key,
            now,
            self._next(feed, now, errors=0),
            ok=True,
            error=parsed.warning,
            etag=fetch.etag,
            last_modified=fetch.last_modified,
            last_status=fetch.status,
        )
        result = self.store.ingest(update, items, seen_again=sorted(known))
        silent = first_poll and bool(new) and not any(may_alert)
        # Per-feed lines are DEBUG: the daemon logs one line per poll cycle.
        if silent:
            log.debug(
                "feed %s: first poll, recorded %d entries without alerting (set backfill to alert)",
                feed.label,
                len(new),
            )
        log.debug(
            "feed %s: %d entries, %d new, %d matches, %d alerts queued",
            feed.label,
            len(articles),
            result.new_articles,
            len(matched),
            result.new_outbox,
        )
        return FeedOutcome(
            feed.key,
            feed.label,
            "updated",
            entries=len(articles),
            new_articles=result.new_articles,
            new_alerts=result.new_outbox,
            matches=tuple(matched),
            warning=parsed.warning,
            parse_seconds=parse_seconds,
            silent_first_poll=silent,
        )

    async def _fail(self, feed: FeedConfig, error: str, state: FeedState | None) -> FeedOutcome:
        now = self.clock()
        errors = (state.consecutive_errors if state else 0) + 1
        nxt = self._next(feed, now, errors=errors)
        log.debug(
            "feed %s: %s (failure %d in a row; next try %s)",
            feed.label,
            error,
            errors,
            nxt.strftime("%H:%M:%S UTC"),
        )
        update = FeedUpdate(feed.key, now, nxt, ok=False, error=error, status="failing")
        await asyncio.to_thread(self.store.record_polls, [update])
        return FeedOutcome(feed.key, feed.label, "failed", error=error, failures=errors)

    def _next(self, feed: FeedConfig, now: datetime, *, errors: int) -> datetime:
        poll = self.config.poll
        return next_poll_at(
            now,
            feed.every or poll.every,
            errors=errors,
            jitter=poll.jitter,
            max_backoff=poll.max_backoff,
            rng=self.rng,
        )

    async def _dry_run_feed(self, feed: FeedConfig) -> FeedOutcome:
        fetch = await self.fetcher.fetch(feed.key, feed.source, allow_private=feed.allow_private)
        if fetch.error is not None:
            return FeedOutcome(feed.key, feed.label, "failed", error=fetch.error)
        try:
            parsed, articles = await asyncio.to_thread(_read, feed, fetch)
        except FeedParseError as exc:
            return FeedOutcome(feed.key, feed.label, "failed", error=str(exc))
        matches = tuple(m for a in articles for m in self.rules.index.match(a))
        return FeedOutcome(
            feed.key,
            feed.label,
            "updated",
            entries=len(articles),
            matches=matches,
            warning=parsed.warning,
        )


def _read(feed: FeedConfig, fetch: FetchResult) -> tuple[ParsedFeed, list[Article]]:
    """Parse fetched bytes and normalize the entries (raises FeedParseError).

    Relative links resolve against the fetched URL without its query (and
    credentials, which the fetcher stripped already): only a link that is
    empty or a bare ``#fragment`` would take the query, and a feed's query
    may hold its token."""
    base = link_base(fetch.url)
    parsed = parse_feed(
        fetch.body or b"", url=base, content_type=fetch.content_type, label=feed.label
    )
    articles = normalize_feed(
        parsed, feed_key=feed.key, source=feed.label, tags=feed.tags, base_url=base
    )
    return parsed, articles


def feed_specs(config: Config) -> list[FeedSpec]:
    """The configuration's feeds as the store knows them (no URLs)."""
    return [
        FeedSpec(key=f.key, label=f.label, host=host_key(f.url) if f.url else "")
        for f in config.feeds
    ]


def summarize(outcomes: Sequence[FeedOutcome]) -> str:
    ok = sum(o.status not in ("failed", "deferred") for o in outcomes)
    new = sum(o.new_articles for o in outcomes)
    alerts = sum(o.new_alerts for o in outcomes)
    return f"{len(outcomes)} feeds ({ok} ok), {new} new articles, {alerts} alerts queued"
