"""One harness per channel kind: the same face over each kind's real
receiver on 127.0.0.1, for the contract table (test_channels_contract.py)
and the platform modules.

A harness starts its receiver, builds a channel config pointing at it (or
at another base URL: a closed port, a silent or garbage server), scripts
the receiver's next answers in the platform's own forms, and reads back
what a reader saw (``texts``), what the receiver refused or would have
mangled (``problems``) and who would have been notified (``mentions``).

Every channel and receiver runs on one ``VirtualClock``: pacing waits cost
no real time, and the receivers enforce the platforms' rate limits on the
same timeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import re
import ssl
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import TypeAdapter

from feedserver import FeedServer, Reply, hook_reply
from newswatch.config import ChannelConfig
from newswatch.model import Item, Notification, NotificationKind, Period
from newswatch.notify.channels import Channel, build_channel
from newswatch.notify.channels.base import HttpChannel
from notify_samples import TITLE
from notify_samples import item as sample_item
from notify_samples import notification as sample_notification
from receivers import (
    DiscordWebhookReceiver,
    MatrixReceiver,
    NtfyReceiver,
    Receiver,
    SlackWebhookReceiver,
    TeamsWorkflowReceiver,
    TelegramReceiver,
)
from smtpserver import SmtpServer
from virtualtime import T0, VirtualClock

HOSTILE = "<!channel> @everyone <@&1> <script>alert(1)</script> & <b>x</b>\r\nBcc: x@evil"
CHANNEL_CONFIG: TypeAdapter[Any] = TypeAdapter(ChannelConfig)
WRONG = "WRONGwrongWRONG0000"
# One TLS context for every test client: building one loads the CA bundle
# (~20 ms), and the receivers are plain HTTP anyway.
TLS = ssl.create_default_context()


def story_url(i: int) -> str:
    """The link of story ``i`` in ``notify_samples.many``."""
    return f"https://www.koreaherald.com/view.php?ud=2024061900{i:04d}"


class Harness:
    kind: ClassVar[str]
    network: ClassVar[bool] = True  # False: console (no transport to fail)
    permanent_refusals: ClassVar[bool] = True  # False: apprise (it says only yes or no)

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.built: list[Channel] = []

    # -- lifecycle

    async def close_channels(self) -> None:
        """Close every channel built (the email channel keeps its SMTP
        connection open until then)."""
        for channel in self.built:
            await channel.aclose()
        self.built.clear()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    # -- configuration

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        """A config for this kind, pointing at ``base`` (default: the
        receiver); ``good=False`` uses credentials the receiver refuses."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """What must never show in descriptions or errors."""
        return []

    def configured(self) -> list[str]:
        """The secrets of the good config (``secrets`` less the wrong ones)."""
        return [s for s in self.secrets() if WRONG not in s]

    def build(self, http: httpx.AsyncClient, cfg: dict[str, Any] | None = None) -> Channel:
        model = CHANNEL_CONFIG.validate_python(cfg if cfg is not None else self.config())
        channel = build_channel(
            self.kind, model, http=http, clock=self.clock.datetime, sleep=self.clock.sleep
        )
        self.built.append(channel)
        return channel

    # -- scripted answers (each applies to the next request)

    def rate_limit_next(self, seconds: float) -> None:
        raise NotImplementedError

    def expected_retry_after(self, seconds: float) -> float | None:
        """The ``retry_after`` the channel should read from that answer."""
        return None

    def server_error_next(self) -> None:
        raise NotImplementedError

    def fail_part(self, k: int) -> None:
        """Parts before ``k`` are accepted; part ``k`` gets a temporary error."""
        raise NotImplementedError

    def echo_secrets_next(self) -> bool:
        """The next answer is a refusal whose text quotes every secret
        (an error page echoing the request); False if this kind keeps no
        text of answers."""
        return False

    def clear(self) -> None:
        """Forget scripts and everything seen."""

    def recover(self) -> None:
        """End a scripted failure that does not end by itself (SMTP replies)."""

    def parts(self, channel: Channel, notification: Notification) -> int:
        """How many parts ``channel`` sends ``notification`` in."""
        if isinstance(channel, HttpChannel):
            return len(channel.requests(notification))
        return 1

    # -- observations

    def texts(self) -> list[str]:
        """Each accepted message as a reader sees it (text and link targets)."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Refusals and silent damage (truncation, hidden text) seen so far."""
        return []

    def mentions(self) -> list[object]:
        return []


# --------------------------------------------------------------------------- receivers


