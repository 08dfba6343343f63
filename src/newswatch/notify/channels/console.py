"""Console channel: each notification printed to stdout, as plain text or as
one JSON object per line (the webhook payload)."""

from __future__ import annotations

import json
import sys
from typing import Literal, TextIO

from newswatch.config import ConsoleChannelConfig
from newswatch.model import DeliveryResult, Notification
from newswatch.notify.channels.base import ChannelContext
from newswatch.notify.payload import notification_payload
from newswatch.notify.render import RenderContext, render_message


class ConsoleChannel:
    kind = "console"

    def __init__(
        self,
        name: str,
        *,
        format: Literal["text", "json"] = "text",
        out: TextIO | None = None,
        render: RenderContext | None = None,
    ) -> None:
        self.name = name
        self.format = format
        self._out = out
        self._render = render or RenderContext()

    @classmethod
    def from_config(
        cls, name: str, cfg: ConsoleChannelConfig, ctx: ChannelContext
    ) -> ConsoleChannel:
        return cls(name, format=cfg.format, out=ctx.out, render=ctx.rendering)

    async def send(self, notification: Notification) -> DeliveryResult:
        try:
            if self.format == "json":
                chunk = json.dumps(notification_payload(notification), ensure_ascii=False) + "\n"
            else:
                chunk = render_message(notification, self._render).text + "\n"
        except Exception as exc:  # a user template that fails at send time
            return DeliveryResult.failed(f"console: could not render: {type(exc).__name__}: {exc}")
        # Resolved at send time so a redirected sys.stdout is honoured.
        out = self._out if self._out is not None else sys.stdout
        try:
            out.write(chunk)
            out.flush()
        except (OSError, ValueError) as exc:  # closed stream, broken pipe
            return DeliveryResult.retry(f"console: cannot write: {type(exc).__name__}: {exc}")
        return DeliveryResult.success(answer="written")

    def describe(self) -> str:
        where = "stdout" if self._out is None else getattr(self._out, "name", "stream")
        return f"console ({self.format}) -> {where}"

    async def flush(self) -> None:
        """Nothing held between rounds."""

    async def aclose(self) -> None:
        """Nothing to close: the stream belongs to the caller."""

    def __repr__(self) -> str:
        return f"<ConsoleChannel {self.name!r}: {self.describe()}>"
