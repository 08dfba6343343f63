"""Upgrading state written by the previous version (schema 1) to schema 2.

The databases in tests/data were written by newswatch at schema 1
(tests/data/make_state_v1.py): a SQLite file and a pg_dump. Each is upgraded
in place and must then hold every feed, article, match and alert, with feed
keys that no longer carry URL credentials, one story per identity, and the
outbox's retry state kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from conftest import PG_URL, postgres_unreachable
from newswatch.keys import feed_key_for
from newswatch.model import DeliveryMode, Route
from newswatch.store import (
    FeedUpdate,
    IngestItem,
    NotificationStatus,
    OutboxStatus,
    SqlStore,
    open_store,
)
from newswatch.store.schema import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"
FEED_A = "https://www.koreaherald.com/rss/newsAll"
FEED_B = "https://alice:s3cret-pw@feeds.example.org/private.xml?token=tok-123456"
FEED_C = "https://down.example.net/rss.xml"
SECRETS = ("s3cret-pw", "tok-123456", "alice:")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def v1_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A copy of a schema-1 state database, as a state URL."""
    if request.param == "sqlite":
        path = tmp_path / "state-v1.sqlite"
        shutil.copy(DATA / "state-v1.sqlite", path)
        yield f"sqlite:///{path}"
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    name = f"nw_v1_{uuid.uuid4().hex[:10]}"
    dump = (DATA / "state-v1.pg.sql").read_text().replace("__SCHEMA__", name)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(dump.encode())
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def dump_text(store: SqlStore) -> str:
    """Every value in every table, as text (to look for secrets)."""
    from sqlalchemy import inspect, text

    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def test_v1_database_upgrades_with_everything_kept(v1_url: str) -> None:
    with open_store(v1_url) as store:
        from sqlalchemy import select

        from newswatch.store.schema import meta

        with store.engine.connect() as conn:
            version = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
        assert version == str(SCHEMA_VERSION) == "2"

        states = {s.feed_key: s for s in store.feed_states()}
        assert set(states) == {feed_key_for(FEED_A), feed_key_for(FEED_B), feed_key_for(FEED_C)}
        a, b, c = (states[feed_key_for(f)] for f in (FEED_A, FEED_B, FEED_C))
        assert (a.articles, b.articles, c.articles) == (6, 1, 0)
        assert a.etag == '"v1"' and a.last_success_at is not None
        assert c.consecutive_errors == 1 and c.status == "failing"
        assert c.failing_since is not None and c.last_error == "HTTP 503 Service Unavailable"
        assert a.host == "www.koreaherald.com"
        # No credential of a feed URL is left anywhere in the database.
        everything = dump_text(store)
        for secret in SECRETS:
            assert secret not in everything

        rows = store.outbox(limit=100)
        assert len(rows) == 12
        by_status: dict[OutboxStatus, int] = {}
        for r in rows:
            by_status[r.status] = by_status.get(r.status, 0) + 1
            assert r.target_id == f"{r.channel}:immediate"
        # v1: 2 sent, 1 dead, 1 retried (attempt 1), 4 still sending (leased by a
        # crashed worker: tried once), 4 never tried.
        assert by_status == {
            OutboxStatus.SENT: 2,
            OutboxStatus.DEAD: 1,
            OutboxStatus.QUEUED: 5,
            OutboxStatus.PENDING: 4,
        }
        dead = store.notifications(NotificationStatus.DEAD)
        assert len(dead) == 1 and dead[0].last_error is not None
        assert "HTTP 404" in dead[0].last_error
        pending = store.notifications(NotificationStatus.PENDING)
        assert sorted(n.attempts for n in pending) == [1, 1, 1, 1, 1]
        # the dead letter can be retried as a group, as before the upgrade
        assert store.retry_dead(None, datetime.now(UTC)) == 1


def test_upgraded_database_keeps_dedup_and_delivers(v1_url: str) -> None:
    """After the upgrade a known story is still known: the same Korea Herald
    article served again under a new GUID and over http alerts nobody, and
    every pending alert is delivered once."""
    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    with open_store(v1_url) as store:
        from newswatch.identity import identity_keys

        known = next(iter(store.iter_articles()))
        again = known.__class__(
            **{
                **{f: getattr(known, f) for f in known.__dataclass_fields__},
                "entry_key": "new-guid-after-cms-migration",
                "link": known.link.replace("https://", "http://"),
                "canonical_url": known.canonical_url.replace("https://", "http://"),
            }
        )
        route = Route("russia-north-korea", "desk-email", DeliveryMode.IMMEDIATE)
        result = store.ingest(
            FeedUpdate(known.feed_key, now, now + timedelta(minutes=10), ok=True),
            [IngestItem(again, routes=(route,), identity_keys=identity_keys(again))],
        )
        assert result.new_articles == 1 and result.joined == 1 and result.new_outbox == 0
        due = store.claim_notifications(now, now + timedelta(minutes=5), 100)
        assert {n.channel for n in due} == {"desk-email", "desk-hook"}
        for n in due:
            assert len(n.items) == 1 and n.items[0].article.title.startswith("Russia")
            store.mark_sent(n.id, now, parts_sent=1)
        assert store.claim_notifications(now, now + timedelta(minutes=5), 100) == []


def test_v1_sqlite_file_is_really_schema_1() -> None:
    """The fixture is what v1 wrote (guards against regenerating it by mistake)."""
    conn = sqlite3.connect(DATA / "state-v1.sqlite")
    try:
        (version,) = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(outbox)")]
        keys = [r[0] for r in conn.execute("SELECT feed_key FROM feeds")]
    finally:
        conn.close()
    assert version == "1"
    assert "story_key" in columns and "target_id" not in columns
    assert FEED_B in keys


def test_a_story_v1_recorded_silently_does_not_alert_when_copied(v1_url: str) -> None:
    """v1 first polls recorded entries without evaluating rules: after the
    upgrade their stories have no baseline, so a re-keyed copy is seen, not
    alerted. A v1 story that matched keeps its baseline: only a rule that
    newly matches a copy alerts."""
    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    from newswatch.identity import identity_keys

    with open_store(v1_url) as store:
        articles = {a.entry_key: a for a in store.iter_articles()}
        silent, matched = articles["guid-10"], articles["guid-0"]
        copies = []
        for original, rules in ((silent, ("russia-north-korea",)), (matched, ("thaad",))):
            copy = original.__class__(
                **{
                    **{f: getattr(original, f) for f in original.__dataclass_fields__},
                    "feed_key": "another-feed",
                    "entry_key": f"copy-of-{original.entry_key}",
                }
            )
            routes = tuple(Route(r, "desk-email", DeliveryMode.IMMEDIATE) for r in rules)
            copies.append(IngestItem(copy, routes=routes, identity_keys=identity_keys(copy)))
        result = store.ingest(
            FeedUpdate("another-feed", now, now + timedelta(minutes=10), ok=True), copies
        )
        assert result.joined == 2
        assert result.new_outbox == 1  # thaad on the matched story; nothing for the silent one
