"""Frozen values that cross the pipeline's seams.

fetch -> FetchResult -> parse -> ParsedFeed/ParsedEntry -> normalize -> Article
      -> match -> Match -> route -> outbox row -> Alert -> render -> Message
      -> deliver -> DeliveryResult

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
    """A decision that one match goes to one channel."""

    rule: str
    channel: str
    mode: DeliveryMode = DeliveryMode.IMMEDIATE


@dataclass(frozen=True, slots=True)
class Alert:
    """What a channel is asked to deliver: one match, for one channel."""

    outbox_id: int
    rule: str
    channel: str
    article: Article
    explanation: Explanation
    matched_at: datetime
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered message: plain text always, HTML where the channel uses it."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a channel reports after one attempt.

    ``permanent`` failures are not retried (dead letter): a 4xx other than
    408/429, a rejected recipient. ``retry_after`` (seconds) is a hint from the
    service (HTTP 429 Retry-After) that overrides the backoff.
    """

    ok: bool
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None

    @classmethod
    def success(cls) -> DeliveryResult:
        return cls(ok=True)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(ok=False, error=error, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str) -> DeliveryResult:
        return cls(ok=False, error=error, permanent=True)
