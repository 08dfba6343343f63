"""Teams: Adaptive Cards under the Workflows size limit as Teams measures
it, escaped Markdown, 202 answers, on the loopback Workflows receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    TeamsHarness,
    check_burst,
    check_down_then_rate_limited,
)
from newswatch.model import NotificationKind, Outlet, Period
from newswatch.notify.channels.teams import CARD_BUDGET, CARD_CONTENT_TYPE, card_size
from notify_samples import T0, alert, item, notification
from receivers.teams import properties_size
from virtualtime import VirtualClock


@pytest.fixture
def teams() -> Iterator[TeamsHarness]:
    h = TeamsHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def bodies(h: TeamsHarness, http: httpx.AsyncClient, n: Any) -> list[Any]:
    channel: Any = h.build(http)
    return [r.json for r in channel.requests(n)]


def heavy_digest(count: int) -> Any:
    outlets = tuple(
        Outlet(f"Outlet {j}", "t", f"https://o{j}.example/{'p' * 80}") for j in range(5)
    )
    items = tuple(
        item(i, title=f"Story {i}: " + '"quoted" \\ back ' * 12, also=outlets)
        for i in range(1, count + 1)
    )
    period = Period(T0, T0.replace(hour=23), "daily 08:00")
    return notification(*items, kind=NotificationKind.DIGEST, period=period)


def test_card_shape(teams: TeamsHarness, http: httpx.AsyncClient) -> None:
    [body] = bodies(teams, http, alert())
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert all(block["type"] == "TextBlock" and block["wrap"] for block in card["body"])
    text = card["body"][0]["text"]
    # The link target is percent-encoded only: a Markdown escape would break it.
    assert "](https://www.koreaherald.com/view.php?ud=20240619000123)" in text
    assert text.startswith("**[Putin arrives in Pyongyang")


async def test_cards_stay_under_the_size_teams_measures(
    teams: TeamsHarness, http: httpx.AsyncClient
) -> None:
    n = heavy_digest(200)
    cards = [b["attachments"][0]["content"] for b in bodies(teams, http, n)]
    assert len(cards) > 5
    for card in cards:
        assert card_size(card) == properties_size(card)  # the receiver's own estimate
        assert card_size(card) <= CARD_BUDGET
    result = await teams.build(http).send(n)
    assert result.ok and result.parts_sent == len(cards)
    assert teams.receiver.failed_runs == [] and teams.problems() == []


async def test_markdown_in_a_headline_stays_text(
    teams: TeamsHarness, http: httpx.AsyncClient
) -> None:
    n = alert(title="[click me](https://evil.example) **bold** <at>Boss</at>")
    assert (await teams.build(http).send(n)).ok
    [message] = teams.receiver.messages
    assert "https://evil.example" not in message.links
    assert message.mentions == ()


async def test_down_then_rate_limited_in_order(
    teams: TeamsHarness, http: httpx.AsyncClient
) -> None:
    await check_down_then_rate_limited(teams, http, retry_after=2)


async def test_burst_of_500_alerts_never_trips_the_limit(
    teams: TeamsHarness, http: httpx.AsyncClient
) -> None:
    await check_burst(teams, http)
