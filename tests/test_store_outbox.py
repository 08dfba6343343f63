"""The store contract for delivery: the outbox, notifications, digest
periods, locks and mutes, on real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from newswatch.keys import group_key
from newswatch.model import DeliveryMode, NotificationKind, Route
from newswatch.store import (
    Compose,
    DigestTarget,
    DropRows,
    HoldRows,
    MoveRows,
    NotificationStatus,
    OutboxStatus,
    SqlStore,
)
from store_helpers import (
    DAY,
    EXPLANATION,
    MIN,
    T0,
    article,
    claim,
    compose_each,
    ingest,
    item,
    race,
)


def compose_all(store: SqlStore, at: object = T0, channel: str = "slack") -> int:
    """Every pending immediate row of ``channel`` into one notification."""
    rows = [r for r in store.pending_due(T0 + 1000 * DAY, 10_000) if r.channel == channel]
    ids = tuple(r.id for r in rows)
    kind = NotificationKind.GROUP if len(ids) > 1 else NotificationKind.ALERT
    [nid] = store.apply([Compose(channel, kind, ids, group_key(channel, ids))], T0)
    return nid


# --- composing


def test_pending_due_returns_whole_targets_that_have_a_due_row(store: SqlStore) -> None:
    ingest(store, [item(article("e1")), item(article("e2"), channels=("email",))])
    rows = store.pending_due(T0, 100)
    assert sorted((r.channel, r.target_id, r.rule) for r in rows) == [
        ("email", "email:immediate", "r1"),
        ("slack", "slack:immediate", "r1"),
    ]
    slack = [r.id for r in rows if r.channel == "slack"]
    store.apply([HoldRows(tuple(slack), T0 + MIN, "group")], T0)
    # A held target is not due until its hold ends ...
    assert {r.channel for r in store.pending_due(T0, 100)} == {"email"}
    # ... unless a new row arrives: then all its rows come back for a decision.
    ingest(store, [item(article("e3"))], at=T0 + MIN / 2)
    due = store.pending_due(T0 + MIN / 2, 100)
    assert sorted(r.id for r in due if r.channel == "slack") == sorted(
        [*slack, max(r.id for r in due)]
    )
    held = next(r for r in due if r.id == slack[0])
    assert (held.hold_until, held.hold_reason) == (T0 + MIN, "group")
    # Digest rows are never returned: the digest job takes them.
    ingest(store, [item(article("e4"), mode=DeliveryMode.DIGEST)], at=T0)
    assert all(r.target_id.endswith(":immediate") for r in store.pending_due(T0 + DAY, 100))


def test_compose_makes_one_notification_per_story_set(store: SqlStore) -> None:
    ingest(store, [item(article("e1"), rules=("r1", "r2")), item(article("e2"))])
    nid = compose_all(store)
    [n] = claim(store, T0)
    assert n.id == nid and n.kind is NotificationKind.GROUP
    assert [(i.article.entry_key, i.rules) for i in n.items] == [
        ("e1", ("r1", "r2")),
        ("e2", ("r1",)),
    ]
    assert n.items[0].explanation == EXPLANATION
    assert {r.status for r in store.outbox()} == {OutboxStatus.QUEUED}
    [listed] = store.notifications()
    assert (listed.items, listed.rules, listed.attempts) == (2, ("r1", "r2"), 1)
    assert [link for _, link in listed.titles] == [
        "https://example.com/e1",
        "https://example.com/e2",
    ]


def test_the_same_rows_are_composed_once_when_replicas_race(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    ingest(stores[0], [item(article(f"e{i}")) for i in range(20)])
    rows = stores[0].pending_due(T0, 100)
    ids = tuple(r.id for r in rows)
    decision = Compose("slack", NotificationKind.GROUP, ids, group_key("slack", ids))

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        return lambda: list(s.apply([decision], T0))

    made = race([worker(s) for s in stores])
    assert len(made) == 1
    [n] = claim(stores[0], T0)
    assert len(n.items) == 20


def test_hold_move_and_drop(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}")) for i in range(4)])
    ingest(store, [item(article("e0"), mode=DeliveryMode.DIGEST, channels=("slack",))])
    a, b, c, d = (r.id for r in store.pending_due(T0, 100))
    digest = "slack:digest:0 8 * * *"
    store.apply(
        [
            HoldRows((a,), T0 + 5 * MIN, "quiet hours"),
            MoveRows((b, c), digest),
            DropRows((d,), "dropped: rule r1 muted"),
        ],
        T0,
    )
    rows = {r.id: r for r in store.outbox(limit=10)}
    assert (rows[a].status, rows[a].hold_until, rows[a].hold_reason) == (
        OutboxStatus.PENDING,
        T0 + 5 * MIN,
        "quiet hours",
    )
    assert rows[b].target_id == digest and rows[b].status is OutboxStatus.PENDING
    assert rows[c].target_id == digest
    assert (rows[d].status, rows[d].last_error) == (OutboxStatus.DROPPED, "dropped: rule r1 muted")
    # Moving a row whose story the target already has settles it instead.
    store.apply([MoveRows((a,), "slack:digest:0 8 * * *")], T0)
    assert {r.id: r for r in store.outbox(limit=10)}[a].target_id == digest
    ingest(store, [item(article("e9"))])
    [e9] = [r.id for r in store.pending_due(T0, 100) if r.target_id == "slack:immediate"]
    store.apply([MoveRows((e9,), digest)], T0)
    assert {r.id: r for r in store.outbox(limit=20)}[e9].target_id == digest


def test_moving_into_a_target_that_has_the_story_settles_the_row(store: SqlStore) -> None:
    """A rule that sends a channel both alerts and a digest has two rows per
    story; a throttled alert moved into the digest is carried by its row."""
    both = item(article("e1"))
    both = dataclasses.replace(
        both, routes=(*both.routes, Route("r1", "slack", DeliveryMode.DIGEST))
    )
    ingest(store, [both])
    [immediate] = store.pending_due(T0, 100)
    [digest_row] = [r for r in store.outbox() if r.target_id == "slack:digest"]
    store.apply([MoveRows((immediate.id,), digest_row.target_id)], T0)
    moved = {r.id: r for r in store.outbox()}[immediate.id]
    assert moved.status is OutboxStatus.DROPPED
    assert moved.last_error == "carried by slack:digest"


def test_recent_sends_count_composed_rows_but_not_throttle_summaries(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}")) for i in range(3)])
    rows = store.pending_due(T0, 100)
    store.apply([HoldRows((rows[2].id,), T0 + MIN, "throttle 2/1h")], T0)
    for r in rows[:2]:
        store.apply([Compose("slack", NotificationKind.ALERT, (r.id,), f"k{r.id}")], T0 + MIN)
    store.apply([Compose("slack", NotificationKind.SUMMARY, (rows[2].id,), "ks")], T0 + 2 * MIN)
    sends = store.recent_sends([("r1", "slack:immediate")], T0)
    assert sends == {("r1", "slack:immediate"): [T0 + MIN, T0 + MIN]}
    assert store.recent_sends([("r1", "slack:immediate")], T0 + 90 * MIN) == {
        ("r1", "slack:immediate"): []
    }


# --- delivering


def test_notification_lifecycle_retry_dead_and_sent(store: SqlStore) -> None:
    ingest(store, [item(article("e1"))])
    compose_all(store)
    [n] = claim(store, T0)
    store.mark_retry(n.id, "HTTP 503", T0, T0 + 5 * MIN, parts_sent=2)
    [listed] = store.notifications()
    assert (listed.status, listed.attempts, listed.last_error) == (
        NotificationStatus.PENDING,
        1,
        "HTTP 503",
    )
    assert [r.last_error for r in store.outbox()] == ["HTTP 503"]
    assert claim(store, T0 + 4 * MIN) == []  # backing off
    [n] = claim(store, T0 + 5 * MIN)
    assert (n.attempt, n.parts_sent) == (2, 2)  # a retry resumes after accepted parts
    store.mark_dead(n.id, "HTTP 404", T0 + 5 * MIN)
    [listed] = store.notifications(NotificationStatus.DEAD)
    assert (listed.attempts, listed.last_error) == (2, "HTTP 404")
    assert [r.status for r in store.outbox()] == [OutboxStatus.DEAD]
    assert claim(store, T0 + 60 * MIN) == []

    assert store.retry_dead(None, T0 + 60 * MIN) == 1
    assert store.retry_dead(None, T0 + 60 * MIN) == 0
    assert [r.status for r in store.outbox()] == [OutboxStatus.QUEUED]
    [n] = claim(store, T0 + 60 * MIN)
    assert n.attempt == 1
    store.mark_sent(n.id, T0 + 61 * MIN, parts_sent=3)
    # A late retry from a worker whose lease had run out cannot undo "sent".
    store.mark_retry(n.id, "late", T0 + 62 * MIN, T0 + 63 * MIN)
    store.mark_dead(n.id, "late", T0 + 62 * MIN)
    [listed] = store.notifications(NotificationStatus.SENT)
    assert listed.sent_at == T0 + 61 * MIN
    assert [r.status for r in store.outbox()] == [OutboxStatus.SENT]
    assert claim(store, T0 + 120 * MIN) == []


def test_retry_dead_by_id(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}")) for i in range(3)])
    compose_each(store, T0)
    ns = claim(store, T0)
    for n in ns:
        store.mark_dead(n.id, "rejected", T0)
    assert store.retry_dead([ns[0].id, ns[1].id, 999], T0) == 2
    assert store.retry_dead([], T0) == 0
    assert [n.id for n in store.notifications(NotificationStatus.DEAD)] == [ns[2].id]


def test_crashed_sender_notifications_are_reclaimed_after_lease(store: SqlStore) -> None:
    ingest(store, [item(article("e1"))])
    compose_all(store)
    [n] = store.claim_notifications(T0, T0 + MIN, 10)
    # The worker dies without marking anything.
    assert store.claim_notifications(T0 + MIN / 2, T0 + 2 * MIN, 10) == []
    [again] = store.claim_notifications(T0 + 2 * MIN, T0 + 3 * MIN, 10)
    assert (again.id, again.attempt, again.key) == (n.id, 2, n.key)


def test_renewed_leases_are_not_reclaimed(store: SqlStore) -> None:
    ingest(store, [item(article("e1"))])
    compose_all(store)
    [n] = store.claim_notifications(T0, T0 + MIN, 10)
    store.renew_notifications([n.id], T0 + 5 * MIN)
    assert store.claim_notifications(T0 + 2 * MIN, T0 + 3 * MIN, 10) == []
    assert len(store.claim_notifications(T0 + 6 * MIN, T0 + 7 * MIN, 10)) == 1


def test_release_does_not_count_the_attempt(store: SqlStore) -> None:
    ingest(store, [item(article("e1")), item(article("e2"))])
    compose_each(store, T0)
    ns = claim(store, T0)
    store.release_notifications([n.id for n in ns])
    assert {(n.status, n.attempts) for n in store.notifications()} == {
        (NotificationStatus.PENDING, 0)
    }
    assert [n.attempt for n in claim(store, T0)] == [1, 1]


def test_claims_are_limited_and_oldest_first(store: SqlStore) -> None:
    ingest(store, [item(article("old"))], at=T0)
    ingest(store, [item(article("new"))], at=T0 + MIN)
    first, second = (r.id for r in store.pending_due(T0 + MIN, 10))
    store.apply([Compose("slack", NotificationKind.ALERT, (second,), "k2")], T0 + MIN)
    store.apply([Compose("slack", NotificationKind.ALERT, (first,), "k1")], T0)
    assert [n.items[0].article.entry_key for n in claim(store, T0 + MIN, limit=1)] == ["old"]
    assert [n.items[0].article.entry_key for n in claim(store, T0 + MIN, limit=5)] == ["new"]


def test_concurrent_notification_claims_never_overlap(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    ingest(stores[0], [item(article(f"e{i:02}")) for i in range(40)])
    compose_each(stores[0], T0)

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        def claim_all() -> list[str | int]:
            got: list[str | int] = []
            while batch := s.claim_notifications(T0, T0 + MIN, 3):
                got.extend(n.id for n in batch)
            return got

        return claim_all

    claimed = race([worker(s) for s in stores for _ in range(2)])
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


def test_items_list_the_other_outlets_of_their_story(store: SqlStore) -> None:
    ingest(store, [item(article("y1", feed="yonhap", story="s1", source="Yonhap"))], feed="yonhap")
    herald = article("kh1", feed="herald", story="s1", source="Korea Herald")
    times = article("kt1", feed="times", story="s1", source="Korea Times")
    times = times.__class__(
        **{
            **{f: getattr(times, f) for f in times.__dataclass_fields__},
            "link": "https://koreatimes.co.kr/s1",
            "canonical_url": "https://example.com/s1",
        }
    )
    ingest(store, [item(herald)], feed="herald")
    ingest(store, [item(times)], feed="times")
    compose_all(store)
    [n] = claim(store, T0)
    [only] = n.items
    assert only.article.source == "Yonhap"
    # Copies with the same canonical URL are the same page; the story's
    # other articles list as outlets (the Korea Times link shown as its own).
    assert [o.source for o in only.also] == []
    assert len(only.outbox_ids) == 1


def test_channel_counts(store: SqlStore) -> None:
    ingest(store, [item(article(f"e{i}"), channels=("slack", "email")) for i in range(3)])
    compose_each(store, T0)
    ns = claim(store, T0)
    email = [n for n in ns if n.channel == "email"]
    store.mark_dead(email[0].id, "550 no such user", T0)
    store.mark_sent(email[1].id, T0 + MIN)
    counts = store.channel_counts()
    assert counts["email"].dead == 1
    assert counts["email"].queued == 1
    assert counts["email"].last_error == "550 no such user"
    assert counts["email"].last_sent_at == T0 + MIN
    assert counts["slack"].queued == 3 and counts["slack"].dead == 0


# --- digests


DIGEST = DigestTarget("email:digest:0 8 * * *", "email", "daily 08:00", ("email:digest:0 8 * * *",))


def digest_rows(store: SqlStore, n: int, at: object = T0) -> None:
    routes_item = [
        item(article(f"d{i}"), rules=("r1", "r2"), channels=("email",), mode=DeliveryMode.DIGEST)
        for i in range(n)
    ]
    ingest(store, routes_item)
    with store.engine.begin() as conn:
        from newswatch.store.schema import outbox

        conn.execute(outbox.update().values(target_id=DIGEST.key))


def compose_digest(store: SqlStore, **changes: object) -> object:
    args: dict[str, object] = {
        "period_start": T0 - DAY,
        "period_end": T0 + MIN,
        "cutoff": T0 + MIN,
        "now": T0 + MIN,
        "late": False,
        "max_items": 200,
        "send_empty": False,
        **changes,
    }
    return store.compose_digest(DIGEST, **args)  # type: ignore[arg-type]


def test_a_digest_period_is_composed_once(store: SqlStore) -> None:
    digest_rows(store, 3)
    outcome = compose_digest(store)
    assert outcome.done_before is False and outcome.items == 3  # type: ignore[attr-defined]
    assert compose_digest(store).done_before is True  # type: ignore[attr-defined]
    assert store.last_period_end(DIGEST.key) == T0 + MIN
    [n] = claim(store, T0 + MIN)
    assert n.kind is NotificationKind.DIGEST
    assert n.period is not None and n.period.end == T0 + MIN and n.period.schedule == "daily 08:00"
    assert [i.rules for i in n.items] == [("r1", "r2")] * 3  # each story once, naming its rules


def test_digest_period_race_between_replicas_sends_once(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    stores = open_stores(4)
    digest_rows(stores[0], 5)

    def worker(s: SqlStore) -> Callable[[], list[str | int]]:
        return lambda: list(compose_digest(s).notifications)  # type: ignore[attr-defined]

    made = race([worker(s) for s in stores])
    assert len(made) == 1


def test_digest_takes_rows_before_its_cutoff_splits_and_skips_muted_rules(
    store: SqlStore,
) -> None:
    digest_rows(store, 5)
    ingest(
        store,
        [item(article("late"), rules=("r3",), channels=("email",), mode=DeliveryMode.DIGEST)],
        at=T0 + 2 * MIN,
    )
    with store.engine.begin() as conn:
        from newswatch.store.schema import outbox

        conn.execute(outbox.update().values(target_id=DIGEST.key))
    outcome = compose_digest(store, max_items=2, exclude_rules=["r2"])
    assert outcome.items == 5  # type: ignore[attr-defined]
    assert len(outcome.notifications) == 3  # type: ignore[attr-defined]  # 2 + 2 + 1 stories
    rows = store.outbox(limit=50)
    assert {r.rule for r in rows if r.status is OutboxStatus.PENDING} == {"r2", "r3"}
    keys = {n.key for n in claim(store, T0 + MIN)}
    assert len(keys) == 3


def test_empty_digest_is_recorded_and_only_sent_when_asked(store: SqlStore) -> None:
    outcome = compose_digest(store)
    assert outcome.notifications == () and outcome.done_before is False  # type: ignore[attr-defined]
    assert store.last_period_end(DIGEST.key) == T0 + MIN
    outcome = compose_digest(store, period_end=T0 + DAY, send_empty=True)
    assert len(outcome.notifications) == 1  # type: ignore[attr-defined]
    [n] = claim(store, T0 + DAY)
    assert n.items == ()


# --- locks and mutes


def test_locks_are_leases(store: SqlStore) -> None:
    assert store.acquire_lock("retention", "a", T0, T0 + MIN)
    assert not store.acquire_lock("retention", "b", T0, T0 + MIN)
    assert store.acquire_lock("retention", "a", T0, T0 + 2 * MIN)  # renew
    assert store.acquire_lock("retention", "b", T0 + 3 * MIN, T0 + 4 * MIN)  # expired
    store.release_lock("retention", "a")  # not the owner: nothing
    assert not store.acquire_lock("retention", "a", T0 + 3 * MIN, T0 + 4 * MIN)
    store.release_lock("retention", "b")
    assert store.acquire_lock("retention", "a", T0 + 3 * MIN, T0 + 4 * MIN)


def test_mutes(store: SqlStore) -> None:
    m = store.add_mute("rule", "r1", T0, T0 + 60 * MIN, comment="drill")
    store.add_mute("channel", "slack", T0, T0 + 10 * MIN, drop=True)
    assert [(x.kind, x.name) for x in store.mutes(T0)] == [("channel", "slack"), ("rule", "r1")]
    assert [x.name for x in store.mutes(T0 + 30 * MIN)] == ["r1"]
    assert store.end_mute(m.id, T0 + 31 * MIN)
    assert not store.end_mute(m.id, T0 + 31 * MIN)
    assert store.mutes(T0 + 32 * MIN) == []
    assert len(store.mutes(T0 + 32 * MIN, include_ended=True)) == 2
    with pytest.raises(ValueError, match="rule or a channel"):
        store.add_mute("feed", "x", T0, T0 + MIN)
