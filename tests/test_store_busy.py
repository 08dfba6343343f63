"""The state database under contention, and opened read-only.

A real second process holds SQLite's write lock (``BEGIN IMMEDIATE``);
SQLite's busy timeout is shortened here (it is read when a connection
opens), so a write runs past it in a fraction of a second instead of 5 s.
The reliability matrix (tests/test_reliability.py) does the same with the
real 5 s timeout through the command line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer
from newswatch.config import load_config
from newswatch.daemon import App
from newswatch.store import (
    SCHEMA_VERSION,
    FeedSpec,
    FeedUpdate,
    SqlStore,
    _busy,
    _dialect,
    open_store,
)
from newswatch.store._busy import BusyWait, is_busy, pause_before
from newswatch.store.errors import (
    EXIT_BUSY,
    StateBusyError,
    StateMissingError,
    StateReadOnlyError,
)
from newswatch.store.schema import SchemaVersionError
from reliability_helpers import LockHolder
from samples import Item, rss
from store_helpers import T0

DATA = Path(__file__).parent / "data"
BUSY_MS = 100


@pytest.fixture(autouse=True)
def _short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dialect, "SQLITE_BUSY_TIMEOUT_MS", BUSY_MS)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}") as store:
        store.sync_feeds([FeedSpec("f-1", "one")], T0)
    return path


def update(key: str = "f-1") -> FeedUpdate:
    return FeedUpdate(key, T0, T0 + timedelta(minutes=10), ok=True)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("attempt", "waited", "limit", "pause"),
    [
        (0, 0.0, 60.0, 0.1),
        (1, 5.0, 60.0, 0.2),
        (4, 25.0, 60.0, 1.6),
        (5, 30.0, 60.0, 2.0),  # capped
        (30, 59.5, 60.0, 0.5),  # never past the limit
        (3, 60.0, 60.0, None),  # the wait is over
        (0, 0.0, 0.0, None),  # no waiting at all
    ],
)
def test_pause_before(attempt: int, waited: float, limit: float, pause: float | None) -> None:
    assert pause_before(attempt, waited, limit) == pause


def test_is_busy_knows_sqlites_lock_errors_only() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert is_busy(locked)
    assert not is_busy(sqlite3.OperationalError("no such table: x"))
    assert not is_busy(ValueError("database is locked"))


def test_busy_wait_retries_then_gives_up_with_one_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    calls = []

    def attempt() -> str:
        calls.append(now[0])
        now[0] += 5.0  # each attempt waits out busy_timeout inside SQLite
        raise sqlite3.OperationalError("database is locked")

    wait = BusyWait(where="sqlite:///x.db", limit=22.0, clock=lambda: now[0], sleep=lambda s: None)
    with caplog.at_level(logging.WARNING), pytest.raises(StateBusyError) as caught:
        wait.run(attempt)
    assert calls == [0.0, 5.0, 10.0, 15.0, 20.0]  # the fifth ends past the limit
    assert str(caught.value).startswith(
        "the state database sqlite:///x.db stayed locked by another process for 25s"
    )
    assert caught.value.exit_code == EXIT_BUSY
    # Said once per 10 s (at 5 and 15 s), not once per attempt.
    assert [r.getMessage()[:40] for r in caplog.records] == [
        "the state database sqlite:///x.db is loc",
        "the state database sqlite:///x.db is loc",
    ]


def test_busy_wait_passes_other_errors_through() -> None:
    def attempt() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        BusyWait(where="x").run(attempt)


# --------------------------------------------------------------------------- a real second process


def test_a_write_waits_for_another_process_and_then_succeeds(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SqlStore(f"sqlite:///{db}", wait=10.0) as store, LockHolder(db) as holder:
        threading.Timer(4 * BUSY_MS / 1000, holder.release).start()
        with caplog.at_level(logging.WARNING, logger="newswatch.store"):
            store.record_polls([update()])
    assert store_state(db) == 0  # the poll was recorded: no errors counted
    assert any("is locked by another process" in r.getMessage() for r in caplog.records)


def test_a_write_gives_up_after_its_wait(db: Path) -> None:
    with SqlStore(f"sqlite:///{db}", wait=0.5) as store, LockHolder(db):
        started = time.monotonic()
        with pytest.raises(StateBusyError, match="stayed locked by another process"):
            store.record_polls([update()])
        assert time.monotonic() - started < 5  # the limit, not SQLite's default 5 s


def test_reads_do_not_wait_for_a_writer(db: Path) -> None:
    with LockHolder(db), open_store(f"sqlite:///{db}", read_only=True, wait=0) as store:
        started = time.monotonic()
        assert [s.feed_key for s in store.feed_states()] == ["f-1"]
        assert time.monotonic() - started < BUSY_MS / 1000


def test_writers_of_one_process_take_turns_instead_of_failing(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1 ms busy timeout and no waiting: any SQLite-level collision between
    # these threads would fail at once. They queue on the process's lock.
    monkeypatch.setattr(_dialect, "SQLITE_BUSY_TIMEOUT_MS", 1)
    stores = [SqlStore(f"sqlite:///{db}", wait=0) for _ in range(2)]
    errors: list[BaseException] = []

    def work(store: SqlStore) -> None:
        for _ in range(30):
            try:
                store.record_polls([update()])
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for store in stores:
        store.close()
    assert errors == []


def store_state(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (errors,) = conn.execute("SELECT consecutive_errors FROM feeds").fetchone()
    return int(errors)


# --------------------------------------------------------------------------- read-only opens


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_open_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "state.db"
    with pytest.raises(StateMissingError, match=r"no state database at .*state\.db yet"):
        open_store(f"sqlite:///{path}", read_only=True)
    assert not path.parent.exists()


def test_read_only_open_of_an_empty_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch()
    with pytest.raises(StateMissingError, match="holds no newswatch state yet"):
        open_store(f"sqlite:///{path}", read_only=True)
    assert path.stat().st_size == 0


def test_read_only_open_of_an_old_schema_asks_for_migrate_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state-v1.sqlite"
    shutil.copy(DATA / "state-v1.sqlite", path)
    before = _digest(path)
    with pytest.raises(SchemaVersionError, match="Run `newswatch migrate`") as caught:
        open_store(f"sqlite:///{path}", read_only=True)
    assert "schema version 1; this newswatch uses version 2" in str(caught.value)
    assert _digest(path) == before
    with SqlStore(f"sqlite:///{path}") as store:
        assert store.create_schema() == 1  # migrate: from 1
        assert store.create_schema() == SCHEMA_VERSION  # again: nothing to do
    with open_store(f"sqlite:///{path}", read_only=True) as store:
        assert store.check_schema() == SCHEMA_VERSION


def test_a_read_only_store_refuses_writes(db: Path) -> None:
    with (
        open_store(f"sqlite:///{db}", read_only=True) as store,
        pytest.raises(StateReadOnlyError, match="opened read-only"),
    ):
        store.record_polls([update()])


def test_a_new_database_is_created_0600_in_folders_made_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "a" / "b" / "state.db"
        with open_store(f"sqlite:///{path}") as store:
            store.sync_feeds([FeedSpec("f-1", "one")], T0)
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in (tmp_path / "a", path.parent, path, path.with_name("state.db-wal"))
            }
    finally:
        os.umask(old)
    assert modes == {"a": 0o700, "b": 0o700, "state.db": 0o600, "state.db-wal": 0o600}
    # An existing file keeps the mode someone gave it.
    path.chmod(0o640)
    open_store(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_wait_limit_is_read_when_a_store_opens(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_busy, "STATE_WAIT", 0.2)
    with (
        SqlStore(f"sqlite:///{db}") as store,
        LockHolder(db),
        pytest.raises(StateBusyError, match="for 0s"),
    ):
        store.record_polls([update()])


def test_releasing_leases_does_not_wait_beyond_the_busy_timeout(db: Path) -> None:
    # Shutdown releases leases; under a foreign lock it must not hang for the
    # full wait (the leases run out by themselves, or are freed at restart).
    with SqlStore(f"sqlite:///{db}", wait=30.0) as store, LockHolder(db):
        started = time.monotonic()
        with pytest.raises(StateBusyError):
            store.release_feeds(["f-1"])
        with pytest.raises(StateBusyError):
            store.renew_notifications([1], T0)
        assert time.monotonic() - started < 5


async def test_a_feed_whose_result_cannot_be_stored_is_deferred_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_busy, "STATE_WAIT", 0.3)
    with FeedServer() as server:
        server.route("/a.xml", body=rss(Item("Pact", "https://n.example/1", guid="1")), delay=0.5)
        config = tmp_path / "newswatch.yaml"
        config.write_text(
            f"state: sqlite:///{tmp_path}/state.db\n"
            f'feeds: [{{url: "{server.url("/a.xml")}", name: a}}]\n',
            encoding="utf-8",
        )
        async with App.open(load_config(config, env={})) as app:
            polling = asyncio.create_task(app.poller.poll_all())
            await asyncio.to_thread(server.wait_for_requests, 1, "/a.xml")
            # Locked while the feed is being fetched: its result cannot be stored.
            with LockHolder(tmp_path / "state.db"):
                [outcome] = await polling
            assert outcome.status == "deferred" and "stayed locked" in (outcome.error or "")
            # Not an error of the feed, nor a bug: no ERROR line, no traceback.
            assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
            [state] = await asyncio.to_thread(app.store.feed_states)
            assert (state.consecutive_errors, state.last_attempt_at) == (0, None)
            [outcome] = await app.poller.poll_all()  # the lock is gone: recorded
            assert outcome.status == "updated"


def test_a_moved_feed_is_stored_without_its_query_values(db: Path) -> None:
    moved = "https://feeds.example.org/new.xml?token=tok-5678"
    with SqlStore(f"sqlite:///{db}") as store:
        store.record_polls([dataclasses.replace(update(), moved_to=moved, status="moved")])
        [state] = store.feed_states()
    assert state.moved_to == "https://feeds.example.org/new.xml?token=****"
