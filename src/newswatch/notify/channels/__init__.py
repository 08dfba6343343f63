"""Channels: one module per service behind the ``Channel`` protocol.

The registry is an explicit dict from the config's ``type`` to a factory; a
new service is one module and one line here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO

import httpx

from newswatch.config import ChannelConfig
from newswatch.notify.channels.apprise import AppriseChannel
from newswatch.notify.channels.base import Channel, ChannelContext, utcnow
from newswatch.notify.channels.console import ConsoleChannel
from newswatch.notify.channels.discord import DiscordChannel
from newswatch.notify.channels.email import EmailChannel
from newswatch.notify.channels.matrix import MatrixChannel
from newswatch.notify.channels.ntfy import NtfyChannel
from newswatch.notify.channels.slack import SlackChannel
from newswatch.notify.channels.teams import TeamsChannel
from newswatch.notify.channels.telegram import TelegramChannel
from newswatch.notify.channels.webhook import WebhookChannel
from newswatch.notify.render import RenderContext

__all__ = [
    "CHANNEL_TYPES",
    "AppriseChannel",
    "Channel",
    "ChannelContext",
    "ChannelFactory",
    "ConsoleChannel",
    "DiscordChannel",
    "EmailChannel",
    "MatrixChannel",
    "NtfyChannel",
    "SlackChannel",
    "TeamsChannel",
    "TelegramChannel",
    "WebhookChannel",
    "build_channel",
    "build_channels",
]

# (channel name, its validated config model, shared resources) -> Channel
ChannelFactory = Callable[[str, Any, ChannelContext], Channel]

CHANNEL_TYPES: dict[str, ChannelFactory] = {
    "console": ConsoleChannel.from_config,
    "email": EmailChannel.from_config,
    "webhook": WebhookChannel.from_config,
    "slack": SlackChannel.from_config,
    "discord": DiscordChannel.from_config,
    "telegram": TelegramChannel.from_config,
    "teams": TeamsChannel.from_config,
    "matrix": MatrixChannel.from_config,
    "ntfy": NtfyChannel.from_config,
    "apprise": AppriseChannel.from_config,
}


def build_channel(
    name: str,
    cfg: ChannelConfig,
    *,
    http: httpx.AsyncClient,
    out: TextIO | None = None,
    clock: Callable[[], datetime] = utcnow,
    tz: tzinfo = UTC,
    render: RenderContext | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Channel:
    """A channel for one ``channels:`` entry. The caller owns ``http``.
    ``sleep`` is how the channel waits for its pacing (tests pass a fake)."""
    factory = CHANNEL_TYPES.get(cfg.type)
    if factory is None:
        raise ValueError(f"channel {name!r}: unknown type {cfg.type!r}")
    ctx = ChannelContext(http=http, out=out, clock=clock, tz=tz, render=render, sleep=sleep)
    return factory(name, cfg, ctx)


def build_channels(
    channels: Mapping[str, ChannelConfig],
    *,
    http: httpx.AsyncClient,
    out: TextIO | None = None,
    clock: Callable[[], datetime] = utcnow,
    tz: tzinfo = UTC,
    render: RenderContext | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Channel]:
    """Every configured channel, by name. ``render`` carries the templates
    (a user folder overrides the defaults) and the time zone; when None, the
    shipped templates in ``tz``."""
    render = render or RenderContext(tz=tz)
    return {
        name: build_channel(
            name, cfg, http=http, out=out, clock=clock, tz=tz, render=render, sleep=sleep
        )
        for name, cfg in channels.items()
    }
