"""Schema migrations: each step brings a database from version N to N + 1,
inside the caller's write transaction (``schema.create_schema``), after the
new tables of the current schema were created.

Tested by upgrading databases written by the previous version
(tests/data/state-v1.sqlite and state-v1.pg.sql).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Column, Index, Table, func, select, text
from sqlalchemy.engine import Connection

from newswatch.identity import identity_keys
from newswatch.keys import feed_key_for, short_hash
from newswatch.notify.redact import mask_url
from newswatch.store import _codec
from newswatch.store.schema import (
    articles,
    feeds,
    matches,
    notifications,
    outbox,
    stories,
    story_keys,
)


def _add_column(
    conn: Connection, table: str, column: Column[Any], default: str | None = None
) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a column of the current metadata."""
    kind = column.type.compile(dialect=conn.dialect)
    ddl = f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}'
    if default is not None:
        ddl += f" NOT NULL DEFAULT {default}"
    conn.execute(text(ddl))


def _index(table: Table, name: str) -> Index:
    """An index of the current schema by name (building a new ``Index`` on a
    table would add a second copy of it to the metadata)."""
    return next(index for index in table.indexes if index.name == name)


def _true(conn: Connection) -> str:
    return "true" if conn.dialect.name == "postgresql" else "1"


def _utc(value: object) -> datetime | None:
    """A timestamp read with raw SQL (v1 tables are not our Table objects)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _v1_to_v2(conn: Connection) -> None:
    """v1 -> v2: feed keys become hashes; stories; outbox per target.

    - feeds and articles: the key (a URL that may carry credentials) becomes
      ``feed_key_for(url)``; the new state columns get their defaults.
    - stories: one per identity key of the stored articles. A story is
      marked evaluated only if some rule matched it, so after the upgrade a
      copy of a story v1 recorded silently (first polls) alerts nobody.
    - outbox: rebuilt unique on (rule, target, story). A v1 row that was
      tried already (attempts > 0) or dead becomes a notification of its own
      that keeps its attempts, next attempt and error; sent rows stay sent.
    """
    true = _true(conn)
    c = feeds.c
    for column, default in (
        (c.label, None),
        (c.title, None),
        (c.host, None),
        (c.active, true),
        (c.lease_owner, None),
        (c.body_hash, None),
        (c.interval_s, None),
        (c.last_status, None),
        (c.status, "'ok'"),
        (c.moved_to, None),
        (c.failing_since, None),
        (c.alerted_at, None),
        (c.article_count, "0"),
    ):
        _add_column(conn, "feeds", column, default)
    _add_column(conn, "articles", articles.c.story_id)
    _add_column(conn, "articles", articles.c.content_hash)
    _index(articles, "ix_articles_story_id").create(conn)
    _index(matches, "ix_matches_rule_matched_at").create(conn)
    _rekey_feeds(conn)
    _found_stories(conn)
    _rebuild_outbox(conn)


def _rekey_feeds(conn: Connection) -> None:
    counts: dict[str, int] = {
        key: n
        for key, n in conn.execute(
            select(articles.c.feed_key, func.count()).group_by(articles.c.feed_key)
        )
    }
    rows = conn.execute(
        text("SELECT feed_key, consecutive_errors, last_attempt_at FROM feeds")
    ).all()
    for old, errors, last_attempt in rows:
        new = feed_key_for(old)
        try:
            host = (urlsplit(old).hostname or "").lower() or None
        except ValueError:
            host = None
        conn.execute(
            feeds.update()
            .where(feeds.c.feed_key == old)
            .values(
                feed_key=new,
                label=mask_url(old) if old.startswith(("http://", "https://")) else old,
                host=host,
                article_count=counts.get(old, 0),
                status="failing" if errors else "ok",
                failing_since=_utc(last_attempt) if errors else None,
            )
        )
        conn.execute(articles.update().where(articles.c.feed_key == old).values(feed_key=new))


def _found_stories(conn: Connection) -> None:
    matched = set(conn.execute(select(matches.c.article_id).distinct()).scalars())
    by_key: dict[str, int] = {}
    rows = conn.execute(select(articles).order_by(articles.c.id)).mappings().all()
    for row in rows:
        keys = identity_keys(_codec.article_from_row(row))
        story_id = next((by_key[k] for k in keys if k in by_key), None)
        if story_id is None:
            story_id = conn.execute(
                stories.insert()
                .values(
                    title=row["title"][:1000],
                    first_seen_at=row["first_seen_at"],
                    last_seen_at=row["last_seen_at"],
                    evaluated=row["id"] in matched,
                )
                .returning(stories.c.id)
            ).scalar_one()
        elif row["id"] in matched:
            conn.execute(stories.update().where(stories.c.id == story_id).values(evaluated=True))
        for key in keys:
            if key not in by_key:
                by_key[key] = story_id
                conn.execute(
                    story_keys.insert().values(
                        key=key, story_id=story_id, created_at=row["first_seen_at"]
                    )
                )
        conn.execute(articles.update().where(articles.c.id == row["id"]).values(story_id=story_id))


# v1 statuses in the order a collision keeps (a sent row wins over a pending one).
_V1_PRIORITY = {"sent": 0, "dead": 1, "sending": 2, "pending": 3}


def _rebuild_outbox(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Index and sequence names are schema-wide in PostgreSQL.
        conn.execute(text("ALTER TABLE outbox RENAME TO outbox_v1"))
        conn.execute(text("ALTER TABLE outbox_v1 RENAME CONSTRAINT pk_outbox TO pk_outbox_v1"))
        conn.execute(text("ALTER SEQUENCE outbox_id_seq RENAME TO outbox_v1_id_seq"))
    else:
        conn.execute(text("ALTER TABLE outbox RENAME TO outbox_v1"))
    outbox.create(conn)
    story_of = dict(conn.execute(select(articles.c.id, articles.c.story_id)).all())
    old = conn.execute(
        text(
            "SELECT id, rule, channel, mode, article_id, status, attempts, created_at, "
            "next_attempt_at, sent_at, last_error FROM outbox_v1"
        )
    ).mappings()
    rows = sorted(old, key=lambda r: (_V1_PRIORITY.get(r["status"], 9), r["id"]))
    taken: set[tuple[str, str, int]] = set()
    now = datetime.now(UTC)
    for r in rows:
        story_id = story_of.get(r["article_id"])
        target_id = f"{r['channel']}:{r['mode']}"
        if story_id is None or (r["rule"], target_id, story_id) in taken:
            continue
        taken.add((r["rule"], target_id, story_id))
        values: dict[str, Any] = {
            "id": r["id"],
            "rule": r["rule"],
            "channel": r["channel"],
            "target_id": target_id,
            "mode": r["mode"],
            "article_id": r["article_id"],
            "story_id": story_id,
            "created_at": _utc(r["created_at"]),
            "sent_at": _utc(r["sent_at"]),
            "last_error": r["last_error"],
        }
        status = r["status"]
        if status == "sent":
            values["status"] = "sent"
        elif status == "dead" or r["attempts"]:
            dead = status == "dead"
            nid = conn.execute(
                notifications.insert()
                .values(
                    key="nw-v1-" + short_hash([r["id"], r["rule"], r["channel"]]),
                    channel=r["channel"],
                    kind="alert",
                    target_id=target_id,
                    items=1,
                    status="dead" if dead else "pending",
                    attempts=r["attempts"],
                    parts_sent=0,
                    next_attempt_at=None if dead else (_utc(r["next_attempt_at"]) or now),
                    created_at=_utc(r["created_at"]),
                    last_error=r["last_error"],
                    late=False,
                    more=0,
                )
                .returning(notifications.c.id)
            ).scalar_one()
            values.update(status="dead" if dead else "queued", notification_id=nid)
            values["composed_at"] = _utc(r["created_at"])
        else:
            values["status"] = "pending"
        conn.execute(outbox.insert().values(values))
    conn.execute(text("DROP TABLE outbox_v1"))
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT setval('outbox_id_seq', "
                "COALESCE((SELECT MAX(id) FROM outbox), 0) + 1, false)"
            )
        )


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}
