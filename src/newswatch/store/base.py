"""The store's contract: the values it takes and returns, and one narrow
protocol per role (feed queue, article log, outbox, digest ledger, locks,
mutes). ``Store`` is all of them; callers type against the role they use.

The database is the source of truth for feed state, seen articles and
stories, matches, the outbox, notifications, digest periods and mutes. One
implementation (SQLAlchemy Core) serves SQLite and PostgreSQL; this module
pins what callers may rely on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from newswatch.model import Article, Match, Notification, NotificationKind, Route


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to be composed into a notification (maybe held)
    QUEUED = "queued"  # in a notification not yet delivered
    SENT = "sent"
    DEAD = "dead"  # its notification failed for good; retry from the CLI
    DROPPED = "dropped"  # matched during a mute that said --drop


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    SENDING = "sending"  # claimed by a worker until lease_until
    SENT = "sent"
    DEAD = "dead"  # permanent failure or attempts exhausted


# --------------------------------------------------------------------------- feeds


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
    label: str | None = None
    title: str | None = None
    active: bool = True
    body_hash: str | None = None
    interval_s: int | None = None
    last_status: int | None = None
    status: str = "ok"
    moved_to: str | None = None
    failing_since: datetime | None = None
    alerted_at: datetime | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A configured feed as the store knows it: its key, what people see,
    and its host (per-host claims). No URL: it may carry credentials."""

    key: str
    label: str
    host: str = ""


# A FeedUpdate field left at KEEP is not changed.
class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """What one poll changes in a feed's state row.

    ``ok``: a successful poll (200 or 304) resets the error count and the
    lease; a failure adds one and keeps the validators. ``error`` is the
    failure, or a warning on success (a partly readable document).
    """

    feed_key: str
    at: datetime
    next_poll_at: datetime
    ok: bool
    error: str | None = None
    etag: str | _Keep | None = KEEP
    last_modified: str | _Keep | None = KEEP
    body_hash: str | _Keep | None = KEEP
    last_status: int | None = None
    status: str = "ok"
    interval_s: int | _Keep | None = KEEP
    moved_to: str | _Keep | None = KEEP
    title: str | _Keep | None = KEEP
    alerted_at: datetime | _Keep | None = KEEP


@dataclass(frozen=True, slots=True)
class KnownEntry:
    """A stored entry of a feed, as a poll needs it to tell new from seen,
    and an edit from a reused GUID."""

    entry_key: str
    article_id: int
    story_id: int | None
    content_hash: str | None
    canonical_url: str
    title: str


# --------------------------------------------------------------------------- articles


@dataclass(frozen=True, slots=True)
class IngestItem:
    """A new-looking (or edited) article with what was decided for it.

    ``identity_keys`` (story keys: canonical URL without scheme, normalized
    title + date) join it to a known story or found a new one, inside the
    ingest transaction. ``matches`` and ``routes`` were decided by pure code;
    routes go to the outbox only for rules that newly match the story, and
    not at all when the story is known but was never evaluated (recorded by
    a silent first poll). ``evaluated`` is False for a silent first poll.
    ``edit``: the entry is stored already and its text changed.

    Near-duplicates (``newswatch.stories``, decided before the transaction):
    ``story_hint`` is the known story it was confirmed to copy;
    ``story_peer`` the entry key of an earlier item of this ingest that is
    the same story; ``bands`` its LSH bands to record for its story;
    ``story_rejected`` the stories it was compared with and found to be
    others; ``story_merge`` other stories it was also confirmed to copy
    (founded apart by copies that did not resemble each other): they become
    one with its story. Without a hint, a band it shares with a story it
    was not compared with (founded since, by another replica) joins that
    story.
    ``new_text``: the shingles it adds to its story when that makes it an
    update (routes of rules with ``updates`` then send it again).
    """

    article: Article
    matches: tuple[Match, ...] = ()
    routes: tuple[Route, ...] = ()
    identity_keys: tuple[str, ...] = ()
    evaluated: bool = True
    edit: bool = False
    content_hash: str | None = None
    story_hint: int | None = None
    bands: tuple[tuple[int, int], ...] = ()
    story_rejected: tuple[int, ...] = ()
    story_apart: tuple[str, ...] = ()
    story_merge: tuple[int, ...] = ()
    new_text: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    new_articles: int
    new_matches: int
    new_outbox: int  # routes written (one already there for the story is skipped)
    joined: int = 0  # new articles that joined a story already known
    edited: int = 0
    story_ids: Mapping[str, int] = field(default_factory=dict)  # entry key -> story


@dataclass(frozen=True, slots=True)
class PruneResult:
    articles: int
    matches: int
    outbox: int


@dataclass(frozen=True, slots=True)
class BandOwner:
    """The story holding one LSH band, and when it was last seen."""

    band: tuple[int, int]  # (band number, hash)
    story_id: int
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class StoryCopy:
    """A stored copy of a story, for comparing a new article with it (its
    title and text; the other fields are empty)."""

    story_id: int
    article_id: int
    article: Article


