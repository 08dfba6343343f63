"""The article log: ingest (articles, stories, matches and outbox rows in one
transaction), rule backfills, backtests and retention.

Story identity is resolved inside the ingest transaction: an article's
identity keys (``story_keys``, unique) join it to a known story or found a
new one, so two replicas ingesting two copies at once end with one story.
Rows are built before BEGIN (``_prepare``): the write lock is held only for
the statements themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from newswatch.model import Article, DeliveryMode, Route
from newswatch.store import _codec
from newswatch.store._dialect import insert_ignore, upsert_add
from newswatch.store._feeds import write_update
from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import (
    FeedUpdate,
    IngestItem,
    IngestResult,
    OutboxStatus,
    PruneResult,
)
from newswatch.store.schema import (
    articles,
    feeds,
    matches,
    outbox,
    rule_backfills,
    rule_stats,
    stories,
    story_bands,
    story_keys,
)

# Articles per round trip in iter_articles: a backtest streams the whole
# table without holding one long read transaction (which would stop SQLite
# from checkpointing its WAL).
ARTICLE_PAGE = 500
# Articles forgotten per prune call: one short write transaction, so polls and
# deliveries on other threads or replicas never wait long; the maintenance
# tick calls again while there is more.
PRUNE_BATCH = 2000


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An IngestItem with its rows built (outside the transaction)."""

    item: IngestItem
    article: dict[str, Any]
    keys: tuple[str, ...]
    matches: tuple[tuple[str, dict[str, Any]], ...]  # (rule, explanation json)


def identity_keys(item: IngestItem) -> tuple[str, ...]:
    """The item's story keys, sorted (concurrent ingests lock them in one
    order); the URL key of its article when the caller gave none."""
    keys = item.identity_keys or (f"s:{item.article.story_key}",)
    return tuple(sorted(dict.fromkeys(keys)))


def _prepare(items: Sequence[IngestItem], now: datetime) -> list[_Prepared]:
    return [
        _Prepared(
            item=item,
            article=_codec.article_values(item.article, now, item.content_hash),
            keys=identity_keys(item),
            matches=tuple(
                (m.rule, _codec.explanation_to_json(m.explanation)) for m in item.matches
            ),
        )
        for item in items
    ]


def outbox_values(route: Route, article_id: int, story_id: int, now: datetime) -> dict[str, Any]:
    return {
        "rule": route.rule,
        "channel": route.channel,
        "target_id": route.target_id,
        "mode": DeliveryMode(route.mode).value,
        "article_id": article_id,
        "story_id": story_id,
        "status": OutboxStatus.PENDING.value,
        "created_at": now,
        "not_before": route.not_before,
    }


