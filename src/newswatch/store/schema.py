"""The tables, and the version of what we persist.

Bump ``SCHEMA_VERSION`` whenever a change here needs existing databases to
change too, and add the step to ``MIGRATIONS``. A database written by a newer
newswatch is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection

from newswatch.model import DeliveryMode
from newswatch.store._dialect import BigId, UTCDateTime, lock_schema
from newswatch.store.base import OutboxStatus
from newswatch.store.errors import StateError, StateMissingError

# 1: feeds, articles, matches, outbox (one row per rule, channel, story key).
# 2: notifications of N items; outbox per (rule, target, story) with holds;
#    stories with identity keys and LSH bands; digest-period ledger; locks;
#    mutes; indexed counts; feed keys are hashes (no URL credentials stored);
#    lease owners on feeds and notifications.
SCHEMA_VERSION = 2

# Stable constraint names, so a future migration can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
    # A hash of the feed's source (config.feed_key): the URL, which may carry
    # credentials, stays in the configuration.
    Column("feed_key", String, primary_key=True),
    # What people see: the configured name, the feed's own <title>, or the
    # masked URL (never a raw URL). Refreshed on every config load.
    Column("label", Text),
    Column("title", Text),  # the feed's <title>, once known
    Column("host", String),  # for per-host claims (no credentials: host only)
    # In the loaded configuration. Claims look at active feeds only, so they
    # need no list of keys (a reload flips the flags).
    Column("active", Boolean, nullable=False, default=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),  # unchanged body: no parse, even without a 304
    Column("next_poll_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    # Who holds the lease ("host:pid:token", newswatch.leases): a restart
    # frees the leases of its dead predecessor at once (store._leases).
    Column("lease_owner", String(160)),
    Column("interval_s", Integer),  # the adaptive interval in use
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_status", Integer),  # HTTP status of the last answer
    # ok | failing | gone (410) | moved (301/308 recorded) | disabled
    Column("status", String(16), nullable=False, default="ok"),
    Column("moved_to", Text),  # a permanent redirect's target (no credentials)
    Column("failing_since", UTCDateTime),
    Column("alerted_at", UTCDateTime),  # when the operator was told it is failing
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("article_count", Integer, nullable=False, default=0),  # kept, not counted
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "active", "next_poll_at"),
)

# A story: the same news event, however many outlets and URLs carry it. The
# store assigns its id in the ingest transaction.
stories = Table(
    "stories",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    # False while the story was only recorded by a silent first poll: no rule
    # was evaluated on it, so a later copy has no baseline to "newly match".
    Column("evaluated", Boolean, nullable=False, default=True),
    Index(None, "last_seen_at"),
)

# Exact identity keys of a story ("u:" canonical URL without scheme, "t:"
# normalized title + date). Unique, so two replicas ingesting two copies at
# once cannot found two stories for one key.
story_keys = Table(
    "story_keys",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("story_id", BigId, ForeignKey("stories.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Near-duplicate LSH bands (MinHash) of matched articles, in a window.
story_bands = Table(
    "story_bands",
    metadata,
    Column("band", Integer, nullable=False),
    Column("hash", String(32), nullable=False),
    Column("story_id", BigId, ForeignKey("stories.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    PrimaryKeyConstraint("band", "hash"),
)

articles = Table(
    "articles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("feed_key", String, nullable=False),
    Column("entry_key", String, nullable=False),
    # The URL identity key (its v1 name): kept for the rows written by v1.
    Column("story_key", String, nullable=False, index=True),
    Column("story_id", BigId, ForeignKey("stories.id"), index=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("categories", JSON, nullable=False),  # list of str
    Column("published", UTCDateTime),
    Column("source", Text, nullable=False),
    Column("tags", JSON, nullable=False),  # list of str
    Column("content_hash", String(64)),  # what an edit changes
    Column("first_seen_at", UTCDateTime, nullable=False),
    # Last poll whose document still held the entry: retention prunes by it,
    # so an entry a feed keeps serving is never forgotten and re-alerted.
    Column("last_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("feed_key", "entry_key"),
    # iter_articles pages through (first_seen_at, id).
    Index(None, "first_seen_at", "id"),
    Index(None, "last_seen_at"),
)

matches = Table(
    "matches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String, nullable=False),
    Column("article_id", BigId, ForeignKey("articles.id"), nullable=False),
    Column("explanation", JSON, nullable=False),  # {hits, snippet, highlights}
    Column("matched_at", UTCDateTime, nullable=False),
    UniqueConstraint("rule", "article_id"),
)
# Status page counts per rule over 24 h / 7 d are index range scans.
Index("ix_matches_rule_matched_at", matches.c.rule, matches.c.matched_at)

# What a channel is asked to send: 1..N items (outbox rows) of one kind. The
# retry state lives here, so a retry resends the same notification with the
# same key; its rows are marked sent together with it.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),  # idempotency key
    Column("channel", String, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target_id", String),
    Column("schedule", Text),  # a digest's schedule (canonical text)
    Column("period_start", UTCDateTime),
    Column("period_end", UTCDateTime),
    Column("late", Boolean, nullable=False, default=False),
    Column("reason", Text),  # why items were held (summaries)
    Column("more", Integer, nullable=False, default=0),
    Column("items", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("parts_sent", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("lease_owner", String(160)),  # as feeds.lease_owner
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    Index(None, "status", "next_attempt_at"),
    Index(None, "channel", "status"),
    Index(None, "created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String, nullable=False),
    Column("channel", String, nullable=False),
    # The channel's immediate stream ("desk:immediate") or one of its digest
    # schedules ("desk:digest:daily 08:00"); see notify.targets.
    Column("target_id", String, nullable=False),
    Column("mode", String(16), nullable=False, default=DeliveryMode.IMMEDIATE.value),
    Column("article_id", BigId, ForeignKey("articles.id"), nullable=False),
    Column("story_id", BigId, nullable=False),
    Column("status", String(16), nullable=False),
    Column("notification_id", BigId, ForeignKey("notifications.id"), index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime),  # informational: when the route expects it to go
    # Held (quiet hours, throttle, a mute, a forming group) until then.
    Column("hold_until", UTCDateTime),
    Column("hold_reason", Text),
    Column("composed_at", UTCDateTime),  # when it went into a notification
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    # The "one alert per (rule, target, story)" invariant.
    UniqueConstraint("rule", "target_id", "story_id"),
    Index(None, "status", "mode", "hold_until"),
    Index(None, "target_id", "status"),
    Index(None, "channel", "status"),
)
outbox.append_constraint(
    CheckConstraint(outbox.c.status.in_([s.value for s in OutboxStatus]), name="status")
)
outbox.append_constraint(
    CheckConstraint(outbox.c.mode.in_([m.value for m in DeliveryMode]), name="mode")
)

# One row per digest period that was composed (or found empty): unique on
# (digest, period end), so a period is sent once across restarts and replicas.
digest_periods = Table(
    "digest_periods",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest_key", String, nullable=False),  # channel + schedule
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # queued | empty
    Column("notification_id", BigId, ForeignKey("notifications.id")),
    Column("late", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("digest_key", "period_end"),
)

# Singleton jobs across replicas (digests, retention, backfills): a lease.
locks = Table(
    "locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("until", UTCDateTime, nullable=False),
)

# Silences: a rule or channel muted until a time; held items go out later
# (or are dropped when the mute says so).
mutes = Table(
    "mutes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # rule | channel
    Column("name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),  # unmuted early
    Column("drop", Boolean, nullable=False, default=False),
    Column("comment", Text),
    Index(None, "until"),
)

# Matches per rule per UTC day: the status page's sparklines read 14 rows per
# rule instead of counting matches.
rule_stats = Table(
    "rule_stats",
    metadata,
    Column("rule", String, nullable=False),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD (UTC)
    Column("matches", Integer, nullable=False, default=0),
    Column("last_match_at", UTCDateTime),
    PrimaryKeyConstraint("rule", "day"),
)


# Rules that asked for a backfill (`backfill: 24h` on the rule) and when it
# ran: a rule's backfill runs once, the first time newswatch sees the rule.
rule_backfills = Table(
    "rule_backfills",
    metadata,
    Column("rule", String, primary_key=True),
    Column("done_at", UTCDateTime, nullable=False),
    Column("matched", Integer, nullable=False, default=0),
)


class SchemaVersionError(StateError, RuntimeError):
    """The database's schema is one this code cannot use."""


