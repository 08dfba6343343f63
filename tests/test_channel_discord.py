"""Discord: embeds within every limit, nothing ever pings, the 429 body's
float retry_after, on the loopback webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    HOSTILE,
    DiscordHarness,
    check_burst,
    check_down_then_rate_limited,
    story_url,
)
from newswatch.model import NotificationKind, Outlet, Period
from newswatch.notify.channels.discord import (
    CONTENT_MAX,
    EMBED_TOTAL_MAX,
    EMBEDS_MAX,
    FIELD_VALUE_MAX,
    TITLE_MAX,
    embed_size,
)
from notify_samples import T0, alert, item, notification
from virtualtime import VirtualClock


@pytest.fixture
def discord() -> Iterator[DiscordHarness]:
    h = DiscordHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def payloads(h: DiscordHarness, http: httpx.AsyncClient, n: Any, **cfg: Any) -> list[Any]:
    channel: Any = h.build(http, {**h.config(), **cfg})
    return list(channel.requests(n))


async def test_every_message_within_discord_limits(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    outlets = tuple(
        Outlet(f"Outlet {j} " + "x" * 80, "Same story", f"https://o{j}.example/{'p' * 60}")
        for j in range(12)
    )
    digest = notification(
        *(item(i, title=f"Story {i}: " + "headline " * 40, also=outlets) for i in range(1, 61)),
        kind=NotificationKind.DIGEST,
        period=Period(T0, T0.replace(hour=23), "daily 08:00"),
    )
    requests = payloads(discord, http, digest)
    # 60 long stories: listed many to an embed, fewer messages than 60/10.
    assert 1 < len(requests) < 6
    listed = "\n".join(e["description"] for r in requests for e in r.json["embeds"])
    for i in range(1, 61):
        assert listed.count(f"\n{i}. ") + listed.startswith(f"{i}. ") == 1
    for request in requests:
        body = request.json
        assert body["allowed_mentions"] == {"parse": []}
        assert len(body.get("content", "")) <= CONTENT_MAX
        assert len(body["embeds"]) <= EMBEDS_MAX
        assert sum(embed_size(e) for e in body["embeds"]) <= EMBED_TOTAL_MAX
        for embed in body["embeds"]:
            assert len(embed["title"]) <= TITLE_MAX
            assert all(len(f["value"]) <= FIELD_VALUE_MAX for f in embed.get("fields", []))
        assert "wait=true" in request.url
    result = await discord.build(http).send(digest)  # the receiver holds Discord's limits
    assert result.ok, result.error
    assert discord.problems() == []


async def test_alert_embed_shape(discord: DiscordHarness, http: httpx.AsyncClient) -> None:
    [request] = payloads(discord, http, alert(title="Putin *arrives* in_Pyongyang"))
    body = request.json
    assert "content" not in body  # a lone alert: the embed says it all
    [embed] = body["embeds"]
    assert embed["title"] == "Putin \\*arrives\\* in\\_Pyongyang"
    assert embed["url"] == "https://www.koreaherald.com/view.php?ud=20240619000123"
    assert embed["fields"][0] == {"name": "Rule", "value": "russia\\-north\\-korea", "inline": True}
    assert embed["footer"]["text"] == "Korea Herald National · 2024-06-18 23:30 UTC"
    assert embed["timestamp"] == "2024-06-18T23:30:00+00:00"


async def test_a_title_that_escaping_doubles_still_fits(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    result = await discord.build(http).send(alert(title="*_" * 100))  # 400 characters escaped
    assert result.ok, result.error
    [message] = discord.receiver.messages
    assert len(message.payload["embeds"][0]["title"]) <= TITLE_MAX


async def test_two_stories_with_one_link_are_both_shown(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    same = story_url(7)
    n = notification(item(1, link=same, title="First"), item(2, link=same, title="Second"))
    result = await discord.build(http).send(n)
    assert result.ok
    [message] = discord.receiver.messages
    assert message.warnings == ()  # Discord would hide an embed with a repeated url
    assert "First" in message.text and "Second" in message.text


async def test_nothing_pings_even_where_rendered(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    n = notification(item(1, title=HOSTILE), item(2, title="@here look", rules=("@everyone",)))
    assert (await discord.build(http).send(n)).ok
    [message] = discord.receiver.messages
    assert message.mentions == ()
    assert message.parts["embed_mentions"] == []  # escaped even where it would not ping


async def test_thread_and_username(discord: DiscordHarness, http: httpx.AsyncClient) -> None:
    [request] = payloads(discord, http, alert(), thread_id="1234", username="newswatch")
    assert "thread_id=1234" in request.url and "wait=true" in request.url
    assert request.json["username"] == "newswatch"


async def test_retry_after_is_the_bodys_float(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    discord.receiver.fail_next_rate_limited(1, retry_after=2.5)
    result = await discord.build(http).send(alert())
    assert not result.ok and result.retry_after == 2.5  # the header says 3


async def test_down_then_rate_limited_in_order(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    await check_down_then_rate_limited(discord, http, retry_after=1.75)


async def test_burst_of_500_alerts_never_trips_the_limit(
    discord: DiscordHarness, http: httpx.AsyncClient
) -> None:
    await check_burst(discord, http)
