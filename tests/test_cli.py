"""The command line, run as a user would: real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver import FeedServer
from newswatch.cli import main
from samples import REPO, SEED_TITLE, rss, seed_body, seed_item

SAMPLE = REPO / "config" / "feeds" / "sample.xml"


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def offline_config(tmp_path: Path, extra_rules: str = "") -> Path:
    """The example setup without the internet feeds: sample feed + console."""
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            state: sqlite:///{tmp_path}/state.db
            feeds:
              - {{path: {SAMPLE}, name: sample, backfill: all, tags: [korea]}}
            channels: {{console: {{type: console}}}}
            rules:
              - {{name: russia-north-korea, query: 'Russia AND "North Korea"', notify: [console]}}
            """
        )
        + extra_rules,
        encoding="utf-8",
    )
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version_and_help() -> None:
    code, out, _ = run_cli("--version")
    assert code == 0 and "newswatch" in out
    for command in ("run", "check", "poll", "test", "feeds", "outbox"):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and "--config" in out, command


def test_check_example_config_prints_summary() -> None:
    code, out, _ = run_cli("check", "--config", str(REPO / "config" / "newswatch.yaml"))
    assert code == 0
    assert "OK" in out
    assert "russia-north-korea -> console" in out
    assert "BBC World" in out


def test_check_reports_problems_and_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("rules:\n  - {name: r, query: 'Russia AND', notify: [nowhere]}\n")
    code, _, err = run_cli("check", "--config", str(cfg))
    assert code == 1
    assert f"{cfg}:2: rules[0].notify[0]" in err
    assert "unknown channel 'nowhere'" in err
    assert f"{cfg}:2: rules[0].query" in err


def test_check_never_prints_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK", "https://hooks.example.org/services/T000/SECRET-TOKEN")
    monkeypatch.setenv("PW", "hunter2-password")
    cfg = tmp_path / "nw.yaml"
    cfg.write_text(
        "state: postgresql://nw:dbpass-secret@db.example.org/nw\n"
        "channels:\n"
        "  hook: {type: webhook, url: '${HOOK}'}\n"
        "  mail: {type: email, to: a@b.org, smtp: {host: h, username: u, password: '${PW}'}}\n"
    )
    code, out, err = run_cli("check", "--config", str(cfg))
    assert code == 0, err
    for secret in ("SECRET-TOKEN", "hunter2", "dbpass-secret", "T000"):
        assert secret not in out + err
    assert "hooks.example.org" in out


