"""The whole pipeline with real parts on 127.0.0.1: an HTTP server serving
feeds and receiving webhooks, an SMTP server, SQLite files."""

from __future__ import annotations

import asyncio
import io
import random
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App, Daemon
from newswatch.keys import feed_key_for
from newswatch.store.base import OutboxStatus
from ops_helpers import wait_until
from samples import SEED_TITLE, Item, rss, seed_item
from smtpserver import SmtpServer

FAST = timedelta(milliseconds=100)
# `notify:` entries that send at once (the default group_wait is 30 s).
HOOK_NOW = "[{channel: hook, group_wait: 0s}]"
MAIL_NOW = "[{channel: mail, group_wait: 0s}]"


class Clock:
    """A clock the test moves by hand (retry back-off without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


def write_config(tmp_path: Path, body: str) -> LoadedConfig:
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        f"state: sqlite:///{tmp_path}/state.db\n" + textwrap.dedent(body).lstrip(),
        encoding="utf-8",
    )
    return load_config(path, env={})


def email_channels(smtp: SmtpServer) -> str:
    """A `channels:` value (YAML flow style) with one email channel, `mail`."""
    smtp_cfg = f"{{host: {smtp.host}, port: {smtp.port}, starttls: false, timeout: 5s}}"
    return f"{{mail: {{type: email, to: [desk@example.org], smtp: {smtp_cfg}}}}}"


def titles(server: FeedServer, path: str = "/hook") -> list[str]:
    """Every item title the webhook received, in order (a notification
    carries one or more items)."""
    return [item["title"] for body in server.json_bodies(path) for item in body["items"]]


# --------------------------------------------------------------------------- daemon


async def test_daemon_emails_seed_article_once_across_polls_and_restart(
    tmp_path: Path, feeds: FeedServer, smtp: SmtpServer
) -> None:
    smtp.start()
    feeds.route("/korea.xml", body=rss(seed_item()))
    loaded = write_config(
        tmp_path,
        f"""
        feeds:
          - url: {feeds.url("/korea.xml")}
            name: Korea Herald
            every: 0.2s
            backfill: all
        channels: {email_channels(smtp)}
        rules:
          - name: russia-north-korea
            query: 'Russia AND "North Korea"'
            notify: [{{channel: mail, group_wait: 0s}}]
        """,
    )

    async def run_for_polls(polls: int) -> None:
        async with App.open(loaded) as app:
            daemon = Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST)
            task = asyncio.create_task(daemon.run())
            start = feeds.hits("/korea.xml")
            await wait_until(lambda: feeds.hits("/korea.xml") >= start + polls)
            await wait_until(lambda: len(smtp.messages) >= 1)
            await asyncio.sleep(0.3)  # a few more deliver ticks
            daemon.stop()
            await asyncio.wait_for(task, 5)

    await run_for_polls(3)
    [message] = smtp.messages
    assert "russia-north-korea" in message["Subject"]
    assert SEED_TITLE in message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert SEED_TITLE in text
    assert "koreaherald.com" in text

    # Same SQLite file, new process state: nothing is sent again.
    await run_for_polls(2)
    assert len(smtp.messages) == 1


async def test_sigterm_style_stop_releases_and_exits_quickly(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/slow.xml", Reply(body=rss(seed_item()), delay=30))
    loaded = write_config(
        tmp_path,
        f"""
        feeds:
          - url: {feeds.url("/slow.xml")}
        channels: {{console: {{type: console}}}}
        rules: [{{name: r, query: Russia, notify: [{{channel: console, group_wait: 0s}}]}}]
        """,
    )
    async with App.open(loaded, out=io.StringIO()) as app:
        daemon = Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST)
        task = asyncio.create_task(daemon.run())
        await wait_until(lambda: feeds.hits("/slow.xml") >= 1)
        started = asyncio.get_running_loop().time()
        daemon.stop()
        await asyncio.wait_for(task, 10)
        assert asyncio.get_running_loop().time() - started < 5
        # The in-flight poll was cancelled and its lease given back.
        [state] = app.store.feed_states()
        assert state.lease_until is None
        assert state.last_success_at is None


async def test_bad_rule_edit_keeps_old_rules_running(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feeds.route("/f.xml", body=rss(Item(title="old", link="http://e.org/0", guid="0")))
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {name: r, query: Seoul, notify: [{channel: hook, group_wait: 0s}]}\n")
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/f.xml")}", every: 0.2s}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: rules.yaml
        """,
    )
    feeds.route("/hook", status=204)
    async with App.open(loaded) as app:
        daemon = Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST)
        task = asyncio.create_task(daemon.run())
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        # A broken edit: logged with file and line, old rule keeps matching.
        rules.write_text(
            "- {name: r, query: 'Seoul AND (', notify: [{channel: hook, group_wait: 0s}]}\n"
        )
        await wait_until(lambda: "configuration not reloaded" in caplog.text)
        assert f"{rules}:1" in caplog.text
        feeds.route(
            "/f.xml",
            body=rss(
                Item(title="old", link="http://e.org/0", guid="0"),
                Item(title="Seoul news", link="http://e.org/1", guid="1"),
            ),
        )
        await wait_until(lambda: len(feeds.requests_to("/hook")) >= 1)
        assert titles(feeds)[0] == "Seoul news"
        # A good edit takes effect.
        rules.write_text("- {name: r2, query: Busan, notify: [{channel: hook, group_wait: 0s}]}\n")
        await wait_until(lambda: app.poller.rules.index.rule_names == ("r2",))
        daemon.stop()
        await asyncio.wait_for(task, 5)


