"""The store over SQLAlchemy Core: one implementation for SQLite and PostgreSQL.

Every method is one transaction. Claims (feeds, notifications) pick rows and
lease them in the same write transaction: SQLite takes the write lock at
BEGIN IMMEDIATE, PostgreSQL locks the picked rows with FOR UPDATE SKIP
LOCKED, so two claimers (threads, processes, replicas) never get the same
row. Each role lives in its own module (``_feeds``, ``_articles``,
``_outbox``, ``_ledger``, ``_leases``; read-only views for people in
``_stats``); ``SqlStore`` joins them over one engine.

A write that finds another process holding SQLite's lock waits (``_busy``)
and says so; read-only commands open the state with ``read_only=True``,
which creates and migrates nothing and never takes the write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy.engine import URL, Connection, Engine

from newswatch.store import _busy, schema
from newswatch.store._articles import ARTICLE_PAGE, PRUNE_BATCH, ArticleLogMixin
from newswatch.store._busy import STATE_WAIT, BusyWait, turn, writer_lock
from newswatch.store._dialect import (
    is_memory,
    make_engine,
    prepare_engine,
    serial_lock,
    transaction,
)
from newswatch.store._feeds import FeedQueueMixin
from newswatch.store._leases import LeaseMixin
from newswatch.store._ledger import LedgerMixin
from newswatch.store._outbox import OutboxMixin
from newswatch.store._stats import StatsMixin
from newswatch.store.base import Store
from newswatch.store.errors import StateReadOnlyError

__all__ = ["ARTICLE_PAGE", "PRUNE_BATCH", "STATE_WAIT", "SqlStore", "open_store"]


class SqlStore(FeedQueueMixin, ArticleLogMixin, OutboxMixin, LedgerMixin, LeaseMixin, StatsMixin):
    """The Store over an Engine. ``SqlStore(url)`` or ``SqlStore.from_engine(engine)``.

    Thread-safe: each call checks a connection out of the engine's pool.
    ``read_only``: the file must exist and is never written (a write raises
    ``StateReadOnlyError``). ``wait``: seconds a write waits for another
    process's lock before ``StateBusyError``.
    """

    def __init__(
        self, url: str | URL, *, read_only: bool = False, wait: float | None = None
    ) -> None:
        self._setup(make_engine(url, create=not read_only), read_only=read_only, wait=wait)

    @classmethod
    def from_engine(cls, engine: Engine, *, wait: float | None = None) -> SqlStore:
        store = cls.__new__(cls)
        store._setup(prepare_engine(engine), read_only=False, wait=wait)
        return store

    def _setup(self, engine: Engine, *, read_only: bool, wait: float | None) -> None:
        self._engine = engine
        self._serial = serial_lock(engine)
        self._read_only = read_only
        # Looked up now, not at import: tests shorten it.
        limit = _busy.STATE_WAIT if wait is None else wait
        self._wait = BusyWait(where=self.where, limit=limit)
        self._quick = BusyWait(where=self.where, limit=0.0, turn_wait=_busy.QUICK_TURN_WAIT)
        # Writers of one SQLite file take turns in this process (see _busy).
        file = engine.dialect.name == "sqlite" and not is_memory(engine.url)
        database = engine.url.database
        self._writer: threading.Lock | None = writer_lock(database) if file and database else None

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def where(self) -> str:
        """The database as messages name it (no password)."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __repr__(self) -> str:
        return f"SqlStore({self.where!r})"

    @contextmanager
    def _tx(self, *, write: bool, quick: bool = False) -> Iterator[Connection]:
        if write and self._read_only:
            raise StateReadOnlyError(f"the state database {self.where} was opened read-only")
        wait = self._quick if quick else self._wait
        with (
            self._serial,
            turn(self._writer if write else None, wait),
            transaction(self._engine, write=write, wait=wait) as conn,
        ):
            yield conn

    # --- lifecycle

    def create_schema(self) -> int | None:
        """Create or upgrade the schema (a write: ``newswatch run``, ``migrate``);
        returns the version found (None: the database was new)."""
        with self._tx(write=True) as conn:
            return schema.create_schema(conn)

    def check_schema(self) -> int:
        """The schema version, checked without writing: raises when the
        database holds no newswatch state or needs ``newswatch migrate``."""
        with self._tx(write=False) as conn:
            return schema.check_schema(conn, self.where)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_store(url: str | URL, *, read_only: bool = False, wait: float | None = None) -> SqlStore:
    """Open the state database at ``url`` and create or upgrade its schema;
    ``read_only``: only check it (commands that show what is stored)."""
    store = SqlStore(url, read_only=read_only, wait=wait)
    try:
        if read_only:
            store.check_schema()
        else:
            store.create_schema()
    except BaseException:
        store.close()
        raise
    return store


def _conforms(store: SqlStore) -> Store:
    """Never called: lets mypy check that SqlStore keeps the Store contract."""
    return store
