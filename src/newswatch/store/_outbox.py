"""The outbox and its notifications.

An outbox row is one (rule, target, story); it waits ``pending`` (maybe held)
until the planner composes it into a notification, then ``queued`` until
the notification is delivered (``sent``) or fails for good (``dead``). The
notification carries the retry state and the idempotency key, so a retry
resends the same notification, and its rows are marked together with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Connection

from newswatch.identity import url_key
from newswatch.model import (
    Explanation,
    Item,
    Notification,
    NotificationKind,
    Outlet,
    Period,
    Thread,
)
from newswatch.store import _codec
from newswatch.store._codec import aware_utc
from newswatch.store._tx import IN_CHUNK, Transactional, chunks
from newswatch.store.base import (
    ChannelCounts,
    Compose,
    Decision,
    DropRows,
    HoldRows,
    MoveRows,
    NotificationRow,
    NotificationStatus,
    OutboxRow,
    OutboxStatus,
    PendingRow,
)
from newswatch.store.schema import ARTICLE_FIELDS, articles, matches, notifications, outbox

# Other outlets' copies listed per item ("also reported by").
ALSO_LIMIT = 20
# Items whose titles a notification listing shows.
LISTING_TITLES = 3

# hold_reason of rows held by a throttle (notify.plan.THROTTLE).
THROTTLE_REASON = "throttle"

_PENDING = OutboxStatus.PENDING.value
_QUEUED = OutboxStatus.QUEUED.value


def insert_notification(
    conn: Connection,
    *,
    key: str,
    channel: str,
    kind: NotificationKind,
    now: datetime,
    items: int,
    target_id: str | None = None,
    reason: str | None = None,
    more: int = 0,
    period: Period | None = None,
) -> int:
    values: dict[str, Any] = {
        "key": key,
        "channel": channel,
        "kind": kind.value,
        "target_id": target_id,
        "reason": reason,
        "more": more,
        "items": items,
        "status": NotificationStatus.PENDING.value,
        "attempts": 0,
        "parts_sent": 0,
        "next_attempt_at": now,
        "created_at": now,
        "late": False,
    }
    if period is not None:
        values.update(
            schedule=period.schedule,
            period_start=period.start,
            period_end=period.end,
            late=period.late,
        )
    return int(
        conn.execute(
            notifications.insert().values(values).returning(notifications.c.id)
        ).scalar_one()
    )


def queue_rows(
    conn: Connection, row_ids: Sequence[int], notification_id: int, now: datetime
) -> None:
    for chunk in chunks(list(row_ids)):
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.status == _PENDING)
            .values(
                status=_QUEUED,
                notification_id=notification_id,
                composed_at=now,
                hold_until=None,
            )
        )


def _pending_ids(conn: Connection, row_ids: Sequence[int]) -> list[int]:
    """Which of ``row_ids`` are still pending, locked until commit (a second
    replica composing the same rows waits, then finds them taken)."""
    found: list[int] = []
    for chunk in chunks(list(row_ids)):
        stmt = (
            select(outbox.c.id)
            .where(outbox.c.id.in_(chunk), outbox.c.status == _PENDING)
            .order_by(outbox.c.id)
            .with_for_update()
        )
        found.extend(conn.execute(stmt).scalars())
    return found


def _stories(conn: Connection, row_ids: Sequence[int]) -> int:
    count = 0
    for chunk in chunks(list(row_ids)):
        count += conn.execute(
            select(func.count(func.distinct(outbox.c.story_id))).where(outbox.c.id.in_(chunk))
        ).scalar_one()
    return count


class OutboxMixin(Transactional):
    # --- composing

    def pending_due(self, now: datetime, limit: int) -> list[PendingRow]:
        due_targets = (
            select(outbox.c.target_id)
            .where(
                outbox.c.status == _PENDING,
                outbox.c.mode == "immediate",
                or_(outbox.c.hold_until.is_(None), outbox.c.hold_until <= now),
            )
            .distinct()
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            targets = list(conn.execute(due_targets).scalars())
            rows: list[PendingRow] = []
            for chunk in chunks(targets):
                stmt = (
                    select(outbox)
                    .where(outbox.c.status == _PENDING, outbox.c.target_id.in_(chunk))
                    .order_by(outbox.c.created_at, outbox.c.id)
                )
                rows.extend(_codec.pending_from_row(r) for r in conn.execute(stmt).mappings())
        return rows

    def recent_sends(
        self, pairs: Sequence[tuple[str, str]], since: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        wanted = set(pairs)
        out: dict[tuple[str, str], list[datetime]] = {p: [] for p in wanted}
        targets = sorted({t for _, t in wanted})
        with self._tx(write=False) as conn:
            for chunk in chunks(targets):
                stmt = (
                    select(outbox.c.rule, outbox.c.target_id, outbox.c.composed_at)
                    .where(
                        outbox.c.target_id.in_(chunk),
                        outbox.c.composed_at >= since,
                        outbox.c.status.in_([_QUEUED, OutboxStatus.SENT.value]),
                        # Items released from a throttle went out in a
                        # summary: counting them would keep the window shut.
                        or_(
                            outbox.c.hold_reason.is_(None),
                            ~outbox.c.hold_reason.startswith(THROTTLE_REASON),
                        ),
                    )
                    .order_by(outbox.c.composed_at)
                )
                for rule, target, at in conn.execute(stmt):
                    if (rule, target) in wanted:
                        out[(rule, target)].append(at)
        return out

    def apply(self, decisions: Sequence[Decision], now: datetime) -> list[int]:
        created: list[int] = []
        if not decisions:
            return created
        with self._tx(write=True) as conn:
            for decision in decisions:
                ids = _pending_ids(conn, decision.row_ids)
                if not ids:
                    continue
                if isinstance(decision, Compose):
                    nid = insert_notification(
                        conn,
                        key=decision.key,
                        channel=decision.channel,
                        kind=decision.kind,
                        now=now,
                        items=_stories(conn, ids),
                        target_id=decision.target_id,
                        reason=decision.reason,
                        more=decision.more,
                    )
                    queue_rows(conn, ids, nid, now)
                    created.append(nid)
                elif isinstance(decision, HoldRows):
                    for chunk in chunks(ids):
                        conn.execute(
                            update(outbox)
                            .where(outbox.c.id.in_(chunk))
                            .values(hold_until=decision.until, hold_reason=decision.reason)
                        )
                elif isinstance(decision, MoveRows):
                    _move(conn, ids, decision.target_id, now)
                elif isinstance(decision, DropRows):
                    for chunk in chunks(ids):
                        conn.execute(
                            update(outbox)
                            .where(outbox.c.id.in_(chunk))
                            .values(
                                status=OutboxStatus.DROPPED.value,
                                last_error=decision.reason,
                                hold_until=None,
                            )
                        )
        return created

    # --- delivering

    def queue_notice(self, channel: str, key: str, text: str, now: datetime) -> int | None:
        with self._tx(write=True) as conn:
            taken = conn.execute(
                select(notifications.c.id).where(notifications.c.key == key)
            ).first()
            if taken is not None:
                return None
            return insert_notification(
                conn,
                key=key,
                channel=channel,
                kind=NotificationKind.OPERATOR,
                now=now,
                items=0,
                reason=text,
            )

    def claim_notifications(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        only: Sequence[int] | None = None,
        owner: str | None = None,
    ) -> list[Notification]:
        if limit <= 0 or (only is not None and not only):
            return []
        n = notifications.c
        due = (
            select(n.id)
            .where(
                or_(
                    and_(
                        n.status == NotificationStatus.PENDING.value,
                        or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now),
                    ),
                    # A worker that died mid-send: its lease ran out.
                    and_(
                        n.status == NotificationStatus.SENDING.value,
                        or_(n.lease_until.is_(None), n.lease_until < now),
                    ),
                )
            )
            .order_by(n.next_attempt_at.nulls_first(), n.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if only is not None:
            due = due.where(n.id.in_(list(only)[:IN_CHUNK]))
        with self._tx(write=True) as conn:
            picked = list(conn.execute(due).scalars())
            if not picked:
                return []
            conn.execute(
                update(notifications)
                .where(n.id.in_(picked))
                .values(
                    status=NotificationStatus.SENDING.value,
                    lease_until=lease_until,
                    lease_owner=owner,
                    attempts=n.attempts + 1,
                )
            )
            heads = {
                row["id"]: row
                for row in conn.execute(select(notifications).where(n.id.in_(picked))).mappings()
            }
            items = _items(conn, picked)
            threads = _threads(conn, {nid: items.get(nid, ()) for nid in picked}, heads)
        return [
            _notification(heads[nid], items.get(nid, ()), threads.get(nid))
            for nid in picked
            if nid in heads
        ]

    def mark_sent(
        self,
        notification_id: int,
        now: datetime,
        parts_sent: int = 0,
        thread_ref: str | None = None,
    ) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(
                    status=NotificationStatus.SENT.value,
                    sent_at=now,
                    next_attempt_at=None,
                    lease_until=None,
                    parts_sent=parts_sent,
                    thread_ref=thread_ref,
                )
            )
            conn.execute(
                update(outbox)
                .where(outbox.c.notification_id == notification_id)
                .values(status=OutboxStatus.SENT.value, sent_at=now)
            )

    def mark_retry(
        self,
        notification_id: int,
        error: str,
        now: datetime,
        next_attempt_at: datetime,
        parts_sent: int = 0,
    ) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                update(notifications)
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.status != NotificationStatus.SENT.value,
                )
                .values(
                    status=NotificationStatus.PENDING.value,
                    next_attempt_at=next_attempt_at,
                    last_error=error,
                    lease_until=None,
                    parts_sent=func.max(notifications.c.parts_sent, parts_sent)
                    if conn.dialect.name == "sqlite"
                    else func.greatest(notifications.c.parts_sent, parts_sent),
                )
            )
            conn.execute(
                update(outbox)
                .where(outbox.c.notification_id == notification_id)
                .values(last_error=error)
            )

    def defer_notification(
        self, notification_id: int, note: str, until: datetime, parts_sent: int
    ) -> None:
        """Hand a notification back part-way (its pacing ran past a send):
        due again at ``until``, resuming after ``parts_sent``, the attempt
        not counted."""
        n = notifications.c
        with self._tx(write=True) as conn:
            conn.execute(
                update(notifications)
                .where(n.id == notification_id, n.status == NotificationStatus.SENDING.value)
                .values(
                    status=NotificationStatus.PENDING.value,
                    next_attempt_at=until,
                    attempts=case((n.attempts > 0, n.attempts - 1), else_=0),
                    lease_until=None,
                    parts_sent=parts_sent,
                    last_error=note,
                )
            )

    def mark_dead(self, notification_id: int, error: str, now: datetime) -> None:
        with self._tx(write=True) as conn:
            done = conn.execute(
                update(notifications)
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.status != NotificationStatus.SENT.value,
                )
                .values(
                    status=NotificationStatus.DEAD.value,
                    next_attempt_at=None,
                    last_error=error,
                    lease_until=None,
                )
            ).rowcount
            if done:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.notification_id == notification_id)
                    .values(status=OutboxStatus.DEAD.value, last_error=error)
                )

    def release_notifications(self, notification_ids: Sequence[int]) -> None:
        """Hand claimed notifications back untried (shutdown): the attempt is not counted."""
        ids = list(dict.fromkeys(notification_ids))
        if not ids:
            return
        n = notifications.c
        with self._tx(write=True, quick=True) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    update(notifications)
                    .where(n.id.in_(chunk), n.status == NotificationStatus.SENDING.value)
                    .values(
                        status=NotificationStatus.PENDING.value,
                        attempts=case((n.attempts > 0, n.attempts - 1), else_=0),
                        lease_until=None,
                    )
                )

    def renew_notifications(self, notification_ids: Sequence[int], lease_until: datetime) -> None:
        """Extend the leases of notifications still being sent."""
        ids = list(dict.fromkeys(notification_ids))
        if not ids:
            return
        n = notifications.c
        with self._tx(write=True, quick=True) as conn:
            for chunk in chunks(ids):
                conn.execute(
                    update(notifications)
                    .where(n.id.in_(chunk), n.status == NotificationStatus.SENDING.value)
                    .values(lease_until=lease_until)
                )

    def retry_dead(self, notification_ids: Sequence[int] | None, now: datetime) -> int:
        """Send dead notifications again, from scratch (attempts 0, due now)."""
        n = notifications.c
        dead = n.status == NotificationStatus.DEAD.value
        values = {
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
        }
        with self._tx(write=True) as conn:
            if notification_ids is None:
                ids = list(conn.execute(select(n.id).where(dead)).scalars())
            else:
                ids = []
                for chunk in chunks(list(dict.fromkeys(notification_ids))):
                    ids.extend(conn.execute(select(n.id).where(dead, n.id.in_(chunk))).scalars())
            for chunk in chunks(ids):
                conn.execute(update(notifications).where(n.id.in_(chunk)).values(values))
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.notification_id.in_(chunk),
                        outbox.c.status == OutboxStatus.DEAD.value,
                    )
                    .values(status=_QUEUED)
                )
        return len(ids)

    # --- listings

    def outbox(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxRow]:
        stmt = (
            select(
                outbox,
                articles.c.feed_key,
                articles.c.title,
                articles.c.link,
                notifications.c.attempts,
            )
            .select_from(
                outbox.join(articles, articles.c.id == outbox.c.article_id).outerjoin(
                    notifications, notifications.c.id == outbox.c.notification_id
                )
            )
            .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(outbox.c.status == OutboxStatus(status).value)
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_codec.outbox_row_from_row(r) for r in rows]

    def notifications(
        self, status: NotificationStatus | None = None, limit: int = 50
    ) -> list[NotificationRow]:
        stmt = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(notifications.c.status == NotificationStatus(status).value)
        with self._tx(write=False) as conn:
            heads = conn.execute(stmt).mappings().all()
            ids = [h["id"] for h in heads]
            titles: dict[int, list[tuple[str, str]]] = {}
            rules: dict[int, dict[str, None]] = {}
            for chunk in chunks(ids):
                q = (
                    select(
                        outbox.c.notification_id, outbox.c.rule, articles.c.title, articles.c.link
                    )
                    .select_from(outbox.join(articles, articles.c.id == outbox.c.article_id))
                    .where(outbox.c.notification_id.in_(chunk))
                    .order_by(outbox.c.id)
                )
                for nid, rule, title, link in conn.execute(q):
                    rules.setdefault(nid, {})[rule] = None
                    seen = titles.setdefault(nid, [])
                    if len(seen) < LISTING_TITLES and (title, link) not in seen:
                        seen.append((title, link))
        return [
            _codec.notification_row_from_row(
                h, tuple(titles.get(h["id"], ())), tuple(rules.get(h["id"], {}))
            )
            for h in heads
        ]

    def channel_counts(self) -> dict[str, ChannelCounts]:
        counts: dict[str, dict[str, int]] = {}
        errors: dict[str, str] = {}
        last_sent: dict[str, datetime] = {}
        with self._tx(write=False) as conn:
            stmt = (
                select(outbox.c.channel, outbox.c.status, func.count())
                .where(outbox.c.status.in_([_PENDING, _QUEUED, OutboxStatus.DEAD.value]))
                .group_by(outbox.c.channel, outbox.c.status)
            )
            for channel, status, count in conn.execute(stmt):
                counts.setdefault(channel, {})[status] = count
            latest = (
                select(notifications.c.channel, func.max(notifications.c.id).label("id"))
                .where(notifications.c.last_error.is_not(None))
                .group_by(notifications.c.channel)
                .subquery()
            )
            q = select(notifications.c.channel, notifications.c.last_error).join(
                latest, latest.c.id == notifications.c.id
            )
            errors = {channel: error for channel, error in conn.execute(q)}
            sent = (
                select(notifications.c.channel, func.max(notifications.c.sent_at))
                .where(notifications.c.status == NotificationStatus.SENT.value)
                .group_by(notifications.c.channel)
            )
            last_sent = {channel: at for channel, at in conn.execute(sent) if at is not None}
        names = set(counts) | set(errors) | set(last_sent)
        return {
            name: ChannelCounts(
                pending=counts.get(name, {}).get(_PENDING, 0),
                queued=counts.get(name, {}).get(_QUEUED, 0),
                dead=counts.get(name, {}).get(OutboxStatus.DEAD.value, 0),
                last_error=errors.get(name),
                last_sent_at=_codec_utc(last_sent.get(name)),
            )
            for name in sorted(names)
        }


def _codec_utc(value: object) -> datetime | None:
    """Aggregates (max) come back untyped on SQLite: make them aware UTC."""
    return aware_utc(value)


def _move(conn: Connection, row_ids: Sequence[int], target_id: str, now: datetime) -> None:
    """Re-target rows (throttled items into the rule's digest). A row whose
    (rule, story) the target already has is settled: that copy carries it."""
    for row_id in row_ids:
        row = conn.execute(
            select(outbox.c.rule, outbox.c.story_id, outbox.c.revision).where(outbox.c.id == row_id)
        ).first()
        if row is None:
            continue
        taken = conn.execute(
            select(outbox.c.id).where(
                outbox.c.rule == row.rule,
                outbox.c.target_id == target_id,
                outbox.c.story_id == row.story_id,
                outbox.c.revision == row.revision,
            )
        ).first()
        if taken is not None:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(
                    status=OutboxStatus.DROPPED.value,
                    last_error=f"carried by {target_id}",
                    hold_until=None,
                )
            )
            continue
        conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(target_id=target_id, mode="digest", hold_until=None, hold_reason="throttled")
        )


def _item_rows(conn: Connection, where: Any) -> list[Any]:
    """Outbox rows with their article and match, for building items."""
    stmt = (
        select(
            outbox.c.id.label("outbox_id"),
            outbox.c.notification_id,
            outbox.c.rule.label("outbox_rule"),
            outbox.c.story_id.label("outbox_story_id"),
            outbox.c.created_at.label("outbox_created_at"),
            outbox.c.revision.label("outbox_revision"),
            articles.c.id.label("article_id"),
            matches.c.explanation,
            matches.c.matched_at,
            *(articles.c[name] for name in ARTICLE_FIELDS),
        )
        .select_from(
            outbox.join(articles, articles.c.id == outbox.c.article_id).outerjoin(
                matches,
                and_(
                    matches.c.rule == outbox.c.rule,
                    matches.c.article_id == outbox.c.article_id,
                ),
            )
        )
        .where(where)
        .order_by(outbox.c.notification_id, outbox.c.created_at, outbox.c.id)
    )
    return list(conn.execute(stmt).mappings())


def _items(conn: Connection, notification_ids: Sequence[int]) -> dict[int, tuple[Item, ...]]:
    """Each notification's items (see ``build_items``)."""
    rows: list[Any] = []
    for chunk in chunks(list(notification_ids)):
        rows.extend(_item_rows(conn, outbox.c.notification_id.in_(chunk)))
    return build_items(conn, rows, lambda row: int(row["notification_id"]))


def build_items(
    conn: Connection, rows: Sequence[Any], group_of: Callable[[Any], int]
) -> dict[int, tuple[Item, ...]]:
    """Items per group: one per story, naming every rule of its rows, with
    the first row's article and explanation, and the story's other copies
    as ``also``."""
    lead_articles: dict[int, int] = {}
    grouped: dict[int, dict[int, list[Any]]] = {}
    for row in rows:
        grouped.setdefault(group_of(row), {}).setdefault(row["outbox_story_id"], []).append(row)
        lead_articles.setdefault(row["outbox_story_id"], row["article_id"])
    also = _also(conn, lead_articles)
    out: dict[int, tuple[Item, ...]] = {}
    for group, by_story in grouped.items():
        built = []
        for story_id, story_rows in by_story.items():
            first = story_rows[0]
            rules = tuple(dict.fromkeys(r["outbox_rule"] for r in story_rows))
            built.append(
                Item(
                    story_id=story_id,
                    article=_codec.article_from_row(first),
                    rules=rules,
                    explanation=_codec.explanation_from_json(first["explanation"])
                    if first["explanation"] is not None
                    else Explanation(),
                    # A route without a stored match (not expected) still gets sent.
                    matched_at=first["matched_at"] or first["outbox_created_at"],
                    also=also.get(story_id, ()),
                    outbox_ids=tuple(r["outbox_id"] for r in story_rows),
                    update=all(r["outbox_revision"] for r in story_rows),
                )
            )
        out[group] = tuple(built)
    return out


def _also(conn: Connection, lead_articles: dict[int, int]) -> dict[int, tuple[Outlet, ...]]:
    """The other outlets carrying each story, oldest first: one entry per
    outlet (feed name), none for the lead's own outlet or for a link the
    list has already (http and https are one link)."""
    story_ids = list(lead_articles)
    rows_of: dict[int, list[Any]] = {}
    for chunk in chunks(story_ids):
        stmt = (
            select(
                articles.c.id,
                articles.c.story_id,
                articles.c.source,
                articles.c.title,
                articles.c.link,
                articles.c.canonical_url,
                articles.c.published,
            )
            .where(articles.c.story_id.in_(chunk))
            .order_by(articles.c.story_id, articles.c.first_seen_at, articles.c.id)
        )
        for row in conn.execute(stmt):
            rows_of.setdefault(row.story_id, []).append(row)
    found: dict[int, tuple[Outlet, ...]] = {}
    for story_id, rows in rows_of.items():
        lead = next((r for r in rows if r.id == lead_articles[story_id]), None)
        links = {url_key(lead.canonical_url) or lead.canonical_url} if lead is not None else set()
        outlets = {lead.source} if lead is not None else set()
        listed: list[Outlet] = []
        for row in rows:
            link = url_key(row.canonical_url) or row.canonical_url
            if row.id == lead_articles[story_id] or link in links or row.source in outlets:
                continue
            if len(listed) >= ALSO_LIMIT:
                break
            links.add(link)
            outlets.add(row.source)
            listed.append(Outlet(row.source, row.title, row.link, row.published))
        if listed:
            found[story_id] = tuple(listed)
    return found


def _threads(
    conn: Connection, items: dict[int, tuple[Item, ...]], heads: dict[int, Any]
) -> dict[int, Thread]:
    """For each update notification (all its items updates), the first
    notification that carried its story's alert on the same channel."""
    out: dict[int, Thread] = {}
    for nid, its in items.items():
        if not its or not all(i.update for i in its) or nid not in heads:
            continue
        stmt = (
            select(notifications.c.key, notifications.c.thread_ref)
            .select_from(outbox.join(notifications, notifications.c.id == outbox.c.notification_id))
            .where(
                outbox.c.story_id == its[0].story_id,
                outbox.c.channel == heads[nid]["channel"],
                outbox.c.revision == 0,
                notifications.c.status == NotificationStatus.SENT.value,
            )
            .order_by(notifications.c.id)
            .limit(1)
        )
        row = conn.execute(stmt).first()
        if row is not None:
            out[nid] = Thread(key=row.key, ref=row.thread_ref)
    return out


def _notification(head: Any, items: Sequence[Item], thread: Thread | None = None) -> Notification:
    period = None
    if head["period_end"] is not None:
        period = Period(
            start=head["period_start"],
            end=head["period_end"],
            schedule=head["schedule"] or "",
            late=bool(head["late"]),
        )
    return Notification(
        id=head["id"],
        key=head["key"],
        channel=head["channel"],
        kind=NotificationKind(head["kind"]),
        items=tuple(items),
        created_at=head["created_at"],
        attempt=head["attempts"],
        period=period,
        reason=head["reason"],
        more=head["more"],
        parts_sent=head["parts_sent"],
        thread=thread,
    )