# --------------------------------------------------------------------------- matching


async def test_rules_through_the_pipeline(tmp_path: Path, feeds: FeedServer) -> None:
    feeds.route("/korea.xml", body=rss(seed_item()))
    feeds.route("/hook", status=200)
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/korea.xml")}", backfill: all}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules:
          - {{name: no-thaad, query: 'Russia AND Bulgaria NOT THAAD', notify: {HOOK_NOW}}}
          - {{name: thaad-or-sanctions, query: 'THAAD OR sanctions', notify: {HOOK_NOW}}}
          - {{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK_NOW}}}
        """,
    )
    async with App.open(loaded) as app:
        await app.poller.poll_all()
        await app.deliverer.drain()
    fired = sorted(rule for body in feeds.json_bodies("/hook") for rule in body["rules"])
    assert fired == ["rnk", "thaad-or-sanctions"]


async def test_first_poll_without_backfill_is_silent_then_new_entries_alert(
    tmp_path: Path, feeds: FeedServer
) -> None:
    old = Item(title="Russia and North Korea, an old story", link="http://e.org/old", guid="old")
    feeds.route("/f.xml", body=rss(old))
    feeds.route("/hook", status=200)
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/f.xml")}"}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK_NOW}}}]
        """,
    )
    async with App.open(loaded) as app:
        [first] = await app.poller.poll_all()
        assert first.new_articles == 1 and first.new_alerts == 0
        await app.deliverer.drain()
        assert feeds.requests_to("/hook") == []

        new = Item(title="Russia and North Korea sign a pact", link="http://e.org/new", guid="new")
        feeds.route("/f.xml", body=rss(new, old))
        [second] = await app.poller.poll_all()
        assert second.new_articles == 1 and second.new_alerts == 1
        await app.deliverer.drain()
    assert titles(feeds) == [new.title]


async def test_same_story_in_two_feeds_alerts_once(tmp_path: Path, feeds: FeedServer) -> None:
    story = Item(
        title="Russia and North Korea hold talks",
        link="https://news.example.org/story?id=7",
        guid="wire-7",
    )
    copy = Item(
        title="Russia and North Korea hold talks",
        link="https://news.example.org/story?id=7&utm_source=partner",
        guid="partner-99",
    )
    feeds.route("/a.xml", body=rss(story))
    feeds.route("/b.xml", body=rss(copy))
    feeds.route("/hook", status=200)
    loaded = write_config(
        tmp_path,
        f"""
        feeds:
          - {{url: "{feeds.url("/a.xml")}", backfill: all}}
          - {{url: "{feeds.url("/b.xml")}", backfill: all}}
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK_NOW}}}]
        """,
    )
    async with App.open(loaded) as app:
        outcomes = await app.poller.poll_all()
        assert sum(o.new_articles for o in outcomes) == 2
        await app.deliverer.drain()
    assert len(feeds.json_bodies("/hook")) == 1


# --------------------------------------------------------------------------- delivery


