"""The store's read-only views (status page, `newswatch status`, /metrics), on
real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from newswatch.store import HoldRows, SqlStore, open_store
from newswatch.store._stats import SPARK_DAYS
from store_helpers import DAY, MIN, T0, article, compose_each, ingest, item, specs, update


def test_ping_answers(store: SqlStore) -> None:
    store.ping()


def test_ping_raises_when_the_database_is_gone(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'gone' / 'state.db'}")
    s.ping()
    shutil.rmtree(tmp_path / "gone")
    s.engine.dispose()  # no pooled connection left to answer from
    with pytest.raises(sa.exc.OperationalError):
        s.ping()
    s.close()


def test_feed_page_orders_by_label_pages_and_filters_failing(store: SqlStore) -> None:
    keys = [f"f{i:02d}" for i in range(7)]
    store.sync_feeds(specs(*keys), T0)
    store.record_polls([update("f03", ok=False, error="HTTP 500"), update("f05", ok=False)])
    store.record_polls([update("f01")])

    first = store.feed_page(offset=0, limit=3)
    assert [f.feed_key for f in first.feeds] == ["f00", "f01", "f02"]
    assert (first.total, first.failing) == (7, 2)
    rest = store.feed_page(offset=6, limit=3)
    assert [f.feed_key for f in rest.feeds] == ["f06"]

    failing = store.feed_page(failing=True)
    assert [f.feed_key for f in failing.feeds] == ["f03", "f05"]
    assert failing.total == 2
    assert failing.feeds[0].last_error == "HTTP 500"

    # Inactive feeds (removed from the config) are not listed.
    store.sync_feeds(specs("f00", "f03"), T0)
    page = store.feed_page()
    assert [f.feed_key for f in page.feeds] == ["f00", "f03"]
    assert (page.total, page.failing) == (2, 1)


def test_rule_activity_counts_windows_days_and_last_match(store: SqlStore) -> None:
    now = T0 + 20 * DAY
    ingest(store, [item(article("old"), rules=("r1",))], at=now - 10 * DAY)
    ingest(store, [item(article("week"), rules=("r1", "r2"))], at=now - 3 * DAY)
    ingest(store, [item(article("today", title="Latest news"), rules=("r1",))], at=now - 2 * MIN)

    got = store.rule_activity(["r1", "r2", "never"], now)
    r1, r2, never = got["r1"], got["r2"], got["never"]
    assert (r1.last_24h, r1.last_7d) == (1, 2)
    assert (r2.last_24h, r2.last_7d) == (0, 1)
    assert len(r1.daily) == SPARK_DAYS
    assert sum(r1.daily) == 3  # 10 days ago is inside the 14-day sparkline
    assert r1.daily[-1] == 1 and r1.daily[-11] == 1 and r1.daily[-4] == 1
    assert r1.last_match_at == now - 2 * MIN
    assert r1.last_title == "Latest news"
    assert r1.last_link == "https://example.com/today"
    assert r2.last_title == "Title"
    assert never.last_24h == never.last_7d == 0
    assert never.daily == (0,) * SPARK_DAYS
    assert never.last_match_at is None and never.last_title is None


def test_outbox_depths_count_pending_and_queued_with_the_oldest(store: SqlStore) -> None:
    ingest(store, [item(article("a"), channels=("slack", "mail"))], at=T0)
    ingest(store, [item(article("b"), channels=("slack",))], at=T0 + 5 * MIN)
    assert store.outbox_depths()["slack"].pending == 2
    assert store.outbox_depths()["slack"].oldest_at == T0

    [first, *_] = compose_each(store, T0 + 6 * MIN)
    depths = store.outbox_depths()
    assert (depths["slack"].pending + depths["slack"].queued) == 2
    assert depths["mail"].oldest_at == T0

    for note in store.claim_notifications(T0 + 7 * MIN, T0 + 8 * MIN, 10):
        store.mark_sent(note.id, T0 + 7 * MIN)
    assert store.outbox_depths() == {}
    assert first > 0


def test_summary_of_the_running_state(store: SqlStore) -> None:
    store.sync_feeds(specs("a", "b", "c"), T0)
    ingest(store, [item(article("x", feed="a"))], feed="a", at=T0)
    store.record_polls([update("b", ok=False, at=T0 + MIN)])
    compose_each(store, T0 + 2 * MIN)
    [note] = store.claim_notifications(T0 + 2 * MIN, T0 + 3 * MIN, 10)
    store.mark_sent(note.id, T0 + 2 * MIN)

    s = store.summary(T0 + 5 * MIN)
    assert (s.feeds, s.failing, s.never_polled, s.articles) == (3, 1, 1, 1)
    assert s.last_poll_at == T0 + MIN
    assert s.last_success_at == T0
    assert (s.waiting, s.dead, s.sent_24h) == (0, 0, 1)
    assert s.last_sent_at == T0 + 2 * MIN

    later = store.summary(T0 + 3 * DAY)
    assert later.sent_24h == 0
    assert later.last_sent_at == T0 + 2 * MIN


def test_ending_a_mute_early_makes_what_it_held_due(store: SqlStore) -> None:
    ingest(store, [item(article("a"), rules=("r1",), channels=("slack", "mail"))], at=T0)
    rows = store.pending_due(T0, 100)
    assert len(rows) == 2
    store.apply([HoldRows(tuple(r.id for r in rows), T0 + 4 * 60 * MIN, "mute")], T0)
    assert store.pending_due(T0 + MIN, 100) == []
    mute = store.add_mute("channel", "slack", T0, T0 + 4 * 60 * MIN)
    assert store.end_mute(mute.id, T0 + 2 * MIN)
    due = store.pending_due(T0 + 2 * MIN, 100)
    assert [r.channel for r in due] == ["slack"]  # mail's row is not this mute's
    assert not store.end_mute(mute.id, T0 + 3 * MIN)  # once