@dataclass(frozen=True, slots=True)
class StoryUpdate:
    """A copy that added substantial text to its story (the status page)."""

    story_id: int
    article_id: int
    title: str
    link: str
    source: str
    new_text: int
    first_seen_at: datetime


# --------------------------------------------------------------------------- outbox


@dataclass(frozen=True, slots=True)
class PendingRow:
    """An outbox row waiting to be composed: what the planner decides on."""

    id: int
    rule: str
    channel: str
    target_id: str
    story_id: int
    created_at: datetime
    hold_until: datetime | None = None
    hold_reason: str | None = None
    revision: int = 0  # 0: the story's alert; else an update (its copy's article id)

    @property
    def update(self) -> bool:
        return self.revision != 0


@dataclass(frozen=True, slots=True)
class Compose:
    """Put ``row_ids`` into one new notification (the planner's SendGroup)."""

    channel: str
    kind: NotificationKind
    row_ids: tuple[int, ...]
    key: str
    target_id: str | None = None
    reason: str | None = None
    more: int = 0


@dataclass(frozen=True, slots=True)
class HoldRows:
    """Keep ``row_ids`` pending until ``until`` (a forming group, quiet
    hours, a throttle window, a mute)."""

    row_ids: tuple[int, ...]
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class MoveRows:
    """Re-target ``row_ids`` (throttled items going into the rule's digest);
    a row whose story is already in that target is settled as sent."""

    row_ids: tuple[int, ...]
    target_id: str


@dataclass(frozen=True, slots=True)
class DropRows:
    row_ids: tuple[int, ...]
    reason: str


