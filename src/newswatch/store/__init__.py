"""State storage: feeds, articles and stories, matches, the outbox and its
notifications, digest periods, locks and mutes.

``open_store(url)`` is the way in; ``Store`` (and its role protocols in
``base``) is the contract callers type against, ``SqlStore`` the one
implementation (SQLite and PostgreSQL).
"""

from newswatch.store.base import (
    KEEP,
    ChannelCounts,
    Compose,
    Decision,
    DigestOutcome,
    DigestTarget,
    DropRows,
    FeedSpec,
    FeedState,
    FeedUpdate,
    HoldRows,
    IngestItem,
    IngestResult,
    KnownEntry,
    MoveRows,
    Mute,
    NotificationRow,
    NotificationStatus,
    OutboxRow,
    OutboxStatus,
    PendingRow,
    PruneResult,
    Store,
)
from newswatch.store.schema import SCHEMA_VERSION, SchemaVersionError
from newswatch.store.sql import SqlStore, open_store

__all__ = [
    "KEEP",
    "SCHEMA_VERSION",
    "ChannelCounts",
    "Compose",
    "Decision",
    "DigestOutcome",
    "DigestTarget",
    "DropRows",
    "FeedSpec",
    "FeedState",
    "FeedUpdate",
    "HoldRows",
    "IngestItem",
    "IngestResult",
    "KnownEntry",
    "MoveRows",
    "Mute",
    "NotificationRow",
    "NotificationStatus",
    "OutboxRow",
    "OutboxStatus",
    "PendingRow",
    "PruneResult",
    "SchemaVersionError",
    "SqlStore",
    "Store",
    "open_store",
]
