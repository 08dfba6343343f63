"""The poll executor: one feed end to end, deciding nothing itself.

fetch -> (body unchanged? stop) -> parse (off the event loop, with a
deadline) -> sort entries against the stored keys -> normalize only the new
and changed ones -> ``decide_poll`` -> apply the intent: one ``ingest``
transaction, or a state update batched with other unchanged feeds, the log
lines, any operator notice.

Like reader's ``Pipeline``, this module calls dependencies (fetcher, parser,
store) and does not decide: every choice is in ``poll.decide`` and
``schedule``. One failing feed never stops the others: every error is caught
per feed and recorded on that feed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Self, TypeVar

from newswatch.config import Config, FeedConfig
from newswatch.feeds.discover import discover_feeds
from newswatch.feeds.fetch import Fetcher, host_key
from newswatch.feeds.normalize import normalize_entry
from newswatch.feeds.parse import FeedParseError, body_digest, declared_interval
from newswatch.feeds.parsepool import InlineParser, Parser
from newswatch.model import Article, FetchResult, ParsedFeed
from newswatch.notify.redact import link_base
from newswatch.poll.decide import (
    Candidate,
    Document,
    FeedPolicy,
    Fresh,
    PollIntent,
    PollSettings,
    candidates,
    decide_poll,
    derived_lookups,
    select_entries,
)
from newswatch.poll.outcome import FeedOutcome, Rules
from newswatch.poll.stats import PollStats, error_kind
from newswatch.store.base import (
    FeedState,
    FeedUpdate,
    IngestItem,
    IngestResult,
    KnownEntry,
    Store,
)
from newswatch.store.errors import StateBusyError
from newswatch.stories import StoryFinder

log = logging.getLogger("newswatch.poll")
T = TypeVar("T")

# Unchanged feeds' state updates (304s, same body, failures) are written
# together, one transaction per this many, or after FLUSH_AFTER: at 10,000
# feeds a transaction each was most of a steady-state cycle's cost.
BATCH_UPDATES: Final = 64
FLUSH_AFTER: Final = timedelta(seconds=0.5)
# Seconds one parse may take (the parse pool abandons it after this).
PARSE_DEADLINE: Final = 20.0


class LazyParser:
    """A parser made on the first parse (``feeds.parsepool.make_parser``:
    worker processes): an App that never parses starts no process."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._parser: Any = None
        self._starting = asyncio.Lock()

    async def parse(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None,
        deadline: float,
        label: str | None = None,
        texts: bool = False,
    ) -> ParsedFeed:
        if self._parser is None:
            async with self._starting:
                if self._parser is None:
                    parser = self._make()
                    await parser.__aenter__()
                    self._parser = parser
        result: ParsedFeed = await self._parser.parse(
            body, url=url, content_type=content_type, deadline=deadline, label=label, texts=texts
        )
        return result

    async def aclose(self) -> None:
        parser, self._parser = self._parser, None
        if parser is not None:
            await parser.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def policy_of(feed: FeedConfig, state: FeedState | None = None) -> FeedPolicy:
    # A feed without a name is shown by its own title once it was read.
    title = state.title if state is not None and not feed.name else None
    return FeedPolicy(
        key=feed.key,
        label=title or feed.label,
        named=bool(feed.name),
        every=feed.every,
        backfill=feed.backfill,
        source=feed.source,
    )


def settings_of(config: Config) -> PollSettings:
    poll = config.poll
    return PollSettings(
        every=poll.every,
        min_interval=poll.min_interval,
        max_interval=poll.max_interval,
        jitter=poll.jitter,
        max_backoff=poll.max_backoff,
        alert_after=config.feed_alert_after,
        admin_channel=config.admin_channel,
    )