Decision = Compose | HoldRows | MoveRows | DropRows


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row for listings (`newswatch outbox`, the status page)."""

    id: int
    rule: str
    channel: str
    target_id: str
    feed_key: str
    title: str
    link: str
    status: OutboxStatus
    notification_id: int | None
    created_at: datetime
    hold_until: datetime | None
    hold_reason: str | None
    sent_at: datetime | None
    last_error: str | None
    attempts: int = 0  # of its notification


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One notification for listings, with its items' titles and links."""

    id: int
    key: str
    channel: str
    kind: NotificationKind
    status: NotificationStatus
    attempts: int
    items: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    titles: tuple[tuple[str, str], ...] = ()  # (title, link) of its first items
    rules: tuple[str, ...] = ()
    period_end: datetime | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    pending: int = 0
    queued: int = 0
    dead: int = 0
    sent: int = 0
    last_error: str | None = None
    last_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DigestTarget:
    """One (channel, schedule) digest: the targets whose rows it collects."""

    key: str  # channel + schedule
    channel: str
    schedule: str
    target_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What composing one digest period did."""

    done_before: bool  # another run (or replica) had composed this period
    notifications: tuple[int, ...] = ()
    items: int = 0


@dataclass(frozen=True, slots=True)
class Mute:
    id: int
    kind: str  # rule | channel
    name: str
    created_at: datetime
    until: datetime
    drop: bool = False
    comment: str | None = None
    ended_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.ended_at is None and self.until > now


# --------------------------------------------------------------------------- roles


class FeedQueue(Protocol):
    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None:
        """The configuration's feeds: create missing rows (due now), refresh
        labels and hosts, mark exactly these active and every other inactive."""

    def feed_state(self, feed_key: str) -> FeedState | None: ...
    def feed_states(self, *, active_only: bool = False) -> list[FeedState]: ...

    def claim_due_feeds(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        skip_hosts: Sequence[str] = (),
        owner: str | None = None,
    ) -> list[FeedState]:
        """Atomically lease up to ``limit`` active feeds that are due and not
        leased by someone else, most overdue first, none on ``skip_hosts``.
        ``owner`` (``newswatch.leases``) is recorded with each lease."""

    def release_feeds(self, feed_keys: Sequence[str]) -> None:
        """Drop leases without recording a poll (shutdown)."""

    def renew_feeds(self, feed_keys: Sequence[str], lease_until: datetime) -> None:
        """Extend the leases of feeds still being polled."""

    def known_entries(self, feed_key: str, entry_keys: Sequence[str]) -> dict[str, KnownEntry]: ...

    def record_polls(self, updates: Sequence[FeedUpdate]) -> None:
        """Record polls that stored no articles (304, failures, unchanged
        bodies) in one transaction, releasing their leases."""

    def ingest(
        self, update: FeedUpdate, items: Sequence[IngestItem], seen_again: Sequence[str] = ()
    ) -> IngestResult:
        """One transaction: resolve each item's story, store new articles
        (and edits), their matches and outbox rows, and the feed's state.
        ``seen_again``: entry keys of stored articles the document still holds."""


class ArticleLog(Protocol):
    def iter_articles(self, since: datetime | None = None) -> Iterator[Article]: ...
    def prune(self, before: datetime) -> PruneResult: ...
    def rules_to_backfill(self, rules: Sequence[str]) -> set[str]: ...
    def record_backfill(
        self, rule: str, items: Sequence[IngestItem], now: datetime
    ) -> IngestResult: ...


class StoryIndex(Protocol):
    """The read side of near-duplicate clustering (used outside the ingest
    transaction) and the pruning of its bands."""

    def band_owners(self, bands: Sequence[tuple[int, int]]) -> list[BandOwner]:
        """Which story holds each of ``bands`` (the ones held at all)."""

    def story_copies(self, story_ids: Sequence[int], per_story: int) -> dict[int, list[StoryCopy]]:
        """Up to ``per_story`` stored copies of each story: its first and
        its latest."""

    def prune_story_bands(self, before: datetime) -> int:
        """Forget the bands of stories last seen before ``before`` (or gone)."""

    def story_updates(self, since: datetime, limit: int = 50) -> list[StoryUpdate]: ...


class Outbox(Protocol):
    def pending_due(self, now: datetime, limit: int) -> list[PendingRow]:
        """Immediate rows that may need a decision now (not held, or held
        until before ``now``) and every other pending row of their targets."""

    def recent_sends(
        self, pairs: Sequence[tuple[str, str]], since: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        """(rule, target_id) -> composed_at of its rows composed since ``since``."""

    def apply(self, decisions: Sequence[Decision], now: datetime) -> list[int]:
        """Carry out the planner's decisions in one transaction; returns the
        new notification ids. Rows no longer pending are skipped."""

    def claim_notifications(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        only: Sequence[int] | None = None,
        owner: str | None = None,
    ) -> list[Notification]:
        """Lease due notifications (and ones whose lease expired: a crashed
        worker's), with their items built from their rows; ``only`` these
        ids when given. ``owner`` is recorded with each lease."""

    def mark_sent(
        self,
        notification_id: int,
        now: datetime,
        parts_sent: int = 0,
        thread_ref: str | None = None,
    ) -> None: ...
    def mark_retry(
        self,
        notification_id: int,
        error: str,
        now: datetime,
        next_attempt_at: datetime,
        parts_sent: int = 0,
    ) -> None: ...
    def mark_dead(self, notification_id: int, error: str, now: datetime) -> None: ...
    def defer_notification(
        self, notification_id: int, note: str, until: datetime, parts_sent: int
    ) -> None: ...
    def release_notifications(self, notification_ids: Sequence[int]) -> None: ...
    def queue_notice(self, channel: str, key: str, text: str, now: datetime) -> int | None:
        """An operator notice (kind ``operator``, no items, ``text`` as its
        reason) for the normal delivery to send; None when ``key`` exists."""
        ...

    def renew_notifications(
        self, notification_ids: Sequence[int], lease_until: datetime
    ) -> None: ...

    def outbox(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxRow]: ...
    def notifications(
        self, status: NotificationStatus | None = None, limit: int = 50
    ) -> list[NotificationRow]: ...
    def retry_dead(self, notification_ids: Sequence[int] | None, now: datetime) -> int: ...
    def channel_counts(self) -> dict[str, ChannelCounts]: ...


class DigestLedger(Protocol):
    def last_period_end(self, digest_key: str) -> datetime | None: ...

    def compose_digest(
        self,
        digest: DigestTarget,
        *,
        period_start: datetime,
        period_end: datetime,
        cutoff: datetime,
        now: datetime,
        late: bool,
        max_items: int,
        send_empty: bool,
        exclude_rules: Sequence[str] = (),
    ) -> DigestOutcome:
        """Once per (digest, period_end): claim the period, and put every
        pending row of its targets created before ``cutoff`` into digest
        notifications of at most ``max_items`` items (none if empty, unless
        ``send_empty``). Rows of ``exclude_rules`` (muted) stay pending."""


class Locks(Protocol):
    def acquire_lock(self, name: str, owner: str, now: datetime, until: datetime) -> bool: ...
    def release_lock(self, name: str, owner: str) -> None: ...


class Mutes(Protocol):
    def add_mute(
        self,
        kind: str,
        name: str,
        now: datetime,
        until: datetime,
        *,
        drop: bool = False,
        comment: str | None = None,
    ) -> Mute: ...
    def end_mute(self, mute_id: int, now: datetime) -> bool: ...
    def mutes(self, now: datetime, *, include_ended: bool = False) -> list[Mute]: ...


class Leases(Protocol):
    def lease_owners(self, now: datetime) -> set[str]:
        """Owners of the feed and notification leases held at ``now``."""

    def free_leases(self, owners: Sequence[str]) -> tuple[int, int]:
        """End the leases of owners that are gone: (feeds, notifications) freed."""


class Store(
    FeedQueue, ArticleLog, StoryIndex, Outbox, DigestLedger, Locks, Mutes, Leases, Protocol
):
    def create_schema(self) -> int | None: ...
    def close(self) -> None: ...
