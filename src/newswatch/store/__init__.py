"""State storage: feed state, seen articles, matches and the outbox.

``open_store(url)`` is the way in; ``Store`` is the contract callers type
against, ``SqlStore`` the one implementation (SQLite and PostgreSQL).
"""

from newswatch.store.base import (
    FeedState,
    IngestItem,
    IngestResult,
    OutboxRow,
    OutboxStatus,
    PruneResult,
    Store,
)
from newswatch.store.schema import SCHEMA_VERSION, SchemaVersionError
from newswatch.store.sql import SqlStore, open_store

__all__ = [
    "SCHEMA_VERSION",
    "FeedState",
    "IngestItem",
    "IngestResult",
    "OutboxRow",
    "OutboxStatus",
    "PruneResult",
    "SchemaVersionError",
    "SqlStore",
    "Store",
    "open_store",
]
