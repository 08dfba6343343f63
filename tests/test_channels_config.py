"""Chat channel settings in YAML: every type loads, a bad setting is an
error naming the file, line and channel (never a secret), and apprise
missing is a config error that says how to install it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from newswatch.config import ConfigError, load_config
from newswatch.config.models import (
    DiscordChannelConfig,
    MatrixChannelConfig,
    NtfyChannelConfig,
    PacingConfig,
    SlackChannelConfig,
    TelegramChannelConfig,
)
from newswatch.notify.channels import apprise as apprise_channel

ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/slacksecret123",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/discordsecret123",
    "TELEGRAM_TOKEN": "123456:telegramsecret123",
    "TEAMS_WORKFLOW_URL": "https://prod.example.logic.azure.com/workflows/x?sig=teamssecret123",
    "MATRIX_TOKEN": "syt_matrixsecret123",
    "NTFY_TOKEN": "tk_ntfysecret123",
}
ALL = """
channels:
  desk-slack:    {type: slack, webhook: "${SLACK_WEBHOOK_URL}"}
  desk-mm:       {type: slack, webhook: "${SLACK_WEBHOOK_URL}", format: text, pacing: off}
  desk-slackbot: {type: slack, token: "${MATRIX_TOKEN}", channel: C123}
  desk-discord:
    {type: discord, webhook: "${DISCORD_WEBHOOK_URL}", pacing: {rate: 1, per: 2s, burst: 2}}
  desk-telegram:
    type: telegram
    token: "${TELEGRAM_TOKEN}"
    chat_id: -1001234567
    api_url: "http://127.0.0.1:8081"
  desk-teams:    {type: teams, webhook: "${TEAMS_WORKFLOW_URL}"}
  desk-matrix:
    type: matrix
    homeserver: "https://matrix.example.org"
    room_id: "!abc:example.org"
    access_token: "${MATRIX_TOKEN}"
  desk-ntfy:     {type: ntfy, url: "https://ntfy.sh/newsdesk", token: "${NTFY_TOKEN}", priority: 4}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nw.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    return info.value.problems


def test_every_chat_type_loads(tmp_path: Path) -> None:
    channels = load_config(write(tmp_path, ALL), env=ENV).config.channels
    assert isinstance(channels["desk-slack"], SlackChannelConfig)
    assert channels["desk-mm"].pacing == "off"  # type: ignore[union-attr]
    discord = channels["desk-discord"]
    assert isinstance(discord, DiscordChannelConfig)
    assert discord.pacing == PacingConfig(rate=1, per="2s", burst=2)  # type: ignore[arg-type]
    telegram = channels["desk-telegram"]
    assert isinstance(telegram, TelegramChannelConfig) and telegram.chat_id == "-1001234567"
    assert isinstance(channels["desk-matrix"], MatrixChannelConfig)
    ntfy = channels["desk-ntfy"]
    assert isinstance(ntfy, NtfyChannelConfig) and ntfy.priority == 4
    assert "slacksecret123" not in repr(channels)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{type: slack}", "needs 'webhook', or 'token' and 'channel'"),
        ('{type: slack, webhook: "${SLACK_WEBHOOK_URL}", token: x, channel: C1}', "not both"),
        ('{type: telegram, token: "${TELEGRAM_TOKEN}", chat_id: "1", api_url: "ftp://x"}', "http"),
        (
            '{type: matrix, homeserver: "https://m.org", room_id: "#alias:m.org", '
            'access_token: "${MATRIX_TOKEN}"}',
            "room_id",
        ),
        ('{type: ntfy, url: "https://ntfy.sh/x", priority: 9}', "priority"),
        ('{type: discord, webhook: "${DISCORD_WEBHOOK_URL}", pacing: {rate: 0}}', "rate"),
        ('{type: teams, webhook: "${TEAMS_WORKFLOW_URL}", colour: red}', "unknown setting"),
    ],
)
def test_bad_settings_name_the_channel_and_line(tmp_path: Path, setting: str, message: str) -> None:
    path = write(tmp_path, f"channels:\n  first: {{type: console}}\n  desk: {setting}\n")
    msgs = problems(path)
    assert any(m.startswith(f"{path}:3: channels.desk") and message in m for m in msgs), msgs
    for secret in ENV.values():
        assert all(secret.rpartition(":")[2] not in m for m in msgs)


def test_apprise_missing_is_a_config_error_that_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apprise_channel._apprise.cache_clear()
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise -> ImportError
    try:
        path = write(tmp_path, 'channels:\n  more: {type: apprise, urls: ["tgram://x/y"]}\n')
        msgs = problems(path)
        assert any("pip install 'newswatch[apprise]'" in m and "channels.more" in m for m in msgs)
    finally:
        apprise_channel._apprise.cache_clear()


@pytest.mark.skipif(importlib.util.find_spec("apprise") is None, reason="apprise not installed")
def test_apprise_url_it_does_not_know_is_named_without_its_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'channels:\n  more: {type: apprise, urls: ["json://h/ok", "bogus://s3cr3tvalue/x"]}\n',
    )
    msgs = problems(path)
    assert any("urls[1]: apprise does not recognise this URL (bogus://)" in m for m in msgs), msgs
    assert all("s3cr3tvalue" not in m for m in msgs)
