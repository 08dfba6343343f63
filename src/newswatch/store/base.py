"""The store's contract: values it returns and the interface every backend keeps.

The database is the source of truth for feed state, seen articles, matches and
the outbox. One implementation (SQLAlchemy Core) serves SQLite and PostgreSQL;
this module pins what callers may rely on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from newswatch.model import Alert, Article, DeliveryMode, FetchResult, Match, Route


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    SENDING = "sending"  # claimed by a worker until lease_until
    SENT = "sent"
    DEAD = "dead"  # permanent failure or attempts exhausted; retry from the CLI


@dataclass(frozen=True, slots=True)
class FeedState:
    feed_key: str
    etag: str | None
    last_modified: str | None
    next_poll_at: datetime | None
    lease_until: datetime | None
    consecutive_errors: int
    last_error: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None  # None: never polled successfully (first poll)
    articles: int  # articles stored for this feed


@dataclass(frozen=True, slots=True)
class IngestItem:
    """A new-looking article with what was decided for it: the matches and the
    routes (one per rule+channel). Routes go to the outbox only if the article
    row is actually new, in the same transaction."""

    article: Article
    matches: tuple[Match, ...] = ()
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestResult:
    new_articles: int
    new_matches: int
    new_outbox: (
        int  # routes written (a route whose (rule, channel, story) already exists is skipped)
    )


@dataclass(frozen=True, slots=True)
class PruneResult:
    articles: int
    matches: int
    outbox: int


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    rule: str
    channel: str
    feed_key: str
    title: str
    link: str
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


class Store(Protocol):
    # --- lifecycle
    def create_schema(self) -> None: ...
    def close(self) -> None: ...

    # --- feeds
    def ensure_feeds(self, feed_keys: Sequence[str], now: datetime) -> None:
        """Create state rows for configured feeds not yet known (due now)."""

    def feed_state(self, feed_key: str) -> FeedState | None: ...
    def feed_states(self) -> list[FeedState]: ...

    def claim_due_feeds(
        self, feed_keys: Sequence[str], now: datetime, lease_until: datetime, limit: int
    ) -> list[FeedState]:
        """Atomically lease up to ``limit`` of ``feed_keys`` that are due
        (next_poll_at <= now) and not leased by someone else."""

    def release_feeds(self, feed_keys: Sequence[str]) -> None:
        """Drop leases without recording a poll (shutdown)."""

    def known_entry_keys(self, feed_key: str, entry_keys: Sequence[str]) -> set[str]: ...

    def record_failure(
        self, feed_key: str, error: str, now: datetime, next_poll_at: datetime
    ) -> None:
        """consecutive_errors += 1, last_error, release the lease."""

    def record_not_modified(
        self, fetch: FetchResult, now: datetime, next_poll_at: datetime
    ) -> None: ...

    def ingest(
        self,
        fetch: FetchResult,
        items: Sequence[IngestItem],
        now: datetime,
        next_poll_at: datetime,
        warning: str | None = None,
        seen_again: Sequence[str] = (),
    ) -> IngestResult:
        """One transaction: store new articles (ignoring ones already stored),
        their matches and outbox rows, and the feed's success state (etag,
        last_modified, last_success_at, errors reset, lease released).
        ``seen_again``: entry keys of stored articles the document still holds
        (their last_seen_at moves to ``now``)."""

    # --- outbox
    def claim_outbox(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        mode: DeliveryMode = DeliveryMode.IMMEDIATE,
        channel: str | None = None,
    ) -> list[Alert]:
        """Lease pending rows whose next_attempt_at <= now (and rows left in
        'sending' whose lease expired: a crashed worker's).

        Only rows routed with ``mode`` (the route's DeliveryMode, kept in the
        outbox) are claimed, and only for ``channel`` when given: the
        immediate sender never takes digest rows; a digest job claims its
        channel's rows with ``mode=DeliveryMode.DIGEST, channel=...``."""

    def mark_sent(self, outbox_id: int, now: datetime) -> None: ...
    def mark_retry(
        self, outbox_id: int, error: str, now: datetime, next_attempt_at: datetime
    ) -> None: ...
    def mark_dead(self, outbox_id: int, error: str, now: datetime) -> None: ...
    def release_outbox(self, outbox_ids: Sequence[int]) -> None: ...
    def outbox(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxRow]: ...
    def retry_dead(self, outbox_ids: Sequence[int] | None, now: datetime) -> int: ...

    # --- retention
    def prune(self, before: datetime) -> PruneResult:
        """Forget articles last seen before ``before`` with their matches and
        settled outbox rows; articles with alerts still to send are kept."""

    # --- rule backfills
    def rules_to_backfill(self, rules: Sequence[str]) -> set[str]: ...
    def record_backfill(
        self, rule: str, items: Sequence[IngestItem], now: datetime
    ) -> IngestResult: ...

    # --- articles (backtests)
    def iter_articles(self, since: datetime | None = None) -> Iterator[Article]: ...
