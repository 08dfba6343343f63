"""Channels: one module per service behind the ``Channel`` protocol.

The registry is an explicit dict from the config's ``type`` to a factory; a
new service is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO

import httpx

from newswatch.config import ChannelConfig
from newswatch.notify.channels.base import Channel, ChannelContext, utcnow
from newswatch.notify.channels.console import ConsoleChannel
from newswatch.notify.channels.email import EmailChannel
from newswatch.notify.channels.webhook import WebhookChannel
from newswatch.notify.render import RenderContext

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelContext",
    "ChannelFactory",
    "ConsoleChannel",
    "EmailChannel",
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
) -> Channel:
    """A channel for one ``channels:`` entry. The caller owns ``http``."""
    factory = CHANNEL_TYPES.get(cfg.type)
    if factory is None:
        raise ValueError(f"channel {name!r}: unknown type {cfg.type!r}")
    ctx = ChannelContext(http=http, out=out, clock=clock, tz=tz, render=render)
    return factory(name, cfg, ctx)


def build_channels(
    channels: Mapping[str, ChannelConfig],
    *,
    http: httpx.AsyncClient,
    out: TextIO | None = None,
    clock: Callable[[], datetime] = utcnow,
    tz: tzinfo = UTC,
    render: RenderContext | None = None,
) -> dict[str, Channel]:
    """Every configured channel, by name. ``render`` carries the templates
    (a user folder overrides the defaults) and the time zone; when None, the
    shipped templates in ``tz``."""
    render = render or RenderContext(tz=tz)
    return {
        name: build_channel(name, cfg, http=http, out=out, clock=clock, tz=tz, render=render)
        for name, cfg in channels.items()
    }
