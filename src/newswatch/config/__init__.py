"""Configuration: YAML -> validated, frozen models (``load_config``).

``models`` holds the values and pydantic models; ``load`` reads YAML with
line numbers (``yamlsafe``: bounded size, depth and aliases), interpolates
``${VAR}`` secrets and gathers rule files and OPML feeds (``sources``), and
reports every problem with file, line and field (``problems``, in words a
YAML editor understands: ``messages``). ``lint`` finds what loads but
silently breaks alerting.
"""

from newswatch.config.cache import ConfigCache
from newswatch.config.lint import lint
from newswatch.config.load import (
    LoadedConfig,
    load_config,
    rule_specs,
)
from newswatch.config.models import (
    AppriseChannelConfig,
    Backfill,
    ChannelConfig,
    Config,
    ConsoleChannelConfig,
    DiscordChannelConfig,
    Duration,
    EmailChannelConfig,
    FeedConfig,
    HttpAuth,
    HttpSettings,
    MatrixChannelConfig,
    NotifyTarget,
    NtfyChannelConfig,
    PacingConfig,
    PollSettings,
    RuleConfig,
    Size,
    SlackChannelConfig,
    SmtpSettings,
    TeamsChannelConfig,
    TelegramChannelConfig,
    WebhookChannelConfig,
    parse_duration,
    parse_size,
)
from newswatch.config.problems import ConfigError, Locations, Problem
from newswatch.config.sources import read_opml

__all__ = [
    "AppriseChannelConfig",
    "Backfill",
    "ChannelConfig",
    "Config",
    "ConfigCache",
    "ConfigError",
    "ConsoleChannelConfig",
    "DiscordChannelConfig",
    "Duration",
    "EmailChannelConfig",
    "FeedConfig",
    "HttpAuth",
    "HttpSettings",
    "LoadedConfig",
    "Locations",
    "MatrixChannelConfig",
    "NotifyTarget",
    "NtfyChannelConfig",
    "PacingConfig",
    "PollSettings",
    "Problem",
    "RuleConfig",
    "Size",
    "SlackChannelConfig",
    "SmtpSettings",
    "TeamsChannelConfig",
    "TelegramChannelConfig",
    "WebhookChannelConfig",
    "lint",
    "load_config",
    "parse_duration",
    "parse_size",
    "read_opml",
    "rule_specs",
]
