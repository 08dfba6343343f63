"""SIGTERM to a real `newswatch run` process in the middle of a burst of sends
to a slow receiver, then a restart: the send in flight finishes within the
grace period, the rest is released, the process exits 0, and after the
restart every notification has arrived exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply
from newswatch.store import NotificationStatus, open_store
from samples import Item, rss

STORIES = 6
# The receiver takes this long to answer each request.
SLOW_S = 0.5


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-m", "newswatch", "run", "-c", str(config), "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def wait_for(predicate: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def test_sigterm_during_a_burst_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, feeds: FeedServer
) -> None:
    items = [
        Item(title=f"Seoul {i}", link=f"http://e.org/{i}", guid=str(i)) for i in range(STORIES)
    ]
    feeds.route("/f.xml", body=rss(*items))
    feeds.route("/hook", Reply(status=204, delay=SLOW_S))
    config = tmp_path / "newswatch.yaml"
    state = f"sqlite:///{tmp_path}/state.db"
    config.write_text(
        f"state: {state}\n"
        "shutdown_grace: 5s\n"
        # One item per notification: a burst of STORIES sends in one lane.
        "digest_defaults: {max_items: 1}\n"
        f'feeds: [{{url: "{feeds.url("/f.xml")}", every: 1h, backfill: all}}]\n'
        f'channels: {{hook: {{type: webhook, url: "{feeds.url("/hook")}", timeout: 10s}}}}\n'
        "rules: [{name: r, query: Seoul, notify: [{channel: hook, group_wait: 0s}]}]\n"
    )
    log = tmp_path / "daemon.log"
    proc = start(config, log)
    try:
        # The first send of the burst is in flight (the lane sends it alone).
        wait_for(lambda: feeds.hits("/hook") >= 1, within=20)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, log.read_text()
    text = log.read_text()
    assert '"stopping: no new polls or sends; sends in flight get 5s to finish"' in text
    # --log-format json: one object per line, with an ISO time and its zone.
    lines = [json.loads(line) for line in text.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", lines[0]["time"])
    assert feeds.hits("/hook") < STORIES  # the rest waited for the restart
    sent_before = feeds.hits("/hook")

    proc = start(config, log)
    try:
        wait_for(lambda: feeds.hits("/hook") >= STORIES, within=30)
        time.sleep(4 * SLOW_S)  # anything sent twice would arrive by now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    keys = [r.headers["idempotency-key"] for r in feeds.requests_to("/hook")]
    titles = [t["title"] for body in feeds.json_bodies("/hook") for t in body["items"]]
    assert len(keys) == STORIES, (sent_before, keys)
    assert len(set(keys)) == STORIES
    assert sorted(titles) == sorted(i.title for i in items)
    with open_store(state) as store:
        rows = store.notifications(None, 50)
    assert [n.status for n in rows] == [NotificationStatus.SENT] * STORIES
