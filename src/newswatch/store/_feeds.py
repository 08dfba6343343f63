"""The feed queue: which feeds exist, which are due, and what each poll
recorded. Claims pick due active feeds and lease them in one write
transaction (BEGIN IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on
PostgreSQL), so two pollers never get the same feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from newswatch.store import _codec
from newswatch.store._dialect import UTCDateTime, insert_ignore
from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import FeedSpec, FeedState, FeedUpdate, KnownEntry
from newswatch.store.schema import articles, feeds

# Feed statuses that claims skip (the row stays, for listings).
NOT_POLLED = ("gone", "disabled")


def new_feed(feed_key: str, now: datetime, label: str | None = None) -> dict[str, Any]:
    return {
        "feed_key": feed_key,
        "label": label,
        "active": True,
        "status": "ok",
        "next_poll_at": now,
        "consecutive_errors": 0,
        "article_count": 0,
        "created_at": now,
    }


def write_update(conn: Connection, update_: FeedUpdate) -> None:
    """Apply one poll's FeedUpdate (creating the row if the feed is unknown)."""
    conn.execute(
        insert_ignore(conn, feeds, "feed_key").values(new_feed(update_.feed_key, update_.at))
    )
    values = _codec.feed_update_values(update_)
    if not update_.ok:
        values["consecutive_errors"] = feeds.c.consecutive_errors + 1
        # The first failure of a run starts the clock for feed_alert_after.
        values["failing_since"] = func.coalesce(
            feeds.c.failing_since, bindparam(None, update_.at, type_=UTCDateTime)
        )
    conn.execute(update(feeds).where(feeds.c.feed_key == update_.feed_key).values(values))


class FeedQueueMixin(Transactional):
    def sync_feeds(self, feeds_: Sequence[FeedSpec], now: datetime) -> None:
        specs = {spec.key: spec for spec in feeds_}
        with self._tx(write=True) as conn:
            if specs:
                conn.execute(
                    insert_ignore(conn, feeds, "feed_key"),
                    [new_feed(key, now, spec.label) for key, spec in specs.items()],
                )
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key == bindparam("b_key"))
                    .values(label=bindparam("b_label"), host=bindparam("b_host"), active=True),
                    [
                        {"b_key": key, "b_label": spec.label, "b_host": spec.host or None}
                        for key, spec in specs.items()
                    ],
                )
            # Everything else is inactive: claims never see removed feeds.
            active = set(
                conn.execute(select(feeds.c.feed_key).where(feeds.c.active.is_(True))).scalars()
            )
            gone = sorted(active - specs.keys())
            for chunk in chunks(gone):
                conn.execute(update(feeds).where(feeds.c.feed_key.in_(chunk)).values(active=False))

    def feed_state(self, feed_key: str) -> FeedState | None:
        with self._tx(write=False) as conn:
            row = conn.execute(select(feeds).where(feeds.c.feed_key == feed_key)).mappings().first()
        return None if row is None else _codec.feed_state_from_row(row)

    def feed_states(self, *, active_only: bool = False) -> list[FeedState]:
        stmt = select(feeds).order_by(feeds.c.feed_key)
        if active_only:
            stmt = stmt.where(feeds.c.active.is_(True))
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_codec.feed_state_from_row(r) for r in rows]

    def claim_due_feeds(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        skip_hosts: Sequence[str] = (),
        owner: str | None = None,
    ) -> list[FeedState]:
        if limit <= 0:
            return []
        due = (
            select(feeds.c.feed_key)
            .where(
                feeds.c.active.is_(True),
                # 410 Gone and disabled feeds stay listed but are not polled.
                feeds.c.status.not_in(list(NOT_POLLED)),
                or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now),
                or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now),
            )
            .order_by(feeds.c.next_poll_at.nulls_first(), feeds.c.feed_key)
            .limit(limit)
            # SQLite's compiler drops FOR UPDATE; BEGIN IMMEDIATE already
            # keeps other claimers out.
            .with_for_update(skip_locked=True)
        )
        if skip_hosts:
            due = due.where(or_(feeds.c.host.is_(None), feeds.c.host.not_in(list(skip_hosts))))
        with self._tx(write=True) as conn:
            picked = conn.execute(due).scalars().all()
            if not picked:
                return []
            rows = (
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key.in_(picked))
                    .values(lease_until=lease_until, lease_owner=owner)
                    .returning(*feeds.c)
                )
                .mappings()
                .all()
            )
        states = {r["feed_key"]: _codec.feed_state_from_row(r) for r in rows}
        return [states[key] for key in picked if key in states]

    def release_feeds(self, feed_keys: Sequence[str]) -> None:
        keys = list(dict.fromkeys(feed_keys))
        if not keys:
            return
        with self._tx(write=True, quick=True) as conn:
            for chunk in chunks(keys):
                conn.execute(
                    update(feeds).where(feeds.c.feed_key.in_(chunk)).values(lease_until=None)
                )

    def renew_feeds(self, feed_keys: Sequence[str], lease_until: datetime) -> None:
        """Extend the leases of feeds still being polled (a lease already
        released by a recorded poll stays released)."""
        keys = list(dict.fromkeys(feed_keys))
        if not keys:
            return
        with self._tx(write=True, quick=True) as conn:
            for chunk in chunks(keys):
                conn.execute(
                    update(feeds)
                    .where(feeds.c.feed_key.in_(chunk), feeds.c.lease_until.is_not(None))
                    .values(lease_until=lease_until)
                )

    def known_entries(self, feed_key: str, entry_keys: Sequence[str]) -> dict[str, KnownEntry]:
        keys = list(dict.fromkeys(entry_keys))
        found: dict[str, KnownEntry] = {}
        if not keys:
            return found
        cols = (
            articles.c.entry_key,
            articles.c.id,
            articles.c.story_id,
            articles.c.content_hash,
            articles.c.canonical_url,
            articles.c.title,
        )
        with self._tx(write=False) as conn:
            for chunk in chunks(keys):
                stmt = select(*cols).where(
                    articles.c.feed_key == feed_key, articles.c.entry_key.in_(chunk)
                )
                for row in conn.execute(stmt):
                    found[row.entry_key] = KnownEntry(
                        entry_key=row.entry_key,
                        article_id=row.id,
                        story_id=row.story_id,
                        content_hash=row.content_hash,
                        canonical_url=row.canonical_url,
                        title=row.title,
                    )
        return found

    def known_entry_keys(self, feed_key: str, entry_keys: Sequence[str]) -> set[str]:
        return set(self.known_entries(feed_key, entry_keys))

    def record_polls(self, updates: Sequence[FeedUpdate]) -> None:
        if not updates:
            return
        with self._tx(write=True) as conn:
            for item in updates:
                write_update(conn, item)