def test_poll_once_dry_run_prints_matches_and_stores_nothing(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    code, out, _ = run_cli("poll", "--once", "--dry-run", "--config", str(cfg))
    assert code == 0
    assert f"[russia-north-korea] {SEED_TITLE}" in out
    code, out, _ = run_cli("outbox", "--config", str(cfg))
    assert code == 0
    assert SEED_TITLE not in out


def test_poll_once_delivers_then_outbox_and_feeds_show_it(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    code, out, _ = run_cli("poll", "--once", "--config", str(cfg))
    assert code == 0
    assert out.count(SEED_TITLE) >= 1  # the console channel printed the alert
    assert "1 alerts queued" in out
    code, out, _ = run_cli("poll", "--once", "--config", str(cfg))
    assert code == 0
    assert SEED_TITLE not in out  # nothing twice
    code, out, _ = run_cli("outbox", "--config", str(cfg))
    assert "sent" in out and "russia-north-korea" in out
    code, out, _ = run_cli("feeds", "--config", str(cfg))
    assert code == 0
    assert "sample" in out and "never" not in out.splitlines()[1]


def test_outbox_retry_needs_ids_or_all(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    code, _, err = run_cli("outbox", "--config", str(cfg), "retry")
    assert code == 2 and "--all" in err
    code, out, _ = run_cli("outbox", "--config", str(cfg), "retry", "--all")
    assert code == 0 and "0 dead notification(s)" in out


# --------------------------------------------------------------------------- newswatch test


def test_test_command_exit_codes_like_grep(tmp_path: Path) -> None:
    article = tmp_path / "seed.txt"
    article.write_text(f"{SEED_TITLE}\n\n{seed_body()}", encoding="utf-8")
    cfg = offline_config(tmp_path)
    code, out, _ = run_cli("test", "--config", str(cfg), "--file", str(article))
    assert code == 0
    assert "MATCH  russia-north-korea" in out
    code, out, _ = run_cli(
        "test",
        "--config",
        str(cfg),
        "--query",
        "Russia AND Bulgaria NOT THAAD",
        "--file",
        str(article),
    )
    assert code == 1
    assert "miss" in out and "THAAD" in out
    code, _, err = run_cli("test", "--config", str(cfg), "--query", "Russia AND (", "--text", "x")
    assert code == 2 and "Russia AND (" in err


def test_test_command_json_on_a_feed_file(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    code, out, _ = run_cli(
        "test",
        "--config",
        str(cfg),
        "--file",
        str(SAMPLE),
        "--rule",
        "russia-north-korea",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["matched"] is True
    by_title = {a["title"]: a["results"][0] for a in data["articles"]}
    assert by_title[SEED_TITLE]["matched"] is True
    assert sum(r["matched"] for r in by_title.values()) == 1


def test_test_command_url(tmp_path: Path, feeds: FeedServer) -> None:
    feeds.route("/f.xml", body=rss(seed_item()))
    code, out, _ = run_cli(
        "test",
        "--config",
        str(tmp_path / "none.yaml"),
        "--query",
        "THAAD",
        "--url",
        feeds.url("/f.xml"),
    )
    assert code == 0 and "MATCH" in out
    code, _, err = run_cli(
        "test", "--config", str(tmp_path / "none.yaml"), "--query", "x", "--url", feeds.url("/gone")
    )
    assert code == 2 and "404" in err


def test_backtest_since_counts_stored_articles(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    assert run_cli("poll", "--once", "--config", str(cfg))[0] == 0
    code, out, _ = run_cli("test", "--config", str(cfg), "--since", "36500d")
    assert code == 0
    assert "3 stored articles" in out
    assert "russia-north-korea: 1 match(es)" in out


# --------------------------------------------------------------------------- the daemon process


def test_daemon_process_alerts_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newswatch", "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 20
        while SEED_TITLE not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert SEED_TITLE in seen
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        assert code == 0
        assert time.monotonic() - started < 5
        _, err = proc.communicate(timeout=5)
        assert "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


# --------------------------------------------------------------------------- the state database


def test_read_only_commands_on_a_missing_state_create_nothing(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    code, out, err = run_cli("feeds", "--config", str(cfg))
    assert code == 0 and "sample" in out and "never" in out
    assert "nothing stored yet" in err
    code, out, _ = run_cli("outbox", "--config", str(cfg))
    assert code == 0 and "waiting: 0 item(s)" in out
    assert not (tmp_path / "state.db").exists()


def test_an_old_state_is_read_after_migrate_only(tmp_path: Path) -> None:
    cfg = offline_config(tmp_path)
    state = tmp_path / "state.db"
    shutil.copy(Path(__file__).parent / "data" / "state-v1.sqlite", state)
    before = state.read_bytes()
    code, _, err = run_cli("outbox", "--config", str(cfg))
    assert code == 1
    assert err.count("\n") == 1 and "Run `newswatch migrate`" in err, err
    assert state.read_bytes() == before  # a read-only command changed nothing
    code, out, _ = run_cli("migrate", "--config", str(cfg))
    assert code == 0 and "upgraded from schema version 1 to 2" in out
    code, out, _ = run_cli("migrate", "--config", str(cfg))
    assert code == 0 and "schema version 2, nothing to do" in out
    code, out, _ = run_cli("outbox", "--config", str(cfg))
    assert code == 0 and "notifications:" in out
