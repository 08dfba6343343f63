"""Console channel: print each alert to stdout (or a given stream).

``text`` prints the rendered plain text message followed by a blank line;
``json`` prints one JSON object per line (the webhook payload), for piping
into ``jq`` or a log shipper.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, tzinfo
from typing import Literal, TextIO

from newswatch.config import ConsoleChannelConfig
from newswatch.model import Alert, DeliveryResult
from newswatch.notify.channels.base import ChannelContext
from newswatch.notify.render import alert_payload, render_alert


class ConsoleChannel:
    kind = "console"
    max_length: int | None = None

    def __init__(
        self,
        name: str,
        *,
        format: Literal["text", "json"] = "text",
        out: TextIO | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self.name = name
        self.format = format
        self._out = out
        self._tz = tz

    @classmethod
    def from_config(
        cls, name: str, cfg: ConsoleChannelConfig, ctx: ChannelContext
    ) -> ConsoleChannel:
        return cls(name, format=cfg.format, out=ctx.out, tz=ctx.tz)

    async def send(self, alert: Alert) -> DeliveryResult:
        if self.format == "json":
            chunk = json.dumps(alert_payload(alert), ensure_ascii=False) + "\n"
        else:
            chunk = render_alert(alert, self._tz).text + "\n"
        # Resolved at send time so a redirected sys.stdout is honoured.
        out = self._out if self._out is not None else sys.stdout
        try:
            out.write(chunk)
            out.flush()
        except (OSError, ValueError) as exc:  # closed stream, broken pipe
            return DeliveryResult.retry(f"console: cannot write: {type(exc).__name__}: {exc}")
        return DeliveryResult.success()

    def describe(self) -> str:
        where = "stdout" if self._out is None else getattr(self._out, "name", "stream")
        return f"console ({self.format}) -> {where}"

    async def aclose(self) -> None:
        """Nothing to close: the stream belongs to the caller."""

    def __repr__(self) -> str:
        return f"<ConsoleChannel {self.name!r}: {self.describe()}>"
