"""Digest periods, singleton locks and mutes: the store's small ledgers.

A digest period is composed once: its row in ``digest_periods`` is unique on
(digest, period end) and inserted in the same transaction that puts the
period's rows into notifications, so restarts and replicas never send it
twice, and a crash before commit leaves it to be composed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update

from newswatch.keys import digest_key
from newswatch.model import Notification, NotificationKind, Period
from newswatch.store._codec import aware_utc
from newswatch.store._dialect import insert_ignore
from newswatch.store._outbox import _item_rows, build_items, insert_notification, queue_rows
from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import DigestOutcome, DigestTarget, Mute, OutboxStatus
from newswatch.store.schema import digest_periods, locks, mutes, outbox

# hold_reason of rows held by a mute (notify.plan.MUTE).
MUTE_REASON = "mute"


class LedgerMixin(Transactional):
    # --- digests

    def last_period_end(self, digest_key_: str) -> datetime | None:
        with self._tx(write=False) as conn:
            value = conn.execute(
                select(func.max(digest_periods.c.period_end)).where(
                    digest_periods.c.digest_key == digest_key_
                )
            ).scalar()
        return aware_utc(value)

    def compose_digest(
        self,
        digest: DigestTarget,
        *,
        period_start: datetime,
        period_end: datetime,
        cutoff: datetime,
        now: datetime,
        late: bool,
        max_items: int,
        send_empty: bool,
        exclude_rules: Sequence[str] = (),
    ) -> DigestOutcome:
        period = Period(start=period_start, end=period_end, schedule=digest.schedule, late=late)
        with self._tx(write=True) as conn:
            ledger = conn.execute(
                insert_ignore(conn, digest_periods, "digest_key", "period_end")
                .values(
                    digest_key=digest.key,
                    period_start=period_start,
                    period_end=period_end,
                    status="empty",
                    late=late,
                    created_at=now,
                )
                .returning(digest_periods.c.id)
            ).scalar_one_or_none()
            if ledger is None:
                return DigestOutcome(done_before=True)
            stmt = (
                select(outbox.c.id, outbox.c.story_id)
                .where(
                    outbox.c.status == OutboxStatus.PENDING.value,
                    outbox.c.target_id.in_(list(digest.target_ids)),
                    outbox.c.created_at < cutoff,
                    or_(outbox.c.hold_until.is_(None), outbox.c.hold_until <= now),
                )
                .order_by(outbox.c.created_at, outbox.c.id)
                .with_for_update()
            )
            if exclude_rules:
                stmt = stmt.where(outbox.c.rule.not_in(list(exclude_rules)))
            rows = conn.execute(stmt).all()
            # Stories in arrival order; a story's rows (one per rule) stay together.
            by_story: dict[int, list[int]] = {}
            for row_id, story_id in rows:
                by_story.setdefault(story_id, []).append(row_id)
            stories = list(by_story.values())
            chunks_ = [stories[i : i + max_items] for i in range(0, len(stories), max_items)]
            if not chunks_ and send_empty:
                chunks_ = [[]]
            created: list[int] = []
            for number, chunk in enumerate(chunks_):
                nid = insert_notification(
                    conn,
                    key=digest_key(digest.key, period_end, number),
                    channel=digest.channel,
                    kind=NotificationKind.DIGEST,
                    now=now,
                    items=len(chunk),
                    target_id=digest.key,
                    period=period,
                )
                queue_rows(conn, [i for ids in chunk for i in ids], nid, now)
                created.append(nid)
            if created:
                conn.execute(
                    update(digest_periods)
                    .where(digest_periods.c.id == ledger)
                    .values(status="queued", notification_id=created[0])
                )
        return DigestOutcome(done_before=False, notifications=tuple(created), items=len(stories))

    def preview_digest(
        self,
        digest: DigestTarget,
        *,
        period_start: datetime,
        cutoff: datetime,
        now: datetime,
        max_items: int,
    ) -> list[Notification]:
        """The digest as it would be composed now, written nowhere."""
        with self._tx(write=False) as conn:
            rows = _item_rows(
                conn,
                and_(
                    outbox.c.status == OutboxStatus.PENDING.value,
                    outbox.c.target_id.in_(list(digest.target_ids)),
                    outbox.c.created_at < cutoff,
                ),
            )
            items = build_items(conn, rows, lambda row: 0).get(0, ())
        batches = [items[i : i + max_items] for i in range(0, len(items), max_items)] or [()]
        return [
            Notification(
                id=0,
                key="preview",
                channel=digest.channel,
                kind=NotificationKind.DIGEST,
                items=batch,
                created_at=now,
                period=Period(start=period_start, end=cutoff, schedule=digest.schedule),
            )
            for batch in batches
        ]

    # --- locks

    def acquire_lock(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take (or renew) the lock ``name`` until ``until``; False while
        another owner holds it."""
        with self._tx(write=True) as conn:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... DO NOTHING.
            taken = conn.execute(
                insert_ignore(conn, locks, "name")
                .values(name=name, owner=owner, until=until)
                .returning(locks.c.name)
            ).first()
            if taken is not None:
                return True
            renewed = conn.execute(
                update(locks)
                .where(locks.c.name == name, or_(locks.c.owner == owner, locks.c.until < now))
                .values(owner=owner, until=until)
            ).rowcount
        return bool(renewed)

    def release_lock(self, name: str, owner: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))

    # --- mutes

    def add_mute(
        self,
        kind: str,
        name: str,
        now: datetime,
        until: datetime,
        *,
        drop: bool = False,
        comment: str | None = None,
    ) -> Mute:
        if kind not in ("rule", "channel"):
            raise ValueError(f"a mute is for a rule or a channel, not {kind!r}")
        with self._tx(write=True) as conn:
            mute_id = conn.execute(
                mutes.insert()
                .values(
                    kind=kind, name=name, created_at=now, until=until, drop=drop, comment=comment
                )
                .returning(mutes.c.id)
            ).scalar_one()
        return Mute(mute_id, kind, name, now, until, drop, comment)

    def end_mute(self, mute_id: int, now: datetime) -> bool:
        """End a mute early. The rows it held are due now: the planner sends
        them as one summary (or holds them again if another mute covers them)."""
        with self._tx(write=True) as conn:
            row = conn.execute(
                select(mutes.c.kind, mutes.c.name).where(
                    mutes.c.id == mute_id, mutes.c.ended_at.is_(None), mutes.c.until > now
                )
            ).first()
            if row is None:
                return False
            conn.execute(update(mutes).where(mutes.c.id == mute_id).values(ended_at=now))
            held_by = outbox.c.rule if row.kind == "rule" else outbox.c.channel
            conn.execute(
                update(outbox)
                .where(
                    held_by == row.name,
                    outbox.c.status == OutboxStatus.PENDING.value,
                    outbox.c.hold_reason == MUTE_REASON,
                    outbox.c.hold_until > now,
                )
                .values(hold_until=now)
            )
        return True

    def mutes(self, now: datetime, *, include_ended: bool = False) -> list[Mute]:
        stmt = select(mutes).order_by(mutes.c.until, mutes.c.id)
        if not include_ended:
            stmt = stmt.where(mutes.c.ended_at.is_(None), mutes.c.until > now)
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            Mute(
                id=r["id"],
                kind=r["kind"],
                name=r["name"],
                created_at=r["created_at"],
                until=r["until"],
                drop=bool(r["drop"]),
                comment=r["comment"],
                ended_at=r["ended_at"],
            )
            for r in rows
        ]

    def prune_ledgers(self, before: datetime) -> int:
        """Forget digest periods and ended mutes older than ``before``."""
        with self._tx(write=True) as conn:
            n = conn.execute(
                delete(digest_periods).where(digest_periods.c.period_end < before)
            ).rowcount
            ids = list(conn.execute(select(mutes.c.id).where(mutes.c.until < before)).scalars())
            for chunk in chunks(ids):
                conn.execute(delete(mutes).where(mutes.c.id.in_(chunk)))
        return n + len(ids)
