"""The delivery loop end to end: outbox rows in a real SQLite store (and in an
in-memory FakeStore that keeps the same contract), real SMTP and HTTP servers.

Every test runs against both stores; the clock is a fake that tests advance,
so retries are due when the test says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedserver import FeedServer, hook_reply
from newswatch.config import EmailChannelConfig, WebhookChannelConfig
from newswatch.model import Alert, DeliveryResult, FetchResult, Match, Route
from newswatch.notify.channels import Channel, ConsoleChannel, EmailChannel, WebhookChannel
from newswatch.notify.deliver import Deliverer, DeliveryStats
from newswatch.notify.retry import MAX_ATTEMPTS, MAX_DELAY
from newswatch.store.base import IngestItem, IngestResult, OutboxRow, OutboxStatus
from notify_samples import T0, article, explanation
from smtpserver import SmtpServer

TOKEN = "XXXXsecretTOKENXXXX"
RULE = "russia-north-korea"
LATER = MAX_DELAY + timedelta(minutes=1)  # past any backoff without Retry-After
HOOK = f"/hooks/{TOKEN}"


# --------------------------------------------------------------------------- fakes


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclasses.dataclass
class _FakeRow:
    id: int
    rule: str
    channel: str
    article_index: int
    match: Match | None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    created_at: datetime = T0
    next_attempt_at: datetime | None = T0
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


class FakeStore:
    """In-memory stand-in for the outbox part of the Store protocol, with the
    same semantics as SqlStore: a claim counts an attempt, a release un-counts
    it, one outbox row per (rule, story, channel)."""

    def __init__(self) -> None:
        self.articles: list[Any] = []
        self.rows: dict[int, _FakeRow] = {}
        self.released: list[int] = []

    def create_schema(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ingest(
        self,
        fetch: FetchResult,
        items: Sequence[IngestItem],
        now: datetime,
        next_poll_at: datetime,
        warning: str | None = None,
    ) -> IngestResult:
        new_outbox = 0
        for item in items:
            self.articles.append(item.article)
            for route in item.routes:
                key = (route.rule, item.article.story_key, route.channel)
                if any(
                    (r.rule, self.articles[r.article_index].story_key, r.channel) == key
                    for r in self.rows.values()
                ):
                    continue
                match = next((m for m in item.matches if m.rule == route.rule), None)
                row_id = len(self.rows) + 1
                self.rows[row_id] = _FakeRow(
                    row_id,
                    route.rule,
                    route.channel,
                    len(self.articles) - 1,
                    match,
                    created_at=now,
                    next_attempt_at=now,
                )
                new_outbox += 1
        return IngestResult(len(items), sum(len(i.matches) for i in items), new_outbox)

    def claim_outbox(self, now: datetime, lease_until: datetime, limit: int) -> list[Alert]:
        due = [
            r
            for r in self.rows.values()
            if (
                r.status is OutboxStatus.PENDING
                and (r.next_attempt_at is None or r.next_attempt_at <= now)
            )
            or (r.status is OutboxStatus.SENDING and (r.lease_until is None or r.lease_until < now))
        ]
        due.sort(key=lambda r: (r.next_attempt_at or datetime.min.replace(tzinfo=UTC), r.id))
        alerts = []
        for row in due[:limit]:
            row.status, row.lease_until = OutboxStatus.SENDING, lease_until
            row.attempts += 1
            art = self.articles[row.article_index]
            alerts.append(
                Alert(
                    outbox_id=row.id,
                    rule=row.rule,
                    channel=row.channel,
                    article=art,
                    explanation=row.match.explanation if row.match else explanation(),
                    matched_at=row.created_at,
                    attempt=row.attempts,
                )
            )
        return alerts

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        row = self.rows[outbox_id]
        row.status, row.sent_at, row.next_attempt_at, row.lease_until = (
            OutboxStatus.SENT,
            now,
            None,
            None,
        )

    def mark_retry(
        self, outbox_id: int, error: str, now: datetime, next_attempt_at: datetime
    ) -> None:
        row = self.rows[outbox_id]
        if row.status is not OutboxStatus.SENT:
            row.status, row.next_attempt_at = OutboxStatus.PENDING, next_attempt_at
            row.last_error, row.lease_until = error, None

    def mark_dead(self, outbox_id: int, error: str, now: datetime) -> None:
        row = self.rows[outbox_id]
        if row.status is not OutboxStatus.SENT:
            row.status, row.next_attempt_at = OutboxStatus.DEAD, None
            row.last_error, row.lease_until = error, None

    def release_outbox(self, outbox_ids: Sequence[int]) -> None:
        self.released.extend(outbox_ids)
        for outbox_id in outbox_ids:
            row = self.rows[outbox_id]
            if row.status is OutboxStatus.SENDING:
                row.status, row.lease_until = OutboxStatus.PENDING, None
                row.attempts = max(0, row.attempts - 1)

    def outbox(self, status: OutboxStatus | None = None, limit: int = 100) -> list[OutboxRow]:
        rows = [r for r in self.rows.values() if status is None or r.status is status]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [
            OutboxRow(
                id=r.id,
                rule=r.rule,
                channel=r.channel,
                feed_key=self.articles[r.article_index].feed_key,
                title=self.articles[r.article_index].title,
                link=self.articles[r.article_index].link,
                status=r.status,
                attempts=r.attempts,
                created_at=r.created_at,
                next_attempt_at=r.next_attempt_at,
                sent_at=r.sent_at,
                last_error=r.last_error,
            )
            for r in rows[:limit]
        ]


class ScriptedChannel:
    """A channel answering from a script (last answer repeats); for the few
    cases no real service can stage cheaply (thirty-odd failures in a row)."""

    kind = "scripted"
    max_length: int | None = None

    def __init__(
        self,
        name: str,
        results: Sequence[DeliveryResult | Exception],
        *,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.results = list(results)
        self.delay = delay
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> DeliveryResult:
        self.sent.append(alert)
        await asyncio.sleep(self.delay)
        result = self.results[min(len(self.sent), len(self.results)) - 1]
        if isinstance(result, Exception):
            raise result
        return result

    def describe(self) -> str:
        return f"scripted {self.name}"

    async def aclose(self) -> None:
        pass


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeStore()
        return
    sql = pytest.importorskip("newswatch.store.sql")
    real = sql.SqlStore(f"sqlite:///{tmp_path / 'newswatch.db'}")
    real.create_schema()
    try:
        yield real
    finally:
        real.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def hooks() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.route(HOOK, hook_reply())
        yield server


def enqueue(store: Any, clock: Clock, channels: Sequence[str], *, stories: int = 1) -> list[int]:
    """Ingest ``stories`` matched articles routed to ``channels``; return the outbox ids."""
    items = []
    for n in range(stories):
        art = article(
            entry_key=f"entry-{n}",
            story_key=f"story-{n}",
            title=f"Story {n}: Russia and North Korea",
            link=f"https://www.koreaherald.com/view.php?ud={n}",
        )
        items.append(
            IngestItem(
                article=art,
                matches=(Match(RULE, art, explanation()),),
                routes=tuple(Route(RULE, ch) for ch in channels),
            )
        )
    fetch = FetchResult(
        feed_key=art.feed_key, url=art.feed_key, fetched_at=clock(), status=200, body=b""
    )
    if hasattr(store, "ensure_feeds"):
        store.ensure_feeds([art.feed_key], clock())
    result = store.ingest(fetch, items, clock(), clock() + timedelta(minutes=10))
    assert result.new_outbox == stories * len(channels)
    return sorted(row.id for row in store.outbox(limit=1000))


def rows(store: Any) -> dict[int, OutboxRow]:
    return {row.id: row for row in store.outbox(limit=1000)}


def deliverer(store: Any, channels: dict[str, Any], clock: Clock, **options: Any) -> Deliverer:
    return Deliverer(store, channels, clock=clock, rng=random.Random(5), **options)


def email_channel(smtp: SmtpServer) -> EmailChannel:
    cfg = EmailChannelConfig.model_validate(
        {
            "type": "email",
            "to": ["desk@example.org"],
            "smtp": {"host": smtp.host, "port": smtp.port, "starttls": False, "timeout": "2s"},
        }
    )
    return EmailChannel("desk-email", cfg, clock=lambda: T0)


def webhook_channel(
    server: FeedServer, http: httpx.AsyncClient, name: str = "desk-hook"
) -> WebhookChannel:
    cfg = WebhookChannelConfig.model_validate({"type": "webhook", "url": server.url(HOOK)})
    return WebhookChannel(name, cfg, http=http, clock=lambda: T0)


# --------------------------------------------------------------------------- tests


async def test_smtp_down_then_up_sends_exactly_one_email(store: Any, clock: Clock) -> None:
    smtp = SmtpServer()  # port reserved; the server is down
    [row_id] = enqueue(store, clock, ["desk-email"])
    loop = deliverer(store, {"desk-email": email_channel(smtp)}, clock)

    assert await loop.deliver_due() == DeliveryStats(retried=1)
    row = rows(store)[row_id]
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert f"smtp 127.0.0.1:{smtp.port}" in (row.last_error or "")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > clock()
    assert await loop.deliver_due() == DeliveryStats()  # not due yet

    with smtp:
        clock.advance(LATER)
        assert await loop.deliver_due() == DeliveryStats(sent=1)
        clock.advance(LATER)
        assert await loop.drain() == DeliveryStats()
        assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"].startswith("[newswatch] russia-north-korea: Story 0")
    row = rows(store)[row_id]
    assert row.status == OutboxStatus.SENT
    assert row.sent_at == clock() - LATER


async def test_webhook_500_500_200_delivers_exactly_once(
    store: Any, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.sequence(HOOK, [hook_reply(500), hook_reply(500), hook_reply(200)])
    [row_id] = enqueue(store, clock, ["desk-hook"])
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock)
    total = DeliveryStats()
    for _ in range(5):
        total += await loop.deliver_due()
        clock.advance(LATER)
    assert total == DeliveryStats(sent=1, retried=2)
    assert len(hooks.requests) == 3
    assert len({r.headers["idempotency-key"] for r in hooks.requests}) == 1
    assert rows(store)[row_id].status == OutboxStatus.SENT
    assert rows(store)[row_id].attempts == 3


async def test_retry_after_sets_the_next_attempt(
    store: Any, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.sequence(HOOK, [hook_reply(429, {"Retry-After": "7200"}), hook_reply(200)])
    [row_id] = enqueue(store, clock, ["desk-hook"])
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock)
    assert await loop.deliver_due() == DeliveryStats(retried=1)
    row = rows(store)[row_id]
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= clock() + timedelta(hours=2)
    clock.advance(LATER)  # past the backoff, not past Retry-After
    assert await loop.deliver_due() == DeliveryStats()
    clock.advance(timedelta(hours=2))
    assert await loop.deliver_due() == DeliveryStats(sent=1)


async def test_permanent_failure_is_a_dead_letter_with_its_error(
    store: Any, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(404, body="no such hook"))
    [row_id] = enqueue(store, clock, ["desk-hook"])
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock)
    assert await loop.drain() == DeliveryStats(dead=1)
    row = rows(store)[row_id]
    assert row.status == OutboxStatus.DEAD
    assert "HTTP 404" in (row.last_error or "")
    assert TOKEN not in (row.last_error or "")
    clock.advance(timedelta(days=1))
    assert await loop.drain() == DeliveryStats()
    assert len(hooks.requests) == 1


async def test_smtp_550_is_a_dead_letter(store: Any, clock: Clock) -> None:
    with SmtpServer() as smtp:
        smtp.rcpt_reply = "550 5.1.1 <desk@example.org>: Recipient address rejected"
        [row_id] = enqueue(store, clock, ["desk-email"])
        loop = deliverer(store, {"desk-email": email_channel(smtp)}, clock)
        assert await loop.deliver_due() == DeliveryStats(dead=1)
    assert "550" in (rows(store)[row_id].last_error or "")


async def test_gives_up_after_max_attempts(store: Any, clock: Clock) -> None:
    flaky = ScriptedChannel("flaky", [DeliveryResult.retry("HTTP 503 Service Unavailable")])
    [row_id] = enqueue(store, clock, ["flaky"])
    loop = deliverer(store, {"flaky": flaky}, clock)
    total = DeliveryStats()
    for _ in range(MAX_ATTEMPTS + 3):
        total += await loop.deliver_due()
        clock.advance(LATER)
    assert total == DeliveryStats(retried=MAX_ATTEMPTS - 1, dead=1)
    assert [a.attempt for a in flaky.sent] == list(range(1, MAX_ATTEMPTS + 1))
    row = rows(store)[row_id]
    assert row.status == OutboxStatus.DEAD
    assert row.last_error == f"gave up after {MAX_ATTEMPTS} attempts: HTTP 503 Service Unavailable"


async def test_row_for_an_unconfigured_channel_is_a_dead_letter(store: Any, clock: Clock) -> None:
    out = io.StringIO()
    ids = enqueue(store, clock, ["console", "removed"])
    loop = deliverer(store, {"console": ConsoleChannel("console", out=out)}, clock)
    assert await loop.drain() == DeliveryStats(sent=1, dead=1)
    dead = [r for r in rows(store).values() if r.status == OutboxStatus.DEAD]
    assert [r.channel for r in dead] == ["removed"]
    assert dead[0].last_error == "channel 'removed' is not configured"
    assert len(ids) == 2


async def test_a_hanging_channel_never_holds_up_the_others(
    store: Any, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(hold=True))  # accepts connections and never answers
    out = io.StringIO()
    enqueue(store, clock, ["desk-hook", "console"], stories=3)
    channels: dict[str, Channel] = {
        "desk-hook": webhook_channel(hooks, http),
        "console": ConsoleChannel("console", out=out),
    }
    loop = deliverer(store, channels, clock, send_timeout=timedelta(seconds=0.3))
    started = time.monotonic()
    stats = await loop.deliver_due()
    elapsed = time.monotonic() - started
    hooks.release()
    # One probe timed out; the webhook's other rows were handed back untried
    # instead of each waiting out a timeout; the console got everything.
    assert stats == DeliveryStats(sent=3, retried=1, deferred=2)
    assert elapsed < 2.0
    assert out.getvalue().count("Rule: russia-north-korea") == 3
    hook_rows = [r for r in rows(store).values() if r.channel == "desk-hook"]
    assert sorted((r.status, r.attempts) for r in hook_rows) == [
        (OutboxStatus.PENDING, 0),
        (OutboxStatus.PENDING, 0),
        (OutboxStatus.PENDING, 1),
    ]
    failed = next(r for r in hook_rows if r.attempts == 1)
    assert "no answer within 0.3s" in (failed.last_error or "")


async def test_drain_sends_everything_due_and_stops_on_a_down_channel(
    store: Any, clock: Clock
) -> None:
    out = io.StringIO()
    down = SmtpServer()
    enqueue(store, clock, ["console", "desk-email"], stories=3)
    loop = deliverer(
        store,
        {"console": ConsoleChannel("console", out=out), "desk-email": email_channel(down)},
        clock,
    )
    stats = await loop.drain()
    # Each round probes the down channel once and hands its other rows back,
    # so every row is tried once and the loop ends when none is due.
    assert stats.sent == 3
    assert stats.retried == 3
    assert stats.dead == 0
    states = sorted((r.channel, r.status, r.attempts) for r in rows(store).values())
    assert (
        states
        == [("console", OutboxStatus.SENT, 1)] * 3 + [("desk-email", OutboxStatus.PENDING, 1)] * 3
    )
    assert await loop.drain() == DeliveryStats()


async def test_cancellation_mid_send_releases_the_claimed_rows(
    store: Any, clock: Clock, hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(HOOK, hook_reply(hold=True))
    ids = enqueue(store, clock, ["desk-hook"], stories=3)
    loop = deliverer(store, {"desk-hook": webhook_channel(hooks, http)}, clock, concurrency=1)
    task = asyncio.create_task(loop.deliver_due())
    assert await asyncio.to_thread(hooks.wait_for_requests, 1, HOOK, 5)  # one send in flight
    assert [r.status for r in rows(store).values()] == [OutboxStatus.SENDING] * 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hooks.release()
    # All three are back, untried as far as the attempt count goes.
    assert (
        sorted((r.status, r.attempts) for r in rows(store).values())
        == [(OutboxStatus.PENDING, 0)] * 3
    )
    if isinstance(store, FakeStore):
        assert sorted(store.released) == ids

    # After a restart they go out (the cut-off send may have arrived too:
    # delivery is at-least-once, and the Idempotency-Key repeats).
    hooks.route(HOOK, hook_reply())
    assert await loop.drain() == DeliveryStats(sent=3)
    assert [r.status for r in rows(store).values()] == [OutboxStatus.SENT] * 3


async def test_reloaded_channels_are_used_by_the_next_round(store: Any, clock: Clock) -> None:
    old, new = io.StringIO(), io.StringIO()
    loop = deliverer(store, {"console": ConsoleChannel("console", out=old)}, clock)
    loop.channels = {"console": ConsoleChannel("console", out=new)}
    enqueue(store, clock, ["console"])
    assert await loop.drain() == DeliveryStats(sent=1)
    assert old.getvalue() == ""
    assert "Story 0" in new.getvalue()


async def test_sends_stop_starting_when_the_lease_runs_short(store: Any, clock: Clock) -> None:
    slow = ScriptedChannel("slow", [DeliveryResult.success()], delay=0.1)
    enqueue(store, clock, ["slow"], stories=3)
    # 1 s lease, 0.85 s per-send timeout: only the first 0.05 s may start sends.
    loop = deliverer(
        store,
        {"slow": slow},
        clock,
        lease=timedelta(seconds=1),
        send_timeout=timedelta(seconds=0.85),
        concurrency=1,
    )
    assert await loop.deliver_due() == DeliveryStats(sent=1, deferred=2)
    assert await loop.drain() == DeliveryStats(sent=2, deferred=1)  # one per round


async def test_a_channel_that_raises_is_retried_and_its_message_not_logged(
    store: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    buggy = ScriptedChannel("buggy", [RuntimeError(f"oops {TOKEN}"), DeliveryResult.success()])
    [row_id] = enqueue(store, clock, ["buggy"])
    loop = deliverer(store, {"buggy": buggy}, clock)
    with caplog.at_level("DEBUG", logger="newswatch"):
        assert await loop.deliver_due() == DeliveryStats(retried=1)
    assert rows(store)[row_id].last_error == "scripted channel 'buggy': internal error RuntimeError"
    assert "RuntimeError" in caplog.text
    assert TOKEN not in caplog.text
    clock.advance(LATER)
    assert await loop.deliver_due() == DeliveryStats(sent=1)


def test_lease_must_outlast_a_send(store: Any, clock: Clock) -> None:
    with pytest.raises(ValueError, match="lease"):
        deliverer(store, {}, clock, lease=timedelta(seconds=30), send_timeout=timedelta(seconds=60))


def test_stats_add_and_print() -> None:
    total = DeliveryStats(sent=1, retried=2) + DeliveryStats(dead=1, deferred=4)
    assert total == DeliveryStats(1, 2, 1, 4)
    assert total.settled == 4
    assert str(total) == "1 sent, 2 retried, 1 dead, 4 deferred"
    assert str(DeliveryStats(sent=2)) == "2 sent, 0 retried, 0 dead"


_unused: Callable[..., Any] = Channel.send  # the protocol is importable and typed
