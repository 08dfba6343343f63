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
    Backfill,
    ChannelConfig,
    Config,
    ConsoleChannelConfig,
    Duration,
    EmailChannelConfig,
    FeedConfig,
    NotifyTarget,
    PollSettings,
    RuleConfig,
    Size,
    SmtpSettings,
    WebhookChannelConfig,
    parse_duration,
    parse_size,
)

__all__ = [
    "Backfill",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "ConsoleChannelConfig",
    "Duration",
    "EmailChannelConfig",
    "FeedConfig",
    "LoadedConfig",
    "NotifyTarget",
    "PollSettings",
    "RuleConfig",
    "Size",
    "SmtpSettings",
    "WebhookChannelConfig",
    "load_config",
    "parse_duration",
    "parse_size",
    "read_opml",
    "rule_specs",
]
