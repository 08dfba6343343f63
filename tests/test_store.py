"""The store contract (feeds, articles, stories), run against real SQLite
files and a real PostgreSQL.

Every test that takes ``store`` or ``store_url`` runs on both backends; the
PostgreSQL cases get a fresh schema each and are skipped where no server
answers on 127.0.0.1:5432. The outbox, notifications and ledgers are in
test_store_outbox.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from newswatch.identity import identity_keys
from newswatch.store import (
    SCHEMA_VERSION,
    FeedUpdate,
    IngestItem,
    OutboxStatus,
    PruneResult,
    SchemaVersionError,
    SqlStore,
    open_store,
    schema,
)
from newswatch.store import _articles as articles_module
from newswatch.store._dialect import normalize_url
from store_helpers import (
    DAY,
    MIN,
    T0,
    article,
    claim,
    compose_each,
    counts,
    ingest,
    item,
    race,
    specs,
    update,
)

# --- schema and lifecycle


def test_schema_is_versioned_and_create_is_idempotent(store: SqlStore) -> None:
    store.create_schema()
    store.create_schema()
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(schema.meta.c.value)).scalar_one()
    assert int(version) == SCHEMA_VERSION


def test_newer_schema_is_refused(store_url: str) -> None:
    with open_store(store_url) as s, s.engine.begin() as conn:
        conn.execute(schema.meta.update().values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(SchemaVersionError, match="upgrade newswatch"):
        open_store(store_url)


def test_restart_keeps_state(store_url: str) -> None:
    with open_store(store_url) as s:
        s.sync_feeds(specs("feed-a"), T0)
        ingest(s, [item(article("e1"))])
        s.record_polls([update(at=T0 + MIN, ok=False, error="timeout")])
    with open_store(store_url) as s:
        state = s.feed_state("feed-a")
        assert state is not None
        assert state.etag == '"v1"'
        assert state.consecutive_errors == 1
        assert state.last_success_at == T0
        assert state.articles == 1
        assert set(s.known_entries("feed-a", ["e1", "e2"])) == {"e1"}
        assert [r.status for r in s.outbox()] == [OutboxStatus.PENDING]
        assert counts(ingest(s, [item(article("e1"))])) == (0, 0, 0)


def test_datetimes_round_trip_as_utc(store: SqlStore) -> None:
    seoul = timezone(timedelta(hours=9))
    now = T0.astimezone(seoul)
    store.sync_feeds(specs("feed-a"), now)
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.next_poll_at is not None
    assert state.next_poll_at == T0
    assert state.next_poll_at.utcoffset() == timedelta(0)
    # Comparisons happen in UTC too: due at T0 whatever offset "now" is given in.
    assert store.claim_due_feeds(now, now + MIN, 1)
    ingest(store, [item(article("e1"))], at=now)
    [a] = store.iter_articles()
    assert a.published == T0 - timedelta(hours=1)
    assert a.published is not None
    assert a.published.tzinfo is not None
    compose_each(store, now)
    [n] = claim(store, now)
    assert n.items[0].matched_at == T0
    assert n.items[0].matched_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    from datetime import datetime

    with pytest.raises(StatementError, match="naive datetime"):
        store.sync_feeds(specs("feed-a"), datetime(2025, 1, 1))


# --- feeds


def test_sync_feeds_creates_due_rows_once_and_tracks_what_is_active(store: SqlStore) -> None:
    assert store.feed_state("feed-a") is None
    store.sync_feeds(specs("feed-a", "feed-b"), T0)
    store.record_polls([update("feed-a", ok=False, error="boom")])
    store.sync_feeds(specs("feed-a", "feed-c"), T0 + MIN)  # a reload drops feed-b
    states = {s.feed_key: s for s in store.feed_states()}
    assert sorted(states) == ["feed-a", "feed-b", "feed-c"]
    assert states["feed-a"].consecutive_errors == 1  # untouched by the second call
    assert states["feed-a"].label == "FEED-A" and states["feed-a"].host == "feed-a.example.org"
    assert [s.active for s in (states["feed-a"], states["feed-b"], states["feed-c"])] == [
        True,
        False,
        True,
    ]
    assert states["feed-c"].next_poll_at == T0 + MIN
    assert states["feed-c"].last_success_at is None
    assert states["feed-c"].articles == 0
    assert [s.feed_key for s in store.feed_states(active_only=True)] == ["feed-a", "feed-c"]
    # An inactive feed is never claimed, however overdue.
    claimed = store.claim_due_feeds(T0 + DAY, T0 + DAY + MIN, 10)
    assert sorted(s.feed_key for s in claimed) == ["feed-a", "feed-c"]
    # A later reload that adds it back makes it due again.
    store.sync_feeds(specs("feed-a", "feed-b", "feed-c"), T0 + DAY)
    assert [s.feed_key for s in store.claim_due_feeds(T0 + DAY, T0 + DAY + MIN, 10)] == ["feed-b"]


def test_claim_due_feeds_leases_due_feeds_in_order(store: SqlStore) -> None:
    store.sync_feeds(specs("late", "early", "future"), T0)
    store.record_polls(
        [
            dataclasses.replace(update("late"), next_poll_at=T0 - 2 * MIN),
            dataclasses.replace(update("early"), next_poll_at=T0 - 5 * MIN),
            dataclasses.replace(update("future"), next_poll_at=T0 + 5 * MIN),
        ]
    )
    claimed = store.claim_due_feeds(T0, T0 + MIN, 1)
    assert [s.feed_key for s in claimed] == ["early"]
    assert claimed[0].lease_until == T0 + MIN
    claimed = store.claim_due_feeds(T0, T0 + MIN, 10)
    assert [s.feed_key for s in claimed] == ["late"]
    assert store.claim_due_feeds(T0, T0 + MIN, 10) == []
    assert store.claim_due_feeds(T0, T0 + MIN, 0) == []


def test_claim_skips_busy_hosts(store: SqlStore) -> None:
    store.sync_feeds(specs("a", "b", "c"), T0)
    claimed = store.claim_due_feeds(T0, T0 + MIN, 10, skip_hosts=["a.example.org"])
    assert sorted(s.feed_key for s in claimed) == ["b", "c"]
    assert [s.feed_key for s in store.claim_due_feeds(T0, T0 + MIN, 10)] == ["a"]


def test_feed_lease_expires_and_can_be_released(store: SqlStore) -> None:
    store.sync_feeds(specs("feed-a", "feed-b"), T0)
    assert len(store.claim_due_feeds(T0, T0 + MIN, 10)) == 2
    assert store.claim_due_feeds(T0 + MIN / 2, T0 + 2 * MIN, 10) == []
    # A crashed poller's lease runs out; another takes the feeds over.
    store.release_feeds(["feed-b"])
    [state] = store.claim_due_feeds(T0 + MIN / 2, T0 + 2 * MIN, 10)
    assert state.feed_key == "feed-b"
    [state] = store.claim_due_feeds(T0 + 3 * MIN / 2, T0 + 3 * MIN, 10)
    assert state.feed_key == "feed-a"


def test_concurrent_feed_claims_never_overlap(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    keys = [f"feed-{i:02}" for i in range(40)]
    stores[0].sync_feeds(specs(*keys), T0)

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_due_feeds(T0, T0 + MIN, 3):
                got.extend(f.feed_key for f in batch)
            return got

        return claim_all

    claimed = race([worker(s) for s in stores for _ in range(2)])
    assert sorted(claimed) == keys  # each exactly once


def test_record_polls_counts_failures_and_keeps_validators(store: SqlStore) -> None:
    store.sync_feeds(specs("feed-a"), T0)
    ingest(store, [], at=T0)
    store.claim_due_feeds(T0 + 10 * MIN, T0 + 11 * MIN, 1)
    first_failure = T0 + 10 * MIN
    store.record_polls([update(at=first_failure, ok=False, error="HTTP 503", status=503)])
    store.record_polls([update(at=T0 + 20 * MIN, ok=False, error="timeout", status=None)])
    state = store.feed_state("feed-a")
    assert state is not None
    assert (state.consecutive_errors, state.last_error, state.status) == (2, "timeout", "failing")
    assert (state.lease_until, state.next_poll_at) == (None, T0 + 30 * MIN)
    assert state.last_attempt_at == T0 + 20 * MIN
    assert state.last_success_at == T0
    assert state.failing_since == first_failure  # from the first failure of the run
    assert state.last_status == 503  # a transport error has no status to record

    # A 304 is a success: errors reset; validators kept unless new ones came.
    not_modified = FeedUpdate("feed-a", T0 + 40 * MIN, T0 + 50 * MIN, ok=True, last_status=304)
    store.record_polls([not_modified])
    state = store.feed_state("feed-a")
    assert state is not None
    assert (state.consecutive_errors, state.last_error, state.etag) == (0, None, '"v1"')
    assert (state.last_success_at, state.failing_since) == (T0 + 40 * MIN, None)
    assert state.next_poll_at == T0 + 50 * MIN
    store.record_polls([dataclasses.replace(not_modified, etag='"v2"')])
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.etag == '"v2"'


def test_record_polls_writes_many_feeds_in_one_call(store: SqlStore) -> None:
    keys = [f"f{i}" for i in range(30)]
    store.sync_feeds(specs(*keys), T0)
    store.record_polls([update(k, at=T0 + MIN) for k in keys])
    assert {s.last_success_at for s in store.feed_states()} == {T0 + MIN}


def test_known_entries_beyond_one_chunk(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}"), rules=()) for i in range(0, 1200, 100)])
    keys = [f"e{i}" for i in range(1200)]
    found = store.known_entries("feed-a", keys)
    assert set(found) == {f"e{i}" for i in range(0, 1200, 100)}
    assert found["e100"].canonical_url == "https://example.com/e100"
    assert found["e100"].story_id is not None
    assert store.known_entries("feed-b", keys) == {}
    assert store.known_entries("feed-a", []) == {}


# --- ingest


def test_ingest_records_articles_matches_outbox_and_feed_state(store: SqlStore) -> None:
    store.sync_feeds(specs("feed-a"), T0)
    store.claim_due_feeds(T0, T0 + MIN, 1)
    items = [item(article("e1"), rules=("r1", "r2")), item(article("e2"), rules=())]
    result = store.ingest(update(error="not well-formed"), items)
    assert counts(result) == (2, 2, 2)
    assert result.story_ids.keys() == {"e1", "e2"}
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.articles == 2
    assert (state.etag, state.last_error, state.lease_until) == ('"v1"', "not well-formed", None)
    assert (state.last_success_at, state.next_poll_at) == (T0, T0 + 10 * MIN)
    rows = store.outbox()
    assert {(r.rule, r.channel, r.target_id, r.status) for r in rows} == {
        ("r1", "slack", "slack:immediate", OutboxStatus.PENDING),
        ("r2", "slack", "slack:immediate", OutboxStatus.PENDING),
    }
    assert {(r.feed_key, r.title, r.link) for r in rows} == {
        ("feed-a", "Title", "https://example.com/e1")
    }


def test_ingest_is_idempotent(store: SqlStore) -> None:
    items = [item(article("e1")), item(article("e2"), channels=("slack", "email"))]
    assert counts(ingest(store, items)) == (2, 2, 3)
    assert counts(ingest(store, items, at=T0 + MIN)) == (0, 0, 0)
    # The same entry twice in one batch counts once.
    assert counts(ingest(store, [item(article("e3")), item(article("e3"))])) == (1, 1, 1)
    assert len(store.outbox()) == 4
    assert len(list(store.iter_articles())) == 3


def test_one_alert_per_rule_story_and_target(store: SqlStore) -> None:
    """The same story syndicated by two feeds (or re-posted under a new GUID)
    is stored twice as an article but alerted once per rule and target; a
    rule that newly matches a copy alerts for it."""
    first = item(article("yonhap-1", feed="yonhap", story="s1"), channels=("slack", "email"))
    assert counts(ingest(store, [first], feed="yonhap")) == (1, 1, 2)
    again = item(article("kh-77", feed="herald", story="s1"), rules=("r1", "r2"))
    result = ingest(store, [again], feed="herald")
    assert counts(result) == (1, 2, 1) and result.joined == 1
    reposted = item(article("yonhap-1-v2", feed="yonhap", story="s1"))
    assert counts(ingest(store, [reposted], feed="yonhap")) == (1, 1, 0)
    assert sorted((r.rule, r.channel) for r in store.outbox()) == [
        ("r1", "email"),
        ("r1", "slack"),
        ("r2", "slack"),
    ]
    assert len({a for a in ingest(store, [], feed="yonhap").story_ids.values()}) == 0


def test_stories_are_joined_by_url_without_scheme_and_by_title_and_date(store: SqlStore) -> None:
    long_title = "Putin arrives in Pyongyang as Russia and North Korea deepen ties"
    first = article("a1", url="https://www.example.com/2024/putin", title=long_title)
    http_copy = article("a2", feed="feed-b", url="http://www.example.com/2024/putin")
    moved = article("a3", feed="feed-c", url="https://new.example.com/x/9", title=long_title)
    other = article("a4", url="https://www.example.com/2024/other", title="Title")
    r1 = ingest(store, [item(first, rules=())])
    r2 = ingest(store, [item(http_copy, rules=())], feed="feed-b")
    r3 = ingest(store, [item(moved, rules=())], feed="feed-c")
    r4 = ingest(store, [item(other, rules=())])
    assert r1.story_ids["a1"] == r2.story_ids["a2"] == r3.story_ids["a3"]
    assert r4.story_ids["a4"] != r1.story_ids["a1"]
    assert (r2.joined, r3.joined, r4.joined) == (1, 1, 0)
    assert identity_keys(first) != identity_keys(moved)  # joined through the title key


def test_a_story_recorded_silently_alerts_nobody_when_copies_come(store: SqlStore) -> None:
    """A first poll records entries without evaluating rules. When the feed
    rewrites every GUID (http -> https links too), the copies join the known
    stories: no alert storm. A story seen normally afterwards alerts for
    rules that newly match it only."""
    silent = [
        item(article(f"http-{i}", story=f"s{i}"), rules=(), evaluated=False) for i in range(3)
    ]
    ingest(store, silent)
    rewritten = [
        item(dataclasses.replace(article(f"https-{i}", story=f"s{i}")), rules=("r1",))
        for i in range(3)
    ]
    result = ingest(store, rewritten, at=T0 + MIN)
    assert (result.new_articles, result.joined, result.new_outbox) == (3, 3, 0)
    # The copies set the baseline: a third copy matching a new rule alerts for it.
    third = item(article("copy-0", feed="feed-b", story="s0"), rules=("r1", "r2"))
    assert ingest(store, [third], feed="feed-b", at=T0 + 2 * MIN).new_outbox == 1
    assert [r.rule for r in store.outbox()] == ["r2"]


def test_an_edit_alerts_only_rules_that_newly_match(store: SqlStore) -> None:
    original = item(article("e1"), rules=("r1",))
    ingest(store, [original])
    edited_article = dataclasses.replace(article("e1"), title="Title, updated")
    edit = dataclasses.replace(
        item(edited_article, rules=("r1", "r2")), edit=True, content_hash="v2"
    )
    result = ingest(store, [edit], at=T0 + MIN)
    assert (result.new_articles, result.edited, result.new_outbox) == (0, 1, 1)
    assert sorted(r.rule for r in store.outbox()) == ["r1", "r2"]
    [stored] = store.iter_articles()
    assert stored.title == "Title, updated"
    assert store.known_entries("feed-a", ["e1"])["e1"].content_hash == "v2"


def _bad_article_mid_batch() -> tuple[FeedUpdate, list[IngestItem]]:
    good = item(article("e2"))
    bad = dataclasses.replace(good, article=dataclasses.replace(good.article, source=None))  # type: ignore[arg-type]  # NOT NULL column
    return update(), [item(article("e1")), bad, item(article("e3"))]


def _bad_feed_update_last() -> tuple[FeedUpdate, list[IngestItem]]:
    # The feed-state write is the transaction's last statement: by then the
    # articles, matches and outbox rows are all in.
    bad = dataclasses.replace(update(), status=None)  # type: ignore[arg-type]  # NOT NULL column
    return bad, [item(article("e1")), item(article("e2"))]


@pytest.mark.parametrize("failing", [_bad_article_mid_batch, _bad_feed_update_last])
def test_ingest_is_all_or_nothing(
    store: SqlStore, failing: Callable[[], tuple[FeedUpdate, list[IngestItem]]]
) -> None:
    store.sync_feeds(specs("feed-a"), T0)
    store.claim_due_feeds(T0, T0 + MIN, 1)
    bad_update, items = failing()
    with pytest.raises(IntegrityError):
        store.ingest(bad_update, items)
    assert store.known_entries("feed-a", ["e1", "e2", "e3"]) == {}
    assert store.outbox() == []
    assert list(store.iter_articles()) == []
    [state] = store.feed_states()
    assert (state.last_success_at, state.etag, state.lease_until) == (None, None, T0 + MIN)
    # Nothing half-written blocks the retry.
    assert counts(ingest(store, [item(article("e1"))])) == (1, 1, 1)


def test_iter_articles_streams_in_first_seen_order(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(articles_module, "ARTICLE_PAGE", 4)
    ingest(store, [item(article(f"b{i}"), rules=()) for i in range(5)], at=T0 + MIN)
    ingest(store, [item(article(f"a{i}"), rules=()) for i in range(6)], at=T0)
    ingest(store, [item(article(f"c{i}"), rules=()) for i in range(4)], at=T0 + 2 * MIN)
    seen = [a.entry_key for a in store.iter_articles()]
    assert seen == [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(5)] + [
        f"c{i}" for i in range(4)
    ]
    since = [a.entry_key for a in store.iter_articles(since=T0 + MIN)]
    assert since == seen[6:]
    [first, *_] = store.iter_articles()
    assert first == article("a0")


def test_rule_stats_count_matches_per_day(store: SqlStore) -> None:
    ingest(store, [item(article("e1"), rules=("r1", "r2")), item(article("e2"))])
    ingest(store, [item(article("e3"))], at=T0 + DAY)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.rule_stats.c.rule, schema.rule_stats.c.day, schema.rule_stats.c.matches
            ).order_by(schema.rule_stats.c.rule, schema.rule_stats.c.day)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("r1", "2025-03-01", 2),
        ("r1", "2025-03-02", 1),
        ("r2", "2025-03-01", 1),
    ]


# --- SQLite specifics and URLs


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'state.db'}"
    with open_store(url) as s, s.engine.connect() as conn:
        pragma = conn.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 5000
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert (tmp_path / "deep" / "er" / "state.db").exists()


def test_from_engine_configures_sqlite(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    s = SqlStore.from_engine(engine)
    try:
        s.create_schema()
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        s.close()


def test_memory_store_is_shared_across_threads() -> None:
    with open_store("sqlite://") as s:
        keys = [f"feed-{i}" for i in range(20)]
        s.sync_feeds(specs(*keys), T0)

        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_due_feeds(T0, T0 + MIN, 2):
                got.extend(f.feed_key for f in batch)
            return got

        assert sorted(race([claim_all] * 4)) == sorted(keys)


def test_urls_map_to_our_drivers() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ValueError, match="unsupported state database"):
        SqlStore("mysql://u@h/db")


def test_repr_hides_the_password() -> None:
    s = SqlStore("postgresql://newswatch:s3cret@127.0.0.1:1/db")
    try:
        assert "s3cret" not in repr(s)
    finally:
        s.close()


def test_rule_backfill_runs_once_and_skips_what_was_alerted(store: SqlStore) -> None:
    ingest(store, [item(article("e1"), rules=()), item(article("e2"), rules=("r1",))])
    assert store.rules_to_backfill(["r1", "new"]) == {"r1", "new"}
    found = [item(article("e1"), rules=("new",)), item(article("e2"), rules=("new",))]
    gone = item(article("deleted-meanwhile"), rules=("new",))
    result = store.record_backfill("new", [*found, gone], T0 + MIN)
    assert counts(result) == (0, 2, 2)
    assert store.rules_to_backfill(["r1", "new"]) == {"r1"}
    # Recording again (a second replica racing) adds nothing.
    assert counts(store.record_backfill("new", found, T0 + 2 * MIN)) == (0, 0, 0)
    assert sorted(r.rule for r in store.outbox()) == ["new", "new", "r1"]


def test_prune_forgets_old_unseen_articles_but_keeps_unsent_alerts(store: SqlStore) -> None:
    ingest(store, [item(article("old-sent")), item(article("old-pending")), item(article("seen"))])
    ingest(store, [item(article("fresh"))], at=T0 + 100 * DAY)
    # "seen" is still in the feed's document 100 days later.
    ingest(store, [], at=T0 + 100 * DAY, seen_again=["seen"])
    compose_each(store, T0 + 100 * DAY)
    for n in claim(store, T0 + 100 * DAY, limit=10):
        if n.items[0].article.entry_key != "old-pending":
            store.mark_sent(n.id, T0 + 100 * DAY)
    assert store.feed_state("feed-a") is not None

    gone = store.prune(T0 + 90 * DAY)

    assert gone == PruneResult(articles=1, matches=1, outbox=1)
    left = {a.entry_key for a in store.iter_articles()}
    assert left == {"old-pending", "seen", "fresh"}
    assert set(store.known_entries("feed-a", ["old-sent", "seen"])) == {"seen"}
    state = store.feed_state("feed-a")
    assert state is not None and state.articles == 3  # the counter follows the prune
    assert store.prune(T0 + 90 * DAY) == PruneResult(0, 0, 0)
