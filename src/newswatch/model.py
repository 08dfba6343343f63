"""Frozen values that cross the pipeline's seams.

fetch -> FetchResult -> parse -> ParsedFeed/ParsedEntry -> normalize -> Article
      -> match -> Match -> route -> outbox rows (one per rule x target x story)
      -> plan -> Notification (1..N Items) -> render -> parts -> channel
      -> DeliveryResult

Every datetime here is timezone-aware UTC. Values are immutable so that a pure
step can never change what an earlier step decided.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch of one feed produced.

    Exactly one of three shapes: ``body`` holds new bytes; ``not_modified`` is
    True (HTTP 304, nothing to parse); or ``error`` says why nothing came.

    ``url`` is where the document came from after redirects, without
    credentials; it keeps the query, since relative links resolve against
    it, so it must not be shown to people (the query may hold a token).
    The politeness signals are for the poll scheduler: ``retry_after``
    (seconds, from a 429/503 Retry-After), ``max_age`` (seconds, the
    Cache-Control max-age of a 200/304), ``moved_to`` (the final URL when
    every redirect hop was permanent, 301/308, and it answered 200/304;
    no credentials) and ``gone`` (HTTP 410).
    """

    feed_key: str
    url: str
    fetched_at: datetime
    status: int | None = None  # HTTP status; None for local files and transport errors
    body: bytes | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    elapsed: float = 0.0  # seconds
    content_type: str | None = None
    retry_after: float | None = None
    max_age: float | None = None
    moved_to: str | None = None
    gone: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One feed entry as the parser saw it: fields still raw (may hold HTML)."""

    guid: str | None
    link: str | None
    title: str
    summary: str  # may contain HTML
    content: str  # may contain HTML; the longest content block
    author: str
    categories: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    # summary and content as plain text, where the parser was asked for it
    # (``parse_feed(texts=True)``: a feed's first poll, whose entries are
    # all new, has them extracted in the parse worker); None: not done.
    summary_text: str | None = None
    content_text: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document. ``warning`` is set when the XML was malformed
    but some entries could still be read (feedparser's bozo flag), or when
    ``skipped_entries`` entries could not be read and were left out.

    ``ttl`` (RSS ``<ttl>``, minutes), ``update_period`` (``sy:updatePeriod``:
    hourly, daily, weekly, monthly or yearly) and ``update_frequency``
    (``sy:updateFrequency``, times per period) are what the feed asks of its
    pollers; None where it says nothing (or nothing valid).
    """

    title: str
    link: str | None
    entries: tuple[ParsedEntry, ...]
    warning: str | None = None
    skipped_entries: int = 0
    ttl: int | None = None
    update_period: str | None = None
    update_frequency: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A normalized entry: plain text only, canonical URL, UTC times.

    ``feed_key`` identifies the feed in the store; ``source`` is the feed's
    display name and ``tags`` its configured tags (both are matchable with the
    ``source:`` field). ``entry_key`` is unique within the feed (GUID, else
    canonical link, else a hash of title and date). ``story_key`` is the same
    for the same story seen under another GUID or in another feed, and is what
    alerts are deduplicated on.
    """

    feed_key: str
    entry_key: str
    story_key: str
    title: str
    summary: str
    content: str
    link: str
    canonical_url: str
    author: str
    categories: tuple[str, ...]
    published: datetime | None
    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """One place where a term of a rule matched: field and character span
    within that field's normalized-for-display text."""

    term: str
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a rule matched: the terms, where, and a highlighted snippet.

    ``snippet`` is plain text; ``highlights`` are (start, end) spans into it
    that a renderer may mark (escaped per channel).
    """

    hits: tuple[Hit, ...] = ()
    snippet: str = ""
    highlights: tuple[tuple[int, int], ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.term, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Match:
    """A rule matched an article."""

    rule: str
    article: Article
    explanation: Explanation = field(default_factory=Explanation)


class DeliveryMode(enum.StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


@dataclass(frozen=True, slots=True)
class Route:
    """A decision that one match goes to one target: a channel's immediate
    stream or one of its digest schedules (``target_id``, see notify.targets)."""

    rule: str
    channel: str
    mode: DeliveryMode = DeliveryMode.IMMEDIATE
    target_id: str = ""
    # Digest rows wait for their schedule; immediate rows may wait a
    # group_wait. Shown by `newswatch outbox`; the planner decides.
    not_before: datetime | None = None
    # The rule has `updates: true`: a later copy of a story it alerted on
    # that adds substantial text is sent again, as an update.
    updates: bool = False

    def __post_init__(self) -> None:
        if not self.target_id:
            object.__setattr__(self, "target_id", f"{self.channel}:{self.mode.value}")


class NotificationKind(enum.StrEnum):
    """What a notification is, which decides how it is rendered."""

    ALERT = "alert"  # one story, sent as it came
    GROUP = "group"  # stories that arrived within one group_wait window
    DIGEST = "digest"  # a scheduled digest period
    SUMMARY = "summary"  # items held back (throttle, quiet hours, a mute), released together
    TEST = "test"  # `newswatch channels test`
    # A message to the operator (`admin_channel`): a feed failing for long,
    # or back. No items; ``reason`` is the text.
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Outlet:
    """Another outlet's copy of an item's story ("also reported by")."""

    source: str
    title: str
    link: str
    published: datetime | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One story in a notification: the copy that matched first, every rule
    that matched the story for this channel, and the other outlets carrying it.

    ``outbox_ids`` are the outbox rows (one per rule) this item stands for.
    ``update``: the story was alerted already and ``article`` is a later
    copy that adds substantial text (rules with ``updates: true``).
    """

    story_id: int
    article: Article
    rules: tuple[str, ...]
    explanation: Explanation
    matched_at: datetime
    also: tuple[Outlet, ...] = ()
    outbox_ids: tuple[int, ...] = ()
    update: bool = False

    @property
    def rule(self) -> str:
        return self.rules[0] if self.rules else ""


