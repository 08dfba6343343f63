"""The channel pacer on a virtual clock: concurrent sends get distinct
turns, a send too long for its budget hands back what it sent, and the
settings (platform default, custom bucket, off) are honoured."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from channel_harness import DiscordHarness, TelegramHarness, stories_digest
from newswatch.config.models import PacingConfig
from newswatch.notify.channels.pacer import NoPacing, TokenBucketPacer, bucket_for, pacer_for
from newswatch.notify.pacing import PLATFORM_PACING, Bucket
from virtualtime import VirtualClock


@pytest.fixture
def telegram() -> Iterator[TelegramHarness]:
    h = TelegramHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


async def test_concurrent_waits_get_increasing_turns() -> None:
    clock = VirtualClock()
    pacer = TokenBucketPacer(
        Bucket(rate=1, per=timedelta(seconds=1), burst=2), clock=clock.datetime, sleep=clock.sleep
    )
    sent: list[float] = []

    async def one() -> None:
        try:
            assert await pacer.wait() is None
            sent.append(clock.now)
        finally:
            clock.leave()

    async with clock.workers(6), asyncio.TaskGroup() as group:
        for _ in range(6):
            group.create_task(one())
    assert sent == pytest.approx([0, 0, 1, 2, 3, 4], abs=1e-5)


async def test_a_turn_beyond_within_reserves_nothing() -> None:
    clock = VirtualClock()
    pacer = TokenBucketPacer(
        Bucket(rate=1, per=timedelta(seconds=10), burst=1), clock=clock.datetime, sleep=clock.sleep
    )
    assert await pacer.wait(within=0) is None  # the first token is there
    later = await pacer.wait(within=5)
    assert later == pytest.approx(10, abs=1e-5)
    assert await pacer.wait(within=5) == pytest.approx(10, abs=1e-5)  # still 10: nothing taken
    assert await pacer.wait() is None
    assert clock.now == pytest.approx(10, abs=1e-5)


def test_settings() -> None:
    assert bucket_for("slack", None) == PLATFORM_PACING["slack"]
    assert bucket_for("slack", "off") is None
    assert bucket_for("webhook", None) is None
    custom = bucket_for("webhook", PacingConfig(rate=2, per=timedelta(seconds=1), burst=3))
    assert custom == Bucket(rate=2, per=timedelta(seconds=1), burst=3)
    clock = VirtualClock()
    assert isinstance(pacer_for("email", None, clock=clock.datetime, sleep=clock.sleep), NoPacing)


async def test_long_paced_send_hands_back_the_parts_it_sent(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    """Telegram's default pace is one message per 3.3 s: a digest of 40
    parts cannot go within the 90 s send budget. The send stops at the
    budget with parts_sent and retry_after; resumed, it completes, and the
    receiver's pace was never exceeded."""
    channel = telegram.build(http)
    digest = stories_digest(1, 1600, id=5)  # listed a line each: ~40 parts
    parts = len(channel.requests(digest))  # type: ignore[attr-defined]
    assert parts > 30
    first = await channel.send(digest)
    assert not first.ok and not first.permanent
    assert 20 < first.parts_sent < parts
    assert first.retry_after is not None and 0 < first.retry_after <= 3.34
    assert "paced" in (first.error or "")
    telegram.clock.advance(first.retry_after)
    import dataclasses

    rest = await channel.send(dataclasses.replace(digest, attempt=2, parts_sent=first.parts_sent))
    assert rest.ok and rest.parts_sent == parts
    assert len(telegram.receiver.messages) == parts
    assert telegram.receiver.pacing_violations == 0


async def test_custom_pacing_is_used(http: httpx.AsyncClient) -> None:
    h = DiscordHarness(VirtualClock())
    h.start()
    try:
        cfg = {**h.config(), "pacing": {"rate": 1, "per": "10s", "burst": 1}}
        channel = h.build(http, cfg)
        assert "paced 1/10s burst 1" in channel.describe()
        for i in range(3):
            assert (await channel.send(stories_digest(i * 5 + 1, i * 5 + 5, id=i + 1))).ok
        assert h.clock.now == pytest.approx(20, abs=1e-4)
        off = h.build(http, {**h.config(), "pacing": "off"})
        assert "paced" not in off.describe()
    finally:
        h.stop()
