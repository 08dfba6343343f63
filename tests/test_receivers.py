"""The platform receivers answer like the real services.

Each limit a receiver enforces is posted to once just over (and, where the
boundary is subtle, exactly at) the limit with httpx, and the answer is
compared with the platform's documented one; a valid payload is accepted
and decoded; hostile text that would mention people is recorded. Pacing
runs on a stepped clock, so nothing here sleeps.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from newswatch.notify.pacing import full, pacing_for, take
from receivers import (
    DiscordWebhookReceiver,
    MatrixReceiver,
    NtfyReceiver,
    Receiver,
    SlackApiReceiver,
    SlackWebhookReceiver,
    SlidingWindow,
    TeamsWorkflowReceiver,
    TelegramReceiver,
    TokenBucket,
)
from receivers.matrix import pdu_size
from receivers.teams import properties_size
from receivers.telegram_html import HtmlError, parse_html

HOSTILE = "<!channel> @everyone <@&1> <script>alert(1)</script> & <b>x</b>\r\nBcc: x@evil"
ARTICLE = "https://www.koreaherald.com/view.php?ud=20240619000123"


class Clock:
    """A clock the test steps by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One client for the module: building one costs ~50 ms (its TLS context).
    with httpx.Client(timeout=5.0) as client:
        yield client


R = TypeVar("R", bound=Receiver)


def started(receiver: R) -> Iterator[R]:
    with receiver:
        yield receiver


@pytest.fixture
def slack(clock: Clock) -> Iterator[SlackWebhookReceiver]:
    yield from started(SlackWebhookReceiver(clock=clock))


@pytest.fixture
def slack_api(clock: Clock) -> Iterator[SlackApiReceiver]:
    yield from started(SlackApiReceiver(clock=clock))


@pytest.fixture
def discord(clock: Clock) -> Iterator[DiscordWebhookReceiver]:
    yield from started(DiscordWebhookReceiver(clock=clock))


@pytest.fixture
def telegram(clock: Clock) -> Iterator[TelegramReceiver]:
    yield from started(TelegramReceiver(clock=clock))


@pytest.fixture
def teams(clock: Clock) -> Iterator[TeamsWorkflowReceiver]:
    yield from started(TeamsWorkflowReceiver(clock=clock))


@pytest.fixture
def matrix(clock: Clock) -> Iterator[MatrixReceiver]:
    yield from started(MatrixReceiver(clock=clock))


@pytest.fixture
def ntfy(clock: Clock) -> Iterator[NtfyReceiver]:
    yield from started(NtfyReceiver(clock=clock))


# ------------------------------------------------------------------ one valid post per platform


def card(*texts: str, **extra: Any) -> dict[str, Any]:
    body = [{"type": "TextBlock", "text": t, "wrap": True} for t in texts]
    content = {"type": "AdaptiveCard", "version": "1.4", "body": body, **extra}
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}
        ],
    }


MATRIX_TOKEN = "syt_newswatch_secret_token"
MATRIX_ROOM = "!newsroom:example.org"
MATRIX_AUTH = {"Authorization": f"Bearer {MATRIX_TOKEN}"}
TG_CHAT = "-1001234567"

Sender = Callable[[Any, httpx.Client, str], httpx.Response]


