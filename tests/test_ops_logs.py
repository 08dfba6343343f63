"""Log lines: ISO times with their zone, JSON lines, secrets masked, and one
summary line per poll cycle (per-feed detail at DEBUG)."""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from newswatch.config import load_config
from newswatch.logs import (
    JsonFormatter,
    SecretMask,
    TextFormatter,
    config_secrets,
    cycle_line,
    setup_logging,
)
from ops_helpers import running, wait_until

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom with hunter2secret")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("newswatch.x", logging.WARNING, __file__, 1, message, args, exc_info)


def test_text_lines_carry_an_iso_time_with_its_zone() -> None:
    line = TextFormatter().format(record("feed %s failed", "A"))
    assert re.match(rf"^{ISO} WARNING newswatch.x: feed A failed$", line), line


def test_json_lines_are_one_object_each() -> None:
    line = JsonFormatter().format(record("feed %s\nfailed", "A", exc=True))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "newswatch.x"
    assert doc["message"] == "feed A\nfailed"
    assert re.match(ISO, doc["time"]) and "ValueError" in doc["exc"]


def test_secret_mask_covers_messages_arguments_and_tracebacks() -> None:
    mask = SecretMask()
    mask.set(["hunter2secret", "abc", "https://u:hunter2secret@x.org/f?t=1"])
    r = record("fetching %s failed: %s", "https://u:hunter2secret@x.org/f?t=1", "abc", exc=True)
    assert mask.filter(r)
    out = TextFormatter().format(r)
    assert "hunter2secret" not in out
    assert "fetching *** failed: abc" in out  # 3 characters are too short to mask


def test_setup_logging_writes_json_through_the_mask() -> None:
    stream = io.StringIO()
    setup_logging("info", "json", stream)
    from newswatch.logs import secret_mask

    secret_mask.set(["tok-123456"])
    try:
        logging.getLogger("newswatch.test").info("token tok-123456 used")
        logging.getLogger("httpx").info("noise")
    finally:
        secret_mask.set([])
        logging.getLogger().handlers.clear()
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "token *** used"


def test_config_secrets_finds_secret_values_and_feed_credentials() -> None:
    @dataclass
    class Feed:
        url: str | None

    class Config:
        feeds = (
            Feed("https://reader:pw-1234@example.org/rss?token=abcdefgh12&page=2"),
            Feed("https://example.org/plain.xml"),
            Feed(None),
        )

    from pydantic import BaseModel

    class Smtp(BaseModel):
        password: SecretStr
        hosts: dict[str, SecretStr]

    found = config_secrets(Smtp(password=SecretStr("s3cret!"), hosts={"a": SecretStr("t0ken")}))
    assert found == {"s3cret!", "t0ken"}
    found = config_secrets(Config())  # type: ignore[arg-type]
    assert found == {
        "pw-1234",
        "abcdefgh12",
        "https://reader:pw-1234@example.org/rss?token=abcdefgh12&page=2",
    }


@dataclass(frozen=True)
class Out:
    name: str
    status: str = "updated"
    new_articles: int = 0
    new_alerts: int = 0
    failures: int = 0
    recovered: bool = False
    silent_first_poll: bool = False


@pytest.mark.parametrize(
    ("outcomes", "level", "says"),
    [
        ([Out("a", "not_modified"), Out("b")], logging.DEBUG, "2 feeds in 1.5s (2 ok)"),
        ([Out("a", new_articles=3, new_alerts=1)], logging.INFO, "3 new articles, 1 alerts"),
        ([Out("a", "failed", failures=1)], logging.WARNING, "1 started failing: a"),
        ([Out("a", "failed", failures=4)], logging.DEBUG, "1 still failing"),
        ([Out("a", recovered=True)], logging.INFO, "1 recovered: a"),
        ([Out("a", silent_first_poll=True)], logging.INFO, "1 first polls recorded"),
        (
            [Out(f"f{i}", "failed", failures=1) for i in range(5)],
            logging.WARNING,
            "5 started failing: f0, f1, f2 and 2 more",
        ),
    ],
)
def test_cycle_line(outcomes: list[Out], level: int, says: str) -> None:
    got_level, line = cycle_line(outcomes, 1.5)
    assert got_level == level
    assert says in line


async def test_a_first_poll_of_200_feeds_writes_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>A</title><link>http://e.org/a</link><guid>a</guid></item>"
        "<item><title>B</title><link>http://e.org/b</link><guid>b</guid></item>"
        "</channel></rss>"
    )
    for i in range(200):
        (folder / f"f{i:03d}.xml").write_text(rss.replace("<title>t<", f"<title>t{i}<"))
    feeds = "\n".join(f"  - {{path: feeds/f{i:03d}.xml, every: 1h}}" for i in range(200))
    config = tmp_path / "newswatch.yaml"
    config.write_text(
        f"state: sqlite:///{tmp_path}/state.db\npoll: {{concurrency: 64}}\nfeeds:\n{feeds}\n"
        "channels: {console: {type: console}}\n"
        "rules: [{name: r, query: A, notify: [console]}]\n"
    )
    caplog.set_level(logging.INFO, logger="newswatch")
    async with running(load_config(config)) as run:
        await wait_until(lambda: run.app.store.summary(run.app.clock()).never_polled == 0, 30)
        await wait_until(lambda: any("poll: 200 feeds" in r.getMessage() for r in caplog.records))
    mine = [r for r in caplog.records if r.name.startswith("newswatch")]
    per_feed = [r for r in mine if r.name == "newswatch.poll"]
    cycles = [r for r in mine if r.getMessage().startswith("poll:")]
    assert per_feed == []
    assert len(cycles) == 1
    assert "200 first polls recorded without alerting" in cycles[0].getMessage()
    assert len(mine) < 10, [r.getMessage() for r in mine]
