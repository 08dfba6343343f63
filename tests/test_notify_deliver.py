"""The delivery loop end to end: outbox rows in real SQLite stores (a file and
the in-memory database), real SMTP and HTTP servers.

The clock is a fake that tests advance, so retries, group windows and holds
are due when the test says so.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedserver import FeedServer, hook_reply
from newswatch.config import EmailChannelConfig, NotifyTarget, RuleConfig, WebhookChannelConfig
from newswatch.model import DeliveryResult, Match, Notification, NotificationKind
from newswatch.notify.channels import Channel, ChannelContext, ConsoleChannel, EmailChannel
from newswatch.notify.channels.webhook import WebhookChannel
from newswatch.notify.deliver import Deliverer, DeliveryStats
from newswatch.notify.retry import MAX_ATTEMPTS, MAX_DELAY
from newswatch.notify.targets import Targets
from newswatch.store import (
    FeedUpdate,
    IngestItem,
    NotificationRow,
    NotificationStatus,
    OutboxStatus,
    SqlStore,
    open_store,
)
from notify_samples import T0, article, explanation
from smtpserver import SmtpServer

TOKEN = "XXXXsecretTOKENXXXX"
RULE = "russia-north-korea"
LATER = MAX_DELAY + timedelta(minutes=1)  # past any backoff without Retry-After
HOOK = f"/hooks/{TOKEN}"
SEOUL = "Asia/Seoul"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class ScriptedChannel:
    """A channel answering from a script (last answer repeats); for the few
    cases no real service can stage cheaply (thirty-odd failures in a row)."""

    kind = "scripted"

    def __init__(
        self, name: str, results: Sequence[DeliveryResult | Exception], *, delay: float = 0.0
    ) -> None:
        self.name = name
        self.results = list(results)
        self.delay = delay
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> DeliveryResult:
        self.sent.append(notification)
        await asyncio.sleep(self.delay)
        result = self.results[min(len(self.sent), len(self.results)) - 1]
        if isinstance(result, Exception):
            raise result
        return result

    def describe(self) -> str:
        return f"scripted {self.name}"

    async def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "file" else "sqlite://"
    s = open_store(url)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hooks() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.route(HOOK, hook_reply())
        yield server


def targets(channels: Sequence[str], **policy: str) -> Targets:
    notify = tuple(NotifyTarget(channel=ch, **policy) for ch in channels)  # type: ignore[arg-type]
    from zoneinfo import ZoneInfo

    rule = RuleConfig(name=RULE, query="x", notify=notify)
    return Targets.from_rules([rule], {}, ZoneInfo(SEOUL))


def enqueue(
    store: SqlStore, clock: Clock, t: Targets, *, stories: int = 1, first: int = 0
) -> list[int]:
    """Ingest ``stories`` matched articles routed by ``t``; return all outbox ids."""
    items = []
    for n in range(first, first + stories):
        art = article(
            entry_key=f"entry-{n}",
            story_key=f"story-{n}",
            title=f"Story {n}: Russia and North Korea",
            link=f"https://www.koreaherald.com/view.php?ud={n}",
            canonical_url=f"https://www.koreaherald.com/view.php?ud={n}",
        )
        match = Match(RULE, art, explanation())
        items.append(IngestItem(art, (match,), t.routes(match, clock())))
    feed = items[0].article.feed_key
    update = FeedUpdate(feed, clock(), clock() + timedelta(minutes=10), ok=True)
    store.ingest(update, items)
    return sorted(row.id for row in store.outbox(limit=1000))


def rows(store: SqlStore) -> dict[int, Any]:
    return {row.id: row for row in store.outbox(limit=1000)}


def notes(store: SqlStore) -> list[NotificationRow]:
    return store.notifications(limit=1000)


def deliverer(
    store: SqlStore, channels: dict[str, Any], clock: Clock, t: Targets, **options: Any
) -> Deliverer:
    return Deliverer(store, channels, targets=t, clock=clock, rng=random.Random(5), **options)


def email_channel(smtp: SmtpServer) -> EmailChannel:
    cfg = EmailChannelConfig.model_validate(
        {
            "type": "email",
            "to": ["desk@example.org"],
            "smtp": {"host": smtp.host, "port": smtp.port, "starttls": False, "timeout": "2s"},
        }
    )
    return EmailChannel("desk-email", cfg, clock=lambda: T0)


def webhook_channel(server: FeedServer, http: httpx.AsyncClient) -> WebhookChannel:
    cfg = WebhookChannelConfig.model_validate({"type": "webhook", "url": server.url(HOOK)})
    return WebhookChannel("desk-hook", cfg, ChannelContext(http=http, clock=lambda: T0))


NOW = {"group_wait": "0s"}


# --------------------------------------------------------------------------- retries


async def test_smtp_down_then_up_sends_exactly_one_email(store: SqlStore, clock: Clock) -> None:
    smtp = SmtpServer()  # port reserved; the server is down
    t = targets(["desk-email"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"desk-email": email_channel(smtp)}, clock, t)

    assert await loop.deliver_due() == DeliveryStats(retried=1, composed=1)
    [n] = notes(store)
    assert (n.status, n.attempts) == (NotificationStatus.PENDING, 1)
    assert f"smtp 127.0.0.1:{smtp.port}" in (n.last_error or "")
    assert n.next_attempt_at is not None and n.next_attempt_at > clock()
    assert await loop.deliver_due() == DeliveryStats()  # not due yet

    with smtp:
        clock.advance(LATER)
        assert await loop.deliver_due() == DeliveryStats(sent=1)
        clock.advance(LATER)
        assert await loop.drain() == DeliveryStats()
        assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"].startswith("[newswatch] russia-north-korea: Story 0")
    assert [r.status for r in rows(store).values()] == [OutboxStatus.SENT]


async def test_webhook_500_500_200_delivers_exactly_once(
    store: SqlStore, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.sequence(HOOK, [hook_reply(500), hook_reply(500), hook_reply(200)])
    t = targets(["desk-hook"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock, t)
    total = DeliveryStats()
    for _ in range(5):
        total += await loop.deliver_due()
        clock.advance(LATER)
    assert total == DeliveryStats(sent=1, retried=2, composed=1)
    assert len(hooks.requests) == 3
    # A retry resends the same notification with the same idempotency key.
    assert len({r.headers["idempotency-key"] for r in hooks.requests}) == 1
    assert len({r.body for r in hooks.requests}) <= 3
    [n] = notes(store)
    assert (n.status, n.attempts) == (NotificationStatus.SENT, 3)


async def test_retry_after_sets_the_next_attempt(
    store: SqlStore, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.sequence(HOOK, [hook_reply(429, {"Retry-After": "7200"}), hook_reply(200)])
    t = targets(["desk-hook"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock, t)
    assert await loop.deliver_due() == DeliveryStats(retried=1, composed=1)
    [n] = notes(store)
    assert n.next_attempt_at is not None and n.next_attempt_at >= clock() + timedelta(hours=2)
    clock.advance(LATER)  # past the backoff, not past Retry-After
    assert await loop.deliver_due() == DeliveryStats()
    clock.advance(timedelta(hours=2))
    assert await loop.deliver_due() == DeliveryStats(sent=1)


async def test_permanent_failure_is_a_dead_letter_with_its_error(
    store: SqlStore, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(404, body="no such hook"))
    t = targets(["desk-hook"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock, t)
    assert await loop.drain() == DeliveryStats(dead=1, composed=1)
    [n] = notes(store)
    assert n.status is NotificationStatus.DEAD
    assert "HTTP 404" in (n.last_error or "") and TOKEN not in (n.last_error or "")
    assert [r.status for r in rows(store).values()] == [OutboxStatus.DEAD]
    clock.advance(timedelta(days=1))
    assert await loop.drain() == DeliveryStats()
    assert len(hooks.requests) == 1
    # Retried from the CLI as a group, it goes out once.
    hooks.route(HOOK, hook_reply())
    assert store.retry_dead([n.id], clock()) == 1
    assert await loop.drain() == DeliveryStats(sent=1)
    assert [r.status for r in rows(store).values()] == [OutboxStatus.SENT]


async def test_smtp_550_is_a_dead_letter(store: SqlStore, clock: Clock) -> None:
    t = targets(["desk-email"], **NOW)
    with SmtpServer() as smtp:
        smtp.rcpt_reply = "550 5.1.1 <desk@example.org>: Recipient address rejected"
        enqueue(store, clock, t)
        loop = deliverer(store, {"desk-email": email_channel(smtp)}, clock, t)
        assert await loop.deliver_due() == DeliveryStats(dead=1, composed=1)
    assert "550" in (notes(store)[0].last_error or "")


async def test_gives_up_after_max_attempts(store: SqlStore, clock: Clock) -> None:
    flaky = ScriptedChannel("flaky", [DeliveryResult.retry("HTTP 503 Service Unavailable")])
    t = targets(["flaky"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"flaky": flaky}, clock, t)
    total = DeliveryStats()
    for _ in range(MAX_ATTEMPTS + 3):
        total += await loop.deliver_due()
        clock.advance(LATER)
    assert total == DeliveryStats(retried=MAX_ATTEMPTS - 1, dead=1, composed=1)
    assert [n.attempt for n in flaky.sent] == list(range(1, MAX_ATTEMPTS + 1))
    [n] = notes(store)
    assert n.status is NotificationStatus.DEAD
    assert n.last_error == f"gave up after {MAX_ATTEMPTS} attempts: HTTP 503 Service Unavailable"


async def test_notification_for_an_unconfigured_channel_is_a_dead_letter(
    store: SqlStore, clock: Clock
) -> None:
    out = io.StringIO()
    t = targets(["console", "removed"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock, t)
    assert await loop.drain() == DeliveryStats(sent=1, dead=1, composed=2)
    [dead] = [n for n in notes(store) if n.status is NotificationStatus.DEAD]
    assert dead.channel == "removed"
    assert dead.last_error == "channel 'removed' is not configured"


async def test_a_retry_resumes_after_the_parts_already_accepted(
    store: SqlStore, clock: Clock
) -> None:
    parts = ScriptedChannel(
        "chat",
        [
            DeliveryResult(ok=False, error="HTTP 503", parts_sent=2),
            DeliveryResult.success(parts_sent=5),
        ],
    )
    t = targets(["chat"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"chat": parts}, clock, t)
    await loop.deliver_due()
    clock.advance(LATER)
    await loop.deliver_due()
    assert [(n.attempt, n.parts_sent) for n in parts.sent] == [(1, 0), (2, 2)]
    assert parts.sent[0].key == parts.sent[1].key


# --------------------------------------------------------------------------- isolation


async def test_a_hanging_channel_never_holds_up_the_others(
    store: SqlStore, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(hold=True))  # accepts connections and never answers
    out = io.StringIO()
    t = targets(["desk-hook", "console"], **NOW)
    for n in range(3):  # three separate notifications per channel
        enqueue(store, clock, t, first=n)
        await deliverer(store, {}, clock, t).compose()
    channels: dict[str, Channel] = {
        "desk-hook": webhook_channel(hooks, http),
        "console": ConsoleChannel("console", out=out),
    }
    loop = deliverer(store, channels, clock, t, send_timeout=timedelta(seconds=0.3))
    started = time.monotonic()
    stats = await loop.deliver_due()
    elapsed = time.monotonic() - started
    hooks.release()
    # One probe timed out; the webhook's other notifications were handed
    # back untried instead of each waiting out a timeout; the console got all.
    assert stats == DeliveryStats(sent=3, retried=1, deferred=2)
    assert elapsed < 2.0
    assert out.getvalue().count("Rule: russia-north-korea") == 3
    hook = sorted(n.attempts for n in notes(store) if n.channel == "desk-hook")
    assert hook == [0, 0, 1]
    failed = next(n for n in notes(store) if n.channel == "desk-hook" and n.attempts == 1)
    assert "no answer within 0.3s" in (failed.last_error or "")


async def test_a_channel_that_starts_failing_warns_once_and_its_recovery_is_logged(
    store: SqlStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = ScriptedChannel(
        "flaky",
        [DeliveryResult.retry("HTTP 503")] * 3 + [DeliveryResult.success()],
    )
    t = targets(["flaky"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"flaky": flaky}, clock, t)
    with caplog.at_level("INFO", logger="newswatch"):
        for _ in range(4):
            await loop.deliver_due()
            clock.advance(LATER)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        "channel 'flaky' is failing (HTTP 503); its notifications wait and retry"
    ]
    assert sum("channel 'flaky' recovered" in r.getMessage() for r in caplog.records) == 1


async def test_cancellation_mid_send_releases_the_claimed_notifications(
    store: SqlStore, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(hold=True))
    t = targets(["desk-hook"], **NOW)
    for n in range(3):
        enqueue(store, clock, t, first=n)
        await deliverer(store, {}, clock, t).compose()
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock, t, concurrency=1)
    task = asyncio.create_task(loop.deliver_due())
    assert await asyncio.to_thread(hooks.wait_for_requests, 1, HOOK, 5)  # one send in flight
    assert [n.status for n in notes(store)] == [NotificationStatus.SENDING] * 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hooks.release()
    # All three are back, untried as far as the attempt count goes.
    assert (
        sorted((n.status, n.attempts) for n in notes(store))
        == [(NotificationStatus.PENDING, 0)] * 3
    )
    # After a restart they go out (the cut-off send may have arrived too:
    # delivery is at-least-once, and the Idempotency-Key repeats).
    hooks.route(HOOK, hook_reply())
    assert await loop.drain() == DeliveryStats(sent=3)
    assert [r.status for r in rows(store).values()] == [OutboxStatus.SENT] * 3


async def test_a_killed_process_notifications_come_back_within_a_lease(
    store: SqlStore, clock: Clock
) -> None:
    """A process killed mid-send leaves its notifications leased. They are
    due again after the short lease, not after minutes."""
    t = targets(["console"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {}, clock, t, lease=timedelta(seconds=45))
    await loop.compose()
    claimed = store.claim_notifications(clock(), clock() + timedelta(seconds=45), 10)
    assert len(claimed) == 1  # ... and the process dies here
    out = io.StringIO()
    restarted = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock, t)
    assert await restarted.deliver_due() == DeliveryStats()
    clock.advance(timedelta(seconds=46))
    assert await restarted.deliver_due() == DeliveryStats(sent=1)
    assert "Story 0" in out.getvalue()


async def test_leases_are_renewed_while_a_slow_send_runs(store: SqlStore, clock: Clock) -> None:
    """A send slower than the lease keeps its notification: another replica
    looking after the first lease ran out finds nothing to claim."""
    slow = ScriptedChannel("slow", [DeliveryResult.success()], delay=1.5)
    t = targets(["slow"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"slow": slow}, clock, t, lease=timedelta(seconds=3.3))
    task = asyncio.create_task(loop.deliver_due())
    await asyncio.sleep(0.2)
    clock.advance(timedelta(seconds=3))  # the first lease would run out now ...
    await asyncio.sleep(1.2)  # ... but the renewal (every 1.1 s) moved it on
    clock.advance(timedelta(seconds=1))
    other = store.claim_notifications(clock(), clock() + timedelta(seconds=30), 10)
    assert other == []
    assert (await task).sent == 1
    assert [n.attempts for n in notes(store)] == [1]  # never claimed twice


async def test_reloaded_channels_are_used_by_the_next_round(store: SqlStore, clock: Clock) -> None:
    old, new = io.StringIO(), io.StringIO()
    t = targets(["console"], **NOW)
    loop = deliverer(store, {"console": ConsoleChannel("console", out=old)}, clock, t)
    loop.channels = {"console": ConsoleChannel("console", out=new)}
    enqueue(store, clock, t)
    assert await loop.drain() == DeliveryStats(sent=1, composed=1)
    assert old.getvalue() == ""
    assert "Story 0" in new.getvalue()


async def test_a_channel_that_raises_is_retried_and_its_message_not_logged(
    store: SqlStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    buggy = ScriptedChannel("buggy", [RuntimeError(f"oops {TOKEN}"), DeliveryResult.success()])
    t = targets(["buggy"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"buggy": buggy}, clock, t)
    with caplog.at_level("DEBUG", logger="newswatch"):
        assert await loop.deliver_due() == DeliveryStats(retried=1, composed=1)
    assert notes(store)[0].last_error == "scripted channel 'buggy': internal error RuntimeError"
    assert "RuntimeError" in caplog.text and TOKEN not in caplog.text
    clock.advance(LATER)
    assert await loop.deliver_due() == DeliveryStats(sent=1)


# --------------------------------------------------------------------------- shape


async def test_fifty_matches_in_ten_seconds_become_one_notification(
    store: SqlStore, clock: Clock
) -> None:
    out = io.StringIO()
    t = targets(["console"], group_wait="10s")
    loop = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock, t)
    for n in range(50):
        enqueue(store, clock, t, first=n)
        assert await loop.deliver_due() == DeliveryStats()  # waiting for company
        clock.advance(timedelta(milliseconds=190))
    clock.now = T0 + timedelta(seconds=10)
    assert await loop.deliver_due() == DeliveryStats(sent=1, composed=1)
    [note] = notes(store)
    assert (note.kind, note.items) == (NotificationKind.GROUP, 50)
    assert out.getvalue().startswith("50 new stories")
    assert all(out.getvalue().count(f"Story {i}:") == 1 for i in range(50))


async def test_one_smtp_connection_per_round(store: SqlStore, clock: Clock) -> None:
    t = targets(["desk-email"], **NOW)
    with SmtpServer() as smtp:
        channel = email_channel(smtp)
        for n in range(4):  # four notifications, one round
            enqueue(store, clock, t, first=n)
            await deliverer(store, {}, clock, t).compose()
        loop = deliverer(store, {"desk-email": channel}, clock, t)
        assert (await loop.deliver_due()).sent == 4
        assert len(smtp.wait_for(4)) == 4
        assert smtp.connections == 1
        enqueue(store, clock, t, first=10)
        assert (await loop.deliver_due()).sent == 1
        assert smtp.connections == 2  # the next round opens a new one


async def test_throttled_and_quiet_items_are_never_dropped(store: SqlStore, clock: Clock) -> None:
    out = io.StringIO()
    t = targets(["console"], group_wait="0s", throttle="2/h")
    loop = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock, t)
    enqueue(store, clock, t, stories=5)
    first = await loop.drain()
    assert first.sent == 1  # the first two stories, grouped
    clock.advance(timedelta(hours=1, seconds=1))
    second = await loop.drain()
    assert second.sent == 1  # one "held back" summary of the other three
    kinds = [n.kind for n in reversed(notes(store))]
    assert kinds == [NotificationKind.GROUP, NotificationKind.SUMMARY]
    text = out.getvalue()
    assert all(text.count(f"Story {i}:") == 1 for i in range(5))
    assert "3 stories were held back (held back: throttled)" in text


async def test_a_muted_rule_holds_its_items_until_the_mute_ends(
    store: SqlStore, clock: Clock
) -> None:
    out = io.StringIO()
    t = targets(["console"], **NOW)
    loop = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock, t)
    store.add_mute("rule", RULE, clock(), clock() + timedelta(hours=4), comment="drill")
    enqueue(store, clock, t, stories=2)
    assert await loop.drain() == DeliveryStats()
    clock.advance(timedelta(hours=4, seconds=1))
    assert (await loop.drain()).sent == 1
    assert out.getvalue().startswith("2 stories were held back (held back: muted)")


def test_lease_must_be_renewable(store: SqlStore, clock: Clock) -> None:
    with pytest.raises(ValueError, match="lease"):
        deliverer(store, {}, clock, targets([]), lease=timedelta(seconds=2))


def test_stats_add_and_print() -> None:
    total = DeliveryStats(sent=1, retried=2) + DeliveryStats(dead=1, deferred=4, composed=2)
    assert total == DeliveryStats(1, 2, 1, 4, 2)
    assert total.settled == 4
    assert str(total) == "1 sent, 2 retried, 1 dead, 4 deferred"
    assert str(DeliveryStats(sent=2)) == "2 sent, 0 retried, 0 dead"


async def test_a_paced_hand_back_is_a_deferral_not_a_failure(
    store: SqlStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    paced = DeliveryResult(
        ok=False, error="paced: 3 of 9 parts sent", retry_after=20.0, parts_sent=3, deferred=True
    )
    chat = ScriptedChannel("chat", [paced, DeliveryResult.success(parts_sent=9)])
    t = targets(["chat"], **NOW)
    enqueue(store, clock, t)
    loop = deliverer(store, {"chat": chat}, clock, t)
    with caplog.at_level("INFO", logger="newswatch"):
        assert await loop.deliver_due() == DeliveryStats(deferred=1, composed=1)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # nothing is failing
    [n] = notes(store)
    assert (n.status, n.attempts) == (NotificationStatus.PENDING, 0)
    assert n.next_attempt_at == clock() + timedelta(seconds=20)
    assert await loop.deliver_due() == DeliveryStats()  # not before its turn
    clock.advance(timedelta(seconds=20))
    assert await loop.deliver_due() == DeliveryStats(sent=1)
    assert [(x.attempt, x.parts_sent) for x in chat.sent] == [(1, 0), (1, 3)]
