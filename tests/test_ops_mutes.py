"""Silences end to end: `newswatch mute`, the daemon holding what arrives,
`newswatch unmute`, one summary; and the CLI's checks and listings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver import FeedServer
from newswatch.cli import main
from newswatch.store import OutboxStatus
from ops_helpers import running, wait_until, write
from samples import Item, rss


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _config(tmp_path: Path, feeds: FeedServer) -> Path:
    feeds.route("/hook", status=204)
    write(
        tmp_path,
        f"""
        timezone: Asia/Seoul
        feeds: [{{url: "{feeds.url("/f.xml")}", every: 0.2s}}]
        channels:
          hook: {{type: webhook, url: "{feeds.url("/hook")}"}}
          other: {{type: console}}
        rules:
          - {{name: seoul, query: Seoul, notify: [{{channel: hook, group_wait: 0s}}]}}
          - {{name: hook-rule, query: Busan, notify: [{{channel: other, group_wait: 0s}}]}}
        """,
        env={},
    )
    return tmp_path / "newswatch.yaml"


def _items(n: int) -> bytes:
    return rss(
        *(Item(title=f"Seoul story {i}", link=f"http://e.org/{i}", guid=str(i)) for i in range(n))
    )


async def test_mute_holds_what_arrives_and_unmute_sends_one_summary(
    tmp_path: Path, feeds: FeedServer
) -> None:
    config = _config(tmp_path, feeds)
    feeds.route("/f.xml", body=_items(1))  # the first poll is silent: this is the baseline
    code, out = cli("mute", "-c", str(config), "hook", "--for", "4h", "--comment", "desk away")
    assert code == 0, out
    assert "mute #1: channel 'hook' muted for 4.0h" in out and "KST" in out

    from newswatch.config import load_config

    async with running(load_config(config, env={})) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        feeds.route("/f.xml", body=_items(4))  # three new matches while muted
        store = run.app.store
        await wait_until(lambda: len(store.outbox(OutboxStatus.PENDING)) == 3)
        await wait_until(
            lambda: all(r.hold_reason == "mute" for r in store.outbox(OutboxStatus.PENDING))
        )
        assert feeds.hits("/hook") == 0

        code, out = cli("mutes", "-c", str(config), "--json")
        [listed] = json.loads(out)
        assert (listed["id"], listed["kind"], listed["name"]) == (1, "channel", "hook")
        assert listed["comment"] == "desk away" and listed["active"] is True
        assert "hook" in (await run.get("/")).text if run.daemon.listener else True

        code, out = cli("unmute", "-c", str(config), "1")
        assert code == 0, out
        await wait_until(lambda: feeds.hits("/hook") >= 1)
        await wait_until(lambda: not store.outbox(OutboxStatus.PENDING))
        [body] = feeds.json_bodies("/hook")
        assert body["kind"] == "summary"
        assert sorted(i["title"] for i in body["items"]) == [
            "Seoul story 1",
            "Seoul story 2",
            "Seoul story 3",
        ]
        # Nothing more goes out later: one summary, each item once.
        await wait_until(lambda: feeds.hits("/f.xml") >= 6)
        assert feeds.hits("/hook") == 1


async def test_mute_drop_discards_and_a_muted_rule_leaves_others_alone(
    tmp_path: Path, feeds: FeedServer
) -> None:
    config = _config(tmp_path, feeds)
    feeds.route("/f.xml", body=_items(1))
    assert cli("mute", "-c", str(config), "rule:seoul", "--for", "1h", "--drop")[0] == 0
    from newswatch.config import load_config

    async with running(load_config(config, env={})) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        feeds.route("/f.xml", body=_items(3))
        store = run.app.store
        await wait_until(lambda: len(store.outbox(OutboxStatus.DROPPED)) == 2)
        assert feeds.hits("/hook") == 0
    _, out = cli("mutes", "-c", str(config))
    assert "rule seoul" in out and "dropped" in out and "1 mute(s) in force" in out


def test_mute_names_what_it_does_not_know_and_asks_when_ambiguous(
    tmp_path: Path, feeds: FeedServer
) -> None:
    config = _config(tmp_path, feeds)
    code, out = cli("mute", "-c", str(config), "nope", "--for", "1h")
    assert code == 2 and "no rule or channel 'nope'" in out and "seoul" in out
    code, out = cli("mute", "-c", str(config), "channel:seoul", "--for", "1h")
    assert code == 2 and "no channel 'seoul'" in out
    code, out = cli("mute", "-c", str(config), "hook", "--for", "10")
    assert code == 2 and "no unit" in out
    code, out = cli("unmute", "-c", str(config), "42")
    assert code == 1 and "no mute #42 in force" in out
    # A name that is both a rule and a channel must be qualified.
    write(
        tmp_path,
        """
        channels: {both: {type: console}}
        rules: [{name: both, query: x, notify: [both]}]
        """,
        env={},
    )
    code, out = cli("mute", "-c", str(config), "both", "--for", "1h")
    assert code == 2 and "say rule:both or channel:both" in out
    assert cli("mute", "-c", str(config), "rule:both", "--for", "1h")[0] == 0
    code, out = cli("mutes", "-c", str(config), "--json")
    assert [m["kind"] for m in json.loads(out)] == ["rule"]
    code, out = cli("unmute", "-c", str(config), "1")
    assert code == 0
    code, out = cli("mutes", "-c", str(config), "--all", "--json")
    assert json.loads(out)[0]["active"] is False