def _too_new(version: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"the state database has schema version {version}, but this newswatch "
        f"only knows up to {SCHEMA_VERSION}: upgrade newswatch (or point `state:` "
        "at another database)"
    )


def check_schema(conn: Connection, where: str) -> int:
    """The stored schema version, read without writing anything; raises
    when it is not ``SCHEMA_VERSION`` (read-only commands never migrate)."""
    stored = None
    if conn.dialect.has_table(conn, meta.name):
        stored = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if stored is None:
        raise StateMissingError(
            f"{where} holds no newswatch state yet: `newswatch run`, "
            "`newswatch poll --once` or `newswatch migrate` creates it"
        )
    version = int(stored)
    if version > SCHEMA_VERSION:
        raise _too_new(version)
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the state database {where} has schema version {version}; this newswatch "
            f"uses version {SCHEMA_VERSION}. Run `newswatch migrate` (or start "
            "`newswatch run`, which upgrades it) first"
        )
    return version


def _migrations() -> dict[int, Callable[[Connection], None]]:
    """from_version -> the step that brings a database to from_version + 1."""
    from newswatch.store import migrate

    return migrate.MIGRATIONS


def create_schema(conn: Connection) -> int | None:
    """Create missing tables and bring the schema to ``SCHEMA_VERSION``;
    returns the version found (None: a new database).

    Runs in the caller's (write) transaction; safe to call on every start and
    from several replicas at once.
    """
    lock_schema(conn)
    metadata.create_all(conn, checkfirst=True)
    stored = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if stored is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return None
    found = version = int(stored)
    if version > SCHEMA_VERSION:
        raise _too_new(version)
    while version < SCHEMA_VERSION:
        step = _migrations().get(version)
        if step is None:
            raise SchemaVersionError(f"no migration from schema version {version} to {version + 1}")
        step(conn)
        version += 1
    conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )
    return found


# The article columns an Article is rebuilt from (``_codec.article_from_row``).
ARTICLE_FIELDS = (
    "feed_key",
    "entry_key",
    "story_key",
    "title",
    "summary",
    "content",
    "link",
    "canonical_url",
    "author",
    "categories",
    "published",
    "source",
    "tags",
)
