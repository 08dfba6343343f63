"""The continuous poll pool with real parts: loopback HTTP servers (two of
them, on two loopback addresses, are two hosts), SQLite files."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App, Daemon
from newswatch.feeds.fetch import Fetcher
from newswatch.keys import feed_key_for
from newswatch.poll import PollPool
from ops_helpers import wait_until
from samples import Item, rss

FAST = timedelta(milliseconds=50)


def body(n: int) -> bytes:
    return rss(Item(title=f"Story {n}", link=f"http://e.org/{n}", guid=str(n)))


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.fixture
def other_host() -> Iterator[FeedServer]:
    with FeedServer(host="127.0.0.2") as s:
        yield s


def write_config(tmp_path: Path, body_: str) -> LoadedConfig:
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        f"state: sqlite:///{tmp_path}/state.db\n" + textwrap.dedent(body_).lstrip(),
        encoding="utf-8",
    )
    return load_config(path, env={})


def feed_lines(urls: list[str], extra: str = "") -> str:
    return "\n".join(f'  - {{url: "{u}"{extra}}}' for u in urls)


async def test_slow_feeds_hold_one_slot_each_and_delay_nobody(
    tmp_path: Path, server: FeedServer
) -> None:
    """4 slots, 3 feeds that do not answer until released, 20 fast feeds:
    every fast feed is fetched and recorded while the slow ones still hold
    (a batch loop waits for the slowest feed of each batch)."""
    slow = [f"/slow{n}.xml" for n in range(3)]
    fast = [f"/fast{n}.xml" for n in range(20)]
    for n, path in enumerate(slow):
        server.route(path, Reply(body=body(n), hold=True))
    for n, path in enumerate(fast):
        server.route(path, body=body(100 + n))
    loaded = write_config(
        tmp_path,
        "poll: {concurrency: 4, per_host: 4, timeout: 20s}\n"
        f"feeds:\n{feed_lines([server.url(p) for p in slow + fast])}\n",
    )
    async with App.open(loaded) as app:
        run = asyncio.create_task(app.poller.poll_all())
        await wait_until(lambda: all(server.hits(p) == 1 for p in fast))
        # Recorded as each completed, not at the end of a batch.
        await wait_until(
            lambda: all(
                (s := app.store.feed_state(feed_key_for(server.url(p)))) is not None
                and s.last_success_at is not None
                for p in fast
            )
        )
        assert not run.done()
        assert all(server.hits(p) == 1 for p in slow)  # still held, one slot each
        assert app.poller.stats.peak_in_flight <= 4
        server.release()
        outcomes = await asyncio.wait_for(run, 10)
    assert sorted(o.status for o in outcomes) == ["updated"] * 23


async def test_per_host_limit_counts_before_a_feed_is_claimed(
    tmp_path: Path, server: FeedServer, other_host: FeedServer
) -> None:
    """Host A (6 held feeds) never sees more than per_host=2 at once, and
    host B's feeds are polled meanwhile: A's waiting feeds hold no slot."""
    a_paths = [f"/a{n}.xml" for n in range(6)]
    for n, path in enumerate(a_paths):
        server.route(path, Reply(body=body(n), hold=True))
    b_paths = [f"/b{n}.xml" for n in range(4)]
    for n, path in enumerate(b_paths):
        other_host.route(path, body=body(50 + n))
    urls = [server.url(p) for p in a_paths] + [other_host.url(p) for p in b_paths]
    loaded = write_config(
        tmp_path, f"poll: {{concurrency: 3, per_host: 2}}\nfeeds:\n{feed_lines(urls)}\n"
    )
    async with App.open(loaded) as app:
        pool = PollPool(app.poller, slots=3, per_host=2, tick=0.05)
        run = asyncio.create_task(pool.run_due())  # the daemon's path: store claims
        await wait_until(lambda: all(other_host.hits(p) == 1 for p in b_paths))
        await asyncio.sleep(0.2)
        assert sum(server.hits(p) for p in a_paths) == 2
        # Host A's other feeds were not claimed: they hold no slot or lease.
        a_keys = {feed_key_for(server.url(p)) for p in a_paths}
        leased = [s for s in app.store.feed_states() if s.feed_key in a_keys and s.lease_until]
        assert len(leased) == 2
        while not run.done():  # answer host A two at a time
            server.release()
            await asyncio.sleep(0.05)
        outcomes = run.result()
    assert len(outcomes) == 10 and all(o.status == "updated" for o in outcomes)
    assert max(server.max_in_flight(p) for p in a_paths) == 1


async def test_fetcher_takes_the_host_slot_before_a_global_one(
    server: FeedServer, other_host: FeedServer
) -> None:
    """Two global slots, one per host: a fetch queued behind its host must not
    sit on a global slot, or host B's fetch would wait for host A."""
    server.route("/a.xml", Reply(body=body(1), hold=True))
    other_host.route("/b.xml", body=body(2))
    async with Fetcher(concurrency=2, per_host=1, timeout=10, max_bytes=10**6) as fetcher:
        first = asyncio.create_task(fetcher.fetch("a1", server.url("/a.xml")))
        await wait_until(lambda: server.hits("/a.xml") == 1)
        second = asyncio.create_task(fetcher.fetch("a2", server.url("/a.xml")))
        await asyncio.sleep(0.05)
        b = await asyncio.wait_for(fetcher.fetch("b", other_host.url("/b.xml")), 5)
        assert b.error is None and not first.done() and not second.done()
        while not second.done():
            server.release()
            await asyncio.sleep(0.02)
        assert (await first).error is None and (await second).error is None