class ReceiverHarness(Harness):
    receiver: Receiver

    def start(self) -> None:
        self.receiver.start()

    def stop(self) -> None:
        self.receiver.stop()

    def base(self, base: str | None) -> str:
        return base or self.receiver.base_url

    def rate_limit_next(self, seconds: float) -> None:
        self.receiver.fail_next_rate_limited(1, retry_after=seconds)

    def expected_retry_after(self, seconds: float) -> float | None:
        return float(math.ceil(seconds))  # Retry-After: whole seconds

    def server_error_next(self) -> None:
        self.receiver.fail_next_server_error(1)

    def fail_part(self, k: int) -> None:
        if k:
            self.receiver.pass_next(k)
        self.receiver.fail_next_server_error(1)

    def echo_secrets_next(self) -> bool:
        self.receiver.fail_next(1, status=404, body="no route for " + " ".join(self.configured()))
        return True

    def clear(self) -> None:
        self.receiver.reset()

    def texts(self) -> list[str]:
        return ["\n".join([m.text, *m.links]) for m in self.receiver.messages]

    def problems(self) -> list[str]:
        refused = [
            f"HTTP {e.status}: {e.body[:200]!r}"
            for e in self.receiver.exchanges
            if e.status is None or e.status >= 400
        ]
        return refused + [w for m in self.receiver.messages for w in m.warnings]

    def mentions(self) -> list[object]:
        return list(self.receiver.mentions)


# Markdown as Discord and Teams render it: a backslash before ASCII
# punctuation is an escape and is not shown.
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


class MarkdownHarness(ReceiverHarness):
    def texts(self) -> list[str]:
        return [_MD_ESCAPE.sub(r"\1", text) for text in super().texts()]


class SlackHarness(ReceiverHarness):
    receiver: SlackWebhookReceiver
    kind = "slack"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = SlackWebhookReceiver(clock=clock)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        r = self.receiver
        token = r.token if good else WRONG
        url = f"{self.base(base)}/services/{r.team}/{r.bot}/{token}"
        return {"type": "slack", "webhook": url, "timeout": "1s"}

    def secrets(self) -> list[str]:
        return [self.receiver.token, WRONG]


class DiscordHarness(MarkdownHarness):
    receiver: DiscordWebhookReceiver
    kind = "discord"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = DiscordWebhookReceiver(clock=clock)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        r = self.receiver
        token = r.token if good else WRONG
        url = f"{self.base(base)}/api/webhooks/{r.webhook_id}/{token}"
        return {"type": "discord", "webhook": url, "timeout": "1s"}

    def secrets(self) -> list[str]:
        return [self.receiver.token, WRONG]

    def expected_retry_after(self, seconds: float) -> float | None:
        return round(seconds, 3)  # the body's float, not the header's whole seconds


class TelegramHarness(ReceiverHarness):
    receiver: TelegramReceiver
    kind = "telegram"
    chat = "-1001234567"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = TelegramReceiver(clock=clock)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        token = self.receiver.token if good else f"7000000001:{WRONG}"
        return {
            "type": "telegram",
            "token": token,
            "chat_id": self.chat,
            "api_url": self.base(base),
            "timeout": "1s",
        }

    def secrets(self) -> list[str]:
        return [self.receiver.token, self.receiver.token.partition(":")[2], WRONG]


class TeamsHarness(MarkdownHarness):
    kind = "teams"
    receiver: TeamsWorkflowReceiver

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = TeamsWorkflowReceiver(clock=clock)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        r = self.receiver
        url = r.url.replace(r.base_url, self.base(base))
        if not good:
            url = url.replace(r.sig, WRONG)
        return {"type": "teams", "webhook": url, "timeout": "1s"}

    def secrets(self) -> list[str]:
        return [self.receiver.sig, WRONG]

    def problems(self) -> list[str]:
        return super().problems() + [run.error for run in self.receiver.failed_runs]


class MatrixHarness(ReceiverHarness):
    receiver: MatrixReceiver
    kind = "matrix"
    room = "!newsroom:example.org"
    token = "syt_newswatch_secret_token"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = MatrixReceiver(clock=clock)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        return {
            "type": "matrix",
            "homeserver": self.base(base),
            "room_id": self.room,
            "access_token": self.token if good else WRONG,
            "timeout": "1s",
        }

    def secrets(self) -> list[str]:
        return [self.token, WRONG]

    def expected_retry_after(self, seconds: float) -> float | None:
        return round(seconds * 1000) / 1000  # retry_after_ms

    def txn_ids(self) -> list[str]:
        return [e.request.target.split("?")[0].rsplit("/", 1)[1] for e in self.receiver.exchanges]


