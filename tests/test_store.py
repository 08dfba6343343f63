"""The store contract, run against real SQLite files and a real PostgreSQL.

Every test that takes ``store`` or ``store_url`` runs on both backends; the
PostgreSQL cases get a fresh schema each and are skipped where no server
answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from newswatch.model import (
    Alert,
    Article,
    DeliveryMode,
    Explanation,
    FetchResult,
    Hit,
    Match,
    Route,
)
from newswatch.store import (
    SCHEMA_VERSION,
    IngestItem,
    IngestResult,
    OutboxStatus,
    PruneResult,
    SchemaVersionError,
    SqlStore,
    open_store,
    schema,
    sql,
)
from newswatch.store._dialect import normalize_url

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)


# --- fixtures


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def open_stores(store_url: str) -> Iterator[Callable[[int], list[SqlStore]]]:
    """Several stores on one database, as separate processes or replicas would be."""
    opened: list[SqlStore] = []

    def make(n: int) -> list[SqlStore]:
        new = [open_store(store_url) for _ in range(n)]
        opened.extend(new)
        return new

    yield make
    for s in opened:
        s.close()


# --- helpers


def article(
    entry: str, *, feed: str = "feed-a", story: str | None = None, title: str = "Title"
) -> Article:
    return Article(
        feed_key=feed,
        entry_key=entry,
        story_key=story or f"story-{entry}",
        title=title,
        summary="Russia and North Korea sign a pact.",
        content="<p>Full text</p>",
        link=f"https://example.com/{entry}",
        canonical_url=f"https://example.com/{entry}",
        author="Yonhap",
        categories=("politics", "asia"),
        published=T0 - timedelta(hours=1),
        source="Korea Herald",
        tags=("korea",),
    )


EXPLANATION = Explanation(
    hits=(Hit("russia", "summary", 0, 6), Hit("north korea", "summary", 11, 22)),
    snippet="Russia and North Korea sign a pact.",
    highlights=((0, 6), (11, 22)),
)


def item(
    a: Article, rules: Sequence[str] = ("r1",), channels: Sequence[str] = ("slack",)
) -> IngestItem:
    return IngestItem(
        article=a,
        matches=tuple(Match(rule, a, EXPLANATION) for rule in rules),
        routes=tuple(Route(rule, ch) for rule in rules for ch in channels),
    )


def fetch(feed: str = "feed-a", *, etag: str | None = '"v1"', at: datetime = T0) -> FetchResult:
    return FetchResult(
        feed_key=feed, url=f"https://example.com/{feed}.xml", fetched_at=at, status=200, etag=etag
    )


def ingest(
    store: SqlStore, items: Sequence[IngestItem], feed: str = "feed-a", at: datetime = T0
) -> IngestResult:
    return store.ingest(fetch(feed, at=at), items, at, at + 10 * MIN)


def race(workers: Sequence[Callable[[], list[str | int]]]) -> list[str | int]:
    """Run workers at once in threads; return everything they claimed."""
    barrier = threading.Barrier(len(workers))
    results: list[list[str | int]] = [[] for _ in workers]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = workers[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [x for r in results for x in r]


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
        s.ensure_feeds(["feed-a"], T0)
        ingest(s, [item(article("e1"))])
        s.record_failure("feed-a", "timeout", T0 + MIN, T0 + 5 * MIN)
    with open_store(store_url) as s:
        state = s.feed_state("feed-a")
        assert state is not None
        assert state.etag == '"v1"'
        assert state.consecutive_errors == 1
        assert state.last_success_at == T0
        assert state.articles == 1
        assert s.known_entry_keys("feed-a", ["e1", "e2"]) == {"e1"}
        assert [r.status for r in s.outbox()] == [OutboxStatus.PENDING]
        assert ingest(s, [item(article("e1"))]) == IngestResult(0, 0, 0)


def test_datetimes_round_trip_as_utc(store: SqlStore) -> None:
    seoul = timezone(timedelta(hours=9))
    now = T0.astimezone(seoul)
    store.ensure_feeds(["feed-a"], now)
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.next_poll_at is not None
    assert state.next_poll_at == T0
    assert state.next_poll_at.utcoffset() == timedelta(0)
    # Comparisons happen in UTC too: due at T0 whatever offset "now" is given in.
    assert store.claim_due_feeds(["feed-a"], now, now + MIN, 1)
    ingest(store, [item(article("e1"))], at=now)
    [a] = store.iter_articles()
    assert a.published == T0 - timedelta(hours=1)
    assert a.published is not None
    assert a.published.tzinfo is not None
    [alert] = store.claim_outbox(now, now + MIN, 10)
    assert alert.matched_at == T0
    assert alert.matched_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        store.ensure_feeds(["feed-a"], datetime(2025, 1, 1))


# --- feeds


def test_ensure_feeds_creates_due_rows_once(store: SqlStore) -> None:
    assert store.feed_state("feed-a") is None
    store.ensure_feeds(["feed-a", "feed-b", "feed-a"], T0)
    store.record_failure("feed-a", "boom", T0, T0 + 5 * MIN)
    store.ensure_feeds(["feed-a", "feed-b", "feed-c"], T0 + MIN)
    states = {s.feed_key: s for s in store.feed_states()}
    assert sorted(states) == ["feed-a", "feed-b", "feed-c"]
    assert states["feed-a"].consecutive_errors == 1  # untouched by the second call
    assert states["feed-b"].next_poll_at == T0
    assert states["feed-c"].next_poll_at == T0 + MIN
    assert states["feed-c"].last_success_at is None
    assert states["feed-c"].articles == 0


def test_claim_due_feeds_leases_due_feeds_in_order(store: SqlStore) -> None:
    store.ensure_feeds(["late"], T0 - 2 * MIN)
    store.ensure_feeds(["early"], T0 - 5 * MIN)
    store.ensure_feeds(["future"], T0 + 5 * MIN)
    store.ensure_feeds(["unlisted"], T0 - 9 * MIN)
    keys = ["late", "early", "future", "missing"]
    claimed = store.claim_due_feeds(keys, T0, T0 + MIN, 1)
    assert [s.feed_key for s in claimed] == ["early"]
    assert claimed[0].lease_until == T0 + MIN
    claimed = store.claim_due_feeds(keys, T0, T0 + MIN, 10)
    assert [s.feed_key for s in claimed] == ["late"]
    assert store.claim_due_feeds(keys, T0, T0 + MIN, 10) == []
    assert store.claim_due_feeds([], T0, T0 + MIN, 10) == []


def test_feed_lease_expires_and_can_be_released(store: SqlStore) -> None:
    store.ensure_feeds(["feed-a", "feed-b"], T0)
    assert len(store.claim_due_feeds(["feed-a", "feed-b"], T0, T0 + MIN, 10)) == 2
    assert store.claim_due_feeds(["feed-a", "feed-b"], T0 + MIN / 2, T0 + 2 * MIN, 10) == []
    # A crashed poller's lease runs out; another takes the feed over.
    [state] = store.claim_due_feeds(["feed-a"], T0 + 2 * MIN, T0 + 3 * MIN, 10)
    assert state.feed_key == "feed-a"
    store.release_feeds(["feed-b"])
    [state] = store.claim_due_feeds(["feed-b"], T0 + MIN / 2, T0 + 2 * MIN, 10)
    assert state.feed_key == "feed-b"


def test_concurrent_feed_claims_never_overlap(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    keys = [f"feed-{i:02}" for i in range(40)]
    stores[0].ensure_feeds(keys, T0)

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_due_feeds(keys, T0, T0 + MIN, 3):
                got.extend(f.feed_key for f in batch)
            return got

        return claim_all

    claimed = race([worker(s) for s in stores for _ in range(2)])
    assert sorted(claimed) == keys  # each exactly once


def test_record_failure_and_not_modified(store: SqlStore) -> None:
    store.ensure_feeds(["feed-a"], T0)
    ingest(store, [], at=T0)
    store.claim_due_feeds(["feed-a"], T0 + 10 * MIN, T0 + 11 * MIN, 1)
    store.record_failure("feed-a", "HTTP 503", T0 + 10 * MIN, T0 + 20 * MIN)
    store.record_failure("feed-a", "timeout", T0 + 20 * MIN, T0 + 40 * MIN)
    state = store.feed_state("feed-a")
    assert state is not None
    assert (state.consecutive_errors, state.last_error) == (2, "timeout")
    assert (state.lease_until, state.next_poll_at) == (None, T0 + 40 * MIN)
    assert state.last_attempt_at == T0 + 20 * MIN
    assert state.last_success_at == T0

    not_modified = FetchResult("feed-a", "u", T0 + 40 * MIN, status=304, not_modified=True)
    store.record_not_modified(not_modified, T0 + 40 * MIN, T0 + 50 * MIN)
    state = store.feed_state("feed-a")
    assert state is not None
    assert (state.consecutive_errors, state.last_error, state.etag) == (0, None, '"v1"')
    assert state.last_success_at == T0 + 40 * MIN
    assert state.next_poll_at == T0 + 50 * MIN

    not_modified = FetchResult("feed-a", "u", T0, status=304, not_modified=True, etag='"v2"')
    store.record_not_modified(not_modified, T0 + 50 * MIN, T0 + 60 * MIN)
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.etag == '"v2"'


def test_known_entry_keys_beyond_one_chunk(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}"), rules=()) for i in range(0, 1200, 100)])
    keys = [f"e{i}" for i in range(1200)]
    assert store.known_entry_keys("feed-a", keys) == {f"e{i}" for i in range(0, 1200, 100)}
    assert store.known_entry_keys("feed-b", keys) == set()
    assert store.known_entry_keys("feed-a", []) == set()


# --- ingest


def test_ingest_records_articles_matches_outbox_and_feed_state(store: SqlStore) -> None:
    store.ensure_feeds(["feed-a"], T0)
    store.claim_due_feeds(["feed-a"], T0, T0 + MIN, 1)
    items = [item(article("e1"), rules=("r1", "r2")), item(article("e2"), rules=())]
    result = store.ingest(fetch(), items, T0, T0 + 10 * MIN, warning="not well-formed")
    assert result == IngestResult(new_articles=2, new_matches=2, new_outbox=2)
    state = store.feed_state("feed-a")
    assert state is not None
    assert state.articles == 2
    assert (state.etag, state.last_error, state.lease_until) == ('"v1"', "not well-formed", None)
    assert (state.last_success_at, state.next_poll_at) == (T0, T0 + 10 * MIN)
    rows = store.outbox()
    assert {(r.rule, r.channel, r.status, r.attempts) for r in rows} == {
        ("r1", "slack", OutboxStatus.PENDING, 0),
        ("r2", "slack", OutboxStatus.PENDING, 0),
    }
    assert {(r.feed_key, r.title, r.link, r.next_attempt_at) for r in rows} == {
        ("feed-a", "Title", "https://example.com/e1", T0)
    }


def test_ingest_is_idempotent(store: SqlStore) -> None:
    items = [item(article("e1")), item(article("e2"), channels=("slack", "email"))]
    assert ingest(store, items) == IngestResult(2, 2, 3)
    assert ingest(store, items, at=T0 + MIN) == IngestResult(0, 0, 0)
    # The same entry twice in one batch counts once.
    assert ingest(store, [item(article("e3")), item(article("e3"))]) == IngestResult(1, 1, 1)
    assert len(store.outbox()) == 4
    assert len(list(store.iter_articles())) == 3


def test_one_alert_per_rule_story_and_channel(store: SqlStore) -> None:
    """The same story syndicated by two feeds (or re-posted under a new GUID)
    is stored twice as an article but alerted once per rule and channel."""
    first = item(article("yonhap-1", feed="yonhap", story="s1"), channels=("slack", "email"))
    assert ingest(store, [first], feed="yonhap") == IngestResult(1, 1, 2)
    again = item(article("kh-77", feed="herald", story="s1"), rules=("r1", "r2"))
    assert ingest(store, [again], feed="herald") == IngestResult(1, 2, 1)
    reposted = item(article("yonhap-1-v2", feed="yonhap", story="s1"))
    assert ingest(store, [reposted], feed="yonhap") == IngestResult(1, 1, 0)
    assert sorted((r.rule, r.channel) for r in store.outbox()) == [
        ("r1", "email"),
        ("r1", "slack"),
        ("r2", "slack"),
    ]


def _bad_article_mid_batch() -> tuple[FetchResult, list[IngestItem]]:
    bad = dataclasses.replace(article("e2"), title=None)  # type: ignore[arg-type]  # NOT NULL column
    return fetch(), [item(article("e1")), item(bad), item(article("e3"))]


def _bad_feed_update_last() -> tuple[FetchResult, list[IngestItem]]:
    # The feed-state write is the transaction's last statement: by then the
    # articles, matches and outbox rows are all in.
    bad_fetch = dataclasses.replace(fetch(), feed_key=None)  # type: ignore[arg-type]  # NOT NULL primary key
    return bad_fetch, [item(article("e1")), item(article("e2"))]


@pytest.mark.parametrize("failing", [_bad_article_mid_batch, _bad_feed_update_last])
def test_ingest_is_all_or_nothing(
    store: SqlStore, failing: Callable[[], tuple[FetchResult, list[IngestItem]]]
) -> None:
    store.ensure_feeds(["feed-a"], T0)
    store.claim_due_feeds(["feed-a"], T0, T0 + MIN, 1)
    bad_fetch, items = failing()
    with pytest.raises(IntegrityError):
        store.ingest(bad_fetch, items, T0, T0 + 10 * MIN)
    assert store.known_entry_keys("feed-a", ["e1", "e2", "e3"]) == set()
    assert store.outbox() == []
    assert list(store.iter_articles()) == []
    [state] = store.feed_states()
    assert (state.last_success_at, state.etag, state.lease_until) == (None, None, T0 + MIN)
    # Nothing half-written blocks the retry.
    assert ingest(store, [item(article("e1"))]) == IngestResult(1, 1, 1)


def test_iter_articles_streams_in_first_seen_order(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "ARTICLE_PAGE", 4)
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


# --- outbox


def claim(store: SqlStore, at: datetime, limit: int = 10) -> list[Alert]:
    return store.claim_outbox(at, at + MIN, limit)


def test_claimed_alert_rebuilds_article_and_explanation(store: SqlStore) -> None:
    a = article("e1")
    ingest(store, [item(a)])
    [alert] = claim(store, T0)
    assert alert == Alert(
        outbox_id=alert.outbox_id,
        rule="r1",
        channel="slack",
        article=a,
        explanation=EXPLANATION,
        matched_at=T0,
        attempt=1,
    )
    assert claim(store, T0) == []  # leased


def test_outbox_lifecycle_retry_dead_and_sent(store: SqlStore) -> None:
    ingest(store, [item(article("e1"))])
    [alert] = claim(store, T0)
    store.mark_retry(alert.outbox_id, "HTTP 503", T0, T0 + 5 * MIN)
    [row] = store.outbox()
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 1, "HTTP 503")
    assert claim(store, T0 + 4 * MIN) == []  # backing off
    [alert] = claim(store, T0 + 5 * MIN)
    assert alert.attempt == 2
    store.mark_dead(alert.outbox_id, "HTTP 404", T0 + 5 * MIN)
    [row] = store.outbox(OutboxStatus.DEAD)
    assert (row.attempts, row.last_error) == (2, "HTTP 404")
    assert claim(store, T0 + 60 * MIN) == []

    assert store.retry_dead(None, T0 + 60 * MIN) == 1
    assert store.retry_dead(None, T0 + 60 * MIN) == 0
    [row] = store.outbox(OutboxStatus.PENDING)
    assert (row.attempts, row.next_attempt_at) == (0, T0 + 60 * MIN)
    [alert] = claim(store, T0 + 60 * MIN)
    assert alert.attempt == 1
    store.mark_sent(alert.outbox_id, T0 + 61 * MIN)
    # A late retry from a worker whose lease had run out cannot undo "sent".
    store.mark_retry(alert.outbox_id, "late", T0 + 62 * MIN, T0 + 63 * MIN)
    [row] = store.outbox(OutboxStatus.SENT)
    assert row.sent_at == T0 + 61 * MIN
    assert claim(store, T0 + 120 * MIN) == []


def test_retry_dead_by_id(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}")) for i in range(3)])
    alerts = claim(store, T0)
    for a in alerts:
        store.mark_dead(a.outbox_id, "rejected", T0)
    assert store.retry_dead([alerts[0].outbox_id, alerts[1].outbox_id, 999], T0) == 2
    assert store.retry_dead([], T0) == 0
    assert [r.id for r in store.outbox(OutboxStatus.DEAD)] == [alerts[2].outbox_id]


def test_crashed_sender_rows_are_reclaimed_after_lease(store: SqlStore) -> None:
    ingest(store, [item(article("e1"))])
    [alert] = store.claim_outbox(T0, T0 + MIN, 10)
    # The worker dies without marking anything.
    assert store.claim_outbox(T0 + MIN / 2, T0 + 2 * MIN, 10) == []
    [again] = store.claim_outbox(T0 + 2 * MIN, T0 + 3 * MIN, 10)
    assert (again.outbox_id, again.attempt) == (alert.outbox_id, 2)


def test_release_outbox_does_not_count_the_attempt(store: SqlStore) -> None:
    ingest(store, [item(article("e1")), item(article("e2"))])
    alerts = claim(store, T0)
    store.release_outbox([a.outbox_id for a in alerts])
    assert {(r.status, r.attempts) for r in store.outbox()} == {(OutboxStatus.PENDING, 0)}
    assert [a.attempt for a in claim(store, T0)] == [1, 1]


def test_outbox_listing_is_newest_first_and_filtered(store: SqlStore) -> None:
    for i in range(3):
        ingest(store, [item(article(f"e{i}"))], at=T0 + i * MIN)
    assert [r.link[-2:] for r in store.outbox()] == ["e2", "e1", "e0"]
    assert len(store.outbox(limit=2)) == 2
    [alert] = claim(store, T0, limit=1)
    [row] = store.outbox(OutboxStatus.SENDING)
    assert row.id == alert.outbox_id
    assert row.link.endswith("e0")


def test_outbox_claims_are_limited_and_oldest_first(store: SqlStore) -> None:
    ingest(store, [item(article("new"))], at=T0 + MIN)
    ingest(store, [item(article("old"))], at=T0)
    assert [a.article.entry_key for a in claim(store, T0 + MIN, limit=1)] == ["old"]
    assert [a.article.entry_key for a in claim(store, T0 + MIN, limit=5)] == ["new"]


def test_digest_rows_wait_for_the_digest_job(store: SqlStore) -> None:
    a = article("e1")
    routes = (
        Route("r1", "slack"),
        Route("r1", "email", DeliveryMode.DIGEST),
        Route("r1", "teams", DeliveryMode.DIGEST),
    )
    ingest(store, [IngestItem(a, (Match("r1", a, EXPLANATION),), routes)])
    assert [x.channel for x in claim(store, T0)] == ["slack"]
    digest = store.claim_outbox(T0, T0 + MIN, 10, mode=DeliveryMode.DIGEST, channel="email")
    assert [x.channel for x in digest] == ["email"]
    rest = store.claim_outbox(T0, T0 + MIN, 10, mode=DeliveryMode.DIGEST)
    assert [x.channel for x in rest] == ["teams"]


def test_concurrent_outbox_claims_never_overlap(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    ingest(stores[0], [item(article(f"e{i:02}")) for i in range(40)])

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_outbox(T0, T0 + MIN, 3):
                got.extend(a.outbox_id for a in batch)
            return got

        return claim_all

    claimed = race([worker(s) for s in stores for _ in range(2)])
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


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
        s.ensure_feeds([f"feed-{i}" for i in range(20)], T0)
        keys = [f"feed-{i}" for i in range(20)]

        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_due_feeds(keys, T0, T0 + MIN, 2):
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
    assert result == IngestResult(new_articles=0, new_matches=2, new_outbox=2)
    assert store.rules_to_backfill(["r1", "new"]) == {"r1"}
    # Recording again (a second replica racing) adds nothing.
    assert store.record_backfill("new", found, T0 + 2 * MIN) == IngestResult(0, 0, 0)
    assert sorted(r.rule for r in store.outbox()) == ["new", "new", "r1"]


def test_prune_forgets_old_unseen_articles_but_keeps_unsent_alerts(store: SqlStore) -> None:
    ingest(store, [item(article("old-sent")), item(article("old-pending")), item(article("seen"))])
    ingest(store, [item(article("fresh"))], at=T0 + 100 * DAY)
    # "seen" is still in the feed's document 100 days later.
    store.ingest(fetch(at=T0 + 100 * DAY), [], T0 + 100 * DAY, T0 + 101 * DAY, seen_again=["seen"])
    by_title = {r.link.rsplit("/", 1)[1]: r for r in store.outbox()}
    store.mark_sent(by_title["old-sent"].id, T0)
    store.mark_sent(by_title["seen"].id, T0)
    store.mark_sent(by_title["fresh"].id, T0 + 100 * DAY)

    gone = store.prune(T0 + 90 * DAY)

    assert gone == PruneResult(articles=1, matches=1, outbox=1)
    left = {a.entry_key for a in store.iter_articles()}
    assert left == {"old-pending", "seen", "fresh"}
    assert store.known_entry_keys("feed-a", ["old-sent", "seen"]) == {"seen"}
    assert store.prune(T0 + 90 * DAY) == PruneResult(0, 0, 0)
