"""The store over SQLAlchemy Core: one implementation for SQLite and PostgreSQL.

Every method is one transaction. Claims (feeds, outbox) pick rows and lease
them in the same write transaction: SQLite takes the write lock at BEGIN
IMMEDIATE, PostgreSQL locks the picked rows with FOR UPDATE SKIP LOCKED, so
two claimers (threads, processes, replicas) never get the same row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self

from sqlalchemy import ColumnElement, and_, case, delete, select, update
from sqlalchemy.engine import URL, Connection, Engine

from newswatch.model import Alert, Article, DeliveryMode, FetchResult
from newswatch.store import _codec, _queries, schema
from newswatch.store._dialect import (
    insert_ignore,
    make_engine,
    prepare_engine,
    serial_lock,
    transaction,
)
from newswatch.store._queries import chunks
from newswatch.store.base import (
    FeedState,
    IngestItem,
    IngestResult,
    OutboxRow,
    OutboxStatus,
    PruneResult,
    Store,
)
from newswatch.store.schema import articles, feeds, matches, outbox, rule_backfills

# Articles per round trip in iter_articles: a backtest streams the whole
# table without holding one long read transaction (which would stop SQLite
# from checkpointing its WAL).
ARTICLE_PAGE = 500
# Articles forgotten per prune call: one short write transaction, so polls and
# deliveries on other threads or replicas never wait long; the maintenance
# tick calls again while there is more.
PRUNE_BATCH = 2000


class SqlStore:
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

    # --- feeds

    def ensure_feeds(self, feed_keys: Sequence[str], now: datetime) -> None:
        keys = list(dict.fromkeys(feed_keys))
        if not keys:
            return
        with self._tx(write=True) as conn:
            conn.execute(
                insert_ignore(conn, feeds, "feed_key"),
                [_queries.new_feed(key, now) for key in keys],
            )

    def feed_state(self, feed_key: str) -> FeedState | None:
        with self._tx(write=False) as conn:
            row = conn.execute(select(feeds).where(feeds.c.feed_key == feed_key)).mappings().first()
            if row is None:
                return None
            counts = _queries.article_counts(conn, [feed_key])
        return _codec.feed_state_from_row(row, counts.get(feed_key, 0))

    def feed_states(self) -> list[FeedState]:
        with self._tx(write=False) as conn:
            rows = conn.execute(select(feeds).order_by(feeds.c.feed_key)).mappings().all()
            counts = _queries.article_counts(conn, None)
        return [_codec.feed_state_from_row(r, counts.get(r["feed_key"], 0)) for r in rows]

    def claim_due_feeds(
        self, feed_keys: Sequence[str], now: datetime, lease_until: datetime, limit: int
    ) -> list[FeedState]:
        keys = list(dict.fromkeys(feed_keys))
        if not keys or limit <= 0:
            return []
        with self._tx(write=True) as conn:
            picked = conn.execute(_queries.due_feeds(keys, now, limit)).scalars().all()
            if not picked:
                return []
            rows = (
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key.in_(picked))
                    .values(lease_until=lease_until)
                    .returning(*feeds.c)
                )
                .mappings()
                .all()
            )
            counts = _queries.article_counts(conn, picked)
        states = [_codec.feed_state_from_row(r, counts.get(r["feed_key"], 0)) for r in rows]
        order = {key: i for i, key in enumerate(picked)}
        return sorted(states, key=lambda s: order[s.feed_key])

    def release_feeds(self, feed_keys: Sequence[str]) -> None:
        keys = list(dict.fromkeys(feed_keys))
        if not keys:
            return
        with self._tx(write=True) as conn:
            for chunk in chunks(keys):
                conn.execute(
                    update(feeds).where(feeds.c.feed_key.in_(chunk)).values(lease_until=None)
                )

    def known_entry_keys(self, feed_key: str, entry_keys: Sequence[str]) -> set[str]:
        keys = list(dict.fromkeys(entry_keys))
        found: set[str] = set()
        if not keys:
            return found
        with self._tx(write=False) as conn:
            for chunk in chunks(keys):
                found.update(
                    conn.execute(
                        select(articles.c.entry_key).where(
                            articles.c.feed_key == feed_key, articles.c.entry_key.in_(chunk)
                        )
                    ).scalars()
                )
        return found

    def record_failure(
        self, feed_key: str, error: str, now: datetime, next_poll_at: datetime
    ) -> None:
        self._update_feed(
            feed_key,
            now,
            consecutive_errors=feeds.c.consecutive_errors + 1,
            last_error=error,
            last_attempt_at=now,
            next_poll_at=next_poll_at,
            lease_until=None,
        )

    def record_not_modified(
        self, fetch: FetchResult, now: datetime, next_poll_at: datetime
    ) -> None:
        """A 304 is a successful poll. Validators are kept unless the server
        sent new ones with the 304."""
        validators: dict[str, Any] = {}
        if fetch.etag is not None:
            validators["etag"] = fetch.etag
        if fetch.last_modified is not None:
            validators["last_modified"] = fetch.last_modified
        self._update_feed(
            fetch.feed_key,
            now,
            **validators,
            consecutive_errors=0,
            last_error=None,
            last_attempt_at=now,
            last_success_at=now,
            next_poll_at=next_poll_at,
            lease_until=None,
        )

    def _update_feed(self, feed_key: str, now: datetime, **values: Any) -> None:
        with self._tx(write=True) as conn:
            _queries.write_feed(conn, feed_key, now, values)

    def ingest(
        self,
        fetch: FetchResult,
        items: Sequence[IngestItem],
        now: datetime,
        next_poll_at: datetime,
        warning: str | None = None,
        seen_again: Sequence[str] = (),
    ) -> IngestResult:
        with self._tx(write=True) as conn:
            for chunk in chunks(seen_again):
                conn.execute(
                    update(articles)
                    .where(articles.c.feed_key == fetch.feed_key, articles.c.entry_key.in_(chunk))
                    .values(last_seen_at=now)
                )
            new_articles = new_matches = 0
            routes: list[dict[str, Any]] = []
            # One statement, parameters per execution: SQLAlchemy compiles it
            # once (``.values(row)`` would build a new statement per row).
            insert_article = insert_ignore(conn, articles, "feed_key", "entry_key").returning(
                articles.c.id
            )
            insert_match = insert_ignore(conn, matches, "rule", "article_id").returning(
                matches.c.id
            )
            for item in items:
                article_id = conn.execute(
                    insert_article, _codec.article_values(item.article, now)
                ).scalar_one_or_none()
                if article_id is None:  # already stored: its alerts were decided then
                    continue
                new_articles += 1
                new_matches += _add_matches(conn, insert_match, article_id, item, now, routes)
            new_outbox = _queries.insert_outbox(conn, routes)
            _queries.write_feed(
                conn,
                fetch.feed_key,
                now,
                {
                    "etag": fetch.etag,
                    "last_modified": fetch.last_modified,
                    "consecutive_errors": 0,
                    "last_error": warning,
                    "last_attempt_at": now,
                    "last_success_at": now,
                    "next_poll_at": next_poll_at,
                    "lease_until": None,
                },
            )
        return IngestResult(
            new_articles=new_articles, new_matches=new_matches, new_outbox=new_outbox
        )

    # --- outbox

    def claim_outbox(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        mode: DeliveryMode = DeliveryMode.IMMEDIATE,
        channel: str | None = None,
    ) -> list[Alert]:
        """Lease due rows of one delivery ``mode`` (and ``channel``, if given).

        Digest rows are claimed only when asked for (``mode=DIGEST``), by the
        digest job, so an immediate sender never sends them early.
        """
        if limit <= 0:
            return []
        with self._tx(write=True) as conn:
            due = _queries.due_outbox(now, limit, mode, channel)
            picked = conn.execute(due).scalars().all()
            if not picked:
                return []
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(picked))
                .values(
                    status=OutboxStatus.SENDING.value,
                    lease_until=lease_until,
                    attempts=outbox.c.attempts + 1,
                )
            )
            rows = conn.execute(_queries.alerts(picked)).mappings().all()
        by_id = {row["outbox_id"]: _codec.alert_from_row(row) for row in rows}
        return [by_id[i] for i in picked if i in by_id]

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        self._update_outbox(
            outbox.c.id == outbox_id,
            status=OutboxStatus.SENT.value,
            sent_at=now,
            next_attempt_at=None,
            lease_until=None,
        )

    def mark_retry(
        self, outbox_id: int, error: str, now: datetime, next_attempt_at: datetime
    ) -> None:
        self._update_outbox(
            and_(outbox.c.id == outbox_id, outbox.c.status != OutboxStatus.SENT.value),
            status=OutboxStatus.PENDING.value,
            next_attempt_at=next_attempt_at,
            last_error=error,
            lease_until=None,
        )

    def mark_dead(self, outbox_id: int, error: str, now: datetime) -> None:
        self._update_outbox(
            and_(outbox.c.id == outbox_id, outbox.c.status != OutboxStatus.SENT.value),
            status=OutboxStatus.DEAD.value,
            next_attempt_at=None,
            last_error=error,
            lease_until=None,
        )

    def release_outbox(self, outbox_ids: Sequence[int]) -> None:
        """Hand claimed rows back untried (shutdown): the attempt is not counted."""
        ids = list(dict.fromkeys(outbox_ids))
        if not ids:
            return
        with self._tx(write=True) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(chunk), outbox.c.status == OutboxStatus.SENDING.value)
                    .values(
                        status=OutboxStatus.PENDING.value,
                        attempts=case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0),
                        lease_until=None,
                    )
                )

    def _update_outbox(self, where: ColumnElement[bool], **values: Any) -> None:
        with self._tx(write=True) as conn:
            conn.execute(update(outbox).where(where).values(**values))

    def outbox(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxRow]:
        with self._tx(write=False) as conn:
            rows = conn.execute(_queries.outbox_listing(status, limit)).mappings().all()
        return [_codec.outbox_row_from_row(r) for r in rows]

    def retry_dead(self, outbox_ids: Sequence[int] | None, now: datetime) -> int:
        """Send dead letters again, from scratch (attempts 0, due now)."""
        values = {
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
        }
        dead = outbox.c.status == OutboxStatus.DEAD.value
        count = 0
        with self._tx(write=True) as conn:
            if outbox_ids is None:
                return conn.execute(update(outbox).where(dead).values(values)).rowcount
            for chunk in chunks(list(dict.fromkeys(outbox_ids))):
                stmt = update(outbox).where(dead, outbox.c.id.in_(chunk)).values(values)
                count += conn.execute(stmt).rowcount
        return count

    # --- retention

    def prune(self, before: datetime) -> PruneResult:
        with self._tx(write=True) as conn:
            unsettled = select(outbox.c.article_id).where(
                outbox.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value])
            )
            old = (
                select(articles.c.id)
                .where(articles.c.last_seen_at < before, articles.c.id.not_in(unsettled))
                .limit(PRUNE_BATCH)
            )
            ids = list(conn.execute(old).scalars())
            gone = PruneResult(0, 0, 0)
            for chunk in chunks(ids):
                n_outbox = conn.execute(delete(outbox).where(outbox.c.article_id.in_(chunk)))
                n_matches = conn.execute(delete(matches).where(matches.c.article_id.in_(chunk)))
                n_articles = conn.execute(delete(articles).where(articles.c.id.in_(chunk)))
                gone = PruneResult(
                    gone.articles + n_articles.rowcount,
                    gone.matches + n_matches.rowcount,
                    gone.outbox + n_outbox.rowcount,
                )
        return gone

    # --- rule backfills

    def rules_to_backfill(self, rules: Sequence[str]) -> set[str]:
        """The rules among ``rules`` whose backfill has not run yet."""
        done: set[str] = set()
        with self._tx(write=False) as conn:
            for chunk in chunks(rules):
                stmt = select(rule_backfills.c.rule).where(rule_backfills.c.rule.in_(chunk))
                done.update(conn.execute(stmt).scalars())
        return {r for r in rules if r not in done}

    def record_backfill(
        self, rule: str, items: Sequence[IngestItem], now: datetime
    ) -> IngestResult:
        """One transaction: the matches and outbox rows a rule's backfill found
        among stored articles, and the note that it ran (so it runs once).
        Articles no longer stored are skipped; routes already in the outbox
        (the same story alerted by then) are not written twice."""
        with self._tx(write=True) as conn:
            insert_match = insert_ignore(conn, matches, "rule", "article_id").returning(
                matches.c.id
            )
            new_matches = 0
            routes: list[dict[str, Any]] = []
            for item in items:
                article_id = conn.execute(
                    select(articles.c.id).where(
                        articles.c.feed_key == item.article.feed_key,
                        articles.c.entry_key == item.article.entry_key,
                    )
                ).scalar_one_or_none()
                if article_id is not None:
                    new_matches += _add_matches(conn, insert_match, article_id, item, now, routes)
            new_outbox = _queries.insert_outbox(conn, routes)
            conn.execute(
                insert_ignore(conn, rule_backfills, "rule").values(
                    rule=rule, done_at=now, matched=new_matches
                )
            )
        return IngestResult(new_articles=0, new_matches=new_matches, new_outbox=new_outbox)

    # --- articles

    def iter_articles(self, since: datetime | None = None) -> Iterator[Article]:
        """Articles in the order first seen, page by page (keyset pagination)."""
        after: tuple[datetime, int] | None = None
        while True:
            with self._tx(write=False) as conn:
                page = _queries.article_page(since, after, ARTICLE_PAGE)
                rows = conn.execute(page).mappings().all()
            for row in rows:
                yield _codec.article_from_row(row)
            if len(rows) < ARTICLE_PAGE:
                return
            after = (rows[-1]["first_seen_at"], rows[-1]["id"])


def _add_matches(
    conn: Connection,
    insert_match: Any,
    article_id: int,
    item: IngestItem,
    now: datetime,
    routes: list[dict[str, Any]],
) -> int:
    """Insert an article's matches (skipping ones already stored) and collect
    its outbox rows into ``routes``; returns the number of new matches.
    ``insert_match`` is an insert-ignore into ``matches`` returning the id."""
    new = 0
    for match in item.matches:
        inserted = conn.execute(
            insert_match,
            {
                "rule": match.rule,
                "article_id": article_id,
                "explanation": _codec.explanation_to_json(match.explanation),
                "matched_at": now,
            },
        ).first()
        new += inserted is not None
    routes.extend(
        _queries.outbox_values(route, article_id, item.article.story_key, now)
        for route in item.routes
    )
    return new


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
