"""Secrets (SMTP password, webhook token, feed URL credentials, the HTTP token)
appear in none of /metrics, the status page, the logs or the --json outputs."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver import FeedServer
from newswatch.cli import main
from newswatch.config import load_config
from newswatch.logs import JsonFormatter, secret_mask
from ops_helpers import ENV, HTTP_TOKEN, SECRETS, running, scenario, settle_scenario


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


async def test_no_secret_in_metrics_page_logs_or_json(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    scenario(tmp_path, feeds, http="{listen: '127.0.0.1:0', auth: {token: '${HTTP_TOKEN}'}}")
    config = tmp_path / "newswatch.yaml"
    caplog.set_level(logging.DEBUG, logger="newswatch")
    auth = {"authorization": f"Bearer {HTTP_TOKEN}"}
    async with running(load_config(config)) as run:
        await settle_scenario(run, feeds)
        page = (await run.get("/", headers=auth)).text
        failing = (await run.get("/?feeds=failing", headers=auth)).text
        metrics = (await run.get("/metrics", headers=auth)).text
        ready = (await run.get("/readyz")).text
    assert "Down Daily" in page and "newswatch_polls_total" in metrics
    # What the JSON log format writes, through the handler's mask as in `run`.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(secret_mask)
    for r in caplog.records:
        handler.handle(r)
    outputs = {
        "page": page + failing,
        "metrics": metrics,
        "readyz": ready,
        "log": caplog.text,
        "json log": stream.getvalue(),
    }
    runner = CliRunner()
    for command in (
        ["status", "--json"],
        ["status"],
        ["outbox", "--json"],
        ["outbox"],
        ["channels", "--json"],
        ["channels"],
        ["mutes", "--json"],
        ["feeds"],
        ["check", "--json"],
    ):
        args = [command[0], "-c", str(config), *command[1:]]
        # In a thread: the commands run their own event loop (asyncio.run).
        result = await asyncio.to_thread(runner.invoke, main, args)
        assert result.exit_code == 0, (command, result.output, result.exception)
        outputs[" ".join(command)] = result.output
    assert "reader:" not in page  # the feed URL's user name is not shown either
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, (where, secret)
