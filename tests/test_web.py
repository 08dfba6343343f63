"""The HTTP listener end to end: a real daemon serving on 127.0.0.1 (uvicorn on
its own event loop), feeds and a webhook on the loopback feed server."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer
from newswatch.config import FeedConfig, load_config
from newswatch.poll import FeedOutcome
from newswatch.web.app import CSP
from ops_helpers import (
    BAD_RULES,
    ENV,
    FEED_PASSWORD,
    GOOD_RULES,
    HOSTILE_NAME,
    HTTP_TOKEN,
    SECRETS,
    running,
    scenario,
    settle_scenario,
    wait_until,
    write,
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario's secrets, where a reload finds them too (os.environ)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


async def test_status_page_shows_feeds_rules_channels_notifications_mutes_and_errors(
    tmp_path: Path, feeds: FeedServer
) -> None:
    rules = scenario(tmp_path, feeds)
    loaded = load_config(tmp_path / "newswatch.yaml")
    async with running(loaded) as run:
        await settle_scenario(run, feeds)
        now = run.app.clock()
        run.app.store.add_mute(
            "channel", "mail", now, now + timedelta(hours=4), comment="SMTP move"
        )
        rules.write_text(BAD_RULES, encoding="utf-8")
        await wait_until(lambda: run.daemon.reloader.problems)

        page = await run.get("/")
        assert page.status_code == 200
        html = page.text
        # Security headers on every answer.
        assert page.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP and "script-src" not in CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in html and " style=" not in html
        # The config error, with file and line.
        assert "Configuration error" in html
        assert f"{rules}:2" in html
        # Feeds: failing ones with their errors; hostile names are text.
        assert "Down Daily" in html and "HTTP 500" in html and "HTTP 404" in html
        assert HOSTILE_NAME not in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; Herald &amp; Co" in html
        assert "failing only (2)" in html
        # Rules with counts and a sparkline; channels with a dead letter.
        assert re.search(r'<td data-label="24 h">1</td>', html)
        assert '<svg class="spark"' in html
        assert re.search(r'<td data-label="Dead">1</td>', html)
        assert "HTTP 400" in html
        # Recent notifications with their items and links; the mute.
        assert "THAAD was not issue" in html
        assert 'href="http://www.koreaherald.com/view.php?ud=20160616000588"' in html
        assert "SMTP move" in html and "mail</strong>" in html
        # Times in the configured zone.
        assert "times in Asia/Seoul" in html
        for secret in SECRETS:
            assert secret not in html

        failing = (await run.get("/?feeds=failing")).text
        assert "Down Daily" in failing and "Korea Herald" not in failing.split('id="feeds"')[1]

        metrics = (await run.get("/metrics")).text
        assert "newswatch_config_last_reload_successful 0.0" in metrics
        assert 'newswatch_polls_total{outcome="failed"}' in metrics
        assert 'newswatch_fetch_errors_total{kind="http_5xx"}' in metrics
        assert 'newswatch_fetch_errors_total{kind="http_4xx"}' in metrics
        assert 'newswatch_matches_total{rule="korea"}' in metrics
        assert 'newswatch_notifications_total{channel="hook",outcome="dead"} 1.0' in metrics
        assert 'newswatch_notifications_total{channel="console",outcome="sent"} 1.0' in metrics
        assert "newswatch_poll_cycle_duration_seconds_bucket" in metrics
        assert "newswatch_parse_duration_seconds_count" in metrics
        assert "newswatch_build_info{" in metrics
        assert 'newswatch_feed_failing{feed="Down Daily"} 1.0' in metrics
        assert "newswatch_loop_last_tick_age_seconds" in metrics
        for secret in SECRETS:
            assert secret not in metrics
        assert FEED_PASSWORD not in metrics and "reader:" not in metrics

        # A good edit: the metric and the page say so.
        rules.write_text(GOOD_RULES, encoding="utf-8")
        await wait_until(lambda: not run.daemon.reloader.problems)
        metrics = (await run.get("/metrics")).text
        assert "newswatch_config_last_reload_successful 1.0" in metrics
        assert "Configuration error" not in (await run.get("/")).text


async def test_readyz_fails_when_the_poll_loop_is_stuck_and_healthz_stays_ok(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/f.xml", body=b"")
    loaded = write(
        tmp_path,
        f"""
        http: {{listen: '127.0.0.1:0'}}
        poll: {{timeout: 100ms}}
        feeds: [{{url: "{feeds.url("/f.xml")}", every: 1s}}]
        """,
    )
    async with running(loaded) as run:
        await wait_until(lambda: run.daemon.heartbeats.snapshot()["poll"].finished is not None)
        ready = await run.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready\n")

        stuck = asyncio.Event()

        claimed = asyncio.Event()

        async def hang(feed: FeedConfig, state: object) -> FeedOutcome:
            claimed.set()
            await stuck.wait()  # a feed that never finishes: the pool is stuck
            return FeedOutcome(feed.key, feed.label, "not_modified")

        run.app.poller.poll_one = hang  # type: ignore[method-assign]
        limit = run.daemon.loop_limits()["poll"]
        assert limit < 1.5
        await asyncio.wait_for(claimed.wait(), 20)  # the feed's next poll (it backs off)
        await asyncio.sleep(limit + 0.5)
        ready = await run.get("/readyz")
        assert ready.status_code == 503
        assert "poll loop made no progress" in ready.text
        assert (await run.get("/healthz")).status_code == 200
        assert "poll" in (await run.get("/")).text.split('id="stale"')[1][:200]
        stuck.set()
        await wait_until(lambda: not run.daemon.runtime().stale_loops)
        assert (await run.get("/readyz")).status_code == 200


async def test_readyz_fails_when_the_store_is_unreachable(tmp_path: Path) -> None:
    loaded = write(tmp_path, "http: {listen: '127.0.0.1:0'}\n")
    async with running(loaded) as run:

        def down() -> None:
            raise OSError("database is down")

        run.app.store.ping = down  # type: ignore[method-assign]
        ready = await run.get("/readyz")
        assert ready.status_code == 503
        assert "state database unreachable (OSError)" in ready.text
        assert (await run.get("/healthz")).status_code == 200


async def test_auth_guards_the_page_and_metrics_but_not_the_probes(tmp_path: Path) -> None:
    loaded = write(tmp_path, "http: {listen: '127.0.0.1:0', auth: {token: '${HTTP_TOKEN}'}}\n")
    async with running(loaded) as run:
        for path in ("/", "/metrics", "/static/newswatch.css"):
            refused = await run.get(path)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert HTTP_TOKEN not in refused.text
            wrong = await run.get(path, headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await run.get(path, headers={"authorization": f"Bearer {HTTP_TOKEN}"})
            assert ok.status_code == 200
            assert HTTP_TOKEN not in ok.text
        for probe in ("/healthz", "/readyz"):
            assert (await run.get(probe)).status_code == 200


async def test_basic_auth(tmp_path: Path) -> None:
    loaded = write(
        tmp_path,
        "http: {listen: '127.0.0.1:0', auth: {username: ops, password: '${HTTP_TOKEN}'}}\n",
    )
    good = base64.b64encode(f"ops:{HTTP_TOKEN}".encode()).decode()
    bad = base64.b64encode(b"ops:guess").decode()
    async with running(loaded) as run:
        assert (await run.get("/")).headers["www-authenticate"].startswith("Basic")
        assert (await run.get("/", headers={"authorization": f"Basic {bad}"})).status_code == 401
        assert (await run.get("/", headers={"authorization": "Basic %%%"})).status_code == 401
        assert (await run.get("/", headers={"authorization": f"Basic {good}"})).status_code == 200


async def test_the_listener_is_read_only(tmp_path: Path) -> None:
    import httpx

    loaded = write(tmp_path, "http: {listen: '127.0.0.1:0'}\n")
    async with running(loaded) as run, httpx.AsyncClient() as client:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            answer = await client.request(method, run.base + "/")
            assert answer.status_code == 405
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert (await run.get("/nope")).status_code == 404


async def test_pages_of_feeds_stay_bounded(tmp_path: Path) -> None:
    feeds_yaml = "\n".join(
        f"  - {{path: feeds/f{i:03d}.xml, name: 'Feed {i:03d}'}}" for i in range(120)
    )
    loaded = write(tmp_path, f"http: {{listen: '127.0.0.1:0'}}\nfeeds:\n{feeds_yaml}\n")
    async with running(loaded, poll_tick=timedelta(hours=1)) as run:
        first = (await run.get("/")).text
        assert "Feed 000" in first and "Feed 049" in first and "Feed 050" not in first
        assert "page 1 of 3 (120)" in first
        third = (await run.get("/?feeds_page=3")).text
        assert "Feed 100" in third and "Feed 119" in third and "Feed 099" not in third
        past = (await run.get("/?feeds_page=99")).text
        assert "page 3 of 3" in past
        assert (await run.get("/?feeds_page=abc")).status_code == 200


def test_a_listener_off_loopback_needs_auth(tmp_path: Path) -> None:
    from newswatch.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        write(tmp_path, "http: {listen: '0.0.0.0:8787'}\n")
    [problem] = caught.value.details
    assert problem.line == 2 and "needs 'auth'" in problem.message
    loaded = write(tmp_path, "http: {listen: '0.0.0.0:8787', auth: {token: '${HTTP_TOKEN}'}}\n")
    assert loaded.config.http is not None and not loaded.config.http.loopback
    assert write(tmp_path, "http: {listen: '[::1]:8787'}\n").config.http.loopback  # type: ignore[union-attr]


def test_the_page_lists_story_updates(tmp_path: Path) -> None:
    """A copy that added substantial text to its story is listed (sent as a
    threaded update only for rules with `updates: true`)."""
    import dataclasses
    from datetime import UTC, datetime

    from newswatch.store import open_store
    from newswatch.web.pages import Query, Runtime, gather
    from store_helpers import article, ingest, item

    (tmp_path / "newswatch.yaml").write_text(
        f"state: sqlite:///{tmp_path}/state.db\nchannels: {{c: {{type: console}}}}\n"
    )
    loaded = load_config(tmp_path / "newswatch.yaml", env={})
    now = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        ingest(store, [item(article("first", story="s1"))], at=now - timedelta(hours=2))
        longer = item(article("longer", feed="other", story="s1", title="Longer <copy>"))
        ingest(
            store, [dataclasses.replace(longer, new_text=120)], "other", now - timedelta(hours=1)
        )
        runtime = Runtime(version="x", started_at=now, reloaded_at=now)
        context = gather(loaded, store, runtime, Query(), now)
    [update] = context["updates"]
    assert (update["title"], update["source"], update["new_text"]) == (
        "Longer <copy>",
        "Korea Herald",
        120,
    )
    assert update["link"] == "https://example.com/s1"
