"""Live configuration end to end: reloads by file change (watchfiles) and by
SIGHUP, good and bad edits, what each changes, and what must never happen
(a bad edit stopping the daemon, zero rules after an editor's rename, a
stuck load keeping SIGTERM waiting)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from feedserver import FeedServer
from newswatch.config import LoadedConfig, load_config
from ops_helpers import Running, running, wait_until
from samples import Item, rss
from smtpserver import SmtpServer

SEOUL = "- {name: seoul, query: Seoul, notify: [{channel: hook, group_wait: 0s}]}\n"
BUSAN = "- {name: busan, query: Busan, notify: [{channel: hook, group_wait: 0s}]}\n"
TEMPLATE = "{{ item.title }} ({{ item.published }})\n"


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def items(*titles: str) -> bytes:
    return rss(*(Item(title=t, link=f"http://e.org/{i}", guid=t) for i, t in enumerate(titles)))


def hook_titles(feeds: FeedServer) -> list[str]:
    return [i["title"] for body in feeds.json_bodies("/hook") for i in body["items"]]


def main_config(tmp_path: Path, feeds: FeedServer, *, extra: str = "") -> str:
    return (
        f"state: sqlite:///{tmp_path}/state.db\n"
        f'feeds: [{{url: "{feeds.url("/f.xml")}", every: 0.2s}}]\n'
        f'channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}"}}}}\n'
        "templates: tpl\n"
        "rules: rules.yaml\n" + extra
    )


def setup(tmp_path: Path, feeds: FeedServer) -> tuple[Path, Path, LoadedConfig]:
    feeds.route("/hook", status=204)
    feeds.route("/f.xml", body=items("old news"))
    (tmp_path / "tpl" / "text").mkdir(parents=True)
    (tmp_path / "tpl" / "text" / "item.j2").write_text(TEMPLATE)
    config = tmp_path / "newswatch.yaml"
    config.write_text(main_config(tmp_path, feeds))
    rules = tmp_path / "rules.yaml"
    rules.write_text(SEOUL)
    return config, rules, load_config(config)


# --------------------------------------------------------------------------- good edits


async def test_a_valid_edit_takes_effect_and_nothing_is_sent_twice(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    _config, rules, loaded = setup(tmp_path, feeds)
    async with running(loaded) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)  # silent first poll
        feeds.route("/f.xml", body=items("old news", "Seoul one", "Busan one"))
        await wait_until(lambda: hook_titles(feeds) == ["Seoul one"])
        caplog.set_level("INFO", logger="newswatch")
        rules.write_text(SEOUL + BUSAN)
        await wait_until(lambda: "configuration reloaded" in caplog.text)
        assert "busan" in run.app.poller.rules.index.rule_names
        assert "rules +busan" in caplog.text
        feeds.route("/f.xml", body=items("old news", "Seoul one", "Busan one", "Busan two"))
        await wait_until(lambda: "Busan two" in hook_titles(feeds))
        polls = feeds.hits("/f.xml")
        await wait_until(lambda: feeds.hits("/f.xml") >= polls + 3)
    # Busan one was seen before the rule existed: not alerted; nothing twice.
    assert hook_titles(feeds) == ["Seoul one", "Busan two"]


async def test_a_timezone_edit_reaches_every_channel(tmp_path: Path, feeds: FeedServer) -> None:
    smtp = SmtpServer().start()
    try:
        feeds.route("/f.xml", body=items("old"))
        config = tmp_path / "newswatch.yaml"
        mail = f"{{host: {smtp.host}, port: {smtp.port}, starttls: false, timeout: 5s}}"
        body = (
            f"state: sqlite:///{tmp_path}/state.db\n"
            "timezone: UTC\n"
            f'feeds: [{{url: "{feeds.url("/f.xml")}", every: 0.2s}}]\n'
            "channels:\n"
            "  console: {type: console}\n"
            f"  mail: {{type: email, to: [d@example.org], smtp: {mail}}}\n"
            "rules: [{name: r, query: Seoul, notify: [{channel: console, group_wait: 0s},"
            " {channel: mail, group_wait: 0s}]}]\n"
        )
        config.write_text(body)
        async with running(load_config(config)) as run:
            await wait_until(lambda: feeds.hits("/f.xml") >= 1)
            feeds.route("/f.xml", body=items("old", "Seoul utc"))
            await wait_until(lambda: len(smtp.messages) == 1)
            config.write_text(body.replace("timezone: UTC", "timezone: Asia/Seoul"))
            await wait_until(lambda: run.app.config.timezone == "Asia/Seoul")
            feeds.route("/f.xml", body=items("old", "Seoul utc", "Seoul kst"))
            await wait_until(lambda: len(smtp.messages) == 2)
            await wait_until(lambda: "Seoul kst" in run.out.getvalue())
        # The item was published 2016-06-16 00:12 UTC (samples.Item).
        first, second = (m.get_body(("plain",)).get_content() for m in smtp.messages)  # type: ignore[union-attr]
        assert "2016-06-16 00:12 UTC" in first
        assert "2016-06-16 09:12 KST" in second and "UTC" not in second
        console = run.out.getvalue()
        assert "00:12 UTC" in console.split("Seoul kst")[0]
        assert "09:12 KST" in console.split("Seoul kst")[1]
    finally:
        smtp.stop()


async def test_a_feed_added_by_a_reload_is_polled(tmp_path: Path, feeds: FeedServer) -> None:
    config, _rules, loaded = setup(tmp_path, feeds)
    feeds.route("/new.xml", body=items("first"))
    async with running(loaded) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        text = config.read_text().replace(
            "every: 0.2s}]", f'every: 0.2s}}, {{url: "{feeds.url("/new.xml")}", every: 0.2s}}]'
        )
        config.write_text(text)
        await wait_until(lambda: feeds.hits("/new.xml") >= 2)
        feeds.route("/new.xml", body=items("first", "Seoul from the new feed"))
        await wait_until(lambda: hook_titles(feeds) == ["Seoul from the new feed"])
        assert len(run.app.config.feeds) == 2


async def test_a_rule_disabled_by_a_reload_stops_alerting(
    tmp_path: Path, feeds: FeedServer
) -> None:
    _config, rules, loaded = setup(tmp_path, feeds)
    async with running(loaded) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        rules.write_text(SEOUL.replace("group_wait: 0s}]", "group_wait: 0s}], enabled: false"))
        await wait_until(lambda: run.app.poller.rules.index.rule_names == ())
        feeds.route("/f.xml", body=items("old news", "Seoul while disabled"))
        polls = feeds.hits("/f.xml")
        await wait_until(lambda: feeds.hits("/f.xml") >= polls + 3)
        assert feeds.hits("/hook") == 0
        rules.write_text(SEOUL)
        await wait_until(lambda: run.app.poller.rules.index.rule_names == ("seoul",))
        feeds.route("/f.xml", body=items("old news", "Seoul while disabled", "Seoul again"))
        await wait_until(lambda: hook_titles(feeds) == ["Seoul again"])


async def test_a_restart_only_setting_warns_and_keeps_its_value(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    config, _rules, loaded = setup(tmp_path, feeds)
    async with running(loaded) as run:
        caplog.set_level("INFO", logger="newswatch")
        config.write_text(main_config(tmp_path, feeds, extra="poll: {concurrency: 3}\n"))
        await wait_until(lambda: "configuration reloaded" in caplog.text)
        assert run.app.config.poll.concurrency == 3
        assert "poll.concurrency changed; it takes effect after a restart" in caplog.text
        assert "settings poll" in caplog.text


# --------------------------------------------------------------------------- bad edits

# kind -> (which file, the bad text made from the good one, the line named
# in the problem: a function of the good text; None: the file only)
BAD_EDITS: dict[str, tuple[str, Callable[[str], str], Callable[[str], int] | None]] = {
    "yaml syntax": ("config", lambda good: good + "feeds: [\n", None),
    "unknown key": ("config", lambda good: good + "timezon: UTC\n", lambda good: _lines(good) + 1),
    "bad query": (
        "rules",
        lambda good: "- {name: seoul, query: 'Seoul AND (', notify: [hook]}\n",
        lambda good: 1,
    ),
    "unknown channel": (
        "rules",
        lambda good: "- {name: seoul, query: Seoul, notify: [nope]}\n",
        lambda good: 1,
    ),
    "unset variable": (
        "config",
        lambda good: good.replace('url: "http', 'url: "${NEWSWATCH_TEST_UNSET}http', 1),
        lambda good: 2,
    ),
    "broken template": ("template", lambda good: "{% if %}\n", lambda good: 1),
}


def _lines(text: str) -> int:
    return text.count("\n")


def _more_attempts(run: Running, before: int) -> bool:
    return run.daemon.reloader.attempts > before


@pytest.mark.parametrize("path", ["file-change", "sighup"])
async def test_each_bad_edit_keeps_the_old_config_and_says_where(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    config, rules, _ = setup(tmp_path, feeds)
    template = tmp_path / "tpl" / "text" / "item.j2"
    files = {"config": config, "rules": rules, "template": template}
    watch = path == "file-change"
    kw = {} if watch else {"watch": False, "reload_tick": timedelta(hours=1)}
    config.write_text(config.read_text() + "http: {listen: '127.0.0.1:0'}\n")
    async with running(load_config(config), **kw) as run:
        if not watch:
            assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)
        good_app = run.app.loaded
        for kind, (which, edit, line) in BAD_EDITS.items():
            target = files[which]
            good = target.read_text()
            before = run.daemon.reloader.attempts
            target.write_text(edit(good))
            if not watch:
                os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(partial(_more_attempts, run, before), within=5)
            problems = run.daemon.reloader.problems
            assert problems, kind
            assert run.app.loaded is good_app, kind  # the old configuration runs on
            where = f"{target}:{line(good)}" if line else str(target)
            assert where in caplog.text, kind
            assert where in str(problems[0]), kind
            metrics = (await run.get("/metrics")).text
            assert "newswatch_config_last_reload_successful 0.0" in metrics, kind
            page = (await run.get("/")).text
            assert "Configuration error" in page and where in page, kind
            # Put it back: the next reload succeeds and clears the error.
            before = run.daemon.reloader.attempts
            target.write_text(good)
            if not watch:
                os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(partial(_more_attempts, run, before), within=5)
            assert not run.daemon.reloader.problems, kind
            good_app = run.app.loaded
        assert "newswatch_config_last_reload_successful 1.0" in (await run.get("/metrics")).text
        # And the running rules still alert.
        feeds.route("/f.xml", body=items("old news", "Seoul still works"))
        await wait_until(lambda: hook_titles(feeds) == ["Seoul still works"])


async def test_emptying_the_rule_folder_keeps_the_last_rules(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feeds.route("/hook", status=204)
    feeds.route("/f.xml", body=items("old news"))
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "seoul.yaml").write_text(SEOUL)
    config = tmp_path / "newswatch.yaml"
    config.write_text(
        main_config(tmp_path, feeds).replace("templates: tpl\n", "").replace("rules.yaml", "rules/")
    )
    async with running(load_config(config)) as run:
        await wait_until(lambda: feeds.hits("/f.xml") >= 1)
        # An editor saving by rename: the file is gone for a moment.
        (folder / "seoul.yaml").rename(tmp_path / "seoul.yaml.swp")
        await wait_until(lambda: run.daemon.reloader.problems)
        assert "hold no rules now; keeping the 1 rules last loaded" in caplog.text
        assert run.app.poller.rules.index.rule_names == ("seoul",)
        (tmp_path / "seoul.yaml.swp").rename(folder / "seoul.yaml")
        await wait_until(lambda: not run.daemon.reloader.problems)
        feeds.route("/f.xml", body=items("old news", "Seoul after the save"))
        await wait_until(lambda: hook_titles(feeds) == ["Seoul after the save"])
    # Saying so explicitly is allowed: `rules: []`.
    config.write_text(
        main_config(tmp_path, feeds)
        .replace("templates: tpl\n", "")
        .replace("rules: rules.yaml", "rules: []")
    )
    assert load_config(config).config.rules == ()


async def test_a_stuck_load_is_given_up_and_never_holds_up_sigterm(
    tmp_path: Path, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import newswatch.watch as watch

    _config, _rules, loaded = setup(tmp_path, feeds)
    release = threading.Event()

    def stuck(*args: object, **kwargs: object) -> LoadedConfig:
        release.wait(30)  # a hung file system, a pathological file
        raise RuntimeError("never reached in time")

    monkeypatch.setattr(watch, "load_config", stuck)
    monkeypatch.setattr(watch, "LOAD_DEADLINE_S", 0.5)
    try:
        async with running(loaded, watch=False, reload_tick=timedelta(hours=1)) as run:
            run.daemon.reloader._deadline = 0.5
            run.daemon.reloader.request()
            await wait_until(lambda: run.daemon.reloader.problems)
            assert "took over 0.5s" in str(run.daemon.reloader.problems[0])
            run.daemon.reloader.request()  # another stuck load, in flight at shutdown
            await asyncio.sleep(0.1)
            started = time.monotonic()
        assert time.monotonic() - started < 3  # stop did not wait for the load thread
    finally:
        release.set()
        for thread in threading.enumerate():
            if thread.name == "newswatch-config-load":
                thread.join(5)