def send_slack(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    return http.post(r.url, json={"text": text})


def send_slack_api(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {r.token}"}
    return http.post(r.url, json={"channel": "C0000NEWS", "text": text}, headers=auth)


def send_discord(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    return http.post(r.url, json={"content": text, "allowed_mentions": {"parse": []}})


def send_telegram(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    return http.post(r.url, json={"chat_id": TG_CHAT, "text": text, "parse_mode": "HTML"})


def send_teams(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    return http.post(r.url, json=card(text))


def send_matrix(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    send_matrix.txn += 1  # type: ignore[attr-defined]
    url = r.send_url(MATRIX_ROOM, f"txn{send_matrix.txn}")  # type: ignore[attr-defined]
    return http.put(url, json={"msgtype": "m.text", "body": text}, headers=MATRIX_AUTH)


send_matrix.txn = 0  # type: ignore[attr-defined]


def send_ntfy(r: Any, http: httpx.Client, text: str) -> httpx.Response:
    return http.post(r.topic_url("newsdesk"), content=text.encode())


PLATFORMS: dict[str, tuple[Callable[..., Receiver], Sender, int]] = {
    "slack": (SlackWebhookReceiver, send_slack, 200),
    "slack_api": (SlackApiReceiver, send_slack_api, 200),
    "discord": (DiscordWebhookReceiver, send_discord, 204),
    "telegram": (TelegramReceiver, send_telegram, 200),
    "teams": (TeamsWorkflowReceiver, send_teams, 202),
    "matrix": (MatrixReceiver, send_matrix, 200),
    "ntfy": (NtfyReceiver, send_ntfy, 200),
}


@pytest.fixture(params=sorted(PLATFORMS))
def platform(
    request: pytest.FixtureRequest, clock: Clock
) -> Iterator[tuple[Receiver, Sender, int]]:
    factory, sender, ok = PLATFORMS[request.param]
    with factory(clock=clock) as receiver:
        yield receiver, sender, ok


# ------------------------------------------------------------------ shared behaviour


def test_every_receiver_accepts_a_valid_message_and_records_it(
    platform: tuple[Receiver, Sender, int], http: httpx.Client
) -> None:
    receiver, send, ok = platform
    response = send(receiver, http, f"Putin in Pyongyang {ARTICLE}")
    assert response.status_code == ok, response.text
    assert receiver.items_seen(ARTICLE) == 1
    assert receiver.messages[0].contains("Pyongyang")
    assert receiver.mentions == [] and receiver.pacing_violations == 0
    assert receiver.statuses == [ok]


def test_failure_scripts_answer_first_then_the_platform_again(
    platform: tuple[Receiver, Sender, int], http: httpx.Client, clock: Clock
) -> None:
    receiver, send, ok = platform
    receiver.fail_next(1, status=503, body="down for maintenance")
    receiver.fail_next_server_error(1)
    first, second = send(receiver, http, "a"), send(receiver, http, "b")
    assert (first.status_code, first.text) == (503, "down for maintenance")
    assert second.status_code >= 500
    assert send(receiver, http, "c").status_code == ok
    assert [m.text for m in receiver.messages] == ["c"]


def test_a_scripted_disconnect_sends_no_bytes(slack: SlackWebhookReceiver) -> None:
    slack.fail_next_disconnect(1)
    request = f"POST {slack.path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
    with socket.create_connection(("127.0.0.1", slack.port), timeout=5) as sock:
        sock.sendall(request.encode())
        assert sock.recv(1024) == b""  # closed without a status line
    assert slack.statuses == [None]


def test_disconnect_and_down_are_transport_errors(
    platform: tuple[Receiver, Sender, int], http: httpx.Client
) -> None:
    receiver, send, ok = platform
    receiver.fail_next_disconnect(1)
    with pytest.raises(httpx.RemoteProtocolError):
        send(receiver, http, "cut off")
    port = receiver.port
    receiver.go_down()
    with pytest.raises(httpx.ConnectError):
        send(receiver, http, "refused")
    receiver.come_up()
    assert receiver.port == port and receiver.is_up
    assert send(receiver, http, "back").status_code == ok
    assert receiver.statuses == [None, ok]  # a refused connection never arrives
    assert receiver.items_seen("back") == 1


# The platform's own 429 for a scripted rate limit of 2.5 s: (header, body check).
RETRY_FORMS: dict[str, Callable[[httpx.Response], None]] = {
    "slack": lambda r: assert_equal((r.headers["retry-after"], r.text), ("3", "rate_limited")),
    "slack_api": lambda r: assert_equal(
        (r.headers["retry-after"], r.json()), ("3", {"ok": False, "error": "ratelimited"})
    ),
    "discord": lambda r: assert_equal(
        (r.headers["retry-after"], r.json()),
        ("3", {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}),
    ),
    "telegram": lambda r: assert_equal(
        (r.headers.get("retry-after"), r.json()),
        (
            None,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            },
        ),
    ),
    "teams": lambda r: assert_equal(
        (r.headers["retry-after"], r.json()["error"]["code"]), ("3", "RequestsThrottled")
    ),
    "matrix": lambda r: assert_equal(
        (r.headers["retry-after"], r.json()),
        (
            "3",
            {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2500},
        ),
    ),
    "ntfy": lambda r: assert_equal(
        (r.headers.get("retry-after"), r.json()["code"], r.json()["error"]),
        (None, 42901, "limit reached: too many requests"),
    ),
}


def assert_equal(actual: object, expected: object) -> None:
    assert actual == expected


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_scripted_rate_limit_uses_the_platform_form(
    name: str, http: httpx.Client, clock: Clock
) -> None:
    factory, send, _ = PLATFORMS[name]
    with factory(clock=clock) as receiver:
        receiver.fail_next_rate_limited(1, retry_after=2.5)
        response = send(receiver, http, "x")
        assert response.status_code == 429
        RETRY_FORMS[name](response)
        assert receiver.pacing_violations == 0  # scripted, not earned


@pytest.mark.parametrize(
    ("kind", "name"),
    [("slack", "slack"), ("slack", "slack_api"), ("discord", "discord"), ("telegram", "telegram"),
     ("teams", "teams"), ("matrix", "matrix"), ("ntfy", "ntfy")],
)  # fmt: skip
def test_newswatch_default_pacing_never_trips_a_receiver(
    kind: str, name: str, http: httpx.Client, clock: Clock
) -> None:
    """A burst of 100 paced by ``notify.pacing`` defaults arrives within every limit."""
    bucket = pacing_for(kind)
    assert bucket is not None
    factory, send, ok = PLATFORMS[name]
    start = datetime(2024, 6, 19, 9, 0, tzinfo=UTC)
    state = full(bucket, start)
    with factory(clock=clock) as receiver:
        base = clock.now
        for i in range(100):
            state, wait = take(bucket, state, start)  # the whole burst asks at once
            clock.now = base + wait.total_seconds()
            assert send(receiver, http, f"[{i}]").status_code == ok
        assert receiver.pacing_violations == 0 and len(receiver.messages) == 100


def test_latency_delays_answers_and_stop_does_not_wait_for_it(http: httpx.Client) -> None:
    receiver = SlackWebhookReceiver(latency=0.05, pace=SlidingWindow(100, 1.0)).start()
    try:
        assert send_slack(receiver, http, "slow").status_code == 200
        receiver.latency = 30.0
        result: list[BaseException] = []
        thread = threading.Thread(target=lambda: _post_catching(receiver.url, result))
        thread.start()
        receiver.wait_for_messages(2)
    finally:
        receiver.stop()  # wakes the waiting answer: the client sees a closed socket
    thread.join(5)
    assert not thread.is_alive() and isinstance(result[0], httpx.TransportError)


def _post_catching(url: str, into: list[BaseException]) -> None:
    try:
        httpx.post(url, json={"text": "held"}, timeout=10)
    except httpx.HTTPError as exc:
        into.append(exc)


def test_wait_for_messages_times_out_with_what_arrived(slack: SlackWebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="expected 1 slack messages, got 0"):
        slack.wait_for_messages(1, timeout=0.05)


def test_concurrent_senders_are_all_recorded(http: httpx.Client) -> None:
    with NtfyReceiver(pace=TokenBucket(1000, 1000.0)) as ntfy:
        threads = [
            threading.Thread(target=lambda i=i: send_ntfy(ntfy, http, f"[item-{i}]"))
            for i in range(40)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert len(ntfy.messages) == 40 == len(ntfy.exchanges)
        assert all(ntfy.items_seen(f"[item-{i}]") == 1 for i in range(40))


def test_reset_forgets_everything(slack: SlackWebhookReceiver, http: httpx.Client) -> None:
    send_slack(slack, http, "one")
    send_slack(slack, http, "too fast")
    slack.fail_next(3, status=500)
    slack.reset()
    assert (slack.messages, slack.exchanges, slack.pacing_violations) == ([], [], 0)
    assert send_slack(slack, http, "after reset").status_code == 200


def test_sliding_window_counts_per_key_and_forgives_jitter() -> None:
    rule = SlidingWindow(2, 1.0, slack=0.05)
    assert rule.admit("a", 0.0) is None and rule.admit("a", 0.5) is None
    assert rule.admit("a", 0.9) == pytest.approx(0.1)
    assert rule.admit("b", 0.9) is None  # another key has its own window
    assert rule.admit("a", 0.96) is None  # 0.96 s after the first: within the slack


def test_token_bucket_bursts_then_refills() -> None:
    rule = TokenBucket(3, 0.5, slack=0.0)
    assert [rule.admit("u", 0.0) for _ in range(3)] == [None, None, None]
    assert rule.admit("u", 0.0) == pytest.approx(2.0)
    assert rule.admit("u", 2.0) is None
    assert rule.admit("u", 2.5) == pytest.approx(1.5)


# ------------------------------------------------------------------ Slack incoming webhook


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        ({"text": "x" * 40000, "blocks": [section("y" * 3000)]}, 200, "ok"),
        ({"blocks": [section("y" * 3001)]}, 400, "invalid_blocks"),
        ({"blocks": [section("ok")] * 51}, 400, "invalid_blocks"),
        ({"blocks": [section("ok")] * 50}, 200, "ok"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            400,
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            400,
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            400,
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]},
            400,
            "invalid_blocks",
        ),
        ({"blocks": [section("")]}, 400, "invalid_blocks"),
        ({"blocks": [{"type": "banner"}]}, 400, "invalid_blocks"),
        ({"blocks": [{"type": "context", "elements": []}]}, 400, "invalid_blocks"),
        ({"blocks": [{"type": "markdown", "text": "m" * 12001}]}, 400, "invalid_blocks"),
        ({"username": "bot"}, 400, "no_text"),
        ({"text": ""}, 400, "no_text"),
    ],
)
def test_slack_webhook_block_and_text_limits(
    slack: SlackWebhookReceiver, http: httpx.Client, payload: dict[str, Any], status: int, body: str
) -> None:
    response = http.post(slack.url, json=payload)
    assert (response.status_code, response.text) == (status, body)
    assert len(slack.messages) == (status == 200)


def test_slack_webhook_refuses_bad_json_and_unknown_or_wrong_hooks(
    slack: SlackWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    answers = []
    for url, content in (
        (slack.url, b"{not json"),
        (slack.base_url + "/services/T1/B1/nope", b"{}"),
        (slack.url.replace(slack.token, "wrong"), b"{}"),
    ):
        clock.advance(1)
        answers.append(
            http.post(url, content=content, headers={"Content-Type": "application/json"})
        )
    assert [(a.status_code, a.text) for a in answers] == [
        (400, "invalid_payload"),
        (404, "no_service"),
        (403, "invalid_token"),
    ]
    slack.archived = True
    clock.advance(1)
    assert (send_slack(slack, http, "x").status_code, slack.exchanges[-1].body) == (
        410,
        b"channel_is_archived",
    )


def test_slack_truncates_text_over_40000_and_warns_over_4000(
    slack: SlackWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    assert send_slack(slack, http, "a" * 40001).text == "ok"  # truncated, still posted
    clock.advance(1)
    send_slack(slack, http, "b" * 4001)
    long, split = slack.messages
    assert len(long.text) == 40000 and long.warnings == ("message_truncated",)
    assert split.warnings == ("text over 4,000 characters: Slack may split it",)


def test_slack_unescaped_control_sequences_mention_and_link(
    slack: SlackWebhookReceiver, http: httpx.Client
) -> None:
    raw = (
        "<!channel> <!here> <!everyone> <@U123> <#C42> <!subteam^S9|@desk> "
        "<https://evil.example|Click> & x"
    )
    http.post(slack.url, json={"text": raw})
    message = slack.messages[0]
    assert [(m.kind, m.target) for m in message.mentions] == [
        ("channel", "channel"),
        ("here", "here"),
        ("everyone", "everyone"),
        ("user", "U123"),
        ("channel_link", "C42"),
        ("usergroup", "S9"),
    ]
    assert message.links == ("https://evil.example",)
    assert message.text == "@channel @here @everyone @U123 #C42 @desk Click & x"


def test_slack_escaped_text_is_inert_and_decodes_to_what_was_meant(
    slack: SlackWebhookReceiver, http: httpx.Client
) -> None:
    title = HOSTILE + " (a &lt; b)"  # an entity in the feed text stays text
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    http.post(slack.url, json={"text": escaped, "blocks": [section(escaped)]})
    message = slack.messages[0]
    assert message.mentions == () and message.links == ()
    assert message.text == title and message.parts["fallback"] == title


def test_slack_plain_text_and_link_names(
    slack: SlackWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "<!channel> news"}}
    http.post(slack.url, json={"blocks": [header]})
    clock.advance(1)
    http.post(slack.url, json={"text": "call @here now", "link_names": True})
    clock.advance(1)
    http.post(slack.url, json={"text": "call @here now"})
    plain, named, unnamed = slack.messages
    assert plain.mentions == () and plain.text == "<!channel> news"
    assert [m.kind for m in named.mentions] == ["here"] and unnamed.mentions == ()


def test_slack_form_encoded_payload_is_accepted(
    slack: SlackWebhookReceiver, http: httpx.Client
) -> None:
    response = http.post(slack.url, data={"payload": json.dumps({"text": "from a form"})})
    assert response.text == "ok" and slack.messages[0].text == "from a form"


def test_slack_webhook_paces_one_per_second(
    slack: SlackWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    assert send_slack(slack, http, "1").status_code == 200
    clock.advance(0.5)
    refused = send_slack(slack, http, "2")
    assert (refused.status_code, refused.headers["retry-after"], refused.text) == (
        429,
        "1",
        "rate_limited",
    )
    clock.advance(0.5)
    assert send_slack(slack, http, "3").status_code == 200
    assert slack.pacing_violations == 1 and [m.text for m in slack.messages] == ["1", "3"]


# ------------------------------------------------------------------ Slack Web API


def api(
    r: SlackApiReceiver, http: httpx.Client, token: str | None = "default", **payload: Any
) -> Any:
    headers = (
        {"Authorization": f"Bearer {r.token if token == 'default' else token}"} if token else {}
    )
    response = http.post(r.url, json={"channel": "C0000NEWS", **payload}, headers=headers)
    assert response.status_code in (200, 429), response.text
    return response.json()


def test_slack_api_posts_and_threads_replies(
    slack_api: SlackApiReceiver, http: httpx.Client, clock: Clock
) -> None:
    parent = api(slack_api, http, text="Digest")
    assert (
        parent["ok"] and parent["channel"] == "C0000NEWS" and parent["message"]["text"] == "Digest"
    )
    clock.advance(1)
    reply = api(slack_api, http, text="item 1", thread_ts=parent["ts"])
    assert reply["ok"] and reply["message"]["thread_ts"] == parent["ts"] != reply["ts"]
    assert slack_api.messages[1].meta["thread_ts"] == parent["ts"]
    assert slack_api.messages[1].warnings == ()
    clock.advance(1)
    api(slack_api, http, text="lost", thread_ts="1.000001")
    assert slack_api.messages[2].warnings == ("thread_ts names no message in this channel",)


@pytest.mark.parametrize(
    ("token", "payload", "error"),
    [
        (None, {"text": "x"}, "not_authed"),
        ("xoxb-wrong", {"text": "x"}, "invalid_auth"),
        ("default", {"text": "x", "channel": "C9"}, "channel_not_found"),
        ("default", {}, "no_text"),
        ("default", {"blocks": [section("y" * 3001)]}, "invalid_blocks"),
    ],
)
def test_slack_api_refusals_are_ok_false_at_http_200(
    slack_api: SlackApiReceiver,
    http: httpx.Client,
    token: str | None,
    payload: dict[str, Any],
    error: str,
) -> None:
    answer = api(slack_api, http, token=token, **payload)
    assert (answer["ok"], answer["error"]) == (False, error)
    if error == "invalid_blocks":
        assert answer["errors"] == [
            "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
        ]
    assert slack_api.messages == []


def test_slack_api_warns_on_truncation_and_paces_per_channel(
    slack_api: SlackApiReceiver, http: httpx.Client, clock: Clock
) -> None:
    answer = api(slack_api, http, text="z" * 40001)
    assert answer["ok"] and answer["response_metadata"]["warnings"] == ["message_truncated"]
    limited = http.post(
        slack_api.url,
        json={"channel": "C0000NEWS", "text": "again"},
        headers={"Authorization": f"Bearer {slack_api.token}"},
    )
    assert (limited.status_code, limited.json()["error"]) == (429, "ratelimited")
    slack_api.archived.add("C0000NEWS")
    clock.advance(1)
    assert api(slack_api, http, text="x")["error"] == "is_archived"


# ------------------------------------------------------------------ Discord webhook


def form_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert (response.status_code, body["code"], body["message"]) == (
        400,
        50035,
        "Invalid Form Body",
    )
    return dict(body["errors"])


def too_long(limit: int) -> dict[str, Any]:
    return {
        "_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}
        ]
    }


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"content": "c" * 2001}, {"content": too_long(2000)}),
        ({"embeds": [{"title": "t"}] * 11}, {"embeds": too_long(10)}),
        ({"embeds": [{"title": "t" * 257}]}, {"embeds": {"0": {"title": too_long(256)}}}),
        (
            {"embeds": [{"description": "d" * 4097}]},
            {"embeds": {"0": {"description": too_long(4096)}}},
        ),
        (
            {"embeds": [{"footer": {"text": "f" * 2049}}]},
            {"embeds": {"0": {"footer": {"text": too_long(2048)}}}},
        ),
        (
            {"embeds": [{"author": {"name": "a" * 257}}]},
            {"embeds": {"0": {"author": {"name": too_long(256)}}}},
        ),
        (
            {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
            {"embeds": {"0": {"fields": {"0": {"value": too_long(1024)}}}}},
        ),
        (
            {"embeds": [{"fields": [{"name": "n" * 257, "value": "v"}]}]},
            {"embeds": {"0": {"fields": {"0": {"name": too_long(256)}}}}},
        ),
        (
            {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
            {"embeds": {"0": {"fields": too_long(25)}}},
        ),
        (
            {"embeds": [{"fields": [{"name": "n"}]}]},
            {
                "embeds": {
                    "0": {
                        "fields": {
                            "0": {
                                "value": {
                                    "_errors": [
                                        {
                                            "code": "BASE_TYPE_REQUIRED",
                                            "message": "This field is required",
                                        }
                                    ]
                                }
                            }
                        }
                    }
                }
            },
        ),
        (
            {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]},
            {
                "embeds": {
                    "_errors": [
                        {
                            "code": "MAX_EMBED_SIZE_EXCEEDED",
                            "message": "Embed size exceeds maximum size of 6000",
                        }
                    ]
                }
            },
        ),
        (
            {"content": "x", "username": "Discord news"},
            {
                "username": {
                    "_errors": [
                        {
                            "code": "USERNAME_INVALID_CONTAINS",
                            "message": 'Username cannot contain "discord"',
                        }
                    ]
                }
            },
        ),
    ],
)
def test_discord_form_body_limits(
    discord: DiscordWebhookReceiver,
    http: httpx.Client,
    payload: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    assert form_error(http.post(discord.url, json=payload)) == errors
    assert discord.messages == []


def test_discord_limits_are_inclusive_and_ignore_outer_whitespace(
    discord: DiscordWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    embeds = [{"description": "d" * 4000}, {"title": "t" * 256, "description": "e" * 1744}]
    ok = http.post(discord.url, json={"content": "  " + "c" * 2000 + "\n\n", "embeds": embeds})
    assert ok.status_code == 204 and ok.content == b""
    assert ok.headers["x-ratelimit-limit"] == "5" and ok.headers["x-ratelimit-remaining"] == "4"


def test_discord_other_refusals(
    discord: DiscordWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    answers = []
    for url, body in (
        (discord.url, {"content": "   "}),
        (discord.url, b"{oops"),
        (discord.url.replace(discord.webhook_id, "999"), {"content": "x"}),
        (discord.url.replace(discord.token, "bad-token"), {"content": "x"}),
        (discord.url, {"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}),
    ):
        clock.advance(1)
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
        answers.append(http.post(url, **kwargs))
    assert [(a.status_code, a.json().get("code")) for a in answers] == [
        (400, 50006),
        (400, 50109),
        (404, 10015),
        (401, 50027),
        (400, 50035),
    ]
    assert answers[0].json()["message"] == "Cannot send an empty message"
    assert answers[2].json() == {"message": "Unknown Webhook", "code": 10015}


def test_discord_wait_true_returns_the_message(
    discord: DiscordWebhookReceiver, http: httpx.Client
) -> None:
    response = http.post(
        discord.url + "?wait=true&thread_id=77",
        json={
            "content": "hello",
            "embeds": [{"title": "T", "url": ARTICLE}],
            "allowed_mentions": {"parse": []},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["content"] == "hello" and body["webhook_id"] == discord.webhook_id
    assert body["mention_everyone"] is False and body["channel_id"] == "77"
    assert discord.messages[0].meta == {"id": body["id"], "thread_id": "77"}
    assert discord.messages[0].links == (ARTICLE,)


@pytest.mark.parametrize(
    ("allowed", "pings"),
    [
        (None, [("everyone", "everyone"), ("here", "here"), ("user", "5"), ("role", "1")]),
        ({"parse": []}, []),
        ({"parse": ["users"]}, [("user", "5")]),
        ({"parse": ["everyone"]}, [("everyone", "everyone"), ("here", "here")]),
        ({"roles": ["1"]}, [("role", "1")]),
        ({"users": ["6"]}, []),
    ],
)
def test_discord_mentions_follow_allowed_mentions(
    discord: DiscordWebhookReceiver,
    http: httpx.Client,
    allowed: dict[str, Any] | None,
    pings: list[tuple[str, str]],
) -> None:
    payload: dict[str, Any] = {"content": "@everyone @here <@!5> <@&1>"}
    if allowed is not None:
        payload["allowed_mentions"] = allowed
    assert http.post(discord.url, json=payload).status_code == 204
    assert [(m.kind, m.target) for m in discord.mentions] == pings


def test_discord_embed_mentions_render_without_pinging(
    discord: DiscordWebhookReceiver, http: httpx.Client
) -> None:
    http.post(discord.url, json={"embeds": [{"title": HOSTILE, "description": "<@5>"}]})
    message = discord.messages[0]
    assert message.mentions == ()
    assert {m.kind for m in message.parts["embed_mentions"]} == {"everyone", "user", "role"}


def test_discord_hides_embeds_with_a_repeated_url(
    discord: DiscordWebhookReceiver, http: httpx.Client
) -> None:
    embeds = [{"title": "first", "url": ARTICLE}, {"title": "second", "url": ARTICLE}]
    http.post(discord.url, json={"embeds": embeds})
    message = discord.messages[0]
    assert message.text == "first" and message.warnings == (
        "embed 1 hidden: same url as an earlier embed",
    )


def test_discord_paces_five_per_two_seconds(
    discord: DiscordWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    for i in range(5):
        assert send_discord(discord, http, f"m{i}").status_code == 204
        clock.advance(0.1)
    refused = send_discord(discord, http, "m5")
    body = refused.json()
    assert refused.status_code == 429 and body["message"] == "You are being rate limited."
    assert body["retry_after"] == pytest.approx(1.5) and body["global"] is False
    assert refused.headers["retry-after"] == "2" and refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-scope"] == "user"
    clock.advance(1.5)
    assert send_discord(discord, http, "m6").status_code == 204
    assert discord.pacing_violations == 1 and len(discord.messages) == 6


def test_discord_paces_thirty_per_minute(
    discord: DiscordWebhookReceiver, http: httpx.Client, clock: Clock
) -> None:
    for i in range(30):
        assert send_discord(discord, http, f"m{i}").status_code == 204
        clock.advance(1.0)
    refused = send_discord(discord, http, "m30")
    assert refused.status_code == 429 and refused.json()["retry_after"] == pytest.approx(30.0)
    assert discord.pacing_violations == 1


# ------------------------------------------------------------------ Telegram


def tg(r: TelegramReceiver, http: httpx.Client, text: str, **params: Any) -> httpx.Response:
    return http.post(r.url, json={"chat_id": TG_CHAT, "text": text, "parse_mode": "HTML", **params})


def tg_error(response: httpx.Response) -> str:
    body = response.json()
    assert body["ok"] is False and body["error_code"] == response.status_code
    return str(body["description"])


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("<script>alert(1)</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("Head: <script>x", 'Unsupported start tag "script" at byte offset 6'),
        ("한국 <p>x", 'Unsupported start tag "p" at byte offset 7'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<a href="x>y</a>', "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a href=x/>y</a>", "Unexpected end of name token at byte offset 8"),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "Invalid custom emoji identifier specified"),
    ],
)
def test_telegram_html_errors_match_tdlib(
    telegram: TelegramReceiver, http: httpx.Client, text: str, description: str
) -> None:
    response = tg(telegram, http, text)
    assert response.status_code == 400
    assert tg_error(response) == f"Bad Request: can't parse entities: {description}"


def test_telegram_supported_markup_is_accepted_with_entities(
    telegram: TelegramReceiver, http: httpx.Client
) -> None:
    html = (
        "<b>B</b><strong>S</strong><i>I</i><em>E</em><u>U</u><ins>N</ins><s>X</s><strike>K</strike><del>D</del>"
        '<span class="tg-spoiler">P</span><tg-spoiler>Q</tg-spoiler><a href="https://e.x/?a=1&amp;b=2">L</a>'
        '<code>C</code><pre><code class="language-python">R</code></pre>'
        "<blockquote expandable>Z</blockquote>"
        "&lt;&gt;&amp;&quot;&#65;&#x42;"
    )
    response = tg(telegram, http, html)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["text"] == 'BSIEUNXKDPQLCRZ<>&"AB'
    types = [e["type"] for e in result["entities"]]
    assert types == [
        "bold", "bold", "italic", "italic", "underline", "underline", "strikethrough",
        "strikethrough", "strikethrough", "spoiler", "spoiler", "text_link", "code", "pre",
        "expandable_blockquote",
    ]  # fmt: skip
    assert result["entities"][13]["language"] == "python"
    assert telegram.messages[0].links == ("https://e.x/?a=1&b=2",)


def test_telegram_counts_code_points_after_parsing(
    telegram: TelegramReceiver, http: httpx.Client, clock: Clock
) -> None:
    accepted = [
        "a" * 4096,
        "<b>" + "a" * 4096 + "</b>",
        "&amp;" * 4096,
        "😀" * 4096,  # 8,192 UTF-16 units, 4,096 code points
        "  " + "a" * 4096 + "\n",  # TDLib trims the ends first
    ]
    for text in accepted:
        clock.advance(1)
        assert tg(telegram, http, text).status_code == 200, text[:10]
    clock.advance(1)
    refused = tg(telegram, http, "a" * 4097)
    assert tg_error(refused) == "Bad Request: message is too long"
    assert telegram.messages[3].parts["entities"] == []


def test_telegram_entity_offsets_are_utf16(telegram: TelegramReceiver, http: httpx.Client) -> None:
    result = tg(telegram, http, "😀 <b>뉴스</b>").json()["result"]
    assert result["entities"] == [{"type": "bold", "offset": 3, "length": 2}]


def test_telegram_cleans_text_like_tdlib_before_measuring(
    telegram: TelegramReceiver, http: httpx.Client
) -> None:
    # \r and U+202E (right-to-left override) vanish, a tab becomes a space,
    # spaces and newlines at the ends go; the entity moves with its text.
    result = tg(telegram, http, " \n\r<i>a\u202eb\tc</i>\n ").json()["result"]
    assert result["text"] == "ab c"
    assert result["entities"] == [{"type": "italic", "offset": 0, "length": 4}]


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"text": ""}, "Bad Request: message text is empty"),
        ({"text": "  <b> </b> "}, "Bad Request: text must be non-empty"),
        ({"text": "x" * 32769}, "Bad Request: text is too long"),
        ({"chat_id": "-100999"}, "Bad Request: chat not found"),
        ({"chat_id": ""}, "Bad Request: chat_id is empty"),
        ({"parse_mode": "BBCode"}, "Bad Request: unsupported parse_mode"),
        ({"reply_parameters": {"message_id": 99}}, "Bad Request: message to be replied not found"),
        ({"reply_to_message_id": 99}, "Bad Request: message to be replied not found"),
        (
            {"link_preview_options": "{bad"},
            "Bad Request: can't parse link preview options JSON object",
        ),
    ],
)
def test_telegram_bad_requests(
    telegram: TelegramReceiver, http: httpx.Client, params: dict[str, Any], description: str
) -> None:
    payload = {"chat_id": TG_CHAT, "text": "hi", "parse_mode": "HTML", **params}
    response = http.post(telegram.url, json=payload)
    assert (response.status_code, tg_error(response)) == (400, description)


def test_telegram_unauthorized_and_unknown_method(
    telegram: TelegramReceiver, http: httpx.Client
) -> None:
    bad = http.post(
        telegram.url.replace(telegram.token, "1:wrong"), json={"chat_id": TG_CHAT, "text": "x"}
    )
    assert (bad.status_code, bad.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    unknown = http.post(f"{telegram.base_url}/bot{telegram.token}/sendSticker", json={})
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found")
    me = http.get(f"{telegram.base_url}/bot{telegram.token}/getMe").json()
    assert me["ok"] and me["result"]["is_bot"] is True


def test_telegram_form_params_replies_and_previews(
    telegram: TelegramReceiver, http: httpx.Client, clock: Clock
) -> None:
    first = http.post(
        telegram.url,
        data={"chat_id": TG_CHAT, "text": "<b>Digest</b>", "parse_mode": "HTML",
              "link_preview_options": json.dumps({"is_disabled": True})},
    )  # fmt: skip
    first_id = first.json()["result"]["message_id"]
    clock.advance(1)
    reply = tg(telegram, http, "part 2", reply_parameters={"message_id": first_id})
    assert reply.json()["result"]["reply_to_message"]["message_id"] == first_id
    clock.advance(1)
    lenient = tg(
        telegram,
        http,
        "x",
        reply_parameters={"message_id": 999, "allow_sending_without_reply": True},
    )
    assert lenient.status_code == 200 and "reply_to_message" not in lenient.json()["result"]
    meta = [m.meta for m in telegram.messages]
    assert meta[0]["link_preview_options"] == '{"is_disabled": true}'
    assert [m["reply_to_message_id"] for m in meta] == [None, first_id, None]


def test_telegram_mentions_and_links(
    telegram: TelegramReceiver, http: httpx.Client, clock: Clock
) -> None:
    tg(
        telegram,
        http,
        '<a href="tg://user?id=42">you</a> and @someone, not <code>@coded</code> or a@b.c',
    )
    clock.advance(1)
    loose_html = '<a href="javascript:alert(1)">click</a> AT&T &nbsp; https://e.x/a'
    tg(telegram, http, loose_html)
    pinged, loose = telegram.messages
    assert [(m.kind, m.target) for m in pinged.mentions] == [
        ("text_mention", "42"),
        ("username", "someone"),
    ]
    assert loose.mentions == () and loose.links == ("https://e.x/a",)
    amp, nbsp = loose_html.index("&T"), loose_html.index("&nbsp")
    assert loose.warnings == (
        f"bare '&' at byte {amp} kept as text",
        f"bare '&' at byte {nbsp} kept as text",
        "link dropped: javascript:alert(1)",
    )


def test_telegram_escaped_hostile_title_passes_the_entity_check(
    telegram: TelegramReceiver, http: httpx.Client
) -> None:
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert tg(telegram, http, f"<b>{escaped}</b>").status_code == 200
    message = telegram.messages[0]
    assert message.text == HOSTILE.replace("\r", "") and message.warnings == ()  # TDLib drops \r
    assert [m.kind for m in message.mentions] == [
        "username"
    ]  # "@everyone" is a username to Telegram


def test_telegram_paces_each_chat_and_groups(http: httpx.Client, clock: Clock) -> None:
    with TelegramReceiver(clock=clock, chats={TG_CHAT: "supergroup", "42": "private"}) as telegram:
        assert tg(telegram, http, "1").status_code == 200
        clock.advance(0.5)
        assert tg_error(tg(telegram, http, "2")) == "Too Many Requests: retry after 1"
        assert http.post(telegram.url, json={"chat_id": "42", "text": "dm"}).status_code == 200
        for _ in range(19):
            clock.advance(1)
            assert tg(telegram, http, "n").status_code == 200
        clock.advance(1)
        twenty_first = tg(telegram, http, "21st in a minute")
        assert twenty_first.status_code == 429
        assert twenty_first.json()["parameters"]["retry_after"] == 40
        assert telegram.pacing_violations == 2


def test_telegram_html_parser_reports_literal_ampersands_and_user_links() -> None:
    parsed = parse_html('Q&A &lt;b&gt; &#0; <a href="tg://user?id=7">u</a>')
    assert parsed.text == "Q&A <b> &#0; u"
    assert parsed.literal_ampersands == (1, 14)
    assert [e.type for e in parsed.entities] == ["text_mention"]
    with pytest.raises(HtmlError, match="unmatched surrogate"):
        parse_html("&#xD83D;")


# ------------------------------------------------------------------ Teams Workflows


def test_teams_accepts_a_card_with_links_and_mentions(
    teams: TeamsWorkflowReceiver, http: httpx.Client
) -> None:
    payload = card(
        f"**Putin** in [Pyongyang]({ARTICLE})",
        "<at>Desk</at> please look",
        msteams={
            "entities": [
                {
                    "type": "mention",
                    "text": "<at>Desk</at>",
                    "mentioned": {"id": "29:1", "name": "Desk"},
                }
            ]
        },
        actions=[{"type": "Action.OpenUrl", "title": "Open", "url": "https://e.x/open"}],
    )
    response = http.post(teams.url, json=payload)
    assert (response.status_code, response.content) == (202, b"")
    assert response.headers["x-ms-workflow-run-id"]
    message = teams.messages[0]
    assert message.links == (ARTICLE, "https://e.x/open")
    assert [(m.kind, m.target) for m in message.mentions] == [("user", "29:1")]
    assert teams.failed_runs == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"type": "message"}, "the request has no 'attachments' array"),
        (
            {"attachments": [{"content": {"type": "Card", "version": "1.4"}}]},
            "Property 'type' must be 'AdaptiveCard'",
        ),
        (
            {"attachments": [{"content": {"type": "AdaptiveCard"}}]},
            "version None is missing or invalid",
        ),
        (
            {"attachments": [{"content": {"type": "AdaptiveCard", "version": "1.6"}}]},
            "version 1.6 is not supported",
        ),
        (
            {
                "attachments": [
                    {
                        "content": {
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": [{"type": "TextBlock"}],
                        }
                    }
                ]
            },
            "Required property 'text'",
        ),
        (
            card("x" * 28700),
            "MessageSizeExceeded-Message properties size exceeded. Actual message properties size: "
            f"{properties_size(card('x' * 28700)['attachments'][0]['content'])} bytes, "
            "whereas max allowed size is 28672 bytes",
        ),
    ],
)
def test_teams_refused_cards_fail_the_flow_run_after_a_202(
    teams: TeamsWorkflowReceiver, http: httpx.Client, payload: dict[str, Any], error: str
) -> None:
    assert http.post(teams.url, json=payload).status_code == 202
    assert teams.messages == []
    (run,) = teams.failed_runs
    assert error in run.error


def test_teams_size_counts_escaped_quotes(
    teams: TeamsWorkflowReceiver, http: httpx.Client, clock: Clock
) -> None:
    # 28,400 letters fit; 10,000 quotes do not: a quote is 2 bytes in the card's
    # JSON (\") and 4 once that JSON is itself a string, as Teams measures it.
    http.post(teams.url, json=card("x" * 28400))
    clock.advance(1)
    http.post(teams.url, json=card('"' * 10000))
    assert len(teams.messages) == 1 and len(teams.failed_runs) == 1
    assert teams.messages[0].warnings == (
        "card over 21000 bytes: real Teams has refused such cards",
    )


def test_teams_synchronous_refusals(
    teams: TeamsWorkflowReceiver, http: httpx.Client, clock: Clock
) -> None:
    not_json = http.post(teams.url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 400
    assert not_json.json()["error"] == {
        "code": "InvalidRequestContent",
        "message": "The input body for trigger 'manual' of type 'Request' must be of type JSON, "
        "but was of type 'text/plain'.",
    }
    clock.advance(1)
    bad_sig = http.post(teams.url.replace(teams.sig, "forged"), json=card("x"))
    assert (bad_sig.status_code, bad_sig.json()["error"]["code"]) == (
        401,
        "DirectApiInvalidAuthorizationSignature",
    )
    assert teams.failed_runs == [] and teams.messages == []


def test_teams_paces_sixty_per_thirty_seconds(
    teams: TeamsWorkflowReceiver, http: httpx.Client, clock: Clock
) -> None:
    for _ in range(60):
        assert http.post(teams.url, json=card("x")).status_code == 202
        clock.advance(0.25)  # under 4 a second: only the 30 s window fills
    refused = http.post(teams.url, json=card("x"))
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "15")
    assert teams.pacing_violations == 1


def test_teams_paces_four_per_second(
    teams: TeamsWorkflowReceiver, http: httpx.Client, clock: Clock
) -> None:
    assert [http.post(teams.url, json=card("x")).status_code for _ in range(5)] == [202] * 4 + [429]
    assert teams.pacing_violations == 1


# ------------------------------------------------------------------ Matrix


def mx(
    r: MatrixReceiver,
    http: httpx.Client,
    txn: str,
    content: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return http.put(
        r.send_url(MATRIX_ROOM, txn),
        json=content,
        headers=MATRIX_AUTH if headers is None else headers,
    )


def test_matrix_sends_and_is_idempotent_per_token_and_txn(
    matrix: MatrixReceiver, http: httpx.Client
) -> None:
    content = {
        "msgtype": "m.text",
        "body": "hello",
        "format": "org.matrix.custom.html",
        "formatted_body": f'<a href="{ARTICLE}">hello</a>',
    }
    first = mx(matrix, http, "t1", content)
    again = mx(matrix, http, "t1", content)
    assert first.status_code == again.status_code == 200
    assert first.json()["event_id"] == again.json()["event_id"]
    assert first.json()["event_id"].startswith("$")
    matrix.tokens["syt_other"] = "@newswatch:example.org"
    other = mx(matrix, http, "t1", content, {"Authorization": "Bearer syt_other"})
    assert other.json()["event_id"] != first.json()["event_id"]
    assert len(matrix.messages) == 2 and matrix.duplicates == 1
    assert matrix.messages[0].links == (ARTICLE,) and matrix.messages[0].meta["txn_id"] == "t1"


def test_matrix_event_size_limit_counts_the_whole_pdu(
    matrix: MatrixReceiver, http: httpx.Client
) -> None:
    overhead = pdu_size(
        MATRIX_ROOM, "@newswatch:example.org", "m.room.message", {"msgtype": "m.text", "body": ""}
    )
    fits = {"msgtype": "m.text", "body": "x" * (65536 - overhead)}
    over = {"msgtype": "m.text", "body": "x" * (65536 - overhead + 1)}
    assert 500 < overhead < 1000
    assert mx(matrix, http, "fits", fits).status_code == 200
    too_large = mx(matrix, http, "over", over)
    assert (too_large.status_code, too_large.json()) == (
        413,
        {"errcode": "M_TOO_LARGE", "error": "event too large"},
    )


@pytest.mark.parametrize(
    ("headers", "room", "body", "status", "errcode"),
    [
        ({}, MATRIX_ROOM, {"body": "x"}, 401, "M_MISSING_TOKEN"),
        ({"Authorization": "Bearer nope"}, MATRIX_ROOM, {"body": "x"}, 401, "M_UNKNOWN_TOKEN"),
        (MATRIX_AUTH, "!other:example.org", {"body": "x"}, 403, "M_FORBIDDEN"),
        (MATRIX_AUTH, MATRIX_ROOM, b"not json", 400, "M_NOT_JSON"),
        (MATRIX_AUTH, MATRIX_ROOM, ["a", "list"], 400, "M_NOT_JSON"),
    ],
)
def test_matrix_errors(
    matrix: MatrixReceiver,
    http: httpx.Client,
    headers: dict[str, str],
    room: str,
    body: Any,
    status: int,
    errcode: str,
) -> None:
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = http.put(matrix.send_url(room, "t"), headers=headers, **kwargs)
    assert (response.status_code, response.json()["errcode"]) == (status, errcode)
    if errcode == "M_UNKNOWN_TOKEN":
        assert response.json()["soft_logout"] is False


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        ({"body": "@room look", "m.mentions": {}}, []),
        ({"body": "@room look"}, [("room", "@room")]),
        ({"body": "hi @alice:example.org"}, [("user", "@alice:example.org")]),
        (
            {"body": "x", "m.mentions": {"room": True, "user_ids": ["@bob:e.org"]}},
            [("user", "@bob:e.org"), ("room", "@room")],
        ),
    ],
)
def test_matrix_mentions_intentional_and_legacy(
    matrix: MatrixReceiver,
    http: httpx.Client,
    content: dict[str, Any],
    mentions: list[tuple[str, str]],
) -> None:
    assert mx(matrix, http, "m", {"msgtype": "m.text", **content}).status_code == 200
    assert [(m.kind, m.target) for m in matrix.mentions] == mentions


