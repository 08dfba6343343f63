"""Webhook and console channels, and the channel registry.

Webhooks go to a real HTTP server on 127.0.0.1 (tests/feedserver.py).
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from feedserver import FeedServer, Reply, hook_reply
from newswatch.config import (
    ChannelConfig,
    ConsoleChannelConfig,
    EmailChannelConfig,
    WebhookChannelConfig,
)
from newswatch.notify.channels import (
    CHANNEL_TYPES,
    ChannelContext,
    ConsoleChannel,
    EmailChannel,
    WebhookChannel,
    build_channel,
    build_channels,
)
from notify_samples import TITLE, alert

TOKEN = "XXXXsecretTOKENXXXX"
QUERY_SECRET = "q-secret-42"
HEADER_SECRET = "Bearer hdr-secret-99"
NOW = datetime(2024, 6, 19, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOOK = "/hook"
SECRET_HOOK = f"/services/T000/B000/{TOKEN}"  # secret_path() without the query


@pytest.fixture
def hooks() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.route(HOOK, hook_reply())
        server.route(SECRET_HOOK, hook_reply())
        yield server


def secret_path() -> str:
    return f"{SECRET_HOOK}?token={QUERY_SECRET}"


def webhook(url: str, http: httpx.AsyncClient, **changes: Any) -> WebhookChannel:
    cfg = WebhookChannelConfig.model_validate(
        {"type": "webhook", "url": url, "headers": {"Authorization": HEADER_SECRET}, **changes}
    )
    return WebhookChannel("desk-hook", cfg, ChannelContext(http=http, clock=lambda: NOW))


def assert_no_secrets(text: str | None) -> None:
    assert text is not None
    for secret in (TOKEN, QUERY_SECRET, "hdr-secret-99", "/services/"):
        assert secret not in text


# --------------------------------------------------------------------------- webhook


async def test_webhook_200_posts_the_json_payload(
    hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    result = await webhook(hooks.url(secret_path()), http).send(alert(3))
    assert result.ok and result.parts_sent == 1 and result.answer is not None
    [request] = hooks.requests
    assert request.path == secret_path()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == HEADER_SECRET
    assert request.headers["idempotency-key"] == alert(3).key
    assert "x-newswatch-signature" not in request.headers
    payload = request.json()
    assert {"version", "id", "kind", "channel", "items", "rules", "created_at"} <= payload.keys()
    assert (payload["version"], payload["kind"], payload["channel"]) == (1, "alert", "desk")
    [entry] = payload["items"]
    assert {
        "rules",
        "title",
        "link",
        "source",
        "published",
        "summary",
        "matched_terms",
        "snippet",
        "matched_at",
        "also",
    } <= entry.keys()
    assert entry["rules"] == ["russia-north-korea"]
    assert entry["title"] == TITLE
    assert entry["matched_terms"] == ["russia", "north korea"]
    assert entry["published"] == "2024-06-18T23:30:00+00:00"
    assert payload["id"] == alert(3).key


async def test_webhook_signs_the_exact_body_with_the_secret(
    hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    import hashlib
    import hmac

    secret = "hook-signing-secret"
    channel = webhook(hooks.url(HOOK), http, secret=secret)
    assert (await channel.send(alert())).ok
    [request] = hooks.requests
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-newswatch-signature"] == f"sha256={expected}"
    assert secret not in channel.describe() and "signed" in channel.describe()


async def test_webhook_payload_keeps_korean_text(
    hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    title = "러시아·북한, 군사 협력 강화"
    assert (await webhook(hooks.url(HOOK), http).send(alert(title=title))).ok
    assert hooks.json_bodies(HOOK)[0]["items"][0]["title"] == title


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (hook_reply(500, body="boom"), False, None),
        (hook_reply(502), False, None),
        (hook_reply(503, {"Retry-After": "30"}), False, 30.0),
        (hook_reply(408), False, None),
        (hook_reply(429, {"Retry-After": "7"}), False, 7.0),
        (
            hook_reply(429, {"Retry-After": format_datetime(NOW + 2 * MIN, usegmt=True)}),
            False,
            120.0,
        ),
        (hook_reply(429, {"Retry-After": "whenever"}), False, None),
        (hook_reply(404, body="no such hook"), True, None),
        (hook_reply(400), True, None),
        (hook_reply(401), True, None),
        (hook_reply(410), True, None),
        (hook_reply(301, {"Location": "http://elsewhere.example/"}), True, None),
    ],
)
async def test_webhook_statuses_are_classified(
    hooks: FeedServer,
    http: httpx.AsyncClient,
    reply: Reply,
    permanent: bool,
    retry_after: float | None,
) -> None:
    hooks.route(SECRET_HOOK, reply)
    result = await webhook(hooks.url(secret_path()), http).send(alert())
    assert not result.ok
    assert result.permanent is permanent
    assert result.retry_after == retry_after
    assert f"HTTP {reply.status}" in (result.error or "")
    assert f"webhook http://127.0.0.1:{hooks.port}/****" in (result.error or "")
    assert_no_secrets(result.error)


async def test_webhook_errors_scrub_secrets_a_server_echoes(
    hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.route(SECRET_HOOK, hook_reply(403, body=f"invalid token {TOKEN} for {secret_path()}"))
    result = await webhook(hooks.url(secret_path()), http).send(alert())
    assert result.permanent
    assert "invalid token ****" in (result.error or "")
    assert_no_secrets(result.error)


async def test_webhook_500_500_200_is_retry_retry_ok(
    hooks: FeedServer, http: httpx.AsyncClient
) -> None:
    hooks.sequence(HOOK, [hook_reply(500), hook_reply(500), hook_reply(200)])
    channel = webhook(hooks.url(HOOK), http)
    results = [await channel.send(alert()) for _ in range(3)]
    assert [r.ok for r in results] == [False, False, True]
    assert len(hooks.requests) == 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_connection_refused_is_a_retry(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{closed_port()}{secret_path()}"
    result = await webhook(url, http).send(alert())
    assert not result.ok
    assert not result.permanent
    assert "ConnectError" in (result.error or "")
    assert_no_secrets(result.error)


async def test_webhook_timeout_is_a_retry(hooks: FeedServer, http: httpx.AsyncClient) -> None:
    hooks.route(SECRET_HOOK, hook_reply(hold=True))
    result = await webhook(hooks.url(secret_path()), http, timeout="0.2s").send(alert())
    hooks.release()
    assert not result.ok
    assert not result.permanent
    assert "timed out" in (result.error or "")
    assert_no_secrets(result.error)


def test_webhook_describe_masks_the_url(http: httpx.AsyncClient) -> None:
    channel = webhook(f"https://hooks.example.com{secret_path()}", http)
    assert channel.describe() == "webhook https://hooks.example.com/****"
    assert_no_secrets(repr(channel))
    bare = webhook("https://user:pw-secret@hooks.example.com:8443/", http)
    assert bare.describe() == "webhook https://hooks.example.com:8443/****"
    assert webhook("http://127.0.0.1:9/", http).describe() == "webhook http://127.0.0.1:9/"


# --------------------------------------------------------------------------- console


async def test_console_text_prints_the_message() -> None:
    out = io.StringIO()
    channel = ConsoleChannel("console", out=out)
    assert (await channel.send(alert())).ok
    assert (await channel.send(alert(2, title="Second"))).ok
    printed = out.getvalue()
    assert printed.startswith(TITLE + "\n")
    assert "\n\nSecond\n" in printed  # a blank line between alerts
    assert "«Russia»n" in printed


async def test_console_json_prints_one_object_per_line() -> None:
    out = io.StringIO()
    channel = ConsoleChannel("console", format="json", out=out)
    await channel.send(alert(1, title="러시아\n북한"))
    await channel.send(alert(2))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["items"][0]["title"] == "러시아\n북한"
    assert "러시아" in lines[0]  # not \u-escaped
    assert json.loads(lines[1])["id"] == alert(2).key


async def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert (await ConsoleChannel("console").send(alert())).ok
    assert TITLE in capsys.readouterr().out


async def test_console_closed_stream_is_a_retry_not_a_crash() -> None:
    out = io.StringIO()
    out.close()
    result = await ConsoleChannel("console", out=out).send(alert())
    assert not result.ok
    assert not result.permanent


# --------------------------------------------------------------------------- registry


async def test_build_channels_from_config(http: httpx.AsyncClient) -> None:
    out = io.StringIO()
    configs: dict[str, ChannelConfig] = {
        "console": ConsoleChannelConfig(type="console", format="json"),
        "desk-email": EmailChannelConfig.model_validate(
            {"type": "email", "to": "desk@example.org", "smtp": {"host": "smtp.example.org"}}
        ),
        "desk-hook": WebhookChannelConfig.model_validate(
            {"type": "webhook", "url": f"https://hooks.example.com/{TOKEN}"}
        ),
    }
    channels = build_channels(configs, http=http, out=out)
    assert list(channels) == ["console", "desk-email", "desk-hook"]
    assert [c.kind for c in channels.values()] == ["console", "email", "webhook"]
    assert [c.name for c in channels.values()] == list(configs)
    assert isinstance(channels["desk-email"], EmailChannel)
    for channel in channels.values():
        assert_no_secrets(channel.describe())
        await channel.aclose()
    await channels["console"].send(alert())
    assert json.loads(out.getvalue())["items"][0]["rules"] == ["russia-north-korea"]
    assert {"console", "email", "webhook"} <= set(CHANNEL_TYPES)


def test_build_channel_rejects_an_unknown_type(http: httpx.AsyncClient) -> None:
    bogus: Any = SimpleNamespace(type="carrier-pigeon")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        build_channel("coo", bogus, http=http)
