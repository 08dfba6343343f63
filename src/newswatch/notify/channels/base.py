"""The contract every channel keeps, what a channel factory is given, and the
base that HTTP channels (webhook and the chat platforms) share.

A channel module is declarative: its ``kind`` (the config ``type``), its
limits, its secret fields, a pure ``render`` step (notification -> the
requests it takes, within the platform's limits) and a ``send`` step that
only transports those requests and classifies the answers. Pacing (a token
bucket per channel) runs between requests; the deliverer owns retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol, TextIO

import httpx

from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.pacer import NoPacing, describe_pacing
from newswatch.notify.redact import clean_error, scrub
from newswatch.notify.render import RenderContext
from newswatch.notify.retry import parse_retry_after

log = logging.getLogger("newswatch.notify")

# HTTP statuses that say "later", not "never".
RETRY_STATUSES = frozenset({408, 425, 429})
# How much of a refusing server's answer to keep in the error (it often says why).
BODY_EXCERPT = 300
# A paced send of many parts stops waiting for its turn past this many
# seconds and reports the parts it sent (a retry resumes after them), well
# inside the deliverer's two-minute send timeout, which would cut it off
# with none recorded.
SEND_BUDGET = 90.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Channel(Protocol):
    """One configured destination (an SMTP mailbox, a chat room, a webhook).

    Failure modes, all reported through the returned ``DeliveryResult``:
    ``send`` never raises for transport or service problems.

    - service unreachable, timed out, 408/429/5xx, SMTP 4xx -> ``retry``
      (with ``retry_after`` when the service said when);
    - the service refused this notification for good (4xx, SMTP 5xx, bad
      credentials) -> ``failed`` (permanent: dead letter);
    - a notification split into parts reports ``parts_sent`` so a retry
      resumes after the parts already accepted;
    - errors never contain secrets (passwords, tokens, webhook paths).
    """

    name: str  # the key in the config's ``channels:`` mapping
    kind: str  # the config ``type``: "email", "slack", ...

    async def send(self, notification: Notification) -> DeliveryResult: ...

    def describe(self) -> str:
        """A one-line description safe to log or print (secrets masked)."""
        ...

    async def flush(self) -> None:
        """The delivery round is over: release what was kept open for it
        (the email channel's SMTP connection)."""
        ...

    async def aclose(self) -> None:
        """Release what the channel owns (not the shared HTTP client)."""
        ...


class Pacer(Protocol):
    """Waits until the next request to a service may go (a token bucket,
    ``channels.pacer``). With ``within``: waits only if the turn comes within
    that many seconds; otherwise reserves nothing and returns how far away
    the turn is (None means: go now)."""

    async def wait(self, within: float = math.inf) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """Shared resources passed to every channel factory."""

    http: httpx.AsyncClient
    out: TextIO | None = None  # console output; None means sys.stdout at send time
    clock: Callable[[], datetime] = field(default=utcnow)
    tz: tzinfo = UTC  # wall clock for times shown to people
    render: RenderContext | None = None  # templates + tz; built from ``tz`` when None
    # How a channel waits for its pacing (tests pass a fake that advances a clock).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def rendering(self) -> RenderContext:
        return self.render if self.render is not None else RenderContext(tz=self.tz)


# --------------------------------------------------------------------------- HTTP channels


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request a rendered notification takes (one part of it)."""

    url: str
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"

    def body_bytes(self) -> bytes:
        if self.content is not None:
            return self.content
        return json.dumps(self.json, ensure_ascii=False, separators=(",", ":")).encode()


class HttpChannel:
    """Base of channels that send each part of a notification as one HTTP request.

    Subclasses set ``kind`` and implement ``requests`` (pure: the requests a
    notification takes, each within the platform's limits) and may override
    ``classify`` (the platform's own error bodies and retry hints) and
    ``describe``. ``secrets`` are scrubbed from every error; ``target`` is
    the masked destination shown in errors and descriptions.
    """

    kind: str = "http"

    def __init__(
        self,
        name: str,
        *,
        http: httpx.AsyncClient,
        target: str,
        secrets: Sequence[str],
        render: RenderContext,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 15.0,
        pacer: Pacer | None = None,
        budget: float = SEND_BUDGET,
    ) -> None:
        self.name = name
        self._http = http
        self._target = target
        self._secrets = list(secrets)
        self._render = render
        self._clock = clock
        self._timeout = timeout
        self._pacer: Pacer = pacer or NoPacing()
        self._budget = budget

    # -- what subclasses provide

    def requests(self, notification: Notification) -> list[HttpRequest]:
        raise NotImplementedError

    def classify(self, response: httpx.Response) -> DeliveryResult:
        """Generic HTTP: 2xx delivered; 408/425/429/5xx temporary with
        Retry-After honoured; any other status permanent."""
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult.success(answer=self.answer(response))
        error = self.error(f"HTTP {status} {response.reason_phrase}{self.excerpt(response)}")
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return DeliveryResult.retry(
                error, retry_after=retry_after, answer=self.answer(response)
            )
        return DeliveryResult.failed(error, answer=self.answer(response))

    def describe(self) -> str:
        return f"{self.kind} {self._target}{describe_pacing(self._pacer)}"

    # -- the transport

    async def send(self, notification: Notification) -> DeliveryResult:
        """Send the parts not yet accepted, one by one, each after its turn
        from the pacer; stop at the first part that fails."""
        try:
            requests = self.requests(notification)
        except Exception as exc:  # a template or rendering bug: a person must look
            return DeliveryResult.failed(
                self.error(f"could not render: {type(exc).__name__}: {exc}")
            )
        started = self._clock()
        answers: list[str] = []
        for number in range(notification.parts_sent, len(requests)):
            spent = (self._clock() - started).total_seconds()
            later = await self._pacer.wait(within=max(0.0, self._budget - spent))
            if later is not None:
                error = self.error(
                    f"paced: {number} of {len(requests)} parts sent; "
                    f"the next may go in {later:.1f}s"
                )
                paced = DeliveryResult.retry(error, retry_after=later)
                return dataclasses.replace(paced, parts_sent=number, deferred=True)
            result = await self._send_one(requests[number])
            if result.answer:
                answers.append(result.answer)
            if not result.ok:
                return dataclasses.replace(result, parts_sent=number)
        answer = answers[-1] if answers else None
        return DeliveryResult.success(parts_sent=len(requests), answer=answer)

    async def _send_one(self, request: HttpRequest) -> DeliveryResult:
        try:
            response = await self._http.request(
                request.method,
                request.url,
                content=request.body_bytes(),
                headers={"Content-Type": "application/json", **request.headers}
                if request.content is None
                else dict(request.headers),
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(self.error(f"timed out ({type(exc).__name__})"))
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return DeliveryResult.failed(self.error(f"{type(exc).__name__}: {exc}"))
        except (httpx.TransportError, OSError) as exc:
            return DeliveryResult.retry(self.error(f"{type(exc).__name__}: {exc}"))
        return self.classify(response)

    # -- helpers for subclasses

    def excerpt(self, response: httpx.Response) -> str:
        try:
            body = response.text[:BODY_EXCERPT].strip()
        except (UnicodeDecodeError, LookupError):
            return ""
        return f": {body}" if body else ""

    def answer(self, response: httpx.Response) -> str:
        """The service's reply in one line, secrets scrubbed (for `channels test`)."""
        return clean_error(f"HTTP {response.status_code}{self.excerpt(response)}", self._secrets)

    def error(self, text: str) -> str:
        return clean_error(f"{self.kind} {self._target}: {text}", self._secrets)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def flush(self) -> None:
        """Nothing kept open between rounds."""

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client is shared and owned by the caller."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.describe()}>"
