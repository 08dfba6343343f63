"""Waiting out another process's write lock (SQLite), with a clear message.

SQLite has one writer at a time. A write transaction starts with ``BEGIN
IMMEDIATE``, which waits up to ``busy_timeout`` for the lock and then fails
with "database is locked". That is the right answer for a moment of
contention between our own threads, and the wrong one when another process
(a second ``newswatch poll --once``, a backup, someone's ``sqlite3`` shell)
holds the lock for longer: the daemon would fail a feed, and a command
would die with a traceback. So a write that finds the lock taken is tried
again, with growing pauses, for up to ``STATE_WAIT`` in all; the wait is
logged (once per ``SAY_EVERY``), and only then does it fail, with
``StateBusyError``: one line that names the database and says to retry.

Within one process, writers to one SQLite file also take turns on a Python
lock (``writer_lock``) before ``BEGIN``: threads then queue in the process
instead of polling SQLite's lock, so a writer starved of the GIL by busy
threads never runs another thread out of ``busy_timeout``.

Only the start of a transaction is retried: nothing has been done yet, so
trying again is safe for every store call. PostgreSQL waits for row locks
by itself and is not affected.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from newswatch.store.errors import StateBusyError

log = logging.getLogger("newswatch.store")

_T = TypeVar("_T")

# How long a write waits for another process's lock, in all, before it gives
# up. Longer than any transaction of ours (well under a second) and than a
# backup of a typical state file; short enough that a stuck lock is
# reported within a minute instead of hanging a command.
STATE_WAIT = 60.0
# Pauses between attempts double from FIRST_PAUSE up to MAX_PAUSE. Each
# attempt already waits busy_timeout inside SQLite, so these only keep
# several waiting processes from retrying in lockstep.
FIRST_PAUSE = 0.1
MAX_PAUSE = 2.0
# One "waiting" line per this many seconds per database, however many
# threads wait (200 feeds finishing at once must not log 200 lines).
SAY_EVERY = 10.0
# A writer waits at least this long for its turn among this process's
# writers: that is ordinary queueing (each transaction is short), bounded
# only so that a stuck thread cannot hang the rest for ever.
TURN_WAIT = 120.0
# The turn wait of quick writes (releasing and renewing leases): about one
# busy timeout; a lease not released or renewed runs out by itself.
QUICK_TURN_WAIT = 5.0


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (a DBAPI error, or SQLAlchemy's wrapper of one) is
    SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED)."""
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(orig)
    return "database is locked" in text or "database table is locked" in text


def pause_before(attempt: int, waited: float, limit: float) -> float | None:
    """How long to pause before attempt ``attempt + 1`` (0-based ``attempt``
    just failed, ``waited`` seconds after the first began), or None when the
    wait is over. Pure."""
    if waited >= limit:
        return None
    pause = min(MAX_PAUSE, FIRST_PAUSE * 2.0**attempt)
    return min(pause, limit - waited)


@dataclass
class BusyWait:
    """How the store waits for a lock: the limit, the clock, who is told.

    ``where`` names the database in messages (no password); ``turn_wait``
    bounds the wait for this process's other writers. ``clock`` and
    ``sleep`` are monotonic seconds, passed in so tests need not wait.
    """

    where: str
    limit: float = STATE_WAIT
    turn_wait: float = TURN_WAIT
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _said_at: float | None = field(default=None, init=False, repr=False)
    _say_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def failed(self, waited: float) -> StateBusyError:
        return StateBusyError(
            f"the state database {self.where} stayed locked by another process for "
            f"{waited:.0f}s; nothing was written. Try again when that process is done "
            "(a second newswatch on the same file, a backup, an open sqlite3 shell)"
        )

    def say_waiting(self, waited: float) -> None:
        now = self.clock()
        with self._say_lock:
            if self._said_at is not None and now - self._said_at < SAY_EVERY:
                return
            self._said_at = now
        log.warning(
            "the state database %s is locked by another process; waited %.0fs, "
            "waiting up to %.0fs in all",
            self.where,
            waited,
            self.limit,
        )

    def run(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()``, called again while it raises a busy error; raises
        ``StateBusyError`` when the limit is reached. ``attempt`` must undo
        its own partial work (close what it opened) when it raises."""
        started = self.clock()
        tries = 0
        while True:
            try:
                return attempt()
            except Exception as exc:
                if not is_busy(exc):
                    raise
                waited = self.clock() - started
                pause = pause_before(tries, waited, self.limit)
                if pause is None:
                    raise self.failed(waited) from None
                self.say_waiting(waited)
            self.sleep(pause)
            tries += 1


# --------------------------------------------------------------------------- in-process turns

_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(path: str) -> threading.Lock:
    """The lock that writers to the SQLite file ``path`` share in this process."""
    key = os.path.realpath(path)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def turn(lock: threading.Lock | None, wait: BusyWait) -> Iterator[None]:
    """Hold ``lock`` (None: nothing to hold) for one write transaction,
    waiting for it at most ``wait.limit`` or ``wait.turn_wait``, the longer."""
    if lock is None:
        yield
        return
    started = wait.clock()
    if not lock.acquire(timeout=max(wait.limit, wait.turn_wait)):
        raise wait.failed(wait.clock() - started)
    try:
        yield
    finally:
        lock.release()
