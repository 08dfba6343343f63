"""The contract every channel keeps, and what a channel factory is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Protocol, TextIO

import httpx

from newswatch.model import Alert, DeliveryResult


def utcnow() -> datetime:
    return datetime.now(UTC)


class Channel(Protocol):
    """One configured destination (an SMTP mailbox, a webhook, the console).

    Failure modes, all reported through the returned ``DeliveryResult``:
    ``send`` never raises for transport or service problems.

    - service unreachable, timed out, 408/429/5xx, SMTP 4xx -> ``retry``
      (with ``retry_after`` when the service said when);
    - the service refused this message for good (4xx, SMTP 5xx, bad
      credentials) -> ``failed`` (permanent: dead letter);
    - errors never contain secrets (passwords, tokens, webhook paths).
    """

    name: str  # the key in the config's ``channels:`` mapping
    kind: str  # the config ``type``: "email", "webhook", ...
    max_length: int | None  # the service's message size limit in characters

    async def send(self, alert: Alert) -> DeliveryResult: ...

    def describe(self) -> str:
        """A one-line description safe to log or print (secrets masked)."""
        ...

    async def aclose(self) -> None:
        """Release what the channel owns (not the shared HTTP client)."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """Shared resources passed to every channel factory."""

    http: httpx.AsyncClient
    out: TextIO | None = None  # console output; None means sys.stdout at send time
    clock: Callable[[], datetime] = field(default=utcnow)
    tz: tzinfo = UTC  # wall clock for times shown to people
