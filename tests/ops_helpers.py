"""A running daemon with its HTTP listener, and a scenario with something of
everything for the status page: a healthy feed, failing feeds, a feed URL
with credentials, a dead letter, a channel that is down, a mute, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from feedserver import FeedServer
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App, Daemon
from samples import Item, rss, seed_item

FAST = timedelta(milliseconds=100)

# Secrets of the scenario: none may show in a page, a metric, a log or --json.
SMTP_PASSWORD = "smtp-pw-Zq81xLm"
HOOK_TOKEN = "hooktoken-7Hc2pQ"
FEED_PASSWORD = "feedpw-Ka93nB"
FEED_TOKEN = "feedtoken-Jx55vRq"
HTTP_TOKEN = "httptoken-Pw04Lz"
SECRETS = (SMTP_PASSWORD, HOOK_TOKEN, FEED_PASSWORD, FEED_TOKEN, HTTP_TOKEN)
ENV = {"SMTP_PASSWORD": SMTP_PASSWORD, "HOOK_TOKEN": HOOK_TOKEN, "HTTP_TOKEN": HTTP_TOKEN}

HOSTILE_NAME = '<img src=x onerror="alert(1)"> Herald & Co'
GOOD_RULES = """\
- name: korea
  query: Russia
  notify: [{channel: console, group_wait: 0s}, {channel: hook, group_wait: 0s}]
- name: quiet-rule
  query: Pyongyang
  notify: [{channel: mail, group_wait: 0s}]
"""
BAD_RULES = "- name: korea\n  query: 'Russia AND ('\n  notify: [console]\n"


async def wait_until(predicate: Callable[[], object], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def write(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> LoadedConfig:
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        f"state: sqlite:///{tmp_path}/state.db\n" + textwrap.dedent(body).lstrip(),
        encoding="utf-8",
    )
    return load_config(path, env=ENV if env is None else env)


@dataclass
class Running:
    app: App
    daemon: Daemon
    out: io.StringIO

    @property
    def base(self) -> str:
        assert self.daemon.listener is not None
        host, port = self.daemon.listener.address
        return f"http://{host}:{port}"

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(self.base + path, **kwargs)


@contextlib.asynccontextmanager
async def running(loaded: LoadedConfig, **daemon_kw: Any) -> AsyncIterator[Running]:
    out = io.StringIO()
    kw: dict[str, Any] = {"poll_tick": FAST, "deliver_tick": FAST, "reload_tick": FAST}
    kw.update(daemon_kw)
    async with App.open(loaded, out=out) as app:
        daemon = Daemon(app, **kw)
        task = asyncio.create_task(daemon.run())
        try:
            if daemon.listener is not None:
                await wait_until(lambda: daemon.listener is not None and daemon.listener._task)
                await wait_until(lambda: daemon.listener._server.started)  # type: ignore[union-attr]
            yield Running(app, daemon, out)
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 10)


def scenario(tmp_path: Path, feeds: FeedServer, *, http: str = "{listen: '127.0.0.1:0'}") -> Path:
    """Writes the scenario's config and rules; returns the rules file."""
    feeds.route("/korea.xml", body=rss(seed_item(), title="Korea Herald"))
    feeds.route("/down.xml", status=500)
    feeds.route("/gone.xml", status=404)
    feeds.route("/private.xml", body=rss(Item(title="Private", link="http://e.org/p", guid="p")))
    feeds.route(f"/hook/{HOOK_TOKEN}", status=400, body="no such hook")
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULES, encoding="utf-8")
    private = (
        feeds.url("/private.xml").replace("http://", f"http://reader:{FEED_PASSWORD}@")
        + f"?token={FEED_TOKEN}"
    )
    write(
        tmp_path,
        f"""
        timezone: Asia/Seoul
        http: {http}
        shutdown_grace: 2s
        feeds:
          - {{url: "{feeds.url("/korea.xml")}", name: '{HOSTILE_NAME}', every: 0.3s, backfill: all}}
          - {{url: "{feeds.url("/down.xml")}", name: Down Daily, every: 0.3s}}
          - {{url: "{feeds.url("/gone.xml")}", every: 0.3s}}
          - {{url: "{private}", every: 0.3s}}
        channels:
          console: {{type: console}}
          hook: {{type: webhook, url: "{feeds.url("/hook/${HOOK_TOKEN}")}"}}
          mail:
            type: email
            to: [desk@example.org]
            smtp: {{host: 127.0.0.1, port: 9, starttls: false, username: nw,
                    password: "${{SMTP_PASSWORD}}", timeout: 1s}}
        rules: rules.yaml
        """,
    )
    return rules


async def settle_scenario(run: Running, feeds: FeedServer) -> None:
    """Wait until the scenario's polls ran and its dead letter exists."""
    store = run.app.store
    await wait_until(lambda: feeds.hits("/down.xml") >= 1 and feeds.hits("/gone.xml") >= 1)
    await wait_until(lambda: feeds.hits(f"/hook/{HOOK_TOKEN}") >= 1)
    await wait_until(lambda: store.channel_counts().get("hook", None) is not None)
    await wait_until(lambda: store.channel_counts()["hook"].dead >= 1)