class NtfyHarness(ReceiverHarness):
    kind = "ntfy"
    topic = "nwSecretTopic42"
    token = "tk_ntfysecrettoken0042"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.receiver = NtfyReceiver(clock=clock, token=self.token)

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        return {
            "type": "ntfy",
            "url": f"{self.base(base)}/{self.topic}",
            "token": self.token if good else WRONG,
            "timeout": "1s",
        }

    def secrets(self) -> list[str]:
        return [self.token, self.topic, WRONG]

    def expected_retry_after(self, seconds: float) -> float | None:
        return 5.0  # ntfy sends no Retry-After; one request refills every 5 s

    def texts(self) -> list[str]:
        # The title (the subject line) is a field of its own: the message
        # and the links are where each story is shown once.
        return ["\n".join([m.parts["message"], *m.links]) for m in self.receiver.messages]


# --------------------------------------------------------------------------- webhook, email


class WebhookHarness(Harness):
    kind = "webhook"
    path = "/hooks/T0001/SECRETwebhookPATH"
    signing = "hmac-secret-0042"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.server = FeedServer()
        self._statuses: list[int] = [204]

    def start(self) -> None:
        self.server.start()
        self.clear()

    def stop(self) -> None:
        self.server.stop()

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        path = self.path if good else self.path.replace("SECRET", WRONG)
        return {
            "type": "webhook",
            "url": (base or self.server.base_url) + path,
            "secret": self.signing,
            "headers": {"Authorization": "Bearer hdr-secret-0042"},
            "timeout": "1s",
        }

    def secrets(self) -> list[str]:
        return ["SECRETwebhookPATH", self.signing, "hdr-secret-0042", WRONG]

    def rate_limit_next(self, seconds: float) -> None:
        self._answer([hook_reply(429, {"Retry-After": str(math.ceil(seconds))}), hook_reply(204)])

    def expected_retry_after(self, seconds: float) -> float | None:
        return float(math.ceil(seconds))

    def server_error_next(self) -> None:
        self._answer([hook_reply(503), hook_reply(204)])

    def fail_part(self, k: int) -> None:
        self._answer([hook_reply(204)] * k + [hook_reply(502), hook_reply(204)])

    def echo_secrets_next(self) -> bool:
        echo = "no route for " + " ".join(self.configured())
        self._answer([hook_reply(404, body=echo), hook_reply(204)])
        return True

    def clear(self) -> None:
        self.server.reset()
        self._answer([hook_reply(204)])

    def _answer(self, replies: list[Reply]) -> None:
        self.server.sequence(self.path, replies)
        self._statuses = [r.status for r in replies]

    def texts(self) -> list[str]:
        """Bodies the route accepted (a sequence answers by position, its
        last reply repeating)."""
        requests = self.server.requests_to(self.path)
        last = len(self._statuses) - 1
        return [
            r.body.decode()
            for i, r in enumerate(requests)
            if 200 <= self._statuses[min(i, last)] < 300
        ]


class EmailHarness(Harness):
    kind = "email"
    password = "smtp-secret-pass-0042"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.smtp = SmtpServer(credentials={"newswatch": self.password})
        self._fail_once: str | None = None

    def start(self) -> None:
        self.smtp.start()

    def stop(self) -> None:
        self.smtp.stop()

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        host, port = self.smtp.host, self.smtp.port
        if base is not None:
            parts = urlsplit(base)
            host, port = parts.hostname or host, parts.port or port
        return {
            "type": "email",
            "to": ["desk@example.org"],
            "from": "newswatch@example.org",
            "smtp": {
                "host": host,
                "port": port,
                "starttls": False,
                "username": "newswatch",
                "password": self.password if good else WRONG,
                "timeout": "1s",
            },
        }

    def secrets(self) -> list[str]:
        return [self.password, WRONG]

    def rate_limit_next(self, seconds: float) -> None:
        self.smtp.data_reply = "451 4.7.1 Too many messages, slow down"

    def server_error_next(self) -> None:
        self.smtp.data_reply = "421 4.3.2 Service shutting down"

    def echo_secrets_next(self) -> bool:
        self.smtp.data_reply = f"554 5.7.1 rejected: credentials {self.password} logged"
        return True

    def fail_part(self, k: int) -> None:
        assert k == 0, "an email is one part"
        self.smtp.data_reply = "451 4.3.0 Local error in processing"

    def recover(self) -> None:
        self.smtp.data_reply = None

    def clear(self) -> None:
        self.recover()
        self.smtp.rcpt_reply = None
        self.smtp.clear()

    def texts(self) -> list[str]:
        return [_plain(m) for m in self.smtp.messages]

    def last(self) -> EmailMessage:
        return self.smtp.messages[-1]


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# --------------------------------------------------------------------------- console, apprise