class Poller:
    """Polls feeds one at a time each (``poll.pool`` runs many at once)."""

    def __init__(
        self,
        *,
        config: Config,
        rules: Rules,
        store: Store,
        fetcher: Fetcher,
        clock: Callable[[], datetime],
        rng: random.Random,
        parser: Parser | None = None,
        stats: PollStats | None = None,
        owner: str | None = None,
    ) -> None:
        self._config = config
        self.rules = rules
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.rng = rng
        self.parser: Parser = parser or InlineParser()
        self.stats = stats or PollStats()
        self.owner = owner  # whose leases the claims take (newswatch.leases)
        self._settings = settings_of(config)
        self._feeds = {f.key: f for f in config.feeds}
        # Near-duplicate stories (issue 9); None when `stories.enabled` is off.
        self.stories = StoryFinder.from_settings(store, config.stories)
        self._updates: list[FeedUpdate] = []
        self._oldest_update: float | None = None
        self._flushing = asyncio.Lock()
        # One store write at a time from this process: SQLite has one write
        # lock, and thirty threads queueing on it (while parse threads hold
        # the GIL) ran past its busy timeout ("database is locked").
        self._writing = asyncio.Lock()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store write in a worker thread, one at a time."""
        async with self._writing:
            return await asyncio.to_thread(fn, *args)

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        """A new configuration: feeds claimed from now on are read from it."""
        self._config = config
        self._settings = settings_of(config)
        self._feeds = {f.key: f for f in config.feeds}

    def reconfigure(self, config: Config, rules: Rules) -> None:
        """Swap in a new configuration and tell the store (sync: a thread)."""
        from newswatch.poll.outcome import feed_specs

        if config.stories != self._config.stories:
            self.stories = StoryFinder.from_settings(self.store, config.stories)
        self.config = config
        self.rules = rules
        self.store.sync_feeds(feed_specs(config), self.clock())

    @property
    def feeds_by_key(self) -> Mapping[str, FeedConfig]:
        return self._feeds

    # ------------------------------------------------------------------ one feed

    async def poll_feed(self, feed: FeedConfig, state: FeedState | None) -> FeedOutcome:
        """Poll one feed and record it (state updates written at once)."""
        outcome = await self.poll_one(feed, state)
        await self.flush()
        return outcome

    async def poll_one(self, feed: FeedConfig, state: FeedState | None) -> FeedOutcome:
        """Poll one feed; an unchanged feed's update may wait in the batch
        (``flush``). Never raises, except when cancelled."""
        self.stats.started()
        parse_s: float | None = None
        try:
            try:
                intent, result, parse_s = await self._poll(feed, state)
            except asyncio.CancelledError:
                raise
            except StateBusyError as exc:
                # Another process held the state database: not the feed's
                # fault. Nothing recorded; its lease runs out and it is
                # polled again soon. No failure counted.
                log.debug("feed %s: not recorded, polled again soon: %s", feed.label, exc)
                return FeedOutcome(feed.key, feed.label, "deferred", error=str(exc))
            except Exception as exc:  # one bad feed never stops the rest
                log.exception("feed %s: unexpected error while polling", feed.label)
                error = f"internal error: {type(exc).__name__}"
                failed = FetchResult(feed.key, "", self.clock(), error=error)
                intent = self._decide(feed, state, failed, None, {})
                result = await self._apply(intent)
        finally:
            self.stats.finished()
        return self._outcome(intent, result, state, parse_s)

    async def _poll(
        self, feed: FeedConfig, state: FeedState | None
    ) -> tuple[PollIntent, IngestResult | None, float | None]:
        """(intent, what the store did, seconds spent parsing)."""
        source = state.moved_to if state is not None and state.moved_to else feed.source
        started = time.monotonic()
        fetch = await self.fetcher.fetch(
            feed.key,
            source,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
            allow_private=feed.allow_private,
        )
        self.stats.fetch.add(time.monotonic() - started)
        if fetch.error is not None or fetch.not_modified or fetch.body is None:
            intent = self._decide(feed, state, fetch, None, {})
            return intent, await self._apply(intent), None
        digest = body_digest(fetch.body)
        if state is not None and state.body_hash == digest and state.last_success_at:
            # The same bytes as last time (a server without validators).
            intent = self._decide(feed, state, dataclasses.replace(fetch, body=b""), None, {})
            return intent, await self._apply(intent), None
        started = time.monotonic()
        try:
            first = state is None or state.last_success_at is None
            fetch, parsed, discovered = await self._parse(feed, fetch, first=first)
        except FeedParseError as exc:
            intent = self._decide(feed, state, fetch, None, {}, parse_error=exc.message)
            return intent, await self._apply(intent), time.monotonic() - started
        parse_s = time.monotonic() - started
        body, fetch = fetch.body or b"", dataclasses.replace(fetch, body=None)
        del body  # the document is parsed: its bytes are not kept
        started = time.monotonic()
        doc, known = await asyncio.to_thread(self._prepare, feed, state, fetch, parsed, digest)
        del parsed  # only the new and changed entries go on, normalized
        if feed.full_text:
            doc = await self._with_full_text(feed, doc)
        intent = await asyncio.to_thread(
            self._decide, feed, state, fetch, doc, known, discovered=discovered
        )
        result = await self._apply(intent)
        self.stats.ingest.add(time.monotonic() - started)
        return intent, result, parse_s

    async def _parse(
        self, feed: FeedConfig, fetch: FetchResult, *, first: bool = False
    ) -> tuple[FetchResult, ParsedFeed, str | None]:
        """Parse the body; a web page that links to its feed is followed
        once (autodiscovery) and the feed found is polled from then on."""
        started = time.monotonic()
        try:
            return fetch, await self._parse_body(fetch, feed.label, first=first), None
        except FeedParseError as exc:
            found = _discovered(fetch, exc)
            if not found:
                raise
            found_fetch = await self._fetch_discovered(feed, found)
            if found_fetch.error is not None or found_fetch.body is None:
                raise FeedParseError(
                    f"{exc.message}; the page links to a feed, which failed: "
                    f"{found_fetch.error or 'empty answer'}"
                ) from None
            parsed = await self._parse_body(found_fetch, feed.label, first=first)
            return found_fetch, parsed, found
        finally:
            self.stats.parse.add(time.monotonic() - started)

    async def _parse_body(self, fetch: FetchResult, label: str, *, first: bool) -> ParsedFeed:
        # Relative links resolve against the URL without its query: a feed's
        # query may hold its token (notify.redact.link_base). A first poll
        # normalizes every entry, so the parse worker extracts their text.
        return await self.parser.parse(
            fetch.body or b"",
            url=link_base(fetch.url),
            content_type=fetch.content_type,
            deadline=PARSE_DEADLINE,
            label=label,
            texts=first,
        )

    async def _fetch_discovered(self, feed: FeedConfig, url: str) -> FetchResult:
        # The link comes from the page: the configured host is the operator's
        # choice, any other host must be public (unless allow_private).
        if host_key(url) == host_key(feed.source):
            return await self.fetcher.fetch(feed.key, url, allow_private=feed.allow_private)
        return await self.fetcher.fetch_page(url, allow_private=feed.allow_private)

    def _prepare(
        self,
        feed: FeedConfig,
        state: FeedState | None,
        fetch: FetchResult,
        parsed: ParsedFeed,
        digest: str,
    ) -> tuple[Document, dict[str, KnownEntry]]:
        """Sort the entries against the store and normalize only the new and
        changed ones (in a worker thread)."""
        found = candidates(parsed.entries)
        known = self.store.known_entries(feed.key, [c.key for c in found])
        selection = select_entries(found, known)
        label = feed.label if feed.name else (" ".join(parsed.title.split())[:200] or feed.label)
        base = link_base(fetch.url)

        def article(c: Candidate) -> Article:
            return normalize_entry(
                c.entry,
                feed_key=feed.key,
                source=label,
                tags=feed.tags,
                base_url=base,
            )

        fresh = [Fresh(article(c), c.content_hash, "new") for c in selection.new]
        fresh += [Fresh(article(c), c.content_hash, "changed") for c in selection.changed]
        fresh += [Fresh(article(c), c.content_hash, "repeated") for c in selection.repeated]
        firsts: dict[str, Article] = {}
        if selection.repeated:
            by_key = {f.article.entry_key: f.article for f in fresh if f.kind != "repeated"}
            for c in found:
                if any(r.key == c.key for r in selection.repeated) and c.key not in firsts:
                    firsts[c.key] = by_key.get(c.key) or article(c)
        doc = Document(
            title=parsed.title,
            warning=parsed.warning,
            fresh=tuple(fresh),
            seen=selection.seen,
            entries=len(found),
            published=tuple(p for c in found if (p := c.entry.published) is not None),
            declared=declared_interval(parsed),
            body_hash=digest,
            firsts=firsts,
        )
        extra = derived_lookups(doc, known)
        if extra:
            known = {**known, **self.store.known_entries(feed.key, extra)}
        return doc, known

    async def _with_full_text(self, feed: FeedConfig, doc: Document) -> Document:
        from newswatch.poll.fulltext import with_full_text

        return await with_full_text(self.fetcher, doc, allow_private=feed.allow_private)

    def _decide(
        self,
        feed: FeedConfig,
        state: FeedState | None,
        fetch: FetchResult,
        doc: Document | None,
        known: Mapping[str, KnownEntry],
        *,
        parse_error: str | None = None,
        discovered: str | None = None,
    ) -> PollIntent:
        return decide_poll(
            policy_of(feed, state),
            state,
            fetch,
            doc,
            known,
            self.rules,
            self.clock(),
            self.rng,
            self._settings,
            parse_error=parse_error,
            discovered=discovered,
        )

    # ------------------------------------------------------------------ applying

    async def _apply(self, intent: PollIntent) -> IngestResult | None:
        """Carry out an intent: store, log, notify. Nothing is decided here."""
        result = None
        if intent.ingests:
            items: Sequence[IngestItem] = intent.items
            if self.stories is not None and any(i.matches for i in items):
                # Which known story each matched article copies: read from the
                # store here, outside the write transaction (the lock is not
                # held for the comparisons).
                items = await asyncio.to_thread(self.stories.annotate, items, self.clock())
            result = await self.write(self.store.ingest, intent.update, items, intent.seen_again)
        else:
            self._updates.append(intent.update)
            if self._oldest_update is None:
                self._oldest_update = time.monotonic()
            if len(self._updates) >= BATCH_UPDATES:
                await self.flush()
        for notice in intent.notices:
            await self.write(
                self.store.queue_notice, notice.channel, notice.key, notice.text, self.clock()
            )
        for level, message in intent.logs:
            log.log(level, "%s", message)
        if result is not None:
            log.debug(
                "feed %s: %d entries, %d new, %d edited, %d matches, %d alerts queued",
                intent.label,
                intent.entries,
                result.new_articles,
                result.edited,
                len(intent.matches),
                result.new_outbox,
            )
        self._count(intent, result)
        return result

    def flush_due(self) -> bool:
        """Whether batched updates have waited long enough to be written."""
        started = self._oldest_update
        return started is not None and time.monotonic() - started >= FLUSH_AFTER.total_seconds()

    async def flush(self) -> None:
        """Write the batched state updates (one transaction)."""
        async with self._flushing:
            updates, self._updates, self._oldest_update = self._updates, [], None
            if not updates:
                return
            try:
                await self.write(self.store.record_polls, updates)
            except Exception:
                # The polls are not recorded: their leases run out and the
                # feeds are polled again. Nothing else depends on them.
                log.exception("recording %d polls failed; they will be repeated", len(updates))

    def pending_keys(self) -> set[str]:
        """Feeds whose update waits in the batch (their lease is still held)."""
        return {u.feed_key for u in self._updates}

    def _count(self, intent: PollIntent, result: IngestResult | None) -> None:
        stats = self.stats
        stats.polls[intent.outcome] += 1
        if intent.error is not None:
            stats.errors[_kind(intent)] += 1
        if intent.storm:
            stats.storms += 1
        if result is not None:
            stats.articles_new += result.new_articles
            stats.edits += result.edited
            stats.alerts_queued += result.new_outbox
        for match in intent.matches:
            stats.matches[match.rule] += 1

    @staticmethod
    def _outcome(
        intent: PollIntent,
        result: IngestResult | None,
        state: FeedState | None,
        parse_seconds: float | None = None,
    ) -> FeedOutcome:
        errors_before = state.consecutive_errors if state is not None else 0
        failed = not intent.update.ok
        return FeedOutcome(
            intent.feed_key,
            intent.label,
            intent.outcome,
            entries=intent.entries,
            new_articles=result.new_articles if result else 0,
            new_alerts=result.new_outbox if result else 0,
            edited=result.edited if result else 0,
            # Counted, not kept: a cycle's outcomes must not hold every
            # matched article of 10,000 feeds.
            matched=len(intent.matches),
            matched_rules=tuple(m.rule for m in intent.matches),
            error=intent.error,
            warning=intent.warning,
            parse_seconds=parse_seconds,
            failures=errors_before + 1 if failed else 0,
            recovered=not failed and errors_before > 0,
            silent_first_poll=intent.silent_first_poll,
        )

    # ------------------------------------------------------------------ other runs

    async def poll_all(self) -> list[FeedOutcome]:
        """Poll every configured feed once, due or not (`newswatch poll
        --once`), through a pool with the configured limits. Feeds gone for
        good (410) are not fetched; they come back as ``gone``."""
        from newswatch.poll.outcome import feed_specs
        from newswatch.poll.pool import PollPool

        await asyncio.to_thread(self.store.sync_feeds, feed_specs(self.config), self.clock())
        states = {s.feed_key: s for s in await asyncio.to_thread(self.store.feed_states)}
        work = []
        gone = []
        for feed in self.config.feeds:
            state = states.get(feed.key)
            if state is not None and state.status in ("gone", "disabled"):
                gone.append(
                    FeedOutcome(
                        feed.key, feed.label, "gone", error=state.last_error or state.status
                    )
                )
            else:
                work.append((feed, state))
        poll = self.config.poll
        pool = PollPool(self, slots=poll.concurrency, per_host=poll.per_host)
        return gone + await pool.run_list(work)

    async def dry_run(self) -> list[FeedOutcome]:
        """Fetch and match every entry of every feed; write and send nothing."""
        return list(await asyncio.gather(*(self._dry_run_feed(f) for f in self.config.feeds)))

    async def _dry_run_feed(self, feed: FeedConfig) -> FeedOutcome:
        fetch = await self.fetcher.fetch(feed.key, feed.source, allow_private=feed.allow_private)
        if fetch.error is not None:
            return FeedOutcome(feed.key, feed.label, "failed", error=fetch.error)
        try:
            fetch, parsed, _ = await self._parse(feed, fetch)
        except FeedParseError as exc:
            return FeedOutcome(feed.key, feed.label, "failed", error=exc.message)
        label = feed.label if feed.name else (parsed.title.strip() or feed.label)
        articles = [
            normalize_entry(
                c.entry,
                feed_key=feed.key,
                source=label,
                tags=feed.tags,
                base_url=link_base(fetch.url),
            )
            for c in candidates(parsed.entries)
        ]
        matches = tuple(m for a in articles for m in self.rules.match(a))
        return FeedOutcome(
            feed.key,
            label,
            "updated",
            entries=len(articles),
            matched=len(matches),
            matches=matches,
            warning=parsed.warning,
        )

    def backfill_rules(self) -> list[tuple[str, int]]:
        """Run, once per rule, the backfill that rules with `backfill:` ask
        for: alert on stored articles published within that window (first
        seen, for articles without a date). Sync (a worker thread). Returns
        (rule, alerts queued) for each backfill that ran."""
        from newswatch.poll.backfill import run_rule_backfills

        return run_rule_backfills(self.config, self.rules, self.store, self.clock)


def _kind(intent: PollIntent) -> str:
    return error_kind(
        intent.error or "", status=intent.update.last_status, parse=intent.parse_failed
    )


def _discovered(fetch: FetchResult, exc: FeedParseError) -> str | None:
    """The feed a web page links to, if the body was a page that does."""
    if "HTML page" not in exc.message or fetch.body is None:
        return None
    found = discover_feeds(fetch.body, fetch.url)
    return found[0] if found else None


def outcomes_failed(outcomes: Sequence[FeedOutcome]) -> int:
    return sum(o.failed for o in outcomes)