def test_matrix_records_relations_and_unsafe_html(
    matrix: MatrixReceiver, http: httpx.Client
) -> None:
    relates = {"rel_type": "m.thread", "event_id": "$root"}
    content = {
        "msgtype": "m.text",
        "body": HOSTILE,
        "format": "org.matrix.custom.html",
        "formatted_body": "<b>x</b><script>alert(1)</script><iframe></iframe>",
        "m.relates_to": relates,
        "m.mentions": {},
    }
    mx(matrix, http, "r", content)
    message = matrix.messages[0]
    assert message.meta["relates_to"] == relates and message.mentions == ()
    assert message.warnings == (
        "formatted_body has <iframe>: clients strip it",
        "formatted_body has <script>: clients strip it",
    )


def test_matrix_paces_with_a_burst_of_ten(
    matrix: MatrixReceiver, http: httpx.Client, clock: Clock
) -> None:
    for i in range(10):
        assert mx(matrix, http, f"b{i}", {"body": "x"}).status_code == 200
    limited = mx(matrix, http, "b10", {"body": "x"})
    assert limited.status_code == 429 and limited.json()["retry_after_ms"] == 5000
    assert limited.headers["retry-after"] == "5"
    assert mx(matrix, http, "b0", {"body": "x"}).status_code == 200  # a retry of a sent txn is free
    clock.advance(5)
    assert mx(matrix, http, "b10", {"body": "x"}).status_code == 200
    assert matrix.pacing_violations == 1 and len(matrix.messages) == 11


