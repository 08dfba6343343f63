"""Pacing: a token bucket per channel, so bursts stay under a platform's limit.

Pure values and one pure function: the clock is passed in and nothing
sleeps. The deliverer keeps a ``BucketState`` per channel target (per
webhook URL, chat or room), calls :func:`take` once per request it is about
to make, and makes it after the returned wait. ``take`` reserves the token
at once, so a burst of N takes at the same instant returns N increasing
waits: the bucket's ``tokens`` goes negative by the requests already
promised a later slot.

A bucket of capacity B refilling r tokens a second lets through at most
``B + ceil(r * W) - 1`` requests in any window ``[t, t + W)``. That bound
holds exactly, not up to rounding: ``take`` computes in whole microseconds
(GCRA, the "virtual scheduling" form of a token bucket), with the time one
token takes to refill rounded up to a microsecond; ``tokens`` is that
state read as a token count. The defaults below are chosen against each platform's
published limits with that bound, and keep about 10% or more of slack on
the sustained rate, because a request delayed in transit bunches up with
the next one at the receiver. ``PUBLISHED_LIMITS`` records what each
platform states, so a test can hold the defaults to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Bucket:
    """``rate`` tokens refill each ``per``, up to ``burst``; a request takes one."""

    rate: float
    per: timedelta
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("a pacing rate must be a positive number")
        if self.per <= timedelta(0):
            raise ValueError("a pacing period must be longer than zero")
        if self.burst < 1:
            raise ValueError("a pacing burst must be at least 1")

    @property
    def per_second(self) -> float:
        return self.rate / self.per.total_seconds()

    @property
    def interval(self) -> timedelta:
        """The time one token takes to refill, rounded up to a microsecond
        (exactly, so the rate is never exceeded by a rounding error)."""
        per_us = self.per // _MICROSECOND
        return _MICROSECOND * math.ceil(Fraction(per_us) / Fraction(self.rate))


@dataclass(frozen=True)
class BucketState:
    """Tokens in the bucket as of ``at``; negative while requests wait their turn."""

    tokens: float
    at: datetime


@dataclass(frozen=True)
class Window:
    """A published limit: at most ``count`` requests in any window of ``per``."""

    count: int
    per: timedelta


def full(bucket: Bucket, now: datetime) -> BucketState:
    """A bucket nobody has drawn from: the state to start a channel with."""
    return BucketState(float(bucket.burst), now)


def take(bucket: Bucket, state: BucketState, now: datetime) -> tuple[BucketState, timedelta]:
    """Reserve one request: the new state, and how long to wait before making
    it (zero if a token is there now; never negative).

    A ``state`` stamped after ``now`` (another replica's clock, a clock
    stepped back) is honoured as it stands: nothing refills, and the request
    waits at least until that time.
    """
    interval = bucket.interval
    interval_us = interval // _MICROSECOND
    # GCRA's one number: the instant the bucket would be full again. It is a
    # whole number of microseconds; ``tokens`` carries it as a float exactly
    # enough to round back (53 bits hold any realistic backlog).
    owed_us = round((bucket.burst - state.tokens) * interval_us)
    full_again = max(state.at + owed_us * _MICROSECOND, now) + interval
    send_at = max(now, full_again - bucket.burst * interval)
    at = max(now, state.at)
    tokens = bucket.burst - ((full_again - at) // _MICROSECOND) / interval_us
    return BucketState(tokens, at), send_at - now


# --------------------------------------------------------------------------- defaults

_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)

PUBLISHED_LIMITS: dict[str, tuple[Window | Bucket, ...]] = {
    # Per webhook: 5 requests per 2 s (Discord staff, discord-api-docs#367;
    # birdie0's Discord webhooks guide, "Rate Limits"); per channel, 30 per
    # 60 s ("added as a limit to the channel itself", same thread).
    "discord": (Window(5, 2 * _SECOND), Window(30, _MINUTE)),
    # Bot API FAQ "My bot is hitting limits": in one chat avoid more than
    # one message per second; in a group no more than 20 messages a minute.
    "telegram": (Window(1, _SECOND), Window(20, _MINUTE)),
    # Slack "Rate limits": incoming webhooks and posting messages, 1 per
    # second per channel ("short bursts >1 allowed", with no guarantee).
    "slack": (Window(1, _SECOND),),
    # Teams "Create an Incoming Webhook" / "Rate limiting for connectors":
    # 4 requests in 1 s, 60 in 30 s per webhook (the same table lists 100
    # an hour, 150 in 2 h and 1800 a day for the retired Office 365
    # connectors; Workflows webhooks run as Power Automate flows whose
    # quotas depend on the owner's licence, so only the short windows are
    # held to here and a 429 is retried).
    "teams": (Window(4, _SECOND), Window(60, 30 * _SECOND)),
    # Synapse's default rc_message: per_second 0.2, burst_count 10 per user
    # (synapse/config/ratelimiting.py), itself a leaky bucket.
    "matrix": (Bucket(rate=0.2, per=_SECOND, burst=10),),
    # ntfy server defaults: visitor-request-limit-burst 60, replenished one
    # per visitor-request-limit-replenish 5 s (server/config.go), a token
    # bucket per visitor (IP or user).
    "ntfy": (Bucket(rate=1, per=5 * _SECOND, burst=60),),
}

PLATFORM_PACING: dict[str, Bucket] = {
    # Burst 5 fills the 2 s window; 24/min keeps the next request 2.5 s
    # after a burst and the minute at 28 of 30.
    "discord": Bucket(rate=24, per=_MINUTE, burst=5),
    # Burst 1 for one message a second; 18/min for groups' 20. The group
    # limit is the default because a desk's chat is usually a group or a
    # channel; private chats could go faster.
    "telegram": Bucket(rate=18, per=_MINUTE, burst=1),
    # One request every 1.11 s.
    "slack": Bucket(rate=54, per=_MINUTE, burst=1),
    # At most 3 in any second and 51 in any 30 s.
    "teams": Bucket(rate=50, per=30 * _SECOND, burst=2),
    # 10/min (0.17/s) with burst 8 inside Synapse's 0.2/s and 10.
    "matrix": Bucket(rate=10, per=_MINUTE, burst=8),
    # 10/min (one per 6 s) with burst 50 inside ntfy's one per 5 s and 60.
    "ntfy": Bucket(rate=10, per=_MINUTE, burst=50),
}
"""Default pacing per channel type. Webhook, email and console have none:
a user's own webhook states no limit, and SMTP servers answer with a 4xx
that the retry schedule already honours."""


def pacing_for(kind: str) -> Bucket | None:
    """The default bucket for a channel type, or None for unpaced types."""
    return PLATFORM_PACING.get(kind)
