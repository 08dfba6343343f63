"""Everything that differs between SQLite and PostgreSQL, in one place.

The rest of the store is plain SQLAlchemy Core that both backends run as is.
What differs:

- URLs: ``postgresql://`` means psycopg 3 here; ``sqlite:///path`` creates the
  file 0600 and its missing folders 0700; ``sqlite://`` (memory) needs one
  shared connection.
- SQLite connection setup: WAL, busy_timeout, foreign keys, and ``BEGIN
  IMMEDIATE`` for write transactions. The sqlite3 driver's own transaction
  handling is switched off (SQLAlchemy's documented recipe) so that a write
  transaction takes the write lock up front: two claimers then queue instead
  of both reading the same due rows. PostgreSQL gets the same guarantee from
  ``FOR UPDATE SKIP LOCKED`` (which SQLite's compiler drops).
- ``INSERT ... ON CONFLICT DO NOTHING`` comes from each dialect's own insert.
- Datetimes: PostgreSQL keeps ``timestamptz``; SQLite stores naive UTC text
  that we mark as UTC again on the way out.
- Integer keys: SQLite only autoincrements an ``INTEGER PRIMARY KEY`` (rowid).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine, RootTransaction, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from newswatch.store._busy import BusyWait
from newswatch.store.errors import StateMissingError

# SQLite waits this long for another writer's lock before "database is locked";
# our write transactions are short (one feed's ingest, one claim), so 5 s is
# far above normal contention and still fails fast enough to be noticed.
SQLITE_BUSY_TIMEOUT_MS = 5000

# Key of the PostgreSQL advisory lock that serializes schema creation across
# replicas starting at once ("nwst" in ASCII, an arbitrary constant).
SCHEMA_LOCK_KEY = 0x6E777374

# Execution option that marks a connection's next transaction as a write.
_WRITE_OPTION = "newswatch_write"
_PREPARED = "_newswatch_prepared"


# --- types


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware UTC datetime on every backend; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes tz-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Fixed-width "YYYY-MM-DD HH:MM:SS.ffffff" text, so it sorts and
            # compares correctly as a string.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT on PostgreSQL; INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


# --- engines


def normalize_url(url: str | URL) -> URL:
    """Map user URLs to the drivers we ship: ``postgresql://`` -> psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: str | URL, *, create: bool = True) -> Engine:
    """An engine for ``url``. ``create``: a missing SQLite file is created
    (0600, in folders made 0700); without it, a missing file is an error
    and connections never change the file (read-only commands)."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported state database {backend!r}: use sqlite:// or postgresql://")
    if backend == "sqlite":
        if is_memory(parsed):
            # One connection for the whole process, or each connection would
            # see its own empty database.
            engine = create_engine(
                parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            assert parsed.database is not None
            path = Path(parsed.database).expanduser()
            if create:
                private_file(path)
            elif not path.is_file():
                raise StateMissingError(
                    f"no state database at {path} yet: `newswatch run` or "
                    "`newswatch poll --once` creates it"
                )
            engine = create_engine(parsed)
    else:
        # A daemon outlives server restarts and idle timeouts.
        engine = create_engine(parsed, pool_pre_ping=True)
    return prepare_engine(engine, read_only=not create)


def private_file(path: Path) -> None:
    """Create ``path`` (empty, mode 0600) and its missing folders (0700) if
    it does not exist; an existing file or folder keeps its mode.

    The state holds what people watch and every article matched. SQLite
    creates a database 0644 under the usual umask; an empty file is a
    valid empty database, so it is created here first, and SQLite gives
    its -wal and -shm files the database file's mode.
    """
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made by a replica starting at the same time
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)


def prepare_engine(engine: Engine, *, read_only: bool = False) -> Engine:
    """Install the SQLite connection and transaction hooks (once per engine)."""
    if engine.dialect.name == "sqlite" and not getattr(engine, _PREPARED, False):
        event.listen(engine, "connect", _sqlite_connect_read if read_only else _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        setattr(engine, _PREPARED, True)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 driver from issuing BEGIN itself; _sqlite_begin does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself may wait for a lock.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable under WAL except for the last transactions on
        # power loss (never corruption); FULL would fsync every commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_connect_read(dbapi_connection: Any, _record: Any) -> None:
    """A reader's connection: no journal-mode change (a write). A database
    in WAL mode is read in WAL mode anyway, without waiting for writers."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def serial_lock(engine: Engine) -> AbstractContextManager[Any]:
    """A lock for stores whose single connection threads must take turns on."""
    if is_memory(engine.url):
        return threading.RLock()
    return nullcontext()


@contextmanager
def transaction(
    engine: Engine, *, write: bool, wait: BusyWait | None = None
) -> Iterator[Connection]:
    """A connection in one transaction, committed on success.

    ``write`` takes SQLite's write lock at BEGIN, so a read-then-update (a
    claim) cannot interleave with another writer's. ``wait``: when another
    process holds the lock past busy_timeout, start again (nothing was done
    yet) until ``wait.limit``, then raise ``StateBusyError``.
    """

    def begin() -> tuple[Connection, RootTransaction]:
        conn = engine.connect()
        try:
            if write:
                conn.execution_options(**{_WRITE_OPTION: True})
            return conn, conn.begin()
        except BaseException:
            conn.close()
            raise

    conn, tx = begin() if wait is None else wait.run(begin)
    with conn, tx:
        yield conn


def lock_schema(conn: Connection) -> None:
    """Serialize schema creation between processes (until the transaction ends).

    SQLite needs nothing: the write transaction already holds the file lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))


# --- statements


def insert_ignore(conn: Connection, table: Table, *conflict_columns: str) -> Insert:
    """``INSERT ... ON CONFLICT (conflict_columns) DO NOTHING`` in ``conn``'s dialect."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    raise ValueError(f"unsupported database {name!r}: use SQLite or PostgreSQL")


def upsert_add(
    conn: Connection,
    table: Table,
    *,
    key: dict[str, Any],
    add: dict[str, int],
    set_: dict[str, Any] | None = None,
) -> Insert:
    """``INSERT key+add+set_ ... ON CONFLICT (key) DO UPDATE SET col = col +
    excluded.col`` for ``add``, ``col = excluded.col`` for ``set_``: a counter."""
    name = conn.dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    if name not in ("postgresql", "sqlite"):
        raise ValueError(f"unsupported database {name!r}: use SQLite or PostgreSQL")
    stmt = dialect_insert(table).values({**key, **add, **(set_ or {})})
    changes: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in add}
    changes.update({c: stmt.excluded[c] for c in set_ or {}})
    return stmt.on_conflict_do_update(index_elements=list(key), set_=changes)