# ------------------------------------------------------------------ ntfy


def test_ntfy_publishes_with_headers(ntfy: NtfyReceiver, http: httpx.Client) -> None:
    title = "=?UTF-8?B?" + __import__("base64").b64encode("러시아 뉴스".encode()).decode() + "?="
    response = http.post(
        ntfy.topic_url("newsdesk"),
        content=f"  Putin in Pyongyang [link]({ARTICLE})\n".encode(),
        headers={
            "Title": title,
            "Click": ARTICLE,
            "Tags": "news, korea",
            "Priority": "high",
            "Markdown": "yes",
            "Authorization": "Bearer ignored",
        },
    )
    body = response.json()
    assert (
        response.status_code == 200 and body["event"] == "message" and body["topic"] == "newsdesk"
    )
    assert body["message"] == f"Putin in Pyongyang [link]({ARTICLE})"
    assert (body["title"], body["tags"], body["priority"], body["click"], body["content_type"]) == (
        "러시아 뉴스", ["news", "korea"], 4, ARTICLE, "text/markdown",
    )  # fmt: skip
    assert body["expires"] > body["time"] and body["id"]
    assert ntfy.messages[0].text == f"러시아 뉴스\nPutin in Pyongyang [link]({ARTICLE})"


def test_ntfy_json_publish_and_query_params(ntfy: NtfyReceiver, http: httpx.Client) -> None:
    http.post(
        ntfy.base_url + "/",
        json={
            "topic": "newsdesk",
            "message": "from json",
            "title": "T",
            "priority": 5,
            "tags": ["a"],
        },
    )
    http.post(ntfy.topic_url("newsdesk") + "?title=Q&p=min", content=b"")
    from_json, from_query = ntfy.messages
    assert from_json.text == "T\nfrom json" and from_json.meta["priority"] == 5
    assert from_query.text == "Q\ntriggered" and from_query.meta["priority"] == 1


