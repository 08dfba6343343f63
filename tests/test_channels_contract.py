"""The contract every channel keeps: one table of rows, run against every
channel kind on its real receiver on 127.0.0.1 (tests/channel_harness.py).

| row                          | what must hold                                           |
|------------------------------|----------------------------------------------------------|
| secrets masked               | describe() and repr() show no secret                     |
| transport: refused           | temporary; no secret in the error; nothing counted sent  |
| transport: reset             | temporary (the connection is reset mid-request)          |
| transport: timeout           | temporary (the service never answers)                    |
| transport: garbage           | temporary (the answer is not the protocol)               |
| 2xx                          | delivered in one part, the answer has no secret          |
| 4xx (refused for good)       | permanent (apprise: temporary, it cannot tell)           |
| a refusal quoting secrets    | the error and answer kept show none of them              |
| 429                          | temporary, retry_after in the platform's own form        |
| 5xx                          | temporary                                                |
| 10,000-character headline    | delivered, no refusal, the story shown exactly once      |
| 300-item digest              | delivered, no refusal, each story exactly once, parts    |
|                              | numbered, the platform's pacing never exceeded           |
| hostile title                | nobody notified, no refusal or entity error, no header   |
|                              | injection, no line starting "Bcc:", shown as typed       |
| retry after part k failed    | parts_sent == k, the retry sends only the rest; Matrix   |
|                              | reuses the failed part's transaction id                  |

Console has no transport and no service: its transport row is a closed
stream, and the service rows are skipped with that reason. Apprise runs
when it is installed (``pip install 'newswatch[apprise]'``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from channel_harness import (
    HARNESSES,
    HOSTILE,
    EmailHarness,
    Harness,
    MatrixHarness,
    ReceiverHarness,
    WebhookHarness,
    story_url,
)
from notify_samples import alert, many
from rawserver import RawServer, closed_port
from virtualtime import VirtualClock

APPRISE = importlib.util.find_spec("apprise") is not None
KINDS = [
    pytest.param(kind, marks=pytest.mark.skipif(not APPRISE, reason="apprise not installed"))
    if kind == "apprise"
    else kind
    for kind in HARNESSES
]
ALERT_LINK = "https://www.koreaherald.com/view.php?ud=20240619000123"
# How long a transport-error row waits for a silent server.
SHORT_TIMEOUT = "0.25s"


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = HARNESSES[request.param](VirtualClock())
    h.start()
    try:
        yield h
    finally:
        await h.close_channels()
        h.stop()


def assert_clean(text: str | None, h: Harness) -> None:
    for secret in h.secrets():
        assert secret not in (text or ""), f"{secret!r} leaked into {text!r}"


def needs_service(h: Harness) -> None:
    if not h.network:
        pytest.skip(f"{h.kind} writes to a stream: there is no service to answer")


def with_timeout(cfg: dict[str, Any], timeout: str) -> dict[str, Any]:
    if "smtp" in cfg:
        return {**cfg, "smtp": {**cfg["smtp"], "timeout": timeout}}
    return {**cfg, "timeout": timeout}


@contextmanager
def broken_transport(failure: str) -> Iterator[str]:
    """A base URL where ``failure`` happens."""
    if failure == "refused":
        yield f"http://127.0.0.1:{closed_port()}"
        return
    with RawServer(failure) as raw:  # type: ignore[arg-type]
        yield raw.url


def shown_in(texts: list[str], marker: str) -> int:
    """In how many accepted messages ``marker`` appears."""
    return sum(marker in t for t in texts)


def assert_each_story_once(texts: list[str], n: int) -> None:
    for i in range(1, n + 1):
        assert shown_in(texts, story_url(i)) == 1, f"story {i} link"
        assert sum(t.count(f"Story {i}:") for t in texts) == 1, f"story {i} title"


# --------------------------------------------------------------------------- rows


async def test_secrets_masked_in_describe_and_repr(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    for cfg in (harness.config(), harness.config(good=False)):
        channel = harness.build(http, cfg)
        assert_clean(channel.describe(), harness)
        assert_clean(repr(channel), harness)
        assert harness.kind in channel.describe()


@pytest.mark.parametrize("failure", ["refused", "reset", "timeout", "garbage"])
async def test_transport_error_is_temporary(
    harness: Harness, http: httpx.AsyncClient, failure: str
) -> None:
    if not harness.network:
        if failure != "refused":
            pytest.skip(f"{harness.kind} has no transport to {failure}")
        harness.fail_part(0)  # the stream is closed
        result = await harness.build(http).send(alert())
    else:
        with broken_transport(failure) as base:
            cfg = with_timeout(harness.config(base), SHORT_TIMEOUT)
            result = await harness.build(http, cfg).send(alert())
    assert not result.ok
    assert not result.permanent, result.error
    assert result.parts_sent == 0
    assert result.error
    assert_clean(result.error, harness)


async def test_accepted(harness: Harness, http: httpx.AsyncClient) -> None:
    channel = harness.build(http)
    result = await channel.send(alert())
    assert result.ok, result.error
    assert result.parts_sent == harness.parts(channel, alert())  # 1; apprise: 1 per URL
    assert_clean(result.answer, harness)
    assert shown_in(harness.texts(), ALERT_LINK) == 1
    assert harness.problems() == []


async def test_refused_for_good(harness: Harness, http: httpx.AsyncClient) -> None:
    needs_service(harness)
    result = await harness.build(http, harness.config(good=False)).send(alert())
    assert not result.ok
    assert result.permanent is harness.permanent_refusals, result.error
    assert_clean(result.error, harness)
    assert_clean(result.answer, harness)
    assert harness.texts() == []


async def test_rate_limited(harness: Harness, http: httpx.AsyncClient) -> None:
    needs_service(harness)
    harness.rate_limit_next(7.25)
    result = await harness.build(http).send(alert())
    assert not result.ok
    assert not result.permanent, result.error
    assert result.retry_after == harness.expected_retry_after(7.25)
    assert_clean(result.error, harness)


async def test_refusal_quoting_our_secrets_is_scrubbed(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    """A service whose error page echoes the request (its path, token or
    password) back: the error and the answer we keep show none of it."""
    needs_service(harness)
    if not harness.echo_secrets_next():
        pytest.skip(f"{harness.kind} keeps no text of the service's answer")
    result = await harness.build(http).send(alert())
    assert not result.ok and result.error
    assert_clean(result.error, harness)
    assert_clean(result.answer, harness)


async def test_server_error(harness: Harness, http: httpx.AsyncClient) -> None:
    needs_service(harness)
    harness.server_error_next()
    result = await harness.build(http).send(alert())
    assert not result.ok
    assert not result.permanent, result.error
    assert_clean(result.error, harness)


async def test_long_headline_fits(harness: Harness, http: httpx.AsyncClient) -> None:
    title = "Pyongyang summit " * 589  # 10,013 characters
    result = await harness.build(http).send(alert(title=title))
    assert result.ok, result.error
    assert harness.problems() == []
    texts = harness.texts()
    assert shown_in(texts, ALERT_LINK) == 1
    assert shown_in(texts, "Pyongyang summit Pyongyang summit") == 1


async def test_300_item_digest_fits(harness: Harness, http: httpx.AsyncClient) -> None:
    notification = many(300)
    channel = harness.build(http)
    parts = harness.parts(channel, notification)
    result = await channel.send(notification)
    assert result.ok, result.error
    assert result.parts_sent == parts
    assert harness.problems() == []  # no refusal, no 429 from pacing, nothing hidden
    texts = harness.texts()
    assert_each_story_once(texts, 300)
    if isinstance(harness, ReceiverHarness):
        assert len(texts) == parts > 1
        assert harness.receiver.pacing_violations == 0
        for k, text in enumerate(texts, start=1):
            assert f"part {k} of {parts}" in text or f"({k}/{parts})" in text


async def test_hostile_title_is_inert(harness: Harness, http: httpx.AsyncClient) -> None:
    result = await harness.build(http).send(alert(title=HOSTILE))
    assert result.ok, result.error
    assert harness.problems() == []  # Telegram: its HTML entity check passed
    assert harness.mentions() == []
    texts = harness.texts()
    assert len(texts) == 1
    assert not any(line.startswith("Bcc:") for line in texts[0].splitlines())
    # Shown as typed: escaped once, neither lost nor doubled.
    assert "<script>alert(1)</script> & <b>x</b>" in texts[0]
    if isinstance(harness, EmailHarness):
        message = harness.last()
        assert message["Bcc"] is None
        assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
        assert harness.smtp.envelopes[-1][1] == ["desk@example.org"]
    if isinstance(harness, WebhookHarness):
        import json

        assert json.loads(texts[0])["items"][0]["title"] == HOSTILE


async def test_retry_resumes_at_the_failed_part(harness: Harness, http: httpx.AsyncClient) -> None:
    notification = many(300)
    channel = harness.build(http)
    parts = harness.parts(channel, notification)
    k = min(2, parts - 1)
    harness.fail_part(k)
    first = await channel.send(notification)
    assert not first.ok and not first.permanent, first.error
    assert first.parts_sent == k
    harness.recover()
    retry = dataclasses.replace(notification, attempt=2, parts_sent=first.parts_sent)
    second = await channel.send(retry)
    assert second.ok, second.error
    assert second.parts_sent == parts
    assert_each_story_once(harness.texts(), 300)
    if isinstance(harness, MatrixHarness):
        txns = harness.txn_ids()
        assert len(txns) == parts + 1
        assert txns[k] == txns[k + 1] == notification.part_key(k)
