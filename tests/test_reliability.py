"""The reliability matrix: hostile input and faults, through real processes.

Each test is one case of docs/reliability.md: what newswatch promises and how
that is checked, with a real loopback HTTP server (tests/feedserver.py), real
``newswatch`` processes, real SQLite files and a real second process holding
the database lock. Each case records its figure (peak RSS, alerts, time),
and the table is printed after the module (``-rA`` or any verbose run shows
it; ``make test`` prints it too).

Cases marked ``slow`` wait for something real (a lock held past SQLite's
busy timeout, a kill -9 in the middle of a 1,000-alert burst); they stay in
``make test``. Cases whose fix is on another branch are ``xfail(strict=True)``
with the branch named, so they turn red (XPASS) the day the fix lands and
the matrix must be updated: nothing is skipped silently.
"""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply
from reliability_helpers import Matrix, cli, dump_state, raw_state
from samples import Item, rss

MATRIX = Matrix()


@pytest.fixture(scope="module", autouse=True)
def _print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        for line in MATRIX.lines():
            reporter.write_line(line)


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


MATCHING = "Russia and North Korea sign a pact; THAAD is discussed."
RULE = "{name: pact, query: 'Russia AND \"North Korea\"', notify: [console, {channel: hook, group_wait: 0s}]}"


def items(n: int, *, prefix: str = "story", scheme: str = "http", body: str = MATCHING) -> list[Item]:
    return [
        Item(
            title=f"{prefix} {i}",
            link=f"{scheme}://news.example.org/{prefix}/{i}",
            guid=f"{scheme}://news.example.org/{prefix}/{i}",
            body=body,
        )
        for i in range(n)
    ]


# --------------------------------------------------------------------------- 5. credentials

PW = "pw-Secret-4242"
TOKEN = "tok-Secret-9191"


def test_5_credentials_in_feed_urls_never_leave_the_config(tmp_path: Path, server: FeedServer) -> None:
    """5. A feed URL with credentials and a token, and no feed name: the
    secrets reach no output of any command, no log line, no alert and no
    table of the state database."""
    prefix = "/creds"
    feed = rss(
        Item(title="Pact signed", link="#top", guid="creds-1", body=MATCHING),
        Item(title="Second pact", link="https://news.example.org/pact/2", body=MATCHING),
    )
    server.route(f"{prefix}/feed.xml", body=feed)
    server.route(f"{prefix}/broken.xml", body=b"<rss><channel><item><title>x</ti")
    server.route(
        f"{prefix}/moved.xml",
        status=301,
        headers={"Location": server.url(f"{prefix}/feed2.xml?token={TOKEN}")},
    )
    server.route(f"{prefix}/feed2.xml", body=rss(*items(1, prefix="moved")))
    server.route(f"{prefix}/hook", status=204)
    creds = "nw:${NW_PW}"
    query = "token=${NW_TOKEN}&format=rss"
    base = f"http://{creds}@127.0.0.1:{server.port}{prefix}"
    config = write(
        tmp_path / "newswatch.yaml",
        f"""
        state: sqlite:///{tmp_path}/state/state.db
        poll: {{timeout: 3s}}
        feeds:
          - {{url: "{base}/feed.xml?{query}", backfill: all}}
          - {{url: "{base}/broken.xml?{query}"}}
          - {{url: "{base}/moved.xml?{query}"}}
          - {{url: "https://{creds}@127.0.0.1:9/feed?{query}"}}
        channels:
          console: {{type: console}}
          hook: {{type: webhook, url: "{server.url(prefix + "/hook")}"}}
        rules:
          - {RULE}
          - {{name: scoped, all: [pact], feeds: ["{base}/gone.xml?{query}"]}}
        """,
    )
    env = {"NW_PW": PW, "NW_TOKEN": TOKEN}
    c = ("-c", str(config))
    secret_url = f"http://nw:{PW}@127.0.0.1:{server.port}{prefix}/feed.xml?token={TOKEN}"
    runs = {
        "check": cli("check", *c, env=env),
        "check --json": cli("check", "--json", *c, env=env),
        "feeds (before any poll)": cli("feeds", *c, env=env),
        "poll --once --dry-run": cli("poll", "--once", "--dry-run", "--log-level", "debug", *c, env=env),
        "poll --once": cli("poll", "--once", "--log-level", "debug", *c, env=env),
        "feeds": cli("feeds", *c, env=env),
        "outbox": cli("outbox", *c, env=env),
        "channels": cli("channels", *c, env=env),
        "test --url": cli("test", "--url", secret_url, *c, env=env),
        "test --url (failing)": cli(
            "test", "--url", f"https://nw:{PW}@127.0.0.1:9/x?token={TOKEN}", *c, env=env
        ),
        "migrate": cli("migrate", *c, env=env),
    }
    assert runs["poll --once"].code == 0, runs["poll --once"].text
    assert "2 alerts queued" in runs["poll --once"].out or "alerts queued" in runs["poll --once"].out
    assert runs["test --url"].code == 0, runs["test --url"].text
    assert runs["test --url (failing)"].code == 2
    secrets = [PW, TOKEN, base64.b64encode(f"nw:{PW}".encode()).decode()]
    for name, run in runs.items():
        assert "Traceback" not in run.text, f"{name}: {run.text}"
        for secret in secrets:
            assert secret not in run.text, f"{name} printed a secret:\n{run.text}"
    # What people see instead: the masked URL (no credentials, query values masked).
    shown = f"http://127.0.0.1:{server.port}{prefix}/feed.xml?token=****&format=****"
    assert shown in runs["check"].out and shown in runs["feeds"].out
    hooks = [r.body.decode() for r in server.requests_to(f"{prefix}/hook")]
    assert hooks, "the alerts reached the webhook"
    db = tmp_path / "state" / "state.db"
    dump = dump_state(db)
    raw = raw_state(db)
    for secret in secrets:
        assert not any(secret in body for body in hooks), "an alert carried a secret"
        assert secret not in dump, f"the state database holds a secret:\n{dump}"
        assert secret.encode() not in raw
    assert json.loads(hooks[0])["items"][0]["source"].startswith("http://127.0.0.1:")
    MATRIX.record(
        "5. credentials in feed URLs",
        "masked label everywhere; URL only in the config",
        f"0 of 3 secret forms in {len(runs)} commands' output, {len(hooks)} alerts, "
        f"{dump.count(chr(10))} state rows",
    )
