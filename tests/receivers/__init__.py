"""Loopback stand-ins for the chat platforms newswatch sends to.

Each receiver is a real HTTP server on 127.0.0.1 that answers the way the
platform does, enforces its documented limits, escaping rules and rate
limit, and records what a reader would see::

    from receivers import DiscordWebhookReceiver

    with DiscordWebhookReceiver() as discord:
        ... point the channel at discord.url ...
        assert discord.items_seen(article.url) == 1
        assert discord.mentions == [] and discord.pacing_violations == 0

The platform modules document each limit with its source; ``base`` holds
what they share (recording, failure scripts, pacing).
"""

from .base import Answer, Exchange, Mention, Message, Receiver, Request, SlidingWindow, TokenBucket
from .discord import DiscordWebhookReceiver
from .matrix import MatrixReceiver
from .ntfy import NtfyReceiver
from .slack import SlackApiReceiver, SlackWebhookReceiver
from .teams import FlowRun, TeamsWorkflowReceiver
from .telegram import TelegramReceiver

__all__ = [
    "Answer",
    "DiscordWebhookReceiver",
    "Exchange",
    "FlowRun",
    "MatrixReceiver",
    "Mention",
    "Message",
    "NtfyReceiver",
    "Receiver",
    "Request",
    "SlackApiReceiver",
    "SlackWebhookReceiver",
    "SlidingWindow",
    "TeamsWorkflowReceiver",
    "TelegramReceiver",
    "TokenBucket",
]
