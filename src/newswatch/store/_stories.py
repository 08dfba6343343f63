"""Stories: which story an ingested article belongs to (inside the ingest
transaction), and the near-duplicate index read outside it.

Inside the transaction (``StoryResolver``) the work is lookups by key,
never text: the comparisons of text were made before BEGIN
(``newswatch.stories.StoryFinder``) and arrive as a hint, so the SQLite
write lock is held for a few indexed statements per article. In order:

1. an exact identity key (``story_keys``) already taken: that story;
2. the finder's confirmed hint (and the other stories it also copies are
   merged into one with it);
3. else a new story, with its keys and bands. When one of them is held
   already, by a story the finder did not compare the article with (one
   founded since the finder looked, by another replica or an earlier item
   of this batch), the new story is dropped and the article joins that
   one. The band table's primary key is what makes this safe: of two
   replicas founding a story for two copies at once, the second collides
   on the first one's band (PostgreSQL: its insert waits for the first
   transaction, then conflicts).

Keys and bands are inserted in sorted order, so concurrent ingests take
their row locks in one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from newswatch.model import Article
from newswatch.store._codec import aware_utc
from newswatch.store._dialect import insert_ignore
from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import BandOwner, IngestItem, StoryCopy, StoryUpdate
from newswatch.store.schema import articles, outbox, stories, story_bands, story_keys

# Bands per lookup statement: bands group by band number, each number an
# indexed IN list; this many (band, hash) pairs keep the statement small.
BAND_LOOKUP = 400
# Band rows forgotten per write transaction when pruning.
BAND_PRUNE_BATCH = 5000
# Copies of one story read to compare a new article with (its first and
# latest): enough for a story that drifted as outlets rewrote it.
COPIES_MAX = 4


# A band's story, or the story it was merged into.
_ROOT = func.coalesce(stories.c.merged_into, stories.c.id)
_root = stories.alias("root")

# Statements built once (building a statement costs more than running it).
# ``band IN (...) AND hash IN (...)``: both columns of the primary key, so
# each (band, hash) combination is one index probe; rows of a combination
# not asked for are dropped by the caller. Both lists are expanding bind
# parameters.
_IN_BANDS = and_(
    story_bands.c.band.in_(bindparam("bands", expanding=True)),
    story_bands.c.hash.in_(bindparam("hashes", expanding=True)),
)
_OWNERS = (
    select(story_bands.c.band, story_bands.c.hash, _ROOT)
    .join(stories, stories.c.id == story_bands.c.story_id)
    .where(_IN_BANDS)
)
_OWNERS_SEEN = (
    select(
        story_bands.c.band,
        story_bands.c.hash,
        func.coalesce(_root.c.id, stories.c.id),
        func.coalesce(_root.c.last_seen_at, stories.c.last_seen_at),
    )
    .join(stories, stories.c.id == story_bands.c.story_id)
    .outerjoin(_root, _root.c.id == stories.c.merged_into)
    .where(_IN_BANDS)
)
_COPY_IDS = (
    select(articles.c.story_id, articles.c.id)
    .where(articles.c.story_id.in_(bindparam("ids", expanding=True)))
    .order_by(articles.c.story_id, articles.c.id)
)
_COPY_TEXT = select(
    articles.c.id,
    articles.c.feed_key,
    articles.c.entry_key,
    articles.c.title,
    articles.c.summary,
    articles.c.content,
).where(articles.c.id.in_(bindparam("ids", expanding=True)))
_ROOT_OF = select(_ROOT).where(stories.c.id == bindparam("id"))
_TAKE_BAND = (
    update(story_bands)
    .where(
        story_bands.c.band == bindparam("b_band"),
        story_bands.c.hash == bindparam("b_hash"),
        story_bands.c.story_id.in_(
            select(stories.c.id).where(_ROOT.in_(bindparam("rejected", expanding=True)))
        ),
    )
    .values(story_id=bindparam("b_story"))
)


def _params(bands: Sequence[tuple[int, int]]) -> dict[str, list[int]]:
    return {
        "bands": sorted({b for b, _ in bands}),
        "hashes": sorted({h for _, h in bands}),
    }


def _band_filter(bands: Sequence[tuple[int, int]]) -> Any:
    """``_IN_BANDS`` with its values bound (for deletes)."""
    return and_(
        story_bands.c.band.in_(sorted({b for b, _ in bands})),
        story_bands.c.hash.in_(sorted({h for _, h in bands})),
    )


def owners_of(conn: Connection, bands: Sequence[tuple[int, int]]) -> dict[int, int]:
    """story id (merged ones followed) -> how many of ``bands`` it holds;
    bands left behind by a story that is gone are ignored."""
    found: dict[int, int] = {}
    wanted = set(bands)
    for chunk in chunks(sorted(wanted), BAND_LOOKUP):
        for band, value, story_id in conn.execute(_OWNERS, _params(chunk)):
            if (band, value) in wanted:
                found[int(story_id)] = found.get(int(story_id), 0) + 1
    return found


class StoryResolver:
    """The story statements of one ingest transaction (``_articles._Ingest``
    decides with them, in the order above)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... DO NOTHING.
        self.insert_band = insert_ignore(conn, story_bands, "band", "hash").returning(
            story_bands.c.band
        )
        self.by_entry: dict[str, int] = {}  # this ingest's items -> their story

    def root(self, story_id: int) -> int | None:
        """The story itself, or the one it was merged into (None: gone)."""
        found = self.conn.execute(_ROOT_OF, {"id": story_id}).scalar()
        return None if found is None else int(found)

    def merge(self, story_id: int, other_id: int) -> int:
        """Make two stories one: the older (smaller id, so every replica
        picks the same) takes the newer one's articles, keys and waiting
        outbox rows; the newer points at it. Returns the one that stays."""
        other = self.root(other_id)
        if other is None or other == story_id:
            return story_id
        keep, gone = min(story_id, other), max(story_id, other)
        conn = self.conn
        conn.execute(update(articles).where(articles.c.story_id == gone).values(story_id=keep))
        conn.execute(update(story_keys).where(story_keys.c.story_id == gone).values(story_id=keep))
        conn.execute(
            update(stories)
            .where(or_(stories.c.id == gone, stories.c.merged_into == gone))
            .values(merged_into=keep)
        )
        # Outbox rows move unless the kept story has the same (rule,
        # target, revision): then both were alerted already, and stay.
        rows = conn.execute(
            select(outbox.c.id, outbox.c.rule, outbox.c.target_id, outbox.c.revision).where(
                outbox.c.story_id == gone
            )
        ).all()
        for row in rows:
            taken = conn.execute(
                select(outbox.c.id).where(
                    outbox.c.rule == row.rule,
                    outbox.c.target_id == row.target_id,
                    outbox.c.story_id == keep,
                    outbox.c.revision == row.revision,
                )
            ).first()
            if taken is None:
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(story_id=keep))
        evaluated = conn.execute(
            select(func.max(case((stories.c.evaluated, 1), else_=0))).where(
                stories.c.id.in_([keep, gone])
            )
        ).scalar()
        conn.execute(update(stories).where(stories.c.id == keep).values(evaluated=bool(evaluated)))
        return keep

    def rejected(self, item: IngestItem) -> list[int]:
        """The stories the article must not join on a shared band."""
        apart = [self.by_entry[e] for e in item.story_apart if e in self.by_entry]
        return sorted({*item.story_rejected, *apart})

    def add_bands(
        self, story_id: int, bands: Sequence[tuple[int, int]], rejected: Sequence[int] = ()
    ) -> int:
        """Record bands for the story; returns how many it holds now. A band
        held by a story the finder rejected (another story, or one outside
        the window) passes to this one, the newest: an old story's bands
        must not keep copies of a new one from finding each other. A band
        held by any other story stays with it."""
        written = 0
        for number, value in sorted(set(bands)):
            row = {"band": number, "hash": value, "story_id": story_id}
            if self.conn.execute(self.insert_band, row).first() is not None:
                written += 1
            elif rejected:
                take = {"b_band": number, "b_hash": value, "b_story": story_id}
                taken = self.conn.execute(_TAKE_BAND, {**take, "rejected": list(rejected)})
                written += taken.rowcount
        return written

    def drop_bands(self, story_id: int, bands: Sequence[tuple[int, int]]) -> None:
        # Only this story's rows: a (band, hash) combination it does not
        # hold is another story's or nobody's.
        for chunk in chunks(sorted(set(bands)), BAND_LOOKUP):
            self.conn.execute(
                delete(story_bands).where(_band_filter(chunk), story_bands.c.story_id == story_id)
            )


