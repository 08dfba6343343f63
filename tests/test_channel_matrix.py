"""Matrix: m.room.message events with formatted_body, the transaction id
as the idempotency key, intentional mentions, 64 KiB events, on the
loopback homeserver."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channel_harness import (
    HOSTILE,
    MatrixHarness,
    check_burst,
    check_down_then_rate_limited,
    stories_digest,
)
from newswatch.model import Thread
from newswatch.notify.channels.matrix import CONTENT_BUDGET, json_bytes
from notify_samples import alert
from receivers.matrix import EVENT_MAX_BYTES, pdu_size
from virtualtime import VirtualClock


@pytest.fixture
def matrix() -> Iterator[MatrixHarness]:
    h = MatrixHarness(VirtualClock())
    h.start()
    yield h
    h.stop()


def requests(h: MatrixHarness, http: httpx.AsyncClient, n: Any) -> list[Any]:
    channel: Any = h.build(http)
    return list(channel.requests(n))


def test_event_shape_and_transaction_ids(matrix: MatrixHarness, http: httpx.AsyncClient) -> None:
    n = stories_digest(1, 400, id=9)
    reqs = requests(matrix, http, n)
    assert len(reqs) > 2
    for k, request in enumerate(reqs):
        assert request.method == "PUT"
        assert request.url.endswith(f"/send/m.room.message/{n.part_key(k)}")
        assert "/rooms/%21newsroom%3Aexample.org/" in request.url
        content = request.json
        assert content["msgtype"] == "m.notice"
        assert content["format"] == "org.matrix.custom.html"
        assert content["m.mentions"] == {}
        assert f"part {k + 1} of {len(reqs)}" in content["body"]
        assert f"part {k + 1} of {len(reqs)}" in content["formatted_body"]
        size = pdu_size(matrix.room, "@newswatch:example.org", "m.room.message", content)
        assert size <= EVENT_MAX_BYTES
        assert len(json_bytes_of(content)) <= CONTENT_BUDGET


def json_bytes_of(content: dict[str, Any]) -> str:
    import json

    return json.dumps(content, ensure_ascii=False)


def test_json_bytes_counts_escapes() -> None:
    assert json_bytes('a"b\\c\n') == len('a\\"b\\\\c\\n')
    assert json_bytes("북한") == 6


async def test_room_mention_in_a_headline_notifies_nobody(
    matrix: MatrixHarness, http: httpx.AsyncClient
) -> None:
    n = alert(title=f"@room {HOSTILE} @admin:example.org")
    assert (await matrix.build(http).send(n)).ok
    [message] = matrix.receiver.messages
    assert message.mentions == ()
    assert message.warnings == ()  # only the spec's tags in formatted_body
    assert "&lt;script&gt;" in message.parts["formatted_body"]


async def test_a_part_sent_twice_shows_once(matrix: MatrixHarness, http: httpx.AsyncClient) -> None:
    """The answer is lost after the server posted the event (the channel
    times out); the retry carries the same transaction id, and the server
    answers it from its cache without posting again."""
    channel = matrix.build(http, {**matrix.config(), "timeout": "0.2s"})
    matrix.receiver.latency = 1.0
    lost = await channel.send(alert())
    assert not lost.ok and not lost.permanent and lost.parts_sent == 0
    matrix.receiver.latency = 0.0
    again = await channel.send(dataclasses.replace(alert(), attempt=2))
    assert again.ok
    assert len(matrix.receiver.messages) == 1
    assert matrix.receiver.duplicates == 1


async def test_retry_after_ms(matrix: MatrixHarness, http: httpx.AsyncClient) -> None:
    matrix.receiver.fail_next_rate_limited(1, retry_after=2.345)
    result = await matrix.build(http).send(alert())
    assert result.retry_after == 2.345  # retry_after_ms, not the rounded header


async def test_down_then_rate_limited_in_order(
    matrix: MatrixHarness, http: httpx.AsyncClient
) -> None:
    await check_down_then_rate_limited(matrix, http, retry_after=6.5, digest=400)


async def test_burst_of_500_alerts_never_trips_the_limit(
    matrix: MatrixHarness, http: httpx.AsyncClient
) -> None:
    await check_burst(matrix, http)


async def test_a_story_update_is_in_the_first_alerts_thread(
    matrix: MatrixHarness, http: httpx.AsyncClient
) -> None:
    channel = matrix.build(http)
    first = await channel.send(alert())
    [sent] = matrix.receiver.messages
    assert first.ok and first.thread_ref == sent.meta["event_id"]
    update = dataclasses.replace(alert(2), thread=Thread(key="nw-1", ref=first.thread_ref))
    assert (await channel.send(update)).ok
    relation = matrix.receiver.messages[1].meta["relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == first.thread_ref
    assert relation["m.in_reply_to"] == {"event_id": first.thread_ref}
    # Without a thread reference (an email-only first alert), no relation.
    plain = dataclasses.replace(alert(3), thread=Thread(key="nw-1", ref=None))
    assert "m.relates_to" not in requests(matrix, http, plain)[0].json
