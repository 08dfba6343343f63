"""Digests over simulated weeks: an injected clock crossing DST changes, the
digest job waking at irregular times, restarts, and a daemon that was down.

Each run uses a real SQLite store and the real digest job
(``notify.digests.run_digests``); "delivery" claims and marks notifications
sent. What must hold: one digest per period at the right wall-clock time,
every item in exactly one digest, nothing sent twice across restarts, and a
digest missed while down sent once, late.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newswatch.config import NotifyTarget, RuleConfig
from newswatch.model import Match, NotificationKind
from newswatch.notify.digests import LATE_AFTER, run_digests, send_now
from newswatch.notify.targets import Targets
from newswatch.store import FeedUpdate, IngestItem, SqlStore, open_store
from notify_samples import article, explanation

RULE = "russia-north-korea"
MIN = timedelta(minutes=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def targets(zone: str, *schedules: str) -> Targets:
    notify = tuple(NotifyTarget(channel="desk", digest=s) for s in schedules)
    return Targets.from_rules(
        [RuleConfig(name=RULE, query="x", notify=notify)], {"desk": "email"}, ZoneInfo(zone)
    )


def add_match(store: SqlStore, t: Targets, n: int, at: datetime) -> None:
    a = article(
        entry_key=f"e{n}",
        story_key=f"s{n}",
        title=f"Story {n}",
        link=f"https://example.org/{n}",
        canonical_url=f"https://example.org/{n}",
    )
    match = Match(RULE, a, explanation())
    update = FeedUpdate(a.feed_key, at, at + timedelta(minutes=10), ok=True)
    store.ingest(update, [IngestItem(a, (match,), t.routes(match, at))])


def deliver_all(store: SqlStore, at: datetime) -> list[tuple[datetime, datetime, bool, set[str]]]:
    """Claim and 'send' every due notification: (period end, composed at, late, items)."""
    out = []
    for n in store.claim_notifications(at, at + MIN, 1000):
        assert n.kind is NotificationKind.DIGEST and n.period is not None
        out.append((n.period.end, at, n.period.late, {i.article.title for i in n.items}))
        store.mark_sent(n.id, at)
    return out


def simulate(
    store: SqlStore,
    t: Targets,
    start: datetime,
    days: int,
    rng: random.Random,
    *,
    down: tuple[datetime, datetime] | None = None,
) -> tuple[list[tuple[datetime, datetime, bool, set[str]]], set[str]]:
    """Wake the digest job at random 1-13 minute steps (a restart whenever it
    wants: the job keeps nothing in memory), add a match every ~40 minutes."""
    now = start
    end = start + timedelta(days=days)
    sent: list[tuple[datetime, datetime, bool, set[str]]] = []
    added: set[str] = set()
    n = 0
    next_match = start
    while now < end:
        if now >= next_match:
            add_match(store, t, n, now)
            added.add(f"Story {n}")
            n += 1
            next_match = now + timedelta(minutes=rng.randint(20, 60))
        if down is None or not (down[0] <= now < down[1]):
            run_digests(store, t, [], now, max_items=1000, send_empty=False)
            sent.extend(deliver_all(store, now))
        now += timedelta(minutes=rng.randint(1, 13), seconds=rng.randint(0, 59))
    return sent, added


def local_days(sent: list[tuple[datetime, datetime, bool, set[str]]], zone: ZoneInfo) -> list[str]:
    return [end.astimezone(zone).strftime("%Y-%m-%d %H:%M") for end, _, _, _ in sent]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", datetime(2026, 3, 25, 12, 0, tzinfo=UTC)),  # spring forward 03-29
        ("Europe/Berlin", datetime(2026, 10, 21, 12, 0, tzinfo=UTC)),  # fall back 10-25
        ("America/New_York", datetime(2026, 3, 5, 12, 0, tzinfo=UTC)),  # spring forward 03-08
        ("America/New_York", datetime(2026, 10, 29, 12, 0, tzinfo=UTC)),  # fall back 11-01
        ("Asia/Seoul", datetime(2026, 3, 25, 12, 0, tzinfo=UTC)),  # no DST
    ],
)
def test_a_daily_digest_goes_out_once_per_local_day_at_its_time(
    store: SqlStore, zone: str, start: datetime
) -> None:
    tz = ZoneInfo(zone)
    t = targets(zone, "daily 08:00")
    sent, added = simulate(store, t, start, 7, random.Random(zone + start.isoformat()))
    # Every 08:00 on the local wall clock in the week, worked out by hand
    # (08:00 exists once every day, DST or not), each sent once.
    first_day = start.astimezone(tz).date()
    expected = []
    for offset in range(9):
        local = datetime.combine(
            first_day + timedelta(days=offset), datetime.min.time(), tzinfo=tz
        ).replace(hour=8)
        if start < local.astimezone(UTC) < start + timedelta(days=7):
            expected.append(local.strftime("%Y-%m-%d %H:%M"))
    assert local_days(sent, tz) == expected
    # Each was composed within one tick of its fire time, never before it,
    # and marked late only when that tick came long after it.
    for end, composed, late, _ in sent:
        assert end <= composed < end + 14 * MIN
        assert late == (composed - end > LATE_AFTER)
    # Every item is in exactly one digest; none is lost (the last day's tail
    # waits for the next morning).
    seen = [title for *_, items in sent for title in items]
    assert len(seen) == len(set(seen))
    pending = {r.title for r in store.outbox(limit=10_000) if r.status.value == "pending"}
    assert set(seen) | pending == added


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
def test_a_0230_berlin_digest_goes_out_once_on_each_change_day(store: SqlStore, day: str) -> None:
    tz = ZoneInfo("Europe/Berlin")
    t = targets("Europe/Berlin", "daily 02:30")
    change = datetime.fromisoformat(day).replace(tzinfo=tz)
    start = (change - timedelta(days=1)).astimezone(UTC)
    sent, _ = simulate(store, t, start, 3, random.Random(day))
    on_the_day = [end for end, *_ in sent if end.astimezone(tz).date() == change.date()]
    assert len(on_the_day) == 1
    local = on_the_day[0].astimezone(tz)
    # Spring forward: 02:30 does not exist; it fires at 03:00 (CEST).
    # Fall back: 02:30 happens twice; it fires at the first (CEST).
    assert (local.hour, local.minute) == ((3, 0) if day.endswith("03-29") else (2, 30))
    assert local.utcoffset() == timedelta(hours=2)


def test_a_daemon_down_at_digest_time_sends_one_late_digest_with_everything(
    store: SqlStore,
) -> None:
    tz = ZoneInfo("Asia/Seoul")
    t = targets("Asia/Seoul", "daily 08:00")
    start = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # 09:00 Seoul
    down = (start + timedelta(days=1), start + timedelta(days=3, hours=5))
    sent, added = simulate(store, t, start, 5, random.Random(7), down=down)
    late = [s for s in sent if s[1] - s[0] > timedelta(hours=1)]
    assert len(late) == 1  # not one per missed morning
    assert late[0][2]  # marked late
    end, composed, _, items = late[0]
    assert composed - end > LATE_AFTER
    assert end.astimezone(tz).strftime("%H:%M") == "08:00"
    # It carries every item that arrived while the daemon was down.
    assert len(items) > 40
    mornings = [e.astimezone(tz).date() for e, *_ in sent]
    assert len(mornings) == len(set(mornings))
    seen = [title for *_, its in sent for title in its]
    assert len(seen) == len(set(seen))
    pending = {r.title for r in store.outbox(limit=10_000) if r.status.value == "pending"}
    assert set(seen) | pending == added


def test_send_now_counts_as_the_upcoming_period(store: SqlStore) -> None:
    t = targets("Asia/Seoul", "daily 08:00")
    now = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)  # 10:00 Seoul
    add_match(store, t, 1, now)
    run_digests(store, t, [], now, max_items=100, send_empty=False)  # today's 08:00: empty
    [(digest, outcome)] = send_now(store, t, "desk", now + MIN, max_items=100)
    assert outcome.items == 1 and len(outcome.notifications) == 1
    tomorrow = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # 08:00 Seoul
    add_match(store, t, 2, now + 2 * MIN)
    done = run_digests(store, t, [], tomorrow, max_items=100, send_empty=False)
    assert [o.done_before for _, o in done] == []  # tomorrow's period was sent already
    # The item that came after send-now waits for the morning after.
    later = run_digests(store, t, [], tomorrow + timedelta(days=1), max_items=100, send_empty=False)
    assert [o.items for _, o in later] == [1]
    assert digest.channel == "desk"


def test_an_empty_period_sends_nothing_unless_asked(store: SqlStore) -> None:
    t = targets("UTC", "daily 08:00")
    at = datetime(2026, 5, 1, 8, 0, 30, tzinfo=UTC)
    [(_, outcome)] = run_digests(store, t, [], at, max_items=100, send_empty=False)
    assert outcome.notifications == ()
    next_day = at + timedelta(days=1)
    [(_, outcome)] = run_digests(store, t, [], next_day, max_items=100, send_empty=True)
    assert len(outcome.notifications) == 1


def test_a_muted_channels_digest_waits_and_the_next_one_collects_everything(
    store: SqlStore,
) -> None:
    from newswatch.store import Mute

    t = targets("UTC", "daily 08:00")
    day1 = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
    add_match(store, t, 1, day1)
    muted = [Mute(1, "channel", "desk", day1, day1 + timedelta(hours=5))]
    assert (
        run_digests(
            store, t, muted, day1 + timedelta(hours=1, seconds=5), max_items=100, send_empty=False
        )
        == []
    )
    add_match(store, t, 2, day1 + timedelta(hours=6))
    [(_, outcome)] = run_digests(
        store, t, [], day1 + timedelta(days=1, hours=1, seconds=5), max_items=100, send_empty=False
    )
    assert outcome.items == 2 and not outcome.done_before