async def test_smtp_down_then_up_delivers_once(
    tmp_path: Path, feeds: FeedServer, smtp: SmtpServer
) -> None:
    feeds.route("/korea.xml", body=rss(seed_item()))
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/korea.xml")}", backfill: all}}]
        channels: {email_channels(smtp)}
        rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {MAIL_NOW}}}]
        """,
    )
    clock = Clock()
    async with App.open(loaded, clock=clock, rng=random.Random(1)) as app:
        await app.poller.poll_all()
        stats = await app.deliverer.deliver_due()  # SMTP down: connection refused
        assert stats.sent == 0 and stats.retried == 1
        [row] = app.store.outbox()
        assert row.status is OutboxStatus.QUEUED and row.last_error
        assert "refused" in row.last_error.lower() or "connect" in row.last_error.lower()

        smtp.start()
        await app.deliverer.deliver_due()  # not due yet: back-off is respected
        assert smtp.messages == []
        clock.advance(timedelta(hours=2))
        await app.deliverer.drain()
        await app.poller.poll_all()  # the feed again: nothing new
        clock.advance(timedelta(hours=2))
        await app.deliverer.drain()
        [row] = app.store.outbox()
        assert row.status is OutboxStatus.SENT
    assert len(smtp.messages) == 1


async def test_webhook_500_500_200_delivers_exactly_once(tmp_path: Path, feeds: FeedServer) -> None:
    feeds.route("/korea.xml", body=rss(seed_item()))
    feeds.sequence("/hook", [Reply(status=500), Reply(status=500), Reply(status=200)])
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/korea.xml")}", backfill: all}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK_NOW}}}]
        """,
    )
    clock = Clock()
    async with App.open(loaded, clock=clock, rng=random.Random(2)) as app:
        await app.poller.poll_all()
        for _ in range(5):
            await app.deliverer.deliver_due()
            clock.advance(timedelta(hours=1))
        [row] = app.store.outbox()
        assert row.status is OutboxStatus.SENT
        assert row.attempts == 3
    assert feeds.hits("/hook") == 3
    assert titles(feeds)[-1] == SEED_TITLE


# --------------------------------------------------------------------------- bad feeds


