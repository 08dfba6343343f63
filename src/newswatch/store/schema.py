"""The tables, and the version of what we persist.

Bump ``SCHEMA_VERSION`` whenever a change here needs existing databases to
change too, and add the step to ``MIGRATIONS``. A database written by a newer
newswatch is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
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

SCHEMA_VERSION = 1

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
    Column("feed_key", String, primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("next_poll_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

articles = Table(
    "articles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("feed_key", String, nullable=False),
    Column("entry_key", String, nullable=False),
    Column("story_key", String, nullable=False, index=True),
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

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("mode", String(16), nullable=False, default=DeliveryMode.IMMEDIATE.value),
    Column("article_id", BigId, ForeignKey("articles.id"), nullable=False),
    Column("story_key", String, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    # The "one alert per (rule, story, channel)" invariant.
    UniqueConstraint("rule", "channel", "story_key"),
    Index(None, "status", "next_attempt_at"),
)
outbox.append_constraint(
    CheckConstraint(outbox.c.status.in_([s.value for s in OutboxStatus]), name="status")
)
outbox.append_constraint(
    CheckConstraint(outbox.c.mode.in_([m.value for m in DeliveryMode]), name="mode")
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


class SchemaVersionError(RuntimeError):
    """The database's schema is one this code cannot use."""


# from_version -> step that brings a database to from_version + 1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def create_schema(conn: Connection) -> None:
    """Create missing tables and bring the schema to ``SCHEMA_VERSION``.

    Runs in the caller's (write) transaction; safe to call on every start and
    from several replicas at once.
    """
    lock_schema(conn)
    metadata.create_all(conn, checkfirst=True)
    stored = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if stored is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return
    version = int(stored)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the state database has schema version {version}, but this newswatch "
            f"only knows up to {SCHEMA_VERSION}: upgrade newswatch (or point `state:` "
            "at another database)"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaVersionError(f"no migration from schema version {version} to {version + 1}")
        step(conn)
        version += 1
    conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )
