"""Configuration values: durations, sizes, and the frozen pydantic models.

``newswatch.config.load`` turns YAML into these; everything else reads them.
Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from newswatch.keys import feed_key_for
from newswatch.notify.redact import mask_feed_url
from newswatch.periods import parse_quiet_hours, parse_schedule, parse_throttle

# --------------------------------------------------------------------------- values

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NUMBER_RE = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")


def parse_duration(value: object) -> timedelta:
    """'10m', '20s', '1.5h', '7d' -> timedelta.

    A bare number is an error, not seconds: `every: 10` meant minutes as
    often as seconds, and guessing wrong polls a publisher 60x too often.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 10m, 2h or 7d")
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_RE.match(value)):
        n = str(value).strip()
        raise ValueError(f"'{n}' has no unit; write {n}s, {n}m, {n}h or {n}d")
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 10m, 2h or 7d")
    m = _DURATION_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 10m, 2h or 7d")
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(value: object) -> int:
    """'10MiB', '500KB', 2048 -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 512KiB or 10MiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a size; use e.g. 512KiB or 10MiB")
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").lower()])
    else:
        raise ValueError("expected a size like 512KiB or 10MiB")
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _parse_zero_duration(value: object) -> timedelta:
    if value in (0, "0", "0s", "none", "off"):
        return timedelta(0)
    return parse_duration(value)


# A duration that may also be zero ("0s"): waits that can be switched off.
ZeroDuration = Annotated[timedelta, BeforeValidator(_parse_zero_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _parse_backfill(value: object) -> timedelta | Literal["all"] | None:
    if value is None or value is False or value in ("none", "off"):
        return None
    if value == "all":
        return "all"
    return parse_duration(value)


Backfill = Annotated[timedelta | Literal["all"] | None, BeforeValidator(_parse_backfill)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- poll + feeds


class PollSettings(_Frozen):
    every: Duration = timedelta(minutes=10)
    concurrency: int = Field(default=32, ge=1, le=1024)
    # Concurrent connections to one host. Two is what browsers and reader's
    # politeness guides allow a background client; a newsroom's 300 feeds on
    # one publisher must not look like an attack.
    per_host: int = Field(default=2, ge=1, le=256)
    timeout: Duration = timedelta(seconds=20)
    max_bytes: Size = 10 * 1024 * 1024
    # Each feed's next poll is spread by up to this fraction of its interval so
    # that hundreds of feeds added at once do not hit their hosts in lockstep.
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    # Back off a failing feed: interval * 2**errors, capped here.
    max_backoff: Duration = timedelta(hours=6)
    # Feeds without `every:` adapt to how often they publish, within these.
    min_interval: Duration = timedelta(minutes=5)
    max_interval: Duration = timedelta(hours=6)
    user_agent: str | None = None


GOOGLE_NEWS_SEARCH = "https://news.google.com/rss/search"


class FeedConfig(_Frozen):
    url: str | None = None
    path: str | None = None
    # A Google News search feed: the query, and its language/region options.
    google_news: str | None = None
    hl: str = "en-US"
    gl: str = "US"
    ceid: str | None = None
    name: str | None = None
    every: Duration | None = None
    tags: tuple[str, ...] = ()
    backfill: Backfill = None
    # Let redirects leave for loopback, private and link-local addresses (SSRF guard).
    allow_private: bool = False
    # Fetch each new entry's article page and match its main text (an extra:
    # pip install 'newswatch[fulltext]'); on any failure the summary is used.
    full_text: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> FeedConfig:
        given = [k for k in ("url", "path", "google_news") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a feed needs exactly one of 'url', 'path' or 'google_news'")
        if self.google_news is not None and not self.google_news.strip():
            raise ValueError("google_news needs a search query")
        if self.url is not None and not re.match(r"^(https?|file)://", self.url):
            shown = mask_feed_url(self.url)  # the URL may carry credentials
            raise ValueError(f"feed url {shown!r} must start with http://, https:// or file://")
        return self

    @property
    def source(self) -> str:
        """Where the feed is read from: the URL, or file:// + absolute path."""
        if self.url is not None:
            return self.url
        if self.google_news is not None:
            return google_news_url(self.google_news, hl=self.hl, gl=self.gl, ceid=self.ceid)
        assert self.path is not None
        return Path(self.path).resolve().as_uri()

    @property
    def key(self) -> str:
        """Stable identity in the store: a hash of the source (which may
        carry credentials, so it is never stored)."""
        return feed_key_for(self.source)

    @property
    def label(self) -> str:
        """What people see for this feed (logs, CLI, pages, metrics, alerts):
        its name, else its URL without credentials and with query values
        masked, else its path. Never a secret. (Once a feed without a name
        was read, the poll layer shows its own <title> instead.)"""
        if self.name:
            return self.name
        if self.url is not None:
            return mask_feed_url(self.url)
        if self.google_news is not None:
            return f"Google News: {self.google_news.strip()}"
        return self.path or "?"

    @property
    def display_name(self) -> str:
        return self.label


def google_news_url(
    query: str, *, hl: str = "en-US", gl: str = "US", ceid: str | None = None
) -> str:
    """The RSS search feed of Google News for ``query`` (its own syntax:
    quotes, OR, -word, when:7d) in language ``hl`` and region ``gl``;
    ``ceid`` defaults to ``GL:lang`` as Google's own links write it."""
    from urllib.parse import urlencode

    edition = ceid or f"{gl}:{hl.split('-', 1)[0]}"
    query_string = urlencode({"q": query.strip(), "hl": hl, "gl": gl, "ceid": edition})
    return f"{GOOGLE_NEWS_SEARCH}?{query_string}"


# --------------------------------------------------------------------------- channels


class ConsoleChannelConfig(_Frozen):
    type: Literal["console"]
    # "text" prints the plain text message; "json" one JSON object per line.
    format: Literal["text", "json"] = "text"


class SmtpSettings(_Frozen):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # upgrade a plain connection (port 587)
    tls: bool = False  # implicit TLS from the first byte (port 465)
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _tls_modes(self) -> SmtpSettings:
        if self.tls and self.starttls:
            raise ValueError("choose one of 'tls' (implicit, port 465) or 'starttls' (port 587)")
        return self


class EmailChannelConfig(_Frozen):
    type: Literal["email"]
    to: tuple[str, ...] = Field(min_length=1)
    from_: str = Field(default="newswatch@localhost", alias="from")
    smtp: SmtpSettings
    subject_prefix: str = "[newswatch]"

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v


class PacingConfig(_Frozen):
    """A channel's token bucket: ``rate`` requests refill each ``per``, up
    to ``burst`` at once. ``pacing: off`` sends as fast as the service lets."""

    rate: float = Field(gt=0)
    per: Duration = timedelta(seconds=1)
    burst: int = Field(default=1, ge=1, le=10_000)


def _pacing(value: object) -> object:
    return "off" if value in (False, "off", "none") else value


# None: the platform's default (notify/pacing.py); "off": no pacing.
Pacing = Annotated[PacingConfig | Literal["off"] | None, BeforeValidator(_pacing)]


def _http_url(value: str, what: str) -> str:
    if not re.match(r"^https?://[^/?#\s]+", value):
        raise ValueError(f"{what} must start with http:// or https:// and name a host")
    return value


class _HttpChannel(_Frozen):
    """Settings every HTTP channel has."""

    timeout: Duration = timedelta(seconds=15)
    pacing: Pacing = None


class WebhookChannelConfig(_HttpChannel):
    type: Literal["webhook"]
    # The URL often embeds a token (Slack, Discord): treat it as a secret.
    url: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    # HMAC-SHA256 key: each request carries X-Newswatch-Signature: sha256=...
    secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: SecretStr) -> SecretStr:
        _http_url(v.get_secret_value(), "webhook url")
        return v


class SlackChannelConfig(_HttpChannel):
    """An incoming webhook (Slack, or a Slack-compatible Mattermost or
    Rocket.Chat hook), or a bot ``token`` with a ``channel`` (chat.postMessage)."""

    type: Literal["slack"]
    webhook: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api"
    # blocks: Block Kit (Slack). text: mrkdwn text only, for the
    # Slack-compatible hooks of Mattermost and Rocket.Chat (no blocks).
    format: Literal["blocks", "text"] = "blocks"

    @model_validator(mode="after")
    def _one_way(self) -> SlackChannelConfig:
        if self.webhook is not None:
            if self.token is not None or self.channel is not None:
                raise ValueError("give either 'webhook' or 'token' with 'channel', not both")
            _http_url(self.webhook.get_secret_value(), "slack webhook")
        elif self.token is None or not self.channel:
            raise ValueError("a slack channel needs 'webhook', or 'token' and 'channel'")
        _http_url(self.api_url, "api_url")
        return self


class DiscordChannelConfig(_HttpChannel):
    type: Literal["discord"]
    webhook: SecretStr  # https://discord.com/api/webhooks/<id>/<token>
    username: str | None = Field(default=None, min_length=1, max_length=80)
    thread_id: str | None = None  # post into a thread of a forum or text channel

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        _http_url(v.get_secret_value(), "discord webhook")
        return v


def _chat_id(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class TelegramChannelConfig(_HttpChannel):
    type: Literal["telegram"]
    token: SecretStr  # the bot token from @BotFather
    chat_id: Annotated[str, BeforeValidator(_chat_id)] = Field(min_length=1)
    api_url: str = "https://api.telegram.org"  # or a self-hosted Bot API server
    message_thread_id: int | None = None  # a forum topic

    @field_validator("api_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v, "api_url")


class TeamsChannelConfig(_HttpChannel):
    type: Literal["teams"]
    webhook: SecretStr  # a Workflows "when a webhook request is received" URL

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        _http_url(v.get_secret_value(), "teams webhook")
        return v


class MatrixChannelConfig(_HttpChannel):
    type: Literal["matrix"]
    homeserver: str
    room_id: str = Field(pattern=r"^!.+:.+$")  # the room's id, not an alias
    access_token: SecretStr
    # m.notice is what bots send (clients show it quieter; other bots ignore it).
    msgtype: Literal["m.notice", "m.text"] = "m.notice"

    @field_validator("homeserver")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v, "homeserver")


class NtfyChannelConfig(_HttpChannel):
    type: Literal["ntfy"]
    # The topic URL: on a public server the topic name is the only secret.
    url: SecretStr
    token: SecretStr | None = None  # an access token (Authorization: Bearer)
    priority: Literal["min", "low", "default", "high", "max"] | int = "default"
    tags: tuple[str, ...] = ("newspaper",)

    @field_validator("url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        _http_url(v.get_secret_value(), "ntfy url")
        return v

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str | int) -> str | int:
        if isinstance(v, int) and not 1 <= v <= 5:
            raise ValueError("priority is 1 to 5, or min, low, default, high, max")
        return v


class AppriseChannelConfig(_Frozen):
    """Any service apprise knows, by its URLs (the optional extra:
    ``pip install 'newswatch[apprise]'``). Its limits are apprise's own."""

    type: Literal["apprise"]
    urls: tuple[SecretStr, ...] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=60)

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _installed(self) -> AppriseChannelConfig:
        # Imported here: apprise is optional, and only this type needs it.
        from newswatch.notify.channels.apprise import check_urls

        check_urls([u.get_secret_value() for u in self.urls])
        return self