class _Stream(io.StringIO):
    """Console output that can fail once, and keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.fail_next = False

    def write(self, s: str) -> int:
        if self.fail_next:
            self.fail_next = False
            raise BrokenPipeError(32, "Broken pipe")
        self.chunks.append(s)
        return super().write(s)


class ConsoleHarness(Harness):
    kind = "console"
    network = False

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.out = _Stream()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        return {"type": "console"}

    def build(self, http: httpx.AsyncClient, cfg: dict[str, Any] | None = None) -> Channel:
        model = CHANNEL_CONFIG.validate_python(cfg or self.config())
        channel = build_channel(
            "console", model, http=http, out=self.out, clock=self.clock.datetime
        )
        self.built.append(channel)
        return channel

    def fail_part(self, k: int) -> None:
        assert k == 0
        self.out.fail_next = True

    def clear(self) -> None:
        self.out.chunks.clear()
        self.out.fail_next = False

    def texts(self) -> list[str]:
        return list(self.out.chunks)


class AppriseHarness(Harness):
    """Two ``json://`` URLs to one loopback server: apprise's parts are its
    URLs, so a failure at the second resumes there."""

    kind = "apprise"
    permanent_refusals = False
    first = "/apprise/FIRSTsecretPATH"
    second = "/apprise/SECONDsecretPATH"

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.server = FeedServer()

    def start(self) -> None:
        self.server.start()
        self.clear()

    def stop(self) -> None:
        self.server.stop()

    def config(self, base: str | None = None, *, good: bool = True) -> dict[str, Any]:
        where = urlsplit(base or self.server.base_url).netloc
        paths = [self.first, self.second] if good else [f"/apprise/{WRONG}"]
        return {"type": "apprise", "urls": [f"json://{where}{p}" for p in paths], "timeout": "2s"}

    def secrets(self) -> list[str]:
        return ["FIRSTsecretPATH", "SECONDsecretPATH", WRONG]

    def rate_limit_next(self, seconds: float) -> None:
        headers = {"Retry-After": str(math.ceil(seconds))}
        self._answer(self.first, [hook_reply(429, headers), hook_reply(200)])

    def server_error_next(self) -> None:
        self._answer(self.first, [hook_reply(503), hook_reply(200)])

    def fail_part(self, k: int) -> None:
        assert k in (0, 1)
        self._answer(self.first if k == 0 else self.second, [hook_reply(500), hook_reply(200)])

    def clear(self) -> None:
        self.server.reset()
        self._statuses: dict[str, list[int]] = {}
        self._answer(self.first, [hook_reply(200)])
        self._answer(self.second, [hook_reply(200)])

    def _answer(self, path: str, replies: list[Reply]) -> None:
        self.server.sequence(path, replies)
        self._statuses[path] = [r.status for r in replies]

    def parts(self, channel: Channel, notification: Notification) -> int:
        return 2  # one per URL

    def accepted(self, path: str) -> list[bytes]:
        statuses = self._statuses[path]
        return [
            r.body
            for i, r in enumerate(self.server.requests_to(path))
            if statuses[min(i, len(statuses) - 1)] < 300
        ]

    def texts(self) -> list[str]:
        """What the first URL's service accepted (the second gets the same)."""
        return [_apprise_text(body) for body in self.accepted(self.first)]


def _apprise_text(body: bytes) -> str:
    data = json.loads(body)
    return f"{data.get('title', '')}\n{data.get('message', '')}"


HARNESSES: dict[str, type[Harness]] = {
    "console": ConsoleHarness,
    "email": EmailHarness,
    "webhook": WebhookHarness,
    "slack": SlackHarness,
    "discord": DiscordHarness,
    "telegram": TelegramHarness,
    "teams": TeamsHarness,
    "matrix": MatrixHarness,
    "ntfy": NtfyHarness,
    "apprise": AppriseHarness,
}


# --------------------------------------------------------------------------- delivery


def story(i: int) -> Item:
    """Story ``i``: its own title ("Story i: ...") and link (``story_url``)."""
    return sample_item(i, title=f"Story {i}: {TITLE}", link=story_url(i))


def stories_alert(i: int) -> Notification:
    return sample_notification(story(i), id=i)


