"""Identity, storms, edits and feed health through the whole pipeline: a
loopback feed server, a webhook receiver, SQLite files, a hand-moved clock."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App
from newswatch.feeds.normalize import html_to_text
from newswatch.feeds.parsepool import InlineParser
from newswatch.keys import feed_key_for
from newswatch.model import NotificationKind, ParsedFeed
from samples import Item, rss

NOW_ISH = datetime.now(UTC)
HOOK = "[{channel: hook, group_wait: 0s}]"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        s.route("/hook", status=200)
        yield s


def config(
    tmp_path: Path, server: FeedServer, extra: str = "", feed: str = "", channels: str = ""
) -> LoadedConfig:
    path = tmp_path / "newswatch.yaml"
    feed = feed or f'{{url: "{server.url("/f.xml")}"}}'
    path.write_text(
        f"state: sqlite:///{tmp_path}/state.db\n"
        + textwrap.dedent(
            f"""
            feeds: [{feed}]
            channels: {{{channels}hook: {{type: webhook, url: "{server.url("/hook")}"}}}}
            rules: [{{name: rnk, query: 'Russia AND "North Korea"', notify: {HOOK}}}]
            """
        ).lstrip()
        + extra,
        encoding="utf-8",
    )
    return load_config(path, env={})


def titles(server: FeedServer) -> list[str]:
    return [i["title"] for b in server.json_bodies("/hook") for i in b.get("items", [])]


def story(n: int, *, scheme: str = "http", guid: str | None = None, **kw: object) -> Item:
    return Item(
        title=str(kw.get("title", f"Russia and North Korea, report number {n}")),
        link=f"{scheme}://e.org/story/{n}",
        guid=guid if guid is not None else f"{scheme}://e.org/story/{n}",
        body=str(kw.get("body", "")),
        published=NOW_ISH - timedelta(days=3, minutes=n),
    )


async def test_guid_and_link_rewrite_after_a_silent_first_poll_alerts_nobody(
    tmp_path: Path, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 7.2: a CMS moves every GUID and link from http to https."""
    server.route("/f.xml", body=rss(*(story(n) for n in range(12))))
    caplog.set_level(logging.WARNING, "newswatch.poll")
    async with App.open(config(tmp_path, server)) as app:
        await app.poller.poll_all()  # silent first poll
        server.route("/f.xml", body=rss(*(story(n, scheme="https") for n in range(12))))
        [outcome] = await app.poller.poll_all()
        await app.deliverer.drain()
        assert outcome.new_articles == 12 and outcome.new_alerts == 0
        assert app.poller.stats.storms == 1
    assert titles(server) == []
    assert caplog.text.count("rewrite of its entry ids") == 1


async def test_new_story_under_a_reused_guid_alerts(tmp_path: Path, server: FeedServer) -> None:
    """Issue 7.10: a feed that reuses one GUID for each new story."""
    server.route("/f.xml", body=rss(story(1, guid="latest", title="Weather for the weekend")))
    async with App.open(config(tmp_path, server)) as app:
        await app.poller.poll_all()
        reused = story(2, guid="latest", title="Russia and North Korea sign a treaty")
        server.route("/f.xml", body=rss(reused))
        [outcome] = await app.poller.poll_all()
        assert outcome.new_articles == 1 and outcome.new_alerts == 1
        [again] = await app.poller.poll_all()  # the same document: nothing new
        assert again.new_articles == 0 and again.new_alerts == 0
        await app.deliverer.drain()
    assert titles(server) == ["Russia and North Korea sign a treaty"]


async def test_edit_alerts_only_a_rule_that_newly_matches(
    tmp_path: Path, server: FeedServer
) -> None:
    """Issue 7.10: an entry edited so that it starts matching a rule."""
    plain = story(1, title="Talks in Vladivostok", body="Officials met.")
    server.route("/f.xml", body=rss(plain))
    async with App.open(config(tmp_path, server)) as app:
        await app.poller.poll_all()  # first poll
        server.route("/f.xml", body=rss(story(1, title="Talks in Vladivostok", body="Met again.")))
        [outcome] = await app.poller.poll_all()
        assert outcome.edited == 1 and outcome.new_alerts == 0  # an edit, nothing matches
        body = "Russia and North Korea agreed on a treaty."
        server.route("/f.xml", body=rss(story(1, title="Talks in Vladivostok", body=body)))
        [outcome] = await app.poller.poll_all()
        assert outcome.edited == 1 and outcome.new_alerts == 1
        again = story(1, title="Talks in Vladivostok", body=body + " More.")
        server.route("/f.xml", body=rss(again))
        [outcome] = await app.poller.poll_all()
        assert outcome.edited == 1 and outcome.new_alerts == 0  # rnk fired already
        await app.deliverer.drain()
    assert titles(server) == ["Talks in Vladivostok"]