def _text_article(feed: str, entry: str, title: str, summary: str, content: str) -> Article:
    return Article(
        feed_key=feed,
        entry_key=entry,
        story_key="",
        title=title,
        summary=summary,
        content=content,
        link="",
        canonical_url="",
        author="",
        categories=(),
        published=None,
        source="",
    )


class StoryIndexMixin(Transactional):
    def band_owners(self, bands: Sequence[tuple[int, int]]) -> list[BandOwner]:
        out: list[BandOwner] = []
        wanted = set(bands)
        with self._tx(write=False) as conn:
            for chunk in chunks(sorted(wanted), BAND_LOOKUP):
                for b, h, sid, at in conn.execute(_OWNERS_SEEN, _params(chunk)):
                    if (b, h) in wanted:
                        out.append(BandOwner((int(b), int(h)), int(sid), aware_utc(at) or at))
        return sorted(out, key=lambda o: o.band)

    def story_copies(self, story_ids: Sequence[int], per_story: int) -> dict[int, list[StoryCopy]]:
        """The first copy and the latest ones of each story (by id)."""
        wanted = sorted(set(story_ids))
        out: dict[int, list[StoryCopy]] = {}
        if not wanted or per_story <= 0:
            return out
        with self._tx(write=False) as conn:
            ids: dict[int, list[int]] = {}
            for chunk in chunks(wanted):
                for sid, aid in conn.execute(_COPY_IDS, {"ids": list(chunk)}):
                    ids.setdefault(int(sid), []).append(int(aid))
            chosen: dict[int, int] = {}  # article id -> story id
            for sid, aids in ids.items():
                latest = aids[1:][-(per_story - 1) :] if per_story > 1 else []
                chosen.update((aid, sid) for aid in [aids[0], *latest])
            # Only the compared text: a copy is rebuilt with the rest empty.
            for chunk in chunks(sorted(chosen)):
                for aid, feed, entry, title, summary, content in conn.execute(
                    _COPY_TEXT, {"ids": list(chunk)}
                ):
                    sid = chosen[aid]
                    copy = _text_article(feed, entry, title, summary, content)
                    out.setdefault(sid, []).append(StoryCopy(sid, int(aid), copy))
        for copies in out.values():
            copies.sort(key=lambda c: c.article_id)
        return out

    def prune_story_bands(self, before: datetime) -> int:
        """Read the band table outside any write transaction, then forget,
        in short batches, the bands of stories gone or last seen before
        ``before`` (re-checked in the delete: a story a copy just renewed
        keeps its bands)."""
        with self._tx(write=False) as conn:
            live = select(stories.c.id).where(stories.c.last_seen_at >= before)
            stmt = select(story_bands.c.band, story_bands.c.hash).where(
                story_bands.c.story_id.not_in(live)
            )
            stale = [(int(b), int(h)) for b, h in conn.execute(stmt)]
        gone = 0
        for chunk in chunks(stale, BAND_PRUNE_BATCH):
            with self._tx(write=True) as conn:
                for part in chunks(chunk, BAND_LOOKUP):
                    gone += conn.execute(
                        delete(story_bands).where(
                            _band_filter(part),
                            story_bands.c.story_id.not_in(
                                select(stories.c.id).where(stories.c.last_seen_at >= before)
                            ),
                        )
                    ).rowcount
        return gone

    def story_updates(self, since: datetime, limit: int = 50) -> list[StoryUpdate]:
        stmt = (
            select(
                articles.c.story_id,
                articles.c.id,
                articles.c.title,
                articles.c.link,
                articles.c.source,
                articles.c.new_text,
                articles.c.first_seen_at,
            )
            .where(articles.c.new_text.is_not(None), articles.c.first_seen_at >= since)
            .order_by(articles.c.first_seen_at.desc(), articles.c.id.desc())
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).all()
        return [StoryUpdate(int(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5]), r[6]) for r in rows]