def stories_digest(first: int, last: int, *, id: int) -> Notification:
    items = tuple(story(i) for i in range(first, last + 1))
    period = Period(T0, T0 + timedelta(hours=14), "daily 08:00")
    return sample_notification(*items, id=id, kind=NotificationKind.DIGEST, period=period)


def first_story(text: str) -> int:
    """The number of the first story a message shows."""
    found = re.search(r"Story (\d+):", text)
    assert found, text[:200]
    return int(found.group(1))


async def deliver_in_order(
    channel: Channel,
    notifications: list[Notification],
    clock: VirtualClock,
    *,
    on_retry: Callable[[int], None] = lambda failures: None,
    max_attempts: int = 12,
) -> int:
    """Send each notification until it is delivered, one after another, as
    the deliverer does: a temporary failure waits its ``retry_after`` (else
    30 s) on the virtual clock and the retry carries the same key and the
    parts already sent. ``on_retry(n)`` runs before the n-th retry. Returns
    the number of failed attempts."""
    failures = 0
    for notification in notifications:
        current = notification
        for attempt in range(1, max_attempts + 1):
            result = await channel.send(current)
            if result.ok:
                break
            assert not result.permanent, result.error
            failures += 1
            on_retry(failures)
            clock.advance(result.retry_after if result.retry_after is not None else 30.0)
            current = dataclasses.replace(
                current, attempt=attempt + 1, parts_sent=result.parts_sent
            )
        else:
            raise AssertionError(f"notification {notification.id} never delivered")
    return failures


async def burst(
    channel: Channel, notifications: list[Notification], clock: VirtualClock, *, workers: int = 4
) -> list[bool]:
    """Send ``notifications`` with ``workers`` concurrent senders sharing
    the channel (and so its pacer), as a deliverer lane does."""
    queue = list(reversed(notifications))
    results: list[bool] = []

    async def worker() -> None:
        try:
            while queue:
                result = await channel.send(queue.pop())
                results.append(result.ok)
        finally:
            clock.leave()

    async with clock.workers(workers), asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return results


# --------------------------------------------------------------------------- scenarios


def assert_stories_once(texts: list[str], numbers: range) -> None:
    """Each story's link in exactly one message and its title shown once."""
    for i in numbers:
        assert sum(story_url(i) in t for t in texts) == 1, f"story {i} link"
        assert sum(t.count(f"Story {i}:") for t in texts) == 1, f"story {i} title"


async def check_down_then_rate_limited(
    h: ReceiverHarness, http: httpx.AsyncClient, retry_after: float, *, digest: int = 120
) -> None:
    """The receiver is down for two attempts, then answers its platform's
    429 twice, in the middle of a split digest. Every notification arrives
    exactly once and in order, a retry after a 429 waits what the service
    said, and the receiver's pace is never exceeded."""
    channel = h.build(http)
    last = 10 + digest
    notifications = [
        *(stories_alert(i) for i in range(1, 11)),
        stories_digest(11, last, id=11),
        *(stories_alert(i) for i in range(last + 1, last + 11)),
    ]
    assert isinstance(channel, HttpChannel)
    assert len(channel.requests(notifications[10])) > 2, "the digest must be split"
    h.receiver.go_down()

    def heal(failures: int) -> None:
        if failures == 2:
            h.receiver.come_up()
            h.receiver.pass_next(12)  # ten alerts and the digest's first two parts
            h.receiver.fail_next_rate_limited(2, retry_after=retry_after)

    failures = await deliver_in_order(channel, notifications, h.clock, on_retry=heal)
    assert failures == 4
    texts = h.texts()
    assert_stories_once(texts, range(1, last + 11))
    order = [first_story(t) for t in texts]
    assert order == sorted(order)
    assert h.receiver.pacing_violations == 0
    exchanges = h.receiver.exchanges
    limited = [i for i, e in enumerate(exchanges) if e.status == 429]
    assert len(limited) == 2
    wait = h.expected_retry_after(retry_after)
    assert wait is not None
    for i in limited:
        assert exchanges[i + 1].at - exchanges[i].at >= wait - 1e-6


async def check_burst(h: ReceiverHarness, http: httpx.AsyncClient, count: int = 500) -> float:
    """``count`` alerts at once through four concurrent senders: all
    delivered, none refused for pace. Returns the virtual seconds it took."""
    channel = h.build(http)
    started = h.clock.now
    results = await burst(channel, [stories_alert(i) for i in range(1, count + 1)], h.clock)
    assert results == [True] * count
    assert h.receiver.pacing_violations == 0
    assert h.problems() == []
    assert_stories_once(h.texts(), range(1, count + 1))
    return h.clock.now - started