ChannelConfig = Annotated[
    ConsoleChannelConfig
    | EmailChannelConfig
    | WebhookChannelConfig
    | SlackChannelConfig
    | DiscordChannelConfig
    | TelegramChannelConfig
    | TeamsChannelConfig
    | MatrixChannelConfig
    | NtfyChannelConfig
    | AppriseChannelConfig,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- rules


class NotifyTarget(_Frozen):
    """One entry of a rule's ``notify:`` list: a channel and how to deliver.

    Without ``digest`` the matches go out immediately, grouped: the first
    match of a burst waits ``group_wait`` for company (default: 30s, and 0 for
    the console). With ``digest`` they wait for the schedule. ``throttle``
    (``10/h``) holds items beyond N per window; ``quiet_hours``
    (``22:00-07:00``, wall clock) holds them overnight. Held items are never
    dropped: they go into the next digest or one summary.
    """

    channel: str
    digest: str | None = None
    group_wait: ZeroDuration | None = None
    throttle: str | None = None
    quiet_hours: str | None = None

    @field_validator("digest")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        if v is not None:
            parse_schedule(v)  # raises ValueError with the reason
        return v

    @field_validator("throttle")
    @classmethod
    def _throttle(cls, v: str | None) -> str | None:
        if v is not None:
            parse_throttle(v)
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            parse_quiet_hours(v)
        return v

    @property
    def mode(self) -> Literal["immediate", "digest"]:
        return "digest" if self.digest else "immediate"


def _notify_item(v: object) -> object:
    return {"channel": v} if isinstance(v, str) else v


class RuleConfig(_Frozen):
    name: str = Field(min_length=1)
    query: str | None = None
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    case: Literal["insensitive", "sensitive"] = "insensitive"
    feeds: tuple[str, ...] = ()  # scope: feed names, URLs or tag:NAME; empty = all
    notify: tuple[Annotated[NotifyTarget, BeforeValidator(_notify_item)], ...] = ()
    backfill: Backfill = None
    enabled: bool = True
    # A later copy of a story this rule alerted on that adds substantial
    # text (stories.update_share) is sent again as an update, threaded
    # under the first alert where the channel can thread. Without it, an
    # update is only listed (`newswatch stories`).
    updates: bool = False

    @model_validator(mode="after")
    def _has_condition(self) -> RuleConfig:
        if not (self.query or self.all or self.any or self.none):
            raise ValueError(
                f"rule {self.name!r} has nothing to match: give 'query', 'all', 'any' or 'none'"
            )
        return self


# --------------------------------------------------------------------------- http


class HttpAuth(_Frozen):
    """Who may read the status page and /metrics: a bearer token, or basic auth."""

    token: SecretStr | None = None  # Authorization: Bearer <token>
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HttpAuth:
        basic = self.username is not None or self.password is not None
        if (self.token is not None) == basic:
            raise ValueError("give either 'token' (bearer) or 'username' and 'password' (basic)")
        if basic and (not self.username or self.password is None):
            raise ValueError("basic auth needs both 'username' and 'password'")
        if self.token is not None and not self.token.get_secret_value():
            raise ValueError("the token is empty (is its ${VARIABLE} set?)")
        return self


_LISTEN_RE = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


class HttpSettings(_Frozen):
    """The status page, /metrics, /healthz and /readyz (off unless `http:` is set).

    It binds to loopback by default; any other address must set ``auth``,
    since the page names feeds, rules and channels.
    """

    listen: str = "127.0.0.1:8787"
    auth: HttpAuth | None = None

    @field_validator("listen")
    @classmethod
    def _address(cls, v: str) -> str:
        m = _LISTEN_RE.match(v.strip())
        if m is None or not 0 <= int(m.group("port")) <= 65535:
            raise ValueError(f"{v!r} is not HOST:PORT, e.g. 127.0.0.1:8787 or [::1]:8787")
        return v.strip()

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> HttpSettings:
        if not self.loopback and self.auth is None:
            raise ValueError(
                f"listening on {self.host} (not loopback) needs 'auth': a bearer token or "
                "basic auth from ${VARIABLES}; or listen on 127.0.0.1"
            )
        return self

    @property
    def host(self) -> str:
        m = _LISTEN_RE.match(self.listen)
        assert m is not None
        return m.group("v6") or m.group("host")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve anywhere
            return False


# --------------------------------------------------------------------------- top level


class DigestDefaults(_Frozen):
    # An empty period sends nothing unless this is true ("nothing today").
    send_empty: bool = False
    # Items listed in one digest; beyond it, "… and N more".
    max_items: int = Field(default=200, ge=1, le=10_000)


class StorySettings(_Frozen):
    """Near-duplicate stories (one alert per story across outlets). The
    defaults and their measured precision and recall: docs/benchmarks.md."""

    # Turn off to alert per article again (exact URL and title keys only).
    enabled: bool = True
    # A copy joins a story last seen within this window.
    window: Duration = timedelta(hours=72)
    # Same story when the bodies' word-shingle Jaccard reaches this...
    jaccard: float = Field(default=0.5, gt=0, le=1)
    # ...or the smaller is contained in the larger this much (a truncated
    # summary in the full copy). Texts of fewer than min_contained shingles
    # (about as many words: a headline) join by exact keys only.
    containment: float = Field(default=0.7, gt=0, le=1)
    min_contained: int = Field(default=20, ge=3, le=10_000)
    # An update adds at least this share of new shingles, and this many.
    update_share: float = Field(default=0.3, gt=0, le=1)
    update_min_shingles: int = Field(default=40, ge=1, le=100_000)


class Config(_Frozen):
    timezone: str = "UTC"
    state: str = "sqlite:///var/newswatch.db"
    poll: PollSettings = PollSettings()
    feeds: tuple[FeedConfig, ...] = ()
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    rules: tuple[RuleConfig, ...] = ()
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Articles no feed has served for this long are forgotten (with their
    # settled alerts); `none` keeps everything.
    retention: Backfill = timedelta(days=90)
    # A folder of jinja2 templates overriding the shipped ones (by name).
    templates: str | None = None
    digest_defaults: DigestDefaults = DigestDefaults()
    # Where operator notices go (a feed failing for longer than
    # feed_alert_after, and its recovery): a channel name.
    admin_channel: str | None = None
    feed_alert_after: Duration = timedelta(hours=24)
    # The HTTP listener (status page, metrics, health); None: off.
    http: HttpSettings | None = None
    # On SIGTERM, sends in flight get this long to finish before they are
    # cut off and their notifications released (systemd's TimeoutStopSec
    # and Docker's stop timeout must be longer).
    shutdown_grace: ZeroDuration = timedelta(seconds=20)
    stories: StorySettings = StorySettings()

    @field_validator("retention")
    @classmethod
    def _retention_is_a_duration(cls, v: object) -> object:
        if v == "all":
            raise ValueError("use a duration such as 90d, or none to keep everything")
        return v

    @model_validator(mode="after")
    def _admin_channel_exists(self) -> Config:
        if self.admin_channel is not None and self.admin_channel not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ValueError(
                f"admin_channel {self.admin_channel!r} is not a configured channel "
                f"(channels: {known})"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The `timezone` setting (validated when the configuration loads)."""
        return ZoneInfo(self.timezone)
