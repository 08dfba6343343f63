"""Lease owners: the pure decision which owners are gone, the store's side
(owners recorded with claims, freed, renewed) on SQLite and PostgreSQL, and
the start-up step that frees a dead predecessor's leases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer
from newswatch.config import load_config
from newswatch.daemon import App, free_stale_leases
from newswatch.leases import Owner, Renewer, pid_alive, stale_owners
from newswatch.notify.deliver import DeliveryStats, more_at_once
from newswatch.poll import pool as poll_pool
from newswatch.store import SqlStore
from samples import rss
from store_helpers import MIN, T0, article, compose_each, ingest, item, specs

ME = Owner("box", 100, "aaaa")


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


# --------------------------------------------------------------------------- pure


def test_owner_round_trips_through_text() -> None:
    assert Owner.parse(str(ME)) == ME
    assert Owner.parse("db-1.example.org:42:beef") == Owner("db-1.example.org", 42, "beef")
    for bad in ("", "nohost", "box:notapid:tok", ":1:tok"):
        assert Owner.parse(bad) is None


@pytest.mark.parametrize(
    ("owner", "alive", "stale"),
    [
        (str(ME), False, False),  # my own leases are never stale
        ("box:200:bbbb", False, True),  # a process on this host that is gone
        ("box:200:bbbb", True, False),  # ... or still running
        (
            "box:100:bbbb",
            True,
            True,
        ),  # my pid, another token: my predecessor (pid 1 in a container)
        ("other:200:bbbb", False, False),  # another host: only its lease's expiry frees it
        ("garbage", False, False),
    ],
)
def test_stale_owners(owner: str, alive: bool, stale: bool) -> None:
    assert stale_owners([owner], ME, lambda pid: alive) == ([owner] if stale else [])


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())


# --------------------------------------------------------------------------- the store


def test_claims_record_their_owner_and_free_leases_frees_only_those(store: SqlStore) -> None:
    store.sync_feeds(specs("a", "b"), T0)
    [a] = store.claim_due_feeds(T0, T0 + MIN, 1, owner="box:1:x")
    [b] = store.claim_due_feeds(T0, T0 + MIN, 1, owner="box:2:y")
    assert store.lease_owners(T0) == {"box:1:x", "box:2:y"}
    assert store.free_leases(["box:1:x"]) == (1, 0)
    assert store.lease_owners(T0) == {"box:2:y"}
    # Freed: claimable again at once; the other lease still holds.
    assert [s.feed_key for s in store.claim_due_feeds(T0, T0 + MIN, 5)] == [a.feed_key]
    assert b.feed_key not in [s.feed_key for s in store.claim_due_feeds(T0, T0 + MIN, 5)]


def test_freed_notifications_are_claimed_again_with_their_attempt_kept(store: SqlStore) -> None:
    store.sync_feeds(specs("feed-a"), T0)
    ingest(store, [item(article("e1"))])
    compose_each(store, T0)
    [claimed] = store.claim_notifications(T0, T0 + MIN, 5, owner="box:1:x")
    assert store.claim_notifications(T0, T0 + MIN, 5) == []  # leased
    assert store.lease_owners(T0) == {"box:1:x"}
    assert store.free_leases(["box:1:x", "box:9:gone"]) == (0, 1)
    [again] = store.claim_notifications(T0, T0 + MIN, 5)
    assert (again.id, again.attempt) == (claimed.id, 2)  # it may have reached the service


def test_renew_feeds_extends_leases_still_held_only(store: SqlStore) -> None:
    store.sync_feeds(specs("a", "b"), T0)
    claimed = store.claim_due_feeds(T0, T0 + MIN, 2)
    done, running = claimed
    store.release_feeds([done.feed_key])  # its poll was recorded
    store.renew_feeds([s.feed_key for s in claimed], T0 + 10 * MIN)
    states = {s.feed_key: s.lease_until for s in store.feed_states()}
    assert states == {done.feed_key: None, running.feed_key: T0 + 10 * MIN}


def test_lease_owners_ignore_expired_leases(store: SqlStore) -> None:
    store.sync_feeds(specs("a"), T0)
    store.claim_due_feeds(T0, T0 + MIN, 1, owner="box:1:x")
    assert store.lease_owners(T0 + 2 * MIN) == set()


def test_start_up_frees_the_leases_of_a_dead_process_on_this_host(store: SqlStore) -> None:
    store.sync_feeds(specs("a", "b"), T0)
    me = Owner.this_process()
    gone = Owner(me.host, dead_pid(), "dead")
    alive = Owner(me.host, os.getpid(), "other")  # same pid, another token: a predecessor
    elsewhere = Owner("another-host", 1, "x")
    store.claim_due_feeds(T0, T0 + MIN, 1, owner=str(gone))
    store.claim_due_feeds(T0, T0 + MIN, 1, owner=str(elsewhere))
    free_stale_leases(store, me, T0)
    assert store.lease_owners(T0) == {str(elsewhere)}
    store.claim_due_feeds(T0, T0 + MIN, 1, owner=str(alive))
    free_stale_leases(store, me, T0)
    assert store.lease_owners(T0) == {str(elsewhere)}


# --------------------------------------------------------------------------- renewing


async def test_renewer_renews_what_is_in_flight_every_third_of_the_lease() -> None:
    renewed: list[tuple[list[str], datetime]] = []
    in_flight = {"b", "a"}

    async def renew(keys: list[str], until: datetime) -> None:
        renewed.append((keys, until))

    lease = timedelta(seconds=3.3)  # renewed every 1.1 s
    async with Renewer(
        lease=lease, keys=lambda: in_flight, renew=renew, clock=lambda: T0, what="feed"
    ):
        await asyncio.sleep(1.3)
        in_flight.clear()
        await asyncio.sleep(1.1)
    assert renewed == [(["a", "b"], T0 + lease)]


def test_a_lease_too_short_to_renew_is_refused() -> None:
    async def renew(keys: list[str], until: datetime) -> None:
        pass

    with pytest.raises(ValueError, match="too short"):
        Renewer(lease=timedelta(seconds=3), keys=set, renew=renew, clock=lambda: T0, what="x")


# --------------------------------------------------------------------------- a poll in flight


@pytest.mark.parametrize(
    ("sent", "retried", "deferred", "more"),
    [(50, 0, 0, True), (49, 0, 0, False), (49, 1, 0, False), (40, 0, 10, False), (0, 0, 0, False)],
)
def test_more_at_once(sent: int, retried: int, deferred: int, more: bool) -> None:
    stats = DeliveryStats(sent=sent, retried=retried, deferred=deferred)
    assert more_at_once(stats, batch=50) is more


async def test_a_slow_poll_keeps_its_feed_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll that outlasts FEED_LEASE (shortened to 3.3 s) renews its lease:
    another poller claims nothing meanwhile, and the feed is polled once."""
    monkeypatch.setattr(poll_pool, "FEED_LEASE", timedelta(seconds=3.3))
    with FeedServer() as server:
        server.route("/slow.xml", body=rss(*[]), delay=4.0)
        config = tmp_path / "newswatch.yaml"
        config.write_text(
            f"state: sqlite:///{tmp_path}/state.db\n"
            f'feeds: [{{url: "{server.url("/slow.xml")}", name: slow}}]\n',
            encoding="utf-8",
        )
        async with App.open(load_config(config, env={})) as app:
            polling = asyncio.create_task(app.pool.run_due())
            await asyncio.sleep(3.7)  # past the first lease
            now = datetime.now(UTC)
            stolen = await asyncio.to_thread(app.store.claim_due_feeds, now, now + MIN, 5)
            [outcome] = await polling
        assert stolen == []
        assert outcome.status == "updated" and server.hits("/slow.xml") == 1
