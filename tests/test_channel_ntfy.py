"""ntfy: title, click, tags, priority and bearer token as headers; 4,096
bytes a message; the 429 without Retry-After, on the loopback server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    NtfyHarness,
    check_burst,
    check_down_then_rate_limited,
)
from newswatch.model import NotificationKind, Period
from newswatch.notify.channels.ntfy import MESSAGE_MAX, header_text
from notify_samples import T0, alert, item, notification
from virtualtime import VirtualClock

KOREAN = "러시아·북한, 평양서 정상회담 개최"


@pytest.fixture
def ntfy() -> Iterator[NtfyHarness]:
    h = NtfyHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def test_header_text_is_ascii() -> None:
    assert header_text("plain") == "plain"
    encoded = header_text(KOREAN)
    assert encoded.isascii()
    assert base64.b64decode(encoded.removeprefix("=?UTF-8?B?").removesuffix("?=")).decode() == (
        KOREAN
    )


async def test_headers_of_an_alert(ntfy: NtfyHarness, http: httpx.AsyncClient) -> None:
    cfg = {**ntfy.config(), "priority": "high", "tags": ["newspaper", "kr"]}
    channel = ntfy.build(http, cfg)
    n = alert(title=KOREAN, link="https://news.example/기사?id=1")
    assert (await channel.send(n)).ok
    [message] = ntfy.receiver.messages
    assert message.parts["title"] == f"russia-north-korea: {KOREAN}"
    assert message.parts["tags"] == ["newspaper", "kr"]
    assert message.meta["priority"] == 4
    assert "https://news.example/%EA%B8%B0%EC%82%AC?id=1" in message.links  # X-Click, ASCII
    assert ntfy.token not in channel.describe() and ntfy.topic not in channel.describe()


async def test_korean_digest_parts_stay_under_4096_bytes(
    ntfy: NtfyHarness, http: httpx.AsyncClient
) -> None:
    items = tuple(
        item(i, title=f"{i}. {KOREAN} " * 3, link=f"https://news.example/{i}")
        for i in range(1, 121)
    )
    period = Period(T0, T0.replace(hour=23), "daily 08:00")
    n = notification(*items, kind=NotificationKind.DIGEST, period=period)
    channel: Any = ntfy.build(http)
    bodies = [r.content for r in channel.requests(n)]
    assert all(len(b) <= MESSAGE_MAX for b in bodies)
    assert (await channel.send(n)).ok
    assert ntfy.problems() == []  # none became an attachment
    titles = [m.parts["title"] for m in ntfy.receiver.messages]
    assert titles[0].endswith(f"(1/{len(bodies)})")


async def test_rate_limited_without_retry_after(ntfy: NtfyHarness, http: httpx.AsyncClient) -> None:
    ntfy.receiver.fail_next_rate_limited(1)
    result = await ntfy.build(http).send(alert())
    assert not result.ok and result.retry_after == 5.0  # one request refills every 5 s


async def test_down_then_rate_limited_in_order(ntfy: NtfyHarness, http: httpx.AsyncClient) -> None:
    await check_down_then_rate_limited(ntfy, http, retry_after=5)


async def test_burst_of_500_alerts_never_trips_the_limit(
    ntfy: NtfyHarness, http: httpx.AsyncClient
) -> None:
    await check_burst(ntfy, http)
