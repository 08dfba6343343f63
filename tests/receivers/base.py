"""What every platform receiver shares: a record of every exchange and
accepted message, failure scripts and pacing, around a loopback server.

A receiver is a real HTTP/1.1 server on 127.0.0.1 and a free port
(``wire.LoopbackServer``, the ``http.server`` pattern of
``tests/feedserver.py``), whose answers are computed by the platform's rules
instead of read from a route table::

    with SlackWebhookReceiver() as slack:
        httpx.post(slack.url, json={"text": "hi"})
        assert slack.messages[0].text == "hi"
        assert slack.mentions == []

Failure scripts answer the next N requests before the platform logic runs:
``fail_next(2, status=500)``, ``fail_next_rate_limited(1, retry_after=2)``
(in the platform's own 429 form), ``fail_next_disconnect(1)`` (the socket
is closed with no answer). ``go_down()`` closes the listening socket, so
connecting is refused, and ``come_up()`` listens on the same port again.

Pacing: each receiver enforces its platform's rate limit with the
platform's 429 and counts ``pacing_violations``. The clock is injectable
(``clock=``), so a test can step time instead of sleeping.

``stop()`` is quick and leaves nothing behind: open keep-alive connections
are shut down and handler threads joined with a bound, so a test never
hangs on a receiver. All state is guarded by one lock (handlers run on
their own threads).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

from .pacing import RateRule, SlidingWindow, TokenBucket, ceil_seconds
from .wire import Answer, LoopbackServer, Request

__all__ = [
    "Answer",
    "Exchange",
    "Mention",
    "Message",
    "Receiver",
    "Request",
    "SlidingWindow",
    "TokenBucket",
    "ceil_seconds",
]

Clock = Callable[[], float]


# --------------------------------------------------------------------- values


@dataclass(frozen=True)
class Exchange:
    """A request and what it got: ``status`` is None when it got no answer."""

    request: Request
    status: int | None
    body: bytes
    at: float  # receiver clock


@dataclass(frozen=True)
class Mention:
    """Something in an accepted message that would notify people.

    ``kind`` is the platform's notion (``channel``, ``here``, ``everyone``,
    ``user``, ``role``, ``usergroup``, ``room``, ``username``...),
    ``target`` what it names, ``where`` the field it was found in."""

    kind: str
    target: str
    where: str


@dataclass(frozen=True)
class Message:
    """A message the platform accepted, decoded as a reader would see it.

    ``text`` is the visible text (markup resolved), ``links`` the link
    targets a reader can follow, ``parts`` the platform-specific pieces
    (blocks, embeds, entities, card...), ``payload`` the body as sent,
    ``meta`` ids and thread/reply references, ``warnings`` what the real
    service would do quietly (truncate, hide, turn into an attachment)."""

    platform: str
    text: str
    links: tuple[str, ...] = ()
    mentions: tuple[Mention, ...] = ()
    parts: Mapping[str, Any] = field(default_factory=dict)
    payload: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    received_at: float = 0.0

    def contains(self, marker: str | re.Pattern[str]) -> bool:
        """Whether ``marker`` appears in the visible text or a link target."""
        haystacks = (self.text, *self.links)
        if isinstance(marker, str):
            return any(marker in h for h in haystacks)
        return any(marker.search(h) for h in haystacks)


# --------------------------------------------------------------------- receiver


@dataclass
class _Script:
    remaining: int
    answer: Answer | None  # None: let the request through to the platform


class Receiver:
    """Base of the platform receivers. Subclasses implement ``handle``."""

    platform: ClassVar[str] = "generic"

    def __init__(self, *, clock: Clock = time.monotonic, latency: float = 0.0) -> None:
        self.clock = clock
        self._server = LoopbackServer(self._dispatch, name=self.platform)
        self._server.latency = latency
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._exchanges: list[Exchange] = []
        self._messages: list[Message] = []
        self._scripts: deque[_Script] = deque()
        self._violations: list[tuple[str, float]] = []

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def go_down(self) -> None:
        """Stop listening: connecting is refused until ``come_up()``."""
        self._server.stop()

    def come_up(self) -> None:
        """Listen again on the same port."""
        self._server.start()

    @property
    def is_up(self) -> bool:
        return self._server.is_up

    @property
    def latency(self) -> float:
        """Seconds every answer waits before it is sent (benchmarks)."""
        return self._server.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._server.latency = seconds

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._server.port:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://{self._server.host}:{self.port}"

    # ------------------------------------------------------------ failure scripts

    def fail_next(
        self,
        count: int = 1,
        answer: Answer | None = None,
        *,
        status: int = 500,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``answer`` (or the given
        status/body/headers), before any platform logic. Scripts queue up."""
        if answer is None:
            data = body.encode("utf-8") if isinstance(body, str) else body
            answer = Answer(status, data, dict(headers or {}))
        with self._lock:
            self._scripts.append(_Script(count, answer))

    def pass_next(self, count: int = 1) -> None:
        """Let the next ``count`` requests through to the platform logic
        before the scripts queued after this one apply (fail part k of a
        split message: ``pass_next(k); fail_next_server_error()``)."""
        with self._lock:
            self._scripts.append(_Script(count, None))

    def fail_next_rate_limited(self, count: int = 1, retry_after: float = 1.0) -> None:
        """The next ``count`` requests get the platform's own 429."""
        self.fail_next(count, self.rate_limited_answer(retry_after))

    def fail_next_server_error(self, count: int = 1) -> None:
        self.fail_next(count, self.server_error_answer())

    def fail_next_disconnect(self, count: int = 1) -> None:
        """The next ``count`` requests are read, then the socket is closed."""
        self.fail_next(count, Answer(0, disconnect=True))

    # ------------------------------------------------------------ observations

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    @property
    def requests(self) -> list[Request]:
        return [e.request for e in self.exchanges]

    @property
    def statuses(self) -> list[int | None]:
        return [e.status for e in self.exchanges]

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    @property
    def mentions(self) -> list[Mention]:
        """Every mention in every accepted message (each would notify)."""
        return [m for msg in self.messages for m in msg.mentions]

    @property
    def pacing_violations(self) -> int:
        with self._lock:
            return len(self._violations)

    @property
    def violations(self) -> list[tuple[str, float]]:
        """(pacing key, receiver time) of each request refused for pace."""
        with self._lock:
            return list(self._violations)

    def items_seen(self, marker: str | re.Pattern[str]) -> int:
        """In how many accepted messages ``marker`` (e.g. an article URL)
        appears, in visible text or link targets. An item repeated inside one
        message counts once: check ``message.text.count`` for that."""
        return sum(1 for m in self.messages if m.contains(marker))

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[Message]:
        """Block until ``count`` messages were accepted (TimeoutError if not).
        From async tests call it via ``asyncio.to_thread``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} {self.platform} messages, got {len(self._messages)}"
                )
            return list(self._messages)

    def reset(self) -> None:
        """Forget exchanges, messages, violations and queued scripts."""
        with self._lock:
            self._exchanges.clear()
            self._messages.clear()
            self._scripts.clear()
            self._violations.clear()
            self._reset_state()

    # ------------------------------------------------------------ for subclasses

    def handle(self, request: Request) -> Answer:
        """The platform's answer to ``request``; called under the lock."""
        raise NotImplementedError

    def rate_limited_answer(self, retry_after: float) -> Answer:
        """The platform's 429 telling the sender to wait ``retry_after`` s."""
        seconds = ceil_seconds(retry_after)
        return Answer.text(429, "Too Many Requests", {"Retry-After": str(seconds)})

    def server_error_answer(self) -> Answer:
        return Answer.text(500, "Internal Server Error")

    def _reset_state(self) -> None:
        """Subclasses clear their own state (ids, caches, pacing) here."""

    def pace(self, rule: RateRule, key: str) -> float | None:
        """Apply ``rule`` for ``key``: None if admitted, else the wait in
        seconds (recorded as a violation; answer with the platform's 429)."""
        now = self.clock()
        wait = rule.admit(key, now)
        if wait is not None:
            self._violations.append((key, now))
        return wait

    def accept(self, message: Message) -> None:
        """Record an accepted message (call from ``handle``)."""
        self._messages.append(message)
        self._changed.notify_all()

    # ------------------------------------------------------------ used by the handler

    def _dispatch(self, request: Request) -> Answer:
        with self._lock:
            answer = self._scripted()
            if answer is None:
                try:
                    answer = self.handle(request)
                except Exception as exc:  # a receiver bug must be seen, not hang a test
                    answer = Answer.text(599, f"receiver error: {exc!r}")
            status = None if answer.disconnect else answer.status
            self._exchanges.append(Exchange(request, status, answer.body, self.clock()))
            self._changed.notify_all()
        return answer

    def _scripted(self) -> Answer | None:
        while self._scripts:
            script = self._scripts[0]
            if script.remaining <= 0:
                self._scripts.popleft()
                continue
            script.remaining -= 1
            return script.answer
        return None