async def test_bad_feeds_are_reported_and_healthy_feed_still_alerts(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/good.xml", body=rss(seed_item()))
    feeds.route("/broken.xml", body=b"<rss><channel><title>x</title><item><title>half")
    feeds.route(
        "/partial.xml",
        body=b"<rss><channel><title>x</title><item><title>Russia and North Korea, whole</title>"
        b"<link>http://e.org/whole</link></item><item><title>cut off",
    )
    feeds.route("/html.xml", body=b"<html><body>Not a feed</body></html>", content_type="text/html")
    feeds.route("/missing.xml", status=404, body=b"not here")
    feeds.route("/huge.xml", body=rss(*(seed_item() for _ in range(1))) + b" " * 300_000)
    feeds.route("/slow.xml", Reply(body=rss(seed_item()), trickle=0.2))
    feeds.route("/hook", status=200)
    names = ["good", "broken", "partial", "html", "missing", "huge", "slow"]
    feed_lines = "\n".join(
        f'  - {{url: "{feeds.url(f"/{n}.xml")}", name: {n}, backfill: all}}' for n in names
    )
    loaded = write_config(
        tmp_path,
        "poll: {timeout: 1s, max_bytes: 200KiB}\n"
        f"feeds:\n{feed_lines}\n"
        f'channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}\n'
        "rules: [{name: rnk, query: 'Russia AND \"North Korea\"', notify: [{channel: hook, group_wait: 0s}]}]\n",  # noqa: E501
    )
    async with App.open(loaded) as app:
        outcomes = {o.name: o for o in await app.poller.poll_all()}
        await app.deliverer.drain()
        states = {s.feed_key: s for s in app.store.feed_states()}

    assert outcomes["good"].status == "updated"
    assert outcomes["missing"].error is not None and "404" in outcomes["missing"].error
    assert outcomes["huge"].error is not None and "limit" in outcomes["huge"].error
    assert outcomes["slow"].error is not None
    assert "1.0" in outcomes["slow"].error or "deadline" in outcomes["slow"].error
    assert outcomes["html"].status == "failed"
    # Malformed XML: nothing readable fails the feed; what can be read is
    # used, with the problem kept as the feed's warning.
    assert outcomes["broken"].status == "failed"
    assert "no entries could be read" in (outcomes["broken"].error or "")
    partial = outcomes["partial"]
    assert partial.status == "updated" and partial.entries == 1
    assert partial.warning is not None and "malformed feed" in partial.warning
    assert states[feed_key_for(feeds.url("/partial.xml"))].last_error == partial.warning
    for name in ("broken", "missing", "huge", "slow", "html"):
        state = states[feed_key_for(feeds.url(f"/{name}.xml"))]
        assert state.consecutive_errors == 1 and state.last_error
    sent = sorted(titles(feeds))
    assert sent == sorted([SEED_TITLE, "Russia and North Korea, whole"])


async def test_rule_backfill_alerts_on_stored_articles_once(
    tmp_path: Path, feeds: FeedServer
) -> None:
    # The window is on publication time: the seed story (2016) is stored,
    # but only the story published an hour ago is within `backfill: 24h`.
    recent = Item(
        title="Russia and North Korea open a bridge",
        link="http://e.org/recent",
        guid="recent",
        published=datetime.now(UTC) - timedelta(hours=1),
    )
    feeds.route("/korea.xml", body=rss(recent, seed_item()))
    feeds.route("/hook", status=200)
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {name: other, query: Busan, notify: [{channel: hook, group_wait: 0s}]}\n")
    loaded = write_config(
        tmp_path,
        f"""
        feeds: [{{url: "{feeds.url("/korea.xml")}"}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: rules.yaml
        """,
    )
    async with App.open(loaded) as app:
        await app.poller.poll_all()  # first poll: stored, no alerts
    assert feeds.requests_to("/hook") == []

    # A new rule asking for a backfill alerts on what is already stored...
    rules.write_text(
        "- {name: other, query: Busan, notify: [{channel: hook, group_wait: 0s}]}\n"
        "- {name: rnk, query: 'Russia AND \"North Korea\"', backfill: 24h, notify: [{channel: hook, group_wait: 0s}]}\n"  # noqa: E501
        "- {name: thaad, query: THAAD, notify: [{channel: hook, group_wait: 0s}]}\n"  # no backfill: stays quiet  # noqa: E501
    )
    reloaded = load_config(loaded.path, env={})
    async with App.open(reloaded) as app:
        await app.deliverer.drain()
    assert [r for b in feeds.json_bodies("/hook") for r in b["rules"]] == ["rnk"]
    assert titles(feeds) == [recent.title]

    # ...once: a restart does not run it again.
    async with App.open(reloaded) as app:
        await app.poller.poll_all()
        await app.deliverer.drain()
    assert len(feeds.json_bodies("/hook")) == 1


async def test_two_replicas_on_one_database_alert_once(
    tmp_path: Path, feeds: FeedServer, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two daemons sharing one state database (SQLite file or PostgreSQL):
    each feed is polled by one of them at a time and each alert sent once."""
    monkeypatch.setenv("NEWSWATCH_STATE", store_url)
    items = [
        Item(title=f"Russia and North Korea, part {n}", link=f"http://e.org/{n}", guid=str(n))
        for n in range(5)
    ]
    for n in range(4):
        feeds.route(f"/f{n}.xml", body=rss(*items))  # the same stories in four feeds
    feeds.route("/hook", Reply(status=200, delay=0.05))
    feed_lines = "\n".join(
        f'  - {{url: "{feeds.url(f"/f{n}.xml")}", every: 0.2s, backfill: all}}' for n in range(4)
    )
    loaded = write_config(
        tmp_path,
        f"feeds:\n{feed_lines}\n"
        f'channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}\n'
        "rules: [{name: rnk, query: 'Russia AND \"North Korea\"', notify: [{channel: hook, group_wait: 0s}]}]\n",  # noqa: E501
    )
    async with App.open(loaded) as a, App.open(loaded) as b:
        daemons = [
            Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST) for app in (a, b)
        ]
        tasks = [asyncio.create_task(d.run()) for d in daemons]
        await wait_until(lambda: all(feeds.hits(f"/f{n}.xml") >= 3 for n in range(4)))
        await wait_until(lambda: len(titles(feeds)) >= 5)
        await asyncio.sleep(0.5)  # time for any duplicate to show up
        for d in daemons:
            d.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        rows = a.store.outbox()
    sent = sorted(titles(feeds))
    assert sent == sorted(i.title for i in items)
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert len(rows) == 5


async def test_retention_forgets_what_feeds_dropped_and_keeps_what_they_serve(
    tmp_path: Path, feeds: FeedServer
) -> None:
    a = Item(title="Russia and North Korea: A", link="http://e.org/a", guid="a")
    b = Item(title="Russia and North Korea: B", link="http://e.org/b", guid="b")
    c = Item(title="Russia and North Korea: C", link="http://e.org/c", guid="c")
    feeds.route("/f.xml", body=rss(a, b))
    feeds.route("/hook", status=200)
    loaded = write_config(
        tmp_path,
        f"""
        retention: 90d
        feeds: [{{url: "{feeds.url("/f.xml")}"}}]
        channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}
        rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK_NOW}}}]
        """,
    )
    clock = Clock()
    async with App.open(loaded, clock=clock) as app:
        await app.poller.poll_all()  # first poll: a and b stored, silent
        clock.advance(timedelta(days=100))
        feeds.route("/f.xml", body=rss(a, c))  # b dropped, c new, a still served
        await app.poller.poll_all()
        await app.deliverer.drain()

        # The daemon's maintenance tick prunes at start-up.
        daemon = Daemon(app, poll_tick=timedelta(hours=1), deliver_tick=FAST, reload_tick=FAST)
        task = asyncio.create_task(daemon.run())
        await wait_until(
            lambda: not app.store.known_entries(feed_key_for(feeds.url("/f.xml")), ["b"])
        )
        daemon.stop()
        await asyncio.wait_for(task, 5)
        known = app.store.known_entries(feed_key_for(feeds.url("/f.xml")), ["a", "c"])
        assert set(known) == {"a", "c"}

        await app.poller.poll_all()  # a is still known: no alert for it
        await app.deliverer.drain()
    assert titles(feeds) == [c.title]