def insert_outbox(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping any (rule, target, story) already there.

    Sorted by that key so that concurrent ingests (PostgreSQL replicas polling
    feeds that syndicate the same story) take row locks in the same order and
    cannot deadlock.
    """
    if not rows:
        return 0
    stmt = insert_ignore(conn, outbox, "rule", "target_id", "story_id").returning(outbox.c.id)
    ordered = sorted(rows, key=lambda r: (r["rule"], r["target_id"], r["story_id"]))
    return len(conn.execute(stmt, ordered).all())


class _Ingest:
    """The statements of one ingest transaction, compiled once, and what the
    transaction knows about stories.

    ``preload`` reads, in a few set-based statements, the stories the
    items' identity keys belong to, whether each was evaluated and which
    of the items' rules matched it already; each item then decides from
    these maps (kept up to date as items found stories and add matches)
    instead of asking the database three times per item. The write lock is
    held for less Python work that way (issue 7: a holder starved of the
    GIL by parsing threads ran others out of busy_timeout).
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.insert_article = insert_ignore(conn, articles, "feed_key", "entry_key").returning(
            articles.c.id
        )
        self.insert_match = insert_ignore(conn, matches, "rule", "article_id").returning(
            matches.c.rule
        )
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... DO NOTHING.
        self.insert_key = insert_ignore(conn, story_keys, "key").returning(story_keys.c.key)
        self.insert_band = insert_ignore(conn, story_bands, "band", "hash")
        self.routes: list[dict[str, Any]] = []
        self.stats: dict[str, int] = {}
        self.story_of: dict[str, int] = {}  # identity key -> its story
        self.evaluated: dict[int, bool] = {}  # story -> evaluated
        self.matched: dict[int, set[str]] = {}  # story -> rules (of interest) that matched it
        self.rules: list[str] = []  # the rules of interest: those the items route
        self.seen: set[int] = set()  # known stories seen again (last_seen_at moves)

    def preload(self, prepared: Sequence[_Prepared]) -> None:
        keys = sorted({k for p in prepared if not p.item.edit for k in p.keys})
        self.rules = sorted({r.rule for p in prepared for r in p.item.routes})
        for chunk in chunks(keys):
            stmt = select(story_keys.c.key, story_keys.c.story_id).where(
                story_keys.c.key.in_(chunk)
            )
            self.story_of.update((row.key, row.story_id) for row in self.conn.execute(stmt))
        self.load_stories(set(self.story_of.values()))

    def load_stories(self, ids: set[int]) -> None:
        """Read ``evaluated`` and the rules of interest that matched, for
        stories not read yet."""
        wanted = sorted(i for i in ids if i not in self.evaluated)
        for chunk in chunks(wanted):
            rows = self.conn.execute(
                select(stories.c.id, stories.c.evaluated).where(stories.c.id.in_(chunk))
            )
            for row in rows:
                self.evaluated[row.id] = bool(row.evaluated)
                self.matched.setdefault(row.id, set())
            if self.rules:
                stmt = (
                    select(articles.c.story_id, matches.c.rule)
                    .select_from(matches.join(articles, articles.c.id == matches.c.article_id))
                    .where(articles.c.story_id.in_(chunk), matches.c.rule.in_(self.rules))
                    .distinct()
                )
                for row in self.conn.execute(stmt):
                    self.matched.setdefault(row.story_id, set()).add(row.rule)

    def resolve_story(self, prepared: _Prepared) -> tuple[int, bool, bool]:
        """(story id, known before, evaluated) for an article's keys."""
        conn, item = self.conn, prepared.item
        found = [self.story_of[k] for k in prepared.keys if k in self.story_of]
        story_id = min(found, default=None)
        if story_id is None and item.story_hint is not None:
            story_id = conn.execute(
                select(stories.c.id).where(stories.c.id == item.story_hint)
            ).scalar_one_or_none()
            if story_id is not None:
                self.load_stories({story_id})
        if story_id is not None:
            self.seen.add(story_id)
            self._add_keys(story_id, prepared.keys)
            return story_id, True, self.evaluated.get(story_id, True)
        story_id = conn.execute(
            stories.insert()
            .values(
                title=item.article.title[:1000],
                first_seen_at=self.now,
                last_seen_at=self.now,
                evaluated=item.evaluated,
            )
            .returning(stories.c.id)
        ).scalar_one()
        self.evaluated[story_id] = item.evaluated
        self.matched[story_id] = set()
        won = self._add_keys(story_id, prepared.keys)
        if won < len(prepared.keys):
            # Another replica founded a story for one of these keys between
            # our lookup and our insert: join that one, forget ours.
            other = conn.execute(
                select(func.min(story_keys.c.story_id)).where(
                    story_keys.c.key.in_(prepared.keys), story_keys.c.story_id != story_id
                )
            ).scalar()
            if other is not None:
                conn.execute(delete(story_keys).where(story_keys.c.story_id == story_id))
                conn.execute(delete(stories).where(stories.c.id == story_id))
                other = int(other)
                for key in prepared.keys:
                    self.story_of[key] = other
                self.load_stories({other})
                self.seen.add(other)
                return other, True, True
        return story_id, False, item.evaluated

    def _add_keys(self, story_id: int, keys: Sequence[str]) -> int:
        """Record the story's keys not known yet; returns how many were new
        (a key taken by another story stays with it)."""
        rows = [
            {"key": k, "story_id": story_id, "created_at": self.now}
            for k in keys
            if k not in self.story_of
        ]
        if not rows:
            return 0
        won = set(self.conn.execute(self.insert_key, rows).scalars())
        for key in won:
            self.story_of[key] = story_id
        return len(won)

    def rules_matched_before(self, story_id: int, rules: Sequence[str]) -> set[str]:
        """The rules among ``rules`` that matched some article of the story
        already (checked before this item's matches are stored)."""
        if not rules:
            return set()
        stmt = (
            select(matches.c.rule)
            .select_from(matches.join(articles, articles.c.id == matches.c.article_id))
            .where(articles.c.story_id == story_id, matches.c.rule.in_(list(rules)))
            .distinct()
        )
        return set(self.conn.execute(stmt).scalars())

    def add_matches(self, prepared: _Prepared, article_id: int) -> int:
        rows = [
            {
                "rule": rule,
                "article_id": article_id,
                "explanation": explanation,
                "matched_at": self.now,
            }
            for rule, explanation in prepared.matches
        ]
        if not rows:
            return 0
        inserted = list(self.conn.execute(self.insert_match, rows).scalars())
        for rule in inserted:
            self.stats[rule] = self.stats.get(rule, 0) + 1
        return len(inserted)

    def add_routes(
        self, item: IngestItem, article_id: int, story_id: int, skip_rules: set[str]
    ) -> None:
        self.routes.extend(
            outbox_values(route, article_id, story_id, self.now)
            for route in item.routes
            if route.rule not in skip_rules
        )

    def add_bands(self, item: IngestItem, story_id: int) -> None:
        for band, value in item.bands:
            self.conn.execute(
                self.insert_band,
                {"band": band, "hash": value, "story_id": story_id, "created_at": self.now},
            )

    def store(self, prepared: _Prepared) -> tuple[int, int, bool, bool, bool] | None:
        """Store one item's article: (article id, story id, new article, story
        known before, story evaluated before), or None when the entry was
        stored already and is not an edit (nothing to do)."""
        conn, item = self.conn, prepared.item
        if item.edit:
            text = {
                k: prepared.article[k]
                for k in ("title", "summary", "content", "link", "author", "categories")
            }
            row = conn.execute(
                update(articles)
                .where(
                    articles.c.feed_key == item.article.feed_key,
                    articles.c.entry_key == item.article.entry_key,
                )
                .values({**text, "content_hash": item.content_hash, "last_seen_at": self.now})
                .returning(articles.c.id, articles.c.story_id)
            ).first()
            if row is None or row.story_id is None:
                return None
            story_id = int(row.story_id)
            self.load_stories({story_id})
            return int(row.id), story_id, False, True, self.evaluated.get(story_id, False)
        story_id, known, evaluated = self.resolve_story(prepared)
        article_id = conn.execute(
            self.insert_article, {**prepared.article, "story_id": story_id}
        ).scalar_one_or_none()
        if article_id is None:  # already stored: its alerts were decided then
            return None
        return int(article_id), story_id, True, known, evaluated

    def item(self, prepared: _Prepared) -> tuple[bool, bool, int, int] | None:
        """Store one item with its matches and routes: (new article, joined
        a known story, new matches, story id), or None if there was nothing
        to do.

        Routes are written only for rules that newly match the story. A story
        known but never evaluated (recorded by a silent first poll) has no
        baseline: a later copy or edit alerts nobody, and being evaluated now
        it becomes the baseline for the copies after it.
        """
        stored = self.store(prepared)
        if stored is None:
            return None
        article_id, story_id, new_article, known, evaluated = stored
        item = prepared.item
        rules = [r.rule for r in item.routes]
        if known and not evaluated:
            skip = set(rules)
            if item.evaluated:
                self.conn.execute(
                    update(stories).where(stories.c.id == story_id).values(evaluated=True)
                )
                self.evaluated[story_id] = True
        else:
            skip = self.matched.get(story_id, set()) & set(rules)
        new_matches = self.add_matches(prepared, article_id)
        self.matched.setdefault(story_id, set()).update(rule for rule, _ in prepared.matches)
        self.add_routes(item, article_id, story_id, skip)
        self.add_bands(item, story_id)
        return new_article, new_article and known, new_matches, story_id

    def touch_seen(self) -> None:
        """Known stories seen again: last_seen_at = now (retention)."""
        for chunk in chunks(sorted(self.seen)):
            self.conn.execute(
                update(stories).where(stories.c.id.in_(chunk)).values(last_seen_at=self.now)
            )

    def write_stats(self) -> None:
        day = self.now.strftime("%Y-%m-%d")
        for rule, count in sorted(self.stats.items()):
            self.conn.execute(
                upsert_add(
                    self.conn,
                    rule_stats,
                    key={"rule": rule, "day": day},
                    add={"matches": count},
                    set_={"last_match_at": self.now},
                )
            )


class ArticleLogMixin(Transactional):
    def ingest(
        self,
        update_: FeedUpdate,
        items: Sequence[IngestItem],
        seen_again: Sequence[str] = (),
    ) -> IngestResult:
        """``seen_again``: entry keys of stored articles the document still
        holds (their last_seen_at moves to now: retention prunes by it)."""
        now = update_.at
        prepared = _prepare(items, now)
        new_articles = new_matches = joined = edited = 0
        story_ids: dict[str, int] = {}
        with self._tx(write=True) as conn:
            for chunk in chunks(list(seen_again)):
                conn.execute(
                    update(articles)
                    .where(articles.c.feed_key == update_.feed_key, articles.c.entry_key.in_(chunk))
                    .values(last_seen_at=now)
                )
            step = _Ingest(conn, now)
            step.preload(prepared)
            for p in prepared:
                result = step.item(p)
                if result is None:
                    continue
                is_new, has_joined, n_matches, story_id = result
                story_ids[p.item.article.entry_key] = story_id
                new_articles += is_new
                joined += is_new and has_joined
                edited += p.item.edit
                new_matches += n_matches
            new_outbox = insert_outbox(conn, step.routes)
            step.touch_seen()
            step.write_stats()
            write_update(conn, update_)
            if new_articles:
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key == update_.feed_key)
                    .values(article_count=feeds.c.article_count + new_articles)
                )
        return IngestResult(
            new_articles=new_articles,
            new_matches=new_matches,
            new_outbox=new_outbox,
            joined=joined,
            edited=edited,
            story_ids=story_ids,
        )

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
        Articles no longer stored are skipped; a story this rule already
        alerted on is not alerted again."""
        prepared = _prepare(items, now)
        with self._tx(write=True) as conn:
            step = _Ingest(conn, now)
            new_matches = 0
            for p in prepared:
                row = conn.execute(
                    select(articles.c.id, articles.c.story_id).where(
                        articles.c.feed_key == p.item.article.feed_key,
                        articles.c.entry_key == p.item.article.entry_key,
                    )
                ).first()
                if row is None or row.story_id is None:
                    continue
                rules = [r.rule for r in p.item.routes]
                skip = step.rules_matched_before(row.story_id, rules)
                new_matches += step.add_matches(p, row.id)
                step.add_routes(p.item, row.id, row.story_id, skip)
            new_outbox = insert_outbox(conn, step.routes)
            step.write_stats()
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
                rows = conn.execute(article_page(since, after, ARTICLE_PAGE)).mappings().all()
            for row in rows:
                yield _codec.article_from_row(row)
            if len(rows) < ARTICLE_PAGE:
                return
            after = (rows[-1]["first_seen_at"], rows[-1]["id"])

    # --- retention

    def prune(self, before: datetime) -> PruneResult:
        unsettled = select(outbox.c.article_id).where(
            outbox.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.QUEUED.value])
        )
        with self._tx(write=True) as conn:
            old = (
                select(articles.c.id, articles.c.feed_key)
                .where(articles.c.last_seen_at < before, articles.c.id.not_in(unsettled))
                .limit(PRUNE_BATCH)
            )
            rows = conn.execute(old).all()
            ids = [r.id for r in rows]
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
            per_feed: dict[str, int] = {}
            for r in rows:
                per_feed[r.feed_key] = per_feed.get(r.feed_key, 0) + 1
            for key, n in sorted(per_feed.items()):
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key == key)
                    .values(article_count=func.max(feeds.c.article_count - n, 0))
                    if conn.dialect.name == "sqlite"
                    else update(feeds)
                    .where(feeds.c.feed_key == key)
                    .values(article_count=func.greatest(feeds.c.article_count - n, 0))
                )
            _prune_stories(conn, before)
        return gone


def _prune_stories(conn: Connection, before: datetime) -> None:
    """Stories no article belongs to any more, last seen before ``before``,
    go with their keys and bands (their outbox rows went with the articles)."""
    orphan = (
        select(stories.c.id)
        .where(
            stories.c.last_seen_at < before,
            ~select(articles.c.id).where(articles.c.story_id == stories.c.id).exists(),
            ~select(outbox.c.id).where(outbox.c.story_id == stories.c.id).exists(),
        )
        .limit(PRUNE_BATCH)
    )
    ids = list(conn.execute(orphan).scalars())
    for chunk in chunks(ids):
        conn.execute(delete(story_keys).where(story_keys.c.story_id.in_(chunk)))
        conn.execute(delete(story_bands).where(story_bands.c.story_id.in_(chunk)))
        conn.execute(delete(stories).where(stories.c.id.in_(chunk)))


def article_page(since: datetime | None, after: tuple[datetime, int] | None, size: int) -> Any:
    """One page of articles in (first_seen_at, id) order, after ``after``."""
    stmt = select(articles).order_by(articles.c.first_seen_at, articles.c.id).limit(size)
    if since is not None:
        stmt = stmt.where(articles.c.first_seen_at >= since)
    if after is not None:
        seen, last_id = after
        stmt = stmt.where(
            or_(
                articles.c.first_seen_at > seen,
                and_(articles.c.first_seen_at == seen, articles.c.id > last_id),
            )
        )
    return stmt