def test_ntfy_over_4096_bytes_becomes_an_attachment(ntfy: NtfyReceiver, http: httpx.Client) -> None:
    at_limit = "한" * 1365 + "a"  # 4,096 bytes
    assert http.post(ntfy.topic_url("t"), content=at_limit.encode()).json()["message"] == at_limit
    response = http.post(ntfy.topic_url("t"), content=f"{ARTICLE} ".encode() + b"x" * 4096)
    body = response.json()
    assert response.status_code == 200 and body["message"] == "You received a file: attachment.txt"
    assert (
        body["attachment"]["name"] == "attachment.txt"
        and body["attachment"]["size"] == len(ARTICLE) + 4097
    )
    assert ntfy.items_seen(ARTICLE) == 0  # the reader sees only the placeholder
    assert ntfy.messages[1].warnings == (
        f"message of {len(ARTICLE) + 4097} bytes became an attachment; its text is not shown",
    )


def ntfy_error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    assert body["http"] == response.status_code
    return response.status_code, body["code"], body["error"]


def test_ntfy_errors(http: httpx.Client, clock: Clock) -> None:
    with NtfyReceiver(clock=clock, attachments=False, token="tk_secret") as ntfy:
        url, auth = ntfy.topic_url("t"), {"Authorization": "Bearer tk_secret"}
        answers = [
            http.post(url, content=b"x", headers={"Authorization": "Bearer wrong"}),
            http.post(url, content=b"x"),
            http.post(url, content=b"x" * 4097, headers=auth),
            http.post(url, content=b"x", headers={**auth, "Priority": "urgent!"}),
            http.post(ntfy.base_url + "/", content=b"{nope", headers=auth),
            http.post(
                ntfy.base_url + "/", json={"topic": "bad/topic", "message": "x"}, headers=auth
            ),
            http.post(
                ntfy.base_url + "/", json={"topic": "t", "message": "x" * 8200}, headers=auth
            ),
        ]
        assert [ntfy_error(a) for a in answers] == [
            (401, 40101, "unauthorized"),
            (403, 40301, "forbidden"),
            (400, 40014, "invalid request: attachments not allowed"),
            (400, 40007, "invalid priority parameter"),
            (400, 40024, "invalid request: request body must be valid JSON"),
            (400, 40009, "invalid request: topic invalid"),
            (413, 41303, "JSON body too large"),
        ]
        assert ntfy.messages == []


def test_ntfy_paces_sixty_then_one_per_five_seconds(http: httpx.Client, clock: Clock) -> None:
    with NtfyReceiver(clock=clock, daily_messages=61) as ntfy:
        assert all(send_ntfy(ntfy, http, str(i)).status_code == 200 for i in range(60))
        assert ntfy_error(send_ntfy(ntfy, http, "61st")) == (
            429,
            42901,
            "limit reached: too many requests",
        )
        clock.advance(5)
        assert send_ntfy(ntfy, http, "61st again").status_code == 200
        clock.advance(5)
        assert ntfy_error(send_ntfy(ntfy, http, "62nd")) == (
            429,
            42908,
            "limit reached: daily message quota reached",
        )
        assert ntfy.pacing_violations == 1 and len(ntfy.messages) == 61
