"""Configuration: YAML -> validated, frozen models (``load_config``).

``models`` holds the values and pydantic models; ``load`` reads YAML with
line numbers, interpolates ``${VAR}`` secrets, gathers rule files and OPML
feeds, and reports every problem with file, line and field.
"""

from newswatch.config.load import (
    ConfigError,
    LoadedConfig,
    load_config,
    read_opml,
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

__all__ = [
    "AppriseChannelConfig",
    "Backfill",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "ConsoleChannelConfig",
    "DiscordChannelConfig",
    "Duration",
    "EmailChannelConfig",
    "FeedConfig",
    "LoadedConfig",
    "MatrixChannelConfig",
    "NotifyTarget",
    "NtfyChannelConfig",
    "PacingConfig",
    "PollSettings",
    "RuleConfig",
    "Size",
    "SlackChannelConfig",
    "SmtpSettings",
    "TeamsChannelConfig",
    "TelegramChannelConfig",
    "WebhookChannelConfig",
    "load_config",
    "parse_duration",
    "parse_size",
    "read_opml",
    "rule_specs",
]
