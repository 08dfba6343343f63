"""Write the schema-v1 state databases that tests/test_store_migrate.py upgrades.

Run once, at commit 37ff8c1 (the last version with schema 1), from the repo root:

    .venv/bin/python tests/data/make_state_v1.py

It writes tests/data/state-v1.sqlite (a SQLite file written by that code) and
tests/data/state-v1.pg.sql (a pg_dump of a schema written by that code, with
the schema name replaced by ``__SCHEMA__``). Both hold feeds (one with a
credential in its URL, one failing), articles with matches, outbox rows in
every status, and a rule backfill. Kept for provenance: it needs the v1 code.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from newswatch.model import (  # noqa: E402
    Article,
    DeliveryMode,
    Explanation,
    FetchResult,
    Hit,
    Match,
    Route,
)
from newswatch.store.base import IngestItem  # noqa: E402
from newswatch.store.sql import SqlStore, open_store  # noqa: E402

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
PG = "postgresql://postgres@127.0.0.1:5432/test"
FEED_A = "https://www.koreaherald.com/rss/newsAll"
FEED_B = "https://alice:s3cret-pw@feeds.example.org/private.xml?token=tok-123456"
FEED_C = "https://down.example.net/rss.xml"


def article(feed: str, n: int, *, link: str | None = None) -> Article:
    url = link or f"https://www.koreaherald.com/article/{1000 + n}"
    return Article(
        feed_key=feed,
        entry_key=f"guid-{n}",
        story_key=f"story-{n}",
        title=f"Russia and North Korea story {n}",
        summary=f"Summary {n}: Russia and North Korea sign a pact.",
        content="",
        link=url,
        canonical_url=url,
        author="Yonhap",
        categories=("North Korea",),
        published=T0 - timedelta(hours=n),
        source="The Korea Herald",
        tags=("korea",),
    )


def explanation(n: int) -> Explanation:
    return Explanation(
        hits=(Hit("russia", "title", 0, 6), Hit("north korea", "title", 11, 22)),
        snippet=f"Russia and North Korea story {n}",
        highlights=((0, 6), (11, 22)),
    )


def fill(store: SqlStore) -> None:
    store.ensure_feeds([FEED_A, FEED_B, FEED_C], T0)
    items = []
    for n in range(6):
        a = article(FEED_A, n)
        m = Match("russia-north-korea", a, explanation(n))
        routes = (
            Route("russia-north-korea", "desk-email", DeliveryMode.IMMEDIATE),
            Route("russia-north-korea", "desk-hook", DeliveryMode.IMMEDIATE),
        )
        items.append(IngestItem(a, (m,), routes))
    store.ingest(
        FetchResult(feed_key=FEED_A, url=FEED_A, fetched_at=T0, status=200, etag='"v1"'),
        items,
        T0,
        T0 + timedelta(minutes=10),
    )
    b = article(FEED_B, 10, link="http://feeds.example.org/a/10")
    store.ingest(
        FetchResult(feed_key=FEED_B, url=FEED_B, fetched_at=T0, status=200),
        [IngestItem(b)],
        T0,
        T0 + timedelta(minutes=10),
    )
    store.record_failure(FEED_C, "HTTP 503 Service Unavailable", T0, T0 + timedelta(minutes=20))
    claimed = store.claim_outbox(T0, T0 + timedelta(minutes=5), 100)
    by_status = iter(claimed)
    store.mark_sent(next(by_status).outbox_id, T0)
    store.mark_sent(next(by_status).outbox_id, T0)
    store.mark_dead(
        next(by_status).outbox_id, "webhook https://hooks.example.org/****: HTTP 404", T0
    )
    store.mark_retry(next(by_status).outbox_id, "smtp: refused", T0, T0 + timedelta(minutes=1))
    # the rest stay 'sending' (a crashed worker's lease) or pending
    rest = [a.outbox_id for a in by_status]
    store.release_outbox(rest[: len(rest) // 2])
    store.record_backfill("russia-north-korea", [], T0)


def main() -> None:
    sqlite_path = HERE / "state-v1.sqlite"
    sqlite_path.unlink(missing_ok=True)
    with open_store(f"sqlite:///{sqlite_path}") as store:
        fill(store)
    with psycopg.connect(PG, autocommit=True) as conn:
        schema = f"v1_{uuid.uuid4().hex[:8]}"
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        with open_store(url) as store:
            fill(store)
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "--no-owner",
                "--no-privileges",
                "--inserts",
                "--schema",
                schema,
                "test",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        dump = "\n".join(
            line
            for line in dump.splitlines()
            # psql meta-commands (\\restrict) and session settings are not SQL
            if not line.startswith(("CREATE SCHEMA", "SET ", "SELECT pg_catalog.set_config", "\\"))
        )
        (HERE / "state-v1.pg.sql").write_text(dump.replace(schema, "__SCHEMA__") + "\n")
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
