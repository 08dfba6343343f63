"""The delivery commands, run as a user would: `channels`, `channels test`,
`digest preview` / `send-now`, `outbox` and `outbox retry`, against real
receivers and real files."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver import FeedServer, hook_reply
from newswatch.cli import main
from receivers import TelegramReceiver
from samples import REPO, SEED_TITLE

SAMPLE = REPO / "config" / "feeds" / "sample.xml"
TOKEN = "7000000001:AAFakeSecretTokenForTests"


@pytest.fixture
def telegram() -> Iterator[TelegramReceiver]:
    with TelegramReceiver(token=TOKEN) as receiver:
        yield receiver


@pytest.fixture
def hooks() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.route("/hook", hook_reply())
        yield server


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config(tmp_path: Path, telegram: TelegramReceiver, hook_url: str, notify: str) -> Path:
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            timezone: Asia/Seoul
            state: sqlite:///{tmp_path}/state.db
            feeds:
              - {{path: {SAMPLE}, name: sample, backfill: all}}
            channels:
              tg:
                type: telegram
                token: "{TOKEN}"
                chat_id: "-1001234567"
                api_url: "{telegram.api_url}"
              hook: {{type: webhook, url: "{hook_url}"}}
            rules:
              - name: russia-north-korea
                query: 'Russia AND "North Korea"'
                notify: {notify}
            """
        ),
        encoding="utf-8",
    )
    return path


def test_channels_lists_each_with_a_masked_target(
    tmp_path: Path, telegram: TelegramReceiver, hooks: FeedServer
) -> None:
    cfg = config(tmp_path, telegram, hooks.url("/hook"), "[tg]")
    code, out, _ = run_cli("channels", "--config", str(cfg))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["CHANNEL", "TYPE", "TARGET"]
    assert any(line.startswith("tg ") and "telegram" in line for line in lines)
    assert TOKEN not in out and "AAFake" not in out


def test_channels_test_sends_and_prints_the_answer(
    tmp_path: Path, telegram: TelegramReceiver, hooks: FeedServer
) -> None:
    cfg = config(tmp_path, telegram, hooks.url("/hook"), "[tg]")
    code, out, _ = run_cli("channels", "test", "tg", "--config", str(cfg))
    assert code == 0, out
    assert out.startswith("tg: sent (")
    [message] = telegram.messages
    assert "test message from newswatch" in message.text
    assert TOKEN not in out


def test_channels_test_fails_with_the_services_answer_and_exit_1(
    tmp_path: Path, telegram: TelegramReceiver, hooks: FeedServer
) -> None:
    hooks.route("/hook", hook_reply(404, body="no such hook"))
    cfg = config(tmp_path, telegram, hooks.url("/hook"), "[hook]")
    code, _, err = run_cli("channels", "test", "hook", "--config", str(cfg))
    assert code == 1
    assert "hook: permanent failure: webhook" in err and "HTTP 404" in err
    assert "the service answered: HTTP 404: no such hook" in err
    code, _, err = run_cli("channels", "test", "nope", "--config", str(cfg))
    assert code == 2 and "no channel 'nope' (channels: tg, hook)" in err


def test_digest_preview_sends_nothing_and_send_now_delivers_once(
    tmp_path: Path, telegram: TelegramReceiver, hooks: FeedServer
) -> None:
    cfg = config(tmp_path, telegram, hooks.url("/hook"), '[{channel: tg, digest: "daily 08:00"}]')
    code, out, _ = run_cli("poll", "--once", "--config", str(cfg))
    assert code == 0 and "1 alerts queued" in out
    assert telegram.messages == []  # a digest waits for its time

    code, out, _ = run_cli("digest", "preview", "tg", "--config", str(cfg))
    assert code == 0
    assert "== tg: digest daily 08:00, next at " in out and "KST, 1 item(s) so far" in out
    assert "Subject: Digest daily 08:00: 1 story" in out and SEED_TITLE in out
    assert telegram.messages == []

    code, out, _ = run_cli("digest", "send-now", "tg", "--config", str(cfg))
    assert code == 0, out
    assert "tg: digest daily 08:00: 1 item(s) in 1 notification(s): 1 sent" in out
    [message] = telegram.messages
    assert SEED_TITLE in message.text
    # Counted as this period's digest: sending again finds it done.
    code, out, _ = run_cli("digest", "send-now", "tg", "--config", str(cfg))
    assert "this period was sent already" in out
    assert len(telegram.messages) == 1

    code, _, err = run_cli("digest", "preview", "hook", "--config", str(cfg))
    assert code == 2 and "channel 'hook' has no digest" in err


def test_outbox_shows_groups_and_retry_resends_a_dead_one_whole(
    tmp_path: Path, telegram: TelegramReceiver, hooks: FeedServer
) -> None:
    hooks.route("/hook", hook_reply(404, body="gone"))
    cfg = config(tmp_path, telegram, hooks.url("/hook"), "[{channel: hook, group_wait: 0s}]")
    _, out, _ = run_cli("poll", "--once", "--config", str(cfg))
    assert "1 dead" in out
    code, out, _ = run_cli("outbox", "--config", str(cfg), "--status", "dead")
    assert code == 0
    [head] = [line for line in out.splitlines() if line.startswith("#")]
    assert "dead" in head and "alert" in head and "[russia-north-korea]" in head
    assert "error: webhook" in out and SEED_TITLE in out
    notification_id = head.split()[0].lstrip("#")

    hooks.route("/hook", hook_reply())
    code, out, _ = run_cli("outbox", "--config", str(cfg), "retry", notification_id)
    assert code == 0 and "1 dead notification(s) queued again" in out
    code, out, _ = run_cli("poll", "--once", "--config", str(cfg))
    assert "1 sent" in out
    first, retried = hooks.json_bodies("/hook")  # the refused try and the retry
    assert first["id"] == retried["id"]  # the same notification, whole
    assert [item["title"] for item in retried["items"]] == [SEED_TITLE]
