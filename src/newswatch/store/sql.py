"""The store over SQLAlchemy Core: one implementation for SQLite and PostgreSQL.

Every method is one transaction. Claims (feeds, notifications) pick rows and
lease them in the same write transaction: SQLite takes the write lock at
BEGIN IMMEDIATE, PostgreSQL locks the picked rows with FOR UPDATE SKIP
LOCKED, so two claimers (threads, processes, replicas) never get the same
row. Each role lives in its own module (``_feeds``, ``_articles``,
``_outbox``, ``_ledger``; read-only views for people in ``_stats``);
``SqlStore`` joins them over one engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy.engine import URL, Connection, Engine

from newswatch.store import schema
from newswatch.store._articles import ARTICLE_PAGE, PRUNE_BATCH, ArticleLogMixin
from newswatch.store._dialect import make_engine, prepare_engine, serial_lock, transaction
from newswatch.store._feeds import FeedQueueMixin
from newswatch.store._ledger import LedgerMixin
from newswatch.store._outbox import OutboxMixin
from newswatch.store._stats import StatsMixin
from newswatch.store.base import Store

__all__ = ["ARTICLE_PAGE", "PRUNE_BATCH", "SqlStore", "open_store"]


class SqlStore(FeedQueueMixin, ArticleLogMixin, OutboxMixin, LedgerMixin, StatsMixin):
    """The Store over an Engine. ``SqlStore(url)`` or ``SqlStore.from_engine(engine)``.

    Thread-safe: each call checks a connection out of the engine's pool.
    """

    def __init__(self, url: str | URL) -> None:
        self._setup(make_engine(url))

    @classmethod
    def from_engine(cls, engine: Engine) -> SqlStore:
        store = cls.__new__(cls)
        store._setup(prepare_engine(engine))
        return store

    def _setup(self, engine: Engine) -> None:
        self._engine = engine
        self._serial = serial_lock(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        with self._serial, transaction(self._engine, write=write) as conn:
            yield conn

    # --- lifecycle

    def create_schema(self) -> None:
        with self._tx(write=True) as conn:
            schema.create_schema(conn)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_store(url: str | URL) -> SqlStore:
    """Open the state database at ``url`` and create or check its schema."""
    store = SqlStore(url)
    try:
        store.create_schema()
    except BaseException:
        store.close()
        raise
    return store


def _conforms(store: SqlStore) -> Store:
    """Never called: lets mypy check that SqlStore keeps the Store contract."""
    return store