@dataclass(frozen=True, slots=True)
class Period:
    """The time a digest covers, [start, end), and its schedule's canonical
    text. ``late`` when it goes out well after ``end`` (the daemon was down)."""

    start: datetime
    end: datetime
    schedule: str
    late: bool = False


@dataclass(frozen=True, slots=True)
class Thread:
    """The notification an update follows up on, on the same channel: its
    key (email threads on the Message-ID derived from it) and what the
    platform called it when it was sent (a Slack ts, a Matrix event id)."""

    key: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """What a channel is asked to deliver: 1..N items of one kind, for one channel.

    ``key`` is the idempotency key: the same on every retry of this
    notification, distinct between notifications. A platform that splits a
    long notification into parts sends part k with ``part_key(k)``;
    ``parts_sent`` parts were accepted by an earlier attempt and are skipped.
    """

    id: int
    key: str
    channel: str
    kind: NotificationKind
    items: tuple[Item, ...]
    created_at: datetime
    attempt: int = 1
    period: Period | None = None
    # Why the items were held back (summaries): "throttle 10/1h", "quiet hours".
    reason: str | None = None
    # Items that exist but are not listed (a summary over its cap).
    more: int = 0
    parts_sent: int = 0
    # An update: the notification that first carried its story here.
    thread: Thread | None = None

    def part_key(self, part: int) -> str:
        return self.key if part == 0 else f"{self.key}.{part}"

    @property
    def rules(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for item in self.items:
            for rule in item.rules:
                seen.setdefault(rule, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered email or console message: plain text always, HTML where used."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a channel reports after one attempt at a notification.

    ``permanent`` failures are not retried (dead letter): a 4xx other than
    408/429, a rejected recipient. ``retry_after`` (seconds) is a hint from the
    service (HTTP 429 Retry-After, Telegram ``parameters.retry_after``,
    Discord's ``retry_after``) that overrides the backoff. ``parts_sent``: how
    many parts of a split notification the service accepted (a retry resumes
    after them). ``answer`` is the service's own reply, for
    `newswatch channels test` (secrets scrubbed).
    """

    ok: bool
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    parts_sent: int = 0
    answer: str | None = None
    # What the platform calls the message it accepted (a Slack ts, a Matrix
    # event id), kept so that later updates can be threaded under it.
    thread_ref: str | None = None
    # Not a failure: the channel sent what its pacing allowed within a send
    # and hands the rest back for later (a long digest on a slow platform).
    deferred: bool = False

    @classmethod
    def success(
        cls, *, parts_sent: int = 1, answer: str | None = None, thread_ref: str | None = None
    ) -> DeliveryResult:
        return cls(ok=True, parts_sent=parts_sent, answer=answer, thread_ref=thread_ref)

    @classmethod
    def retry(
        cls, error: str, retry_after: float | None = None, *, answer: str | None = None
    ) -> DeliveryResult:
        return cls(ok=False, error=error, retry_after=retry_after, answer=answer)

    @classmethod
    def failed(cls, error: str, *, answer: str | None = None) -> DeliveryResult:
        return cls(ok=False, error=error, permanent=True, answer=answer)
