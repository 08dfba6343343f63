"""Telegram: sendMessage with Telegram HTML, 4,096 characters as Telegram
counts them, parameters.retry_after, the token kept out of sight."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    TelegramHarness,
    check_burst,
    check_down_then_rate_limited,
)
from newswatch.model import NotificationKind, Period
from newswatch.notify.channels.telegram import TEXT_MAX, visible_length
from notify_samples import T0, alert, item, notification
from receivers import Answer
from virtualtime import VirtualClock


@pytest.fixture
def telegram() -> Iterator[TelegramHarness]:
    h = TelegramHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def test_visible_length_counts_what_telegram_shows() -> None:
    assert visible_length('<b><a href="https://x.example/?a=1&amp;b=2">R&amp;D</a></b>') == 3
    assert visible_length("&lt;script&gt;") == len("<script>")
    assert visible_length("😀") == 2  # UTF-16 units: never fewer than TDLib's code points


async def test_payload_shape(telegram: TelegramHarness, http: httpx.AsyncClient) -> None:
    channel: Any = telegram.build(http, {**telegram.config(), "message_thread_id": 7})
    [request] = channel.requests(alert())
    assert request.url.endswith(f"/bot{telegram.receiver.token}/sendMessage")
    body = request.json
    assert body["chat_id"] == "-1001234567"
    assert body["parse_mode"] == "HTML"
    assert body["link_preview_options"] == {"is_disabled": True}
    assert body["disable_web_page_preview"] is True
    assert body["message_thread_id"] == 7
    assert '<a href="https://www.koreaherald.com/view.php?ud=20240619000123">' in body["text"]
    assert telegram.receiver.token not in channel.describe()
    assert "chat -1001234567" in channel.describe()


def digest_of(titles: list[str]) -> Any:
    items = tuple(
        item(i, title=t, link=f"https://example.org/{i}") for i, t in enumerate(titles, 1)
    )
    period = Period(T0, T0.replace(hour=23), "daily 08:00")
    return notification(*items, kind=NotificationKind.DIGEST, period=period)


async def test_limit_is_after_entity_parsing(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    # "&" is five characters as sent (&amp;) and one as shown: packing by
    # what is sent would make three times as many parts.
    n = digest_of(["&" * 190 for _ in range(120)])
    channel: Any = telegram.build(http)
    texts = [r.json["text"] for r in channel.requests(n)]
    assert all(visible_length(t) <= TEXT_MAX for t in texts)
    assert max(len(t) for t in texts) > TEXT_MAX  # longer as sent than as shown
    result = await channel.send(n)
    assert result.ok, result.error
    assert telegram.problems() == []
    shown = [m.text for m in telegram.receiver.messages]
    assert min(len(s) for s in shown[:-1]) > TEXT_MAX * 0.75  # parts are well filled


async def test_emoji_headlines_fit(telegram: TelegramHarness, http: httpx.AsyncClient) -> None:
    n = digest_of(["😀🇰🇷 " * 60 for _ in range(80)])
    assert (await telegram.build(http).send(n)).ok
    assert telegram.problems() == []


async def test_usernames_in_headlines_notify_nobody(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    # No link: the headline is not inside a text link, where TDLib would
    # not look for mentions anyway.
    n = alert(title="@durov and @@everyone meet; mail x@evil.example", link="")
    assert (await telegram.build(http).send(n)).ok
    [message] = telegram.receiver.messages
    assert message.mentions == ()
    assert "x@evil.example" in message.text  # an address is not a mention: left whole


async def test_group_moved_to_a_supergroup_is_permanent_and_says_where(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    moved = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1009876543210},
    }
    telegram.receiver.fail_next(1, Answer.json(400, moved))
    result = await telegram.build(http).send(alert())
    assert result.permanent
    assert "-1009876543210" in (result.error or "")
    assert telegram.receiver.token not in (result.error or "")


async def test_blocked_bot_is_permanent(telegram: TelegramHarness, http: httpx.AsyncClient) -> None:
    blocked = {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    telegram.receiver.fail_next(1, Answer.json(403, blocked))
    result = await telegram.build(http).send(alert())
    assert result.permanent and "bot was blocked" in (result.error or "")


async def test_retry_after_from_parameters(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    telegram.receiver.fail_next_rate_limited(1, retry_after=9)
    result = await telegram.build(http).send(alert())
    assert not result.ok and not result.permanent and result.retry_after == 9


async def test_down_then_rate_limited_in_order(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    await check_down_then_rate_limited(telegram, http, retry_after=4)


async def test_burst_of_500_alerts_never_trips_the_limit(
    telegram: TelegramHarness, http: httpx.AsyncClient
) -> None:
    elapsed = await check_burst(telegram, http)
    assert elapsed >= 499 * 60 / 18 - 1  # 18 a minute: a group's 20, with slack


def test_a_long_group_lists_a_story_a_line_in_far_fewer_messages() -> None:
    from newswatch.notify.channels.telegram import cost, texts
    from newswatch.notify.render import RenderContext
    from notify_samples import many

    group = many(300, kind=NotificationKind.GROUP)
    listed = texts(group, RenderContext())
    assert len(listed) <= 8  # ~40 stories to a message instead of ~20
    assert all(cost(t) <= 4096 for t in listed)
    joined = "\n".join(listed)
    for i in range(1, 301):
        assert joined.count(f">Story {i}: ") == 1
