"""Slack: Block Kit payloads, the Web API (chat.postMessage) and the
Mattermost/Rocket.Chat text format, on the loopback receivers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    HOSTILE,
    SlackHarness,
    check_burst,
    check_down_then_rate_limited,
    stories_digest,
)
from newswatch.model import Thread
from newswatch.notify.channels.slack import (
    HEADER_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    SlackChannel,
    _fit_markup,
)
from notify_samples import alert
from receivers import SlackApiReceiver
from virtualtime import VirtualClock


@pytest.fixture
def slack() -> Iterator[SlackHarness]:
    h = SlackHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def payloads(channel: Any, n: Any) -> list[dict[str, Any]]:
    return [r.json for r in channel.requests(n)]


async def test_blocks_within_limits_and_fallback_text(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    channel = slack.build(http)
    digest = stories_digest(1, 300, id=1)
    parts = payloads(channel, digest)
    assert len(parts) == 7  # 47 stories a message, 3 blocks for the frame
    for number, payload in enumerate(parts, start=1):
        blocks = payload["blocks"]
        assert len(blocks) <= MAX_BLOCKS
        assert blocks[0]["type"] == "header"
        assert blocks[0]["text"]["type"] == "plain_text"
        assert blocks[0]["text"]["text"] == f"Digest daily 08:00: 300 stories ({number}/7)"
        assert all(len(b["text"]["text"]) <= SECTION_TEXT_MAX for b in blocks if "text" in b)
        assert blocks[-1]["type"] == "context"
        assert payload["text"].endswith(f"({number}/7)")
        assert "link_names" not in payload and "parse" not in payload


async def test_alert_is_one_section_with_a_linked_title(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    [payload] = payloads(slack.build(http), alert(title="R&D <b>news</b>"))
    [section] = payload["blocks"]  # a lone alert needs no header or footer
    text = section["text"]["text"]
    assert text.startswith("*<https://www.koreaherald.com/view.php?ud=20240619000123|")
    assert "R&amp;D &lt;b&gt;news&lt;/b&gt;" in text
    assert payload["text"] == "russia-north-korea: R&amp;D &lt;b&gt;news&lt;/b&gt;"


async def test_hostile_text_is_escaped_in_every_block(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    result = await slack.build(http).send(alert(title=HOSTILE))
    assert result.ok
    [message] = slack.receiver.messages
    assert message.mentions == ()
    assert "<!channel> @everyone <@&1> <script>alert(1)</script> & <b>x</b> Bcc: x@evil" in (
        message.text
    )


def test_cut_header_never_splits_an_entity() -> None:
    for shift in range(6):
        text = _fit_markup("x" * shift + "&amp;" * 60, HEADER_TEXT_MAX)
        assert len(text) <= HEADER_TEXT_MAX
        assert text.endswith("…")
        body = text.removesuffix("…")
        assert body.count("&") == body.count("&amp;")


async def test_mattermost_text_format_breaks_bare_mentions(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    cfg = {**slack.config(), "format": "text"}
    channel = slack.build(http, cfg)
    n = alert(title="@channel @here hello", link="https://medium.com/@writer/story")
    [payload] = payloads(channel, n)
    assert set(payload) == {"text"}
    assert "@\u200bchannel @\u200bhere" in payload["text"]
    assert "<https://medium.com/@writer/story|" in payload["text"]  # the link is untouched
    digest = payloads(channel, stories_digest(1, 300, id=2))
    assert all(len(p["text"]) <= 4000 for p in digest)
    assert "format text" in channel.describe()


async def test_web_api_chat_post_message(http: httpx.AsyncClient) -> None:
    clock = VirtualClock()
    with SlackApiReceiver(clock=clock) as api:
        base = {
            "type": "slack",
            "token": api.token,
            "channel": "C0000NEWS",
            "api_url": api.base_url + "/api",
        }
        h = SlackHarness(clock)
        channel = h.build(http, base)
        assert isinstance(channel, SlackChannel)
        assert api.token not in channel.describe()
        assert "#C0000NEWS" in channel.describe()
        ok = await channel.send(alert())
        assert ok.ok and api.messages[0].meta["channel"] == "C0000NEWS"

        missing = await h.build(http, {**base, "channel": "C0000GONE"}).send(alert())
        assert missing.permanent and "channel_not_found" in (missing.error or "")
        bad = await h.build(http, {**base, "token": "xoxb-wrong-token"}).send(alert())
        assert bad.permanent and "invalid_auth" in (bad.error or "")
        assert "xoxb-wrong-token" not in (bad.error or "") + (bad.answer or "")

        clock.advance(5)
        api.fail_next_rate_limited(1, retry_after=4)
        limited = await channel.send(alert())
        assert not limited.ok and not limited.permanent and limited.retry_after == 4
        assert api.token not in (limited.error or "")


async def test_down_then_rate_limited_in_order(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    await check_down_then_rate_limited(slack, http, retry_after=3)  # Retry-After: 3


async def test_burst_of_500_alerts_never_trips_the_limit(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    elapsed = await check_burst(slack, http)
    assert elapsed >= 499 * 60 / 54 - 1  # 54 a minute: the default pace


async def test_one_story_too_long_for_a_section_is_shown_short(
    slack: SlackHarness, http: httpx.AsyncClient
) -> None:
    link = "https://example.org/" + "a" * 3500
    n = alert(link=link)
    [payload] = payloads(slack.build(http), n)
    [section] = payload["blocks"]
    assert len(section["text"]["text"]) <= SECTION_TEXT_MAX
    result = await slack.build(http).send(n)
    assert result.ok and slack.problems() == []


async def test_a_story_update_is_a_reply_in_the_first_alerts_thread(
    http: httpx.AsyncClient,
) -> None:
    """With a bot token the alert's ts comes back as its thread reference;
    an update of that story names it as thread_ts. An incoming webhook
    cannot thread: the update is a message of its own."""
    clock = VirtualClock()
    with SlackApiReceiver(clock=clock) as api:
        base = {
            "type": "slack",
            "token": api.token,
            "channel": "C0000NEWS",
            "api_url": api.base_url + "/api",
        }
        channel = SlackHarness(clock).build(http, base)
        first = await channel.send(alert())
        assert first.ok and first.thread_ref == api.messages[0].meta["ts"]
        update = dataclasses.replace(alert(2), thread=Thread(key="nw-1", ref=first.thread_ref))
        assert (await channel.send(update)).ok
        assert api.messages[1].meta["thread_ts"] == first.thread_ref
        assert api.messages[1].warnings == ()  # the thread names a message of the channel
    hook = SlackHarness(VirtualClock())
    hook.start()
    try:
        threaded = dataclasses.replace(alert(), thread=Thread("k", "1.2"))
        [payload] = payloads(hook.build(http), threaded)
    finally:
        hook.stop()
    assert "thread_ts" not in payload