async def test_failing_feed_tells_the_admin_once_and_when_it_is_back(
    tmp_path: Path, server: FeedServer
) -> None:
    server.route("/f.xml", status=500)
    loaded = config(
        tmp_path,
        server,
        extra="admin_channel: ops\nfeed_alert_after: 24h\n",
        channels=f'ops: {{type: webhook, url: "{server.url("/ops")}"}}, ',
    )
    server.route("/ops", status=200)
    clock = Clock()
    async with App.open(loaded, clock=clock) as app:
        for hours in (0, 12, 25, 30):
            clock.now = NOW_ISH + timedelta(hours=hours)
            await app.poller.poll_all()
            await app.deliverer.drain()
        server.route("/f.xml", body=rss(story(1)))
        clock.now += timedelta(hours=1)
        await app.poller.poll_all()
        await app.deliverer.drain()
        notifications = app.store.notifications()
    operator = [n for n in notifications if n.kind is NotificationKind.OPERATOR]
    assert len(operator) == 2
    texts = [b["reason"] for b in server.json_bodies("/ops")]
    assert len(texts) == 2
    assert "has been failing for 25 h" in texts[0] and "HTTP 500" in texts[0]
    assert "is back" in texts[1]


async def test_permanent_redirect_moves_what_is_polled(
    tmp_path: Path, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/old.xml", status=301, headers={"Location": server.url("/new.xml")})
    server.route("/new.xml", body=rss(story(1)))
    caplog.set_level(logging.WARNING, "newswatch.poll")
    feed = f'{{url: "{server.url("/old.xml")}", name: Wire}}'
    async with App.open(config(tmp_path, server, feed=feed)) as app:
        await app.poller.poll_all()
        await app.poller.poll_all()
        state = app.store.feed_state(feed_key_for(server.url("/old.xml")))
    assert state is not None and state.moved_to == server.url("/new.xml")
    assert state.status == "moved"
    assert server.hits("/old.xml") == 1 and server.hits("/new.xml") == 2
    assert f"feed Wire moved permanently to {server.url('/new.xml')}" in caplog.text


async def test_retry_after_is_honoured(tmp_path: Path, server: FeedServer) -> None:
    server.route("/f.xml", Reply(status=429, headers={"Retry-After": "7200"}))
    clock = Clock()
    async with App.open(config(tmp_path, server), clock=clock) as app:
        await app.poller.poll_all()
        state = app.store.feed_state(feed_key_for(server.url("/f.xml")))
    assert state is not None and state.next_poll_at is not None
    assert state.next_poll_at - clock.now >= timedelta(hours=1, minutes=48)  # 2 h less jitter


@pytest.mark.parametrize(
    "platform", ["text", "slack", "discord", "telegram", "teams", "matrix", "ntfy"]
)
def test_operator_notice_renders_its_text_on_every_platform(platform: str) -> None:
    from newswatch.model import Notification
    from newswatch.notify.render import RenderContext, render_message, render_parts

    text = "feed Wire has been failing for 25 h (30 polls in a row): HTTP 500"
    notice = Notification(1, "nwf-1", "ops", NotificationKind.OPERATOR, (), NOW_ISH, reason=text)
    rc = RenderContext()
    [part] = render_parts(notice, platform, rc, limit=4000)
    assert "failing for 25 h" in part
    message = render_message(notice, rc)
    assert message.subject == f"newswatch: {text}" and text in message.text
    assert message.html is not None and "failing for 25 h" in message.html


class RecordingParser(InlineParser):
    """The in-process parser, noting whether each parse was asked for texts."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[bool] = []

    async def parse(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None,
        deadline: float,
        label: str | None = None,
        texts: bool = False,
    ) -> ParsedFeed:
        self.asked.append(texts)
        return await super().parse(
            body, url=url, content_type=content_type, deadline=deadline, label=label, texts=texts
        )


async def test_a_first_poll_has_the_parser_extract_the_text(
    tmp_path: Path, server: FeedServer
) -> None:
    """Every entry of a first poll is new: its text is extracted where the
    feed is parsed (the parse worker); later polls normalize only what is
    new, here. The stored text is the same either way."""
    body = "<p>Russia &amp; <b>North Korea</b></p><!-- c --><p>sign a pact</p>"
    server.route("/f.xml", body=rss(story(1, body=body)))
    recording = RecordingParser()
    async with App.open(config(tmp_path, server)) as app:
        app.poller.parser = recording
        await app.poller.poll_all()
        server.route("/f.xml", body=rss(story(1, body=body), story(2, body=body)))
        await app.poller.poll_all()
        texts = [a.summary for a in app.store.iter_articles()]
    assert recording.asked == [True, False]
    assert texts == [html_to_text(body)] * 2
