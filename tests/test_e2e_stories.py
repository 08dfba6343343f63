"""One alert per story, end to end with real parts on 127.0.0.1: feeds from
the loopback HTTP server, alerts to its webhook or to an aiosmtpd server,
the state in SQLite files (and PostgreSQL for replicas)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedserver import FeedServer, Reply
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App, Daemon
from samples import SEED_LINK, SEED_TITLE, Item, rss, seed_body
from smtpserver import SmtpServer

SEED = seed_body()
PARAS = [p for p in SEED.split("\n") if p.strip()]
HOOK_NOW = "[{channel: hook, group_wait: 0s}]"
FAST = timedelta(milliseconds=100)
RULE = "russia-north-korea"
QUERY = "'Russia AND \"North Korea\"'"


def html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{p}</p>" for p in paragraphs)


SEED_ITEM = Item(title=SEED_TITLE, link=SEED_LINK, guid=SEED_LINK, body=html(PARAS))
TIMES_ITEM = Item(
    title="THAAD barely came up in Yun-Lavrov talks, Seoul official says",
    link="https://www.koreatimes.co.kr/www/nation/2016/06/116_207000.html",
    guid="kt-207000",
    body=html(["By Korea Times staff", *PARAS[:-3], "© koreatimes.co.kr. All rights reserved."]),
)
ASIA_ITEM = Item(
    title="Russia focused on ties, not THAAD, in talks with Seoul",
    link="https://asiadaily.example/2016/06/16/thaad-russia?utm_source=rss",
    guid="asia-1",
    body=html(
        [
            "SEOUL, June 16 (Yonhap) -- " + PARAS[0],
            *PARAS[1:12],
            "Sign up for our newsletter for the day's top stories from Asia.",
        ]
    ),
)
OTHER_MEETING_ITEM = Item(
    title="S. Korea, Russia agree not to recognize N. Korea as nuclear state",
    link="http://www.koreaherald.com/view.php?ud=20160615000912",
    guid="http://www.koreaherald.com/view.php?ud=20160615000912",
    body=html(
        [
            "South Korean Foreign Minister Yun Byung-se and his Russian counterpart Sergey "
            "Lavrov agreed on Monday that they would never accept North Korea as a nuclear "
            "weapons state, and pledged to work together for the denuclearization of the "
            "Korean Peninsula.",
            "The two ministers met in Moscow for about three hours, their first talks in "
            "Russia in five years. Lavrov said Moscow would strictly carry out the U.N. "
            "Security Council resolution adopted in March after the North's fourth nuclear test.",
            "\"We share the view that North Korea's nuclear and missile programmes are a "
            'direct threat to peace in Northeast Asia," Yun told reporters. Lavrov added that '
            "pressure alone would not solve the problem.",
        ]
    ),
)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def write_config(tmp_path: Path, body: str, state: str | None = None) -> LoadedConfig:
    path = tmp_path / "newswatch.yaml"
    state = state or f"sqlite:///{tmp_path}/state.db"
    path.write_text(f"state: {state}\n" + textwrap.dedent(body).lstrip(), encoding="utf-8")
    return load_config(path, env={})


def hook_config(feeds: FeedServer, paths: list[tuple[str, str]], *, updates: bool = False) -> str:
    lines = "\n".join(
        f'  - {{url: "{feeds.url(p)}", name: "{name}", backfill: all}}' for p, name in paths
    )
    more = ", updates: true" if updates else ""
    return (
        f"feeds:\n{lines}\n"
        f'channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}\n'
        f"rules: [{{name: {RULE}, query: {QUERY}, notify: {HOOK_NOW}{more}}}]\n"
    )


def items(feeds: FeedServer) -> list[dict[str, Any]]:
    return [item for body in feeds.json_bodies("/hook") for item in body["items"]]


async def poll_and_deliver(loaded: LoadedConfig) -> None:
    async with App.open(loaded) as app:
        await app.poller.poll_all()
        await app.deliverer.drain()


# --------------------------------------------------------------------------- one story


async def test_the_seed_republished_by_three_outlets_alerts_once_naming_all_three(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/kh.xml", body=rss(SEED_ITEM))
    feeds.route("/kt.xml", body=rss(TIMES_ITEM))
    feeds.route("/asia.xml", body=rss(ASIA_ITEM))
    feeds.route("/hook", status=200)
    names = [("/kh.xml", "Korea Herald"), ("/kt.xml", "Korea Times"), ("/asia.xml", "Asia Daily")]
    loaded = write_config(tmp_path, hook_config(feeds, names))
    async with App.open(loaded) as app:
        outcomes = await app.poller.poll_all()
        assert sum(o.new_articles for o in outcomes) == 3
        assert sum(o.new_alerts for o in outcomes) == 1
        await app.deliverer.drain()
    [item] = items(feeds)
    outlets = [item["source"], *(o["source"] for o in item["also"])]
    assert sorted(outlets) == ["Asia Daily", "Korea Herald", "Korea Times"]
    links = {o["source"]: o["link"] for o in item["also"]}
    by_name = {"Korea Herald": SEED_ITEM, "Korea Times": TIMES_ITEM, "Asia Daily": ASIA_ITEM}
    for source, link in links.items():
        assert link == by_name[source].link
    # A fourth copy later: still nothing new.
    feeds.route("/kt.xml", body=rss(TIMES_ITEM, Item(**{**TIMES_ITEM.__dict__, "guid": "kt-2"})))
    await poll_and_deliver(loaded)
    assert len(items(feeds)) == 1


async def test_also_reported_by_in_the_email(
    tmp_path: Path, feeds: FeedServer, smtp: SmtpServer
) -> None:
    feeds.route("/kh.xml", body=rss(SEED_ITEM))
    feeds.route("/kt.xml", body=rss(TIMES_ITEM))
    smtp_cfg = f"{{host: {smtp.host}, port: {smtp.port}, starttls: false, timeout: 5s}}"
    loaded = write_config(
        tmp_path,
        f"""
        feeds:
          - {{url: "{feeds.url("/kh.xml")}", name: Korea Herald, backfill: all}}
          - {{url: "{feeds.url("/kt.xml")}", name: Korea Times, backfill: all}}
        channels: {{mail: {{type: email, to: [desk@example.org], smtp: {smtp_cfg}}}}}
        rules: [{{name: {RULE}, query: {QUERY}, notify: [{{channel: mail, group_wait: 0s}}]}}]
        """,
    )
    await poll_and_deliver(loaded)
    [message] = smtp.messages
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Also reported by: " in text
    assert ("Korea Times <" + TIMES_ITEM.link + ">") in text or (
        "Korea Herald <" + SEED_LINK + ">"
    ) in text


async def test_two_stories_about_the_same_meeting_are_two_items(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/kh.xml", body=rss(SEED_ITEM, OTHER_MEETING_ITEM))
    feeds.route("/hook", status=200)
    await poll_and_deliver(write_config(tmp_path, hook_config(feeds, [("/kh.xml", "KH")])))
    assert sorted(i["title"] for i in items(feeds)) == sorted(
        [SEED_TITLE, OTHER_MEETING_ITEM.title]
    )


# --------------------------------------------------------------------------- identity


async def test_every_guid_rewritten_from_http_to_https_alerts_nobody(
    tmp_path: Path, feeds: FeedServer
) -> None:
    def https(it: Item) -> Item:
        return Item(
            title=it.title,
            link=it.link.replace("http://", "https://"),
            guid=(it.guid or "").replace("http://", "https://"),
            body=it.body,
        )

    feeds.route("/kh.xml", body=rss(SEED_ITEM, OTHER_MEETING_ITEM))
    feeds.route("/hook", status=200)
    loaded = write_config(tmp_path, hook_config(feeds, [("/kh.xml", "KH")]))
    await poll_and_deliver(loaded)
    assert len(items(feeds)) == 2
    feeds.route("/kh.xml", body=rss(https(SEED_ITEM), https(OTHER_MEETING_ITEM)))
    async with App.open(loaded) as app:
        [outcome] = await app.poller.poll_all()
        assert (outcome.new_articles, outcome.new_alerts) == (2, 0)
        await app.deliverer.drain()
    assert len(items(feeds)) == 2


async def test_an_edited_entry_alerts_nobody_unless_a_rule_newly_matches(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/kh.xml", body=rss(SEED_ITEM))
    feeds.route("/hook", status=200)
    rules = (
        f"rules:\n  - {{name: {RULE}, query: {QUERY}, notify: {HOOK_NOW}}}\n"
        f"  - {{name: pipeline, query: 'Lavrov AND pipeline', notify: {HOOK_NOW}}}\n"
    )
    config = hook_config(feeds, [("/kh.xml", "KH")]).split("rules:")[0] + rules
    loaded = write_config(tmp_path, config)
    await poll_and_deliver(loaded)
    assert [i["rules"] for i in items(feeds)] == [[RULE]]
    # A corrected sentence: an edit, matched by the same rule only.
    fixed = Item(**{**SEED_ITEM.__dict__, "body": SEED_ITEM.body.replace("Tuesday", "Tuesday,")})
    feeds.route("/kh.xml", body=rss(fixed))
    await poll_and_deliver(loaded)
    assert len(items(feeds)) == 1
    # An edit that makes another rule match alerts that rule, once.
    grown = Item(**{**fixed.__dict__, "body": fixed.body + "<p>A gas pipeline was discussed.</p>"})
    feeds.route("/kh.xml", body=rss(grown))
    await poll_and_deliver(loaded)
    await poll_and_deliver(loaded)
    assert [i["rules"] for i in items(feeds)] == [[RULE], ["pipeline"]]


# --------------------------------------------------------------------------- state


async def test_a_restart_in_the_middle_keeps_the_clusters(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.route("/kh.xml", body=rss(SEED_ITEM))
    feeds.route("/kt.xml", status=404)
    feeds.route("/hook", status=200)
    loaded = write_config(tmp_path, hook_config(feeds, [("/kh.xml", "KH"), ("/kt.xml", "KT")]))
    await poll_and_deliver(loaded)  # the first copy alerts; the second feed is down
    feeds.route("/kt.xml", body=rss(TIMES_ITEM))
    await poll_and_deliver(loaded)  # a new process: the cluster is in the store
    [item] = items(feeds)
    assert item["title"] == SEED_TITLE


async def test_updates_are_threaded_under_the_first_email(
    tmp_path: Path, feeds: FeedServer, smtp: SmtpServer
) -> None:
    first = Item(
        title=SEED_TITLE,
        link=SEED_LINK,
        guid=SEED_LINK,
        body=html(PARAS[:8]),
        published=SEED_ITEM.published,
    )
    added = [
        "Later on Thursday the foreign ministry released the transcript of the luncheon, in "
        "which the official also described a planned visit by Russian trade officials to Seoul "
        "in the autumn and talks on a gas pipeline across the peninsula.",
        "Opposition lawmakers in Seoul questioned why the minister had not pressed Moscow "
        "harder on shipments of coal from North Korean ports, which they said breached the "
        "sanctions Russia had voted for at the Security Council in March.",
    ]
    longer = Item(
        title="UPDATE: " + SEED_TITLE,
        link="https://www.koreatimes.co.kr/www/nation/2016/06/116_207001.html",
        guid="kt-207001",
        body=html([*PARAS, *added]),
    )
    feeds.route("/kh.xml", body=rss(first))
    feeds.route("/kt.xml", status=404)
    smtp_cfg = f"{{host: {smtp.host}, port: {smtp.port}, starttls: false, timeout: 5s}}"
    loaded = write_config(
        tmp_path,
        f"""
        feeds:
          - {{url: "{feeds.url("/kh.xml")}", name: Korea Herald, backfill: all}}
          - {{url: "{feeds.url("/kt.xml")}", name: Korea Times, backfill: all}}
        channels: {{mail: {{type: email, to: [desk@example.org], smtp: {smtp_cfg}}}}}
        rules:
          - name: {RULE}
            query: {QUERY}
            updates: true
            notify: [{{channel: mail, group_wait: 0s}}]
        """,
    )
    await poll_and_deliver(loaded)
    feeds.route("/kt.xml", body=rss(longer))
    await poll_and_deliver(loaded)
    alert, update_mail = smtp.messages
    assert "In-Reply-To" not in alert
    assert update_mail["In-Reply-To"] == alert["Message-ID"]
    assert update_mail["References"] == alert["Message-ID"]
    assert "Update: " in str(update_mail["Subject"])


async def test_two_replicas_polling_two_outlets_alert_once(
    tmp_path: Path, feeds: FeedServer, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two daemons on one database (SQLite file or PostgreSQL), each free to
    poll either outlet's feed at the same moment: one story, one alert."""
    monkeypatch.setenv("NEWSWATCH_STATE", store_url)
    feeds.route("/kh.xml", body=rss(SEED_ITEM))
    feeds.route("/kt.xml", body=rss(TIMES_ITEM))
    feeds.route("/hook", Reply(status=200, delay=0.05))
    loaded = write_config(tmp_path, hook_config(feeds, [("/kh.xml", "KH"), ("/kt.xml", "KT")]))
    async with App.open(loaded) as a, App.open(loaded) as b:
        daemons = [
            Daemon(app, poll_tick=FAST, deliver_tick=FAST, reload_tick=FAST) for app in (a, b)
        ]
        tasks = [asyncio.create_task(d.run()) for d in daemons]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not (feeds.hits("/kh.xml") and feeds.hits("/kt.xml") and items(feeds)):
            assert loop.time() < deadline, "no alert in time"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time for a duplicate to show up
        for d in daemons:
            d.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(items(feeds)) == 1