async def test_lease_is_renewed_while_a_feed_is_at_work(tmp_path: Path, server: FeedServer) -> None:
    """A feed slower than its (short) lease is not claimed by a second pool
    (a replica) while the first still works on it; cancelled, the first
    gives it back."""
    server.route("/slow.xml", Reply(body=body(1), hold=True))
    loaded = write_config(tmp_path, f'feeds:\n  - {{url: "{server.url("/slow.xml")}"}}\n')
    key = feed_key_for(server.url("/slow.xml"))
    async with App.open(loaded) as app:
        lease = timedelta(seconds=0.4)
        first = PollPool(app.poller, slots=1, per_host=1, lease=lease, tick=0.05)
        run = asyncio.create_task(first.run_due())
        await wait_until(lambda: server.hits("/slow.xml") == 1)
        await asyncio.sleep(1.0)  # more than twice the lease
        replica = PollPool(app.poller, slots=1, per_host=1, lease=lease, tick=0.05)
        assert await replica.run_due() == []
        assert server.hits("/slow.xml") == 1
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        state = app.store.feed_state(key)
        assert state is not None and state.lease_until is None and state.last_success_at is None
        server.release()


async def test_feed_added_by_a_live_reload_is_polled(tmp_path: Path, server: FeedServer) -> None:
    server.route("/one.xml", body=body(1))
    server.route("/two.xml", body=body(2))
    one = f'  - {{url: "{server.url("/one.xml")}", every: 1h}}\n'
    two = f'  - {{url: "{server.url("/two.xml")}", every: 1h}}\n'
    loaded = write_config(tmp_path, "feeds:\n" + one)
    async with App.open(loaded) as app:
        daemon = Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST)
        task = asyncio.create_task(daemon.run())
        await wait_until(lambda: server.hits("/one.xml") == 1)
        loaded.path.write_text(loaded.path.read_text() + two, encoding="utf-8")
        await wait_until(lambda: server.hits("/two.xml") == 1)
        daemon.stop()
        await asyncio.wait_for(task, 5)
    assert server.hits("/one.xml") == 1  # every: 1h, not polled again


async def test_unchanged_feeds_are_recorded_in_batches(
    tmp_path: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [f"/f{n}.xml" for n in range(12)]
    for n, path in enumerate(paths):
        server.route(path, Reply(body=body(n), etag=f'"v{n}"'))
    loaded = write_config(tmp_path, f"feeds:\n{feed_lines([server.url(p) for p in paths])}\n")
    async with App.open(loaded) as app:
        await app.poller.poll_all()  # 200s: ingested one by one
        calls: list[int] = []
        record = app.store.record_polls

        def counting(updates: list[object]) -> None:
            calls.append(len(updates))
            record(updates)  # type: ignore[arg-type]

        monkeypatch.setattr(app.store, "record_polls", counting)
        outcomes = await app.poller.poll_all()  # 304s
        states = app.store.feed_states()
    assert {o.status for o in outcomes} == {"not_modified"}
    assert sum(calls) == 12 and len(calls) <= 2
    assert all(s.lease_until is None and s.consecutive_errors == 0 for s in states)


async def test_gone_feed_is_never_claimed_again(tmp_path: Path, server: FeedServer) -> None:
    server.route("/gone.xml", status=410)
    loaded = write_config(tmp_path, f'feeds:\n  - {{url: "{server.url("/gone.xml")}"}}\n')
    later = [datetime.now(UTC)]
    async with App.open(loaded, clock=lambda: later[0]) as app:
        pool = PollPool(app.poller, slots=2, per_host=2, tick=0.05)
        [outcome] = await pool.run_due()
        assert outcome.status == "gone"
        later[0] += timedelta(days=800)  # past any next_poll_at
        assert await pool.run_due() == []
        [state] = app.store.feed_states()
    assert server.hits("/gone.xml") == 1 and state.status == "gone"


async def test_one_claim_never_takes_more_of_a_host_than_it_may_open(
    tmp_path: Path, server: FeedServer
) -> None:
    """Four free slots, one host allowed one connection: the claim that
    returns its four due feeds keeps one and gives three back at once."""
    paths = [f"/h{n}.xml" for n in range(4)]
    for n, path in enumerate(paths):
        server.route(path, Reply(body=body(n), hold=True))
    loaded = write_config(tmp_path, f"feeds:\n{feed_lines([server.url(p) for p in paths])}\n")
    async with App.open(loaded) as app:
        pool = PollPool(app.poller, slots=4, per_host=1, tick=0.05)
        run = asyncio.create_task(pool.run_due())
        await wait_until(lambda: sum(server.hits(p) for p in paths) == 1)
        await asyncio.sleep(0.2)
        leased = [s for s in app.store.feed_states() if s.lease_until is not None]
        assert len(leased) == 1 and sum(server.hits(p) for p in paths) == 1
        while not run.done():
            server.release()
            await asyncio.sleep(0.05)
        assert len(run.result()) == 4
