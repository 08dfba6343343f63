"""The reliability matrix: hostile input and faults, through real processes.

Each test is one case of docs/reliability.md: what newswatch promises and how
that is checked, with a real loopback HTTP server (tests/feedserver.py), real
``newswatch`` processes, real SQLite files and a real second process holding
the database lock. Each case records its figure (peak RSS, alerts, time),
and the table is printed after the module (``-rA`` or any verbose run shows
it; ``make test`` prints it too).

Cases marked ``slow`` wait for something real (a lock held past SQLite's
busy timeout, a kill -9 in the middle of a 1,000-alert burst); they stay in
``make test``. Every case must pass: none is skipped or expected to fail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import random
import sqlite3
import stat
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedserver import FeedServer, Reply, compressed_zeros
from newswatch.config import LoadedConfig, load_config
from newswatch.daemon import App
from newswatch.notify import deliver
from newswatch.store.errors import EXIT_BUSY
from reliability_helpers import (
    Daemon,
    LockHolder,
    Matrix,
    Proc,
    Run,
    cli,
    dump_state,
    raw_state,
)
from samples import Item, rss
from smtpserver import SmtpServer

# Printed after the run by conftest.pytest_terminal_summary.
MATRIX = Matrix()


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def cli_all(
    commands: Mapping[str, tuple[str, ...]], *common: str, env: dict[str, str] | None = None
) -> dict[str, Run]:
    """Run independent commands two at a time (the machine has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(cli, *args, *common, env=env) for name, args in commands.items()
        }
        return {name: future.result() for name, future in futures.items()}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


MATCHING = "Russia and North Korea sign a pact; THAAD is discussed."
RULE = (
    "{name: pact, query: 'Russia AND \"North Korea\"', "
    "notify: [console, {channel: hook, group_wait: 0s}]}"
)


def items(
    n: int, *, prefix: str = "story", scheme: str = "http", body: str = MATCHING
) -> list[Item]:
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


def test_5_credentials_in_feed_urls_never_leave_the_config(
    tmp_path: Path, server: FeedServer
) -> None:
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
    before_poll = {
        "check": ("check",),
        "check --json": ("check", "--json"),
        "feeds (before any poll)": ("feeds",),
        "poll --once --dry-run": ("poll", "--once", "--dry-run", "--log-level", "debug"),
        "test --url": ("test", "--url", secret_url),
        "test --url (failing)": ("test", "--url", f"https://nw:{PW}@127.0.0.1:9/x?token={TOKEN}"),
    }
    after_poll = {
        "feeds": ("feeds",),
        "outbox": ("outbox",),
        "channels": ("channels",),
        "migrate": ("migrate",),
    }
    runs = cli_all(before_poll, *c, env=env)
    runs["poll --once"] = cli("poll", "--once", "--log-level", "debug", *c, env=env)
    runs.update(cli_all(after_poll, *c, env=env))
    # Exit 1: some of these feeds fail on purpose (poll --once --fail-on any).
    assert runs["poll --once"].code == 1, runs["poll --once"].text
    assert (
        "2 alerts queued" in runs["poll --once"].out or "alerts queued" in runs["poll --once"].out
    )
    assert runs["test --url"].code == 0, runs["test --url"].text
    assert runs["test --url (failing)"].code == 2
    secrets = [PW, TOKEN, base64.b64encode(f"nw:{PW}".encode()).decode()]
    for name, run in runs.items():
        assert "Traceback" not in run.text, f"{name}: {run.text}"
        for secret in secrets:
            assert secret not in run.text, f"{name} printed a secret:\n{run.text}"
    # What people see instead: the masked URL (no credentials, query values masked).
    shown = f"http://127.0.0.1:{server.port}{prefix}/feed.xml?token=****&format=****"
    assert shown in runs["check"].out
    # Once read, a feed without a name is shown by its own title.
    assert "Test feed" in runs["feeds"].out
    hooks = [r.body.decode() for r in server.requests_to(f"{prefix}/hook")]
    assert hooks, "the alerts reached the webhook"
    db = tmp_path / "state" / "state.db"
    dump = dump_state(db)
    raw = raw_state(db)
    for secret in secrets:
        assert not any(secret in body for body in hooks), "an alert carried a secret"
        assert secret not in dump, f"the state database holds a secret:\n{dump}"
        assert secret.encode() not in raw
    assert json.loads(hooks[0])["items"][0]["source"] == "Test feed"  # its own title
    MATRIX.record(
        "5. credentials in feed URLs",
        "masked label everywhere; URL only in the config",
        f"0 of 3 secret forms in {len(runs)} commands' output and logs, "
        f"{len(hooks)} webhook request(s), {dump.count(chr(10))} state rows (all tables)",
    )


# --------------------------------------------------------------------------- 7. lock contention

MANY_FEEDS = 200


def _hits(server: FeedServer, prefix: str) -> int:
    return sum(r.path.startswith(prefix) for r in server.requests)


def _run_app_poll(loaded: LoadedConfig, box: dict[str, object]) -> None:
    """poll_all of a configuration in this thread's own event loop."""

    async def go() -> None:
        async with App.open(loaded) as app:
            box["outcomes"] = await app.poller.poll_all()

    try:
        asyncio.run(go())
    except BaseException as exc:  # reported by the test thread
        box["error"] = exc


@pytest.mark.slow
def test_7_lock_held_by_another_process_past_the_busy_timeout(
    tmp_path: Path, server: FeedServer
) -> None:
    """7. Another process holds the write lock past the 5 s busy timeout
    while a first poll of 200 feeds runs: no feed fails, read-only
    commands answer at once, `poll --once` and `run` wait with one clear
    line and carry on, and a write that waits past the limit ends with one
    line and exit 75, never a traceback."""
    for i in range(MANY_FEEDS):
        server.route(f"/many/{i}.xml", body=rss(*items(5, prefix=f"many{i}")))
    feeds_yaml = "\n".join(
        f'  - {{url: "{server.url(f"/many/{i}.xml")}", name: many-{i}}}' for i in range(MANY_FEEDS)
    )
    db = tmp_path / "state.db"
    config = tmp_path / "newswatch.yaml"
    config.write_text(
        f"state: sqlite:///{db}\nfeeds:\n{feeds_yaml}\n"
        "channels: {console: {type: console}}\n"
        "rules: [{name: pact, query: 'Russia AND \"North Korea\"', notify: [console]}]\n",
        encoding="utf-8",
    )
    c = ("-c", str(config))
    assert cli("migrate", *c).code == 0
    box: dict[str, object] = {}
    poller = threading.Thread(target=_run_app_poll, args=(load_config(config), box))
    before = _hits(server, "/many/")
    poller.start()
    # The lock is taken once the poll is under way (some feeds fetched).
    deadline = time.monotonic() + 20
    while _hits(server, "/many/") - before < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    runs: dict[str, Run] = {}

    def run_cli(name: str, *args: str) -> None:
        runs[name] = cli(*args, *c)

    def write_with_a_short_wait() -> None:
        # The real command in its own process, allowed to wait 1 s only.
        short_wait = "import newswatch.store._busy as busy\nbusy.STATE_WAIT = 1.0"
        runs["short wait"] = cli("outbox", *c, "retry", "--all", prelude=short_wait)

    with LockHolder(db) as holder, Daemon(*c) as daemon, Proc("poll", "--once", *c) as poll:
        others = [
            threading.Thread(target=run_cli, args=("feeds", "feeds")),
            threading.Thread(target=run_cli, args=("outbox", "outbox")),
            threading.Thread(target=write_with_a_short_wait),
        ]
        for t in others:
            t.start()
        # Both writers say they wait (after the 5 s busy timeout, so the lock
        # is held past it), and keep waiting.
        daemon.wait_for("is locked by another process", within=60)
        poll.wait_for("is locked by another process", within=60)
        for t in others:
            t.join(60)
        held = holder.release()
        started = daemon.wait_for(" running: ", within=30)
        assert daemon.stop() == 0
        assert poll.finish() == 0, poll.output
        polled = time.monotonic() - poll.started
    poller.join(60)
    assert "error" not in box, box.get("error")
    outcomes = box["outcomes"]
    assert isinstance(outcomes, list)
    failed = [o for o in outcomes if o.status in ("failed", "deferred")]
    assert len(outcomes) == MANY_FEEDS and not failed, failed[:3]
    for name in ("feeds", "outbox"):
        # Answered while the lock was held.
        assert runs[name].code == 0 and runs[name].seconds < held, runs[name]
    assert "polled 200 feeds (200 ok)" in poll.output, poll.output
    short = runs["short wait"]
    assert short.code == EXIT_BUSY, short.text
    assert short.err.count("\n") == 1 and "stayed locked by another process" in short.err
    texts = (poll.output, daemon.output, runs["feeds"].text, runs["outbox"].text, short.text)
    for text in texts:
        assert "Traceback" not in text and "OperationalError" not in text
    MATRIX.record(
        "7. lock held past busy timeout",
        "reads answer at once; writes wait (<= 60 s) with one line, then exit 75",
        f"first poll of {MANY_FEEDS} feeds: 0 failed; feeds/outbox answered in "
        f"{max(runs['feeds'].seconds, runs['outbox'].seconds):.1f} s under a "
        f"{held:.1f} s lock; poll --once waited and finished in {polled:.1f} s; "
        f"run started {started:.1f} s after the release; a 1 s write limit: exit 75, 1 line",
    )


# --------------------------------------------------------------------------- 8. kill -9

BURST = 1000
KILL_AFTER = 300
HOOK_DELAY = 0.02  # a slow receiver: 20 ms per request


def _sent(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (n,) = conn.execute("SELECT count(*) FROM notifications WHERE status = 'sent'").fetchone()
    return int(n)


def _keys(server: FeedServer, path: str) -> list[str]:
    return [r.headers.get("idempotency-key", "") for r in server.requests_to(path)]


@pytest.mark.slow
def test_8_kill_9_during_a_1000_alert_burst_then_restart(
    tmp_path: Path, server: FeedServer
) -> None:
    """8. `kill -9` of `newswatch run` in the middle of 1,000 alerts to a
    slow webhook, then a restart: the rest goes out within seconds (the
    dead process's leases are freed at start, not waited out), nothing is
    lost, and every duplicate carries the same idempotency key."""
    server.route("/burst/feed.xml", body=rss(*items(BURST, prefix="burst")))
    server.route("/burst/hook", status=204, delay=HOOK_DELAY)
    config = write(
        tmp_path / "newswatch.yaml",
        f"""
        state: sqlite:///{tmp_path}/state.db
        feeds: [{{url: "{server.url("/burst/feed.xml")}", name: burst, backfill: all}}]
        channels: {{hook: {{type: webhook, url: "{server.url("/burst/hook")}"}}}}
        rules: [{{name: pact, query: 'Russia AND "North Korea"',
                  notify: [{{channel: hook, group_wait: 0s}}]}}]
        digest_defaults: {{max_items: 1}}   # one story per request: 1,000 requests
        """,
    )
    c = ("-c", str(config))
    with Daemon(*c) as first:
        deadline = time.monotonic() + 40
        while server.hits("/burst/hook") < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill9()
    before = _keys(server, "/burst/hook")
    assert KILL_AFTER <= len(before) < BURST, len(before)
    with Daemon(*c) as second:
        restarted = time.monotonic()
        deadline = restarted + 50
        while _sent(tmp_path / "state.db") < BURST and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = time.monotonic() - restarted
        assert second.stop() == 0
        output = second.output
    keys = _keys(server, "/burst/hook")
    distinct = set(keys)
    assert len(distinct) == BURST and "" not in distinct, "an alert was lost"
    duplicates = len(keys) - len(distinct)
    assert "freed the leases of 1 stopped newswatch process" in output, output[-2000:]
    # Resumed at once. Without freeing them, the dead process's claimed
    # notifications come back only when their lease runs out, at the
    # earliest two thirds of a lease after the kill (leases are renewed
    # every third): 30 s.
    assert drained < deliver.LEASE.total_seconds() * 2 / 3, drained
    assert _sent(tmp_path / "state.db") == BURST
    MATRIX.record(
        "8. kill -9 during a burst",
        "restart resumes within seconds; nothing lost; duplicates keep their key",
        f"killed after {len(before)} of {BURST}; after the restart all {BURST} were sent "
        f"within {drained:.1f} s; "
        f"0 lost; {duplicates} duplicate(s), all with the same idempotency key",
    )


# --------------------------------------------------------------------------- 9. file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_9_state_is_private_and_open_secrets_are_warned_about(
    tmp_path: Path, server: FeedServer
) -> None:
    """9. Under the usual umask (022) the state database is created 0600
    (its -wal and -shm too) in folders made 0700; an existing state file,
    a config file with a secret written out and a secret file that others
    can read are each warned about by `check` and at `run`."""
    server.route("/modes/feed.xml", body=rss(*items(1, prefix="modes")))
    state = tmp_path / "var" / "lib" / "state.db"
    secret = write(tmp_path / "smtp-password", "hunter2-secret\n")
    config = write(
        tmp_path / "newswatch.yaml",
        f"""
        state: sqlite:///{state}
        feeds: [{{url: "{server.url("/modes/feed.xml")}", name: modes}}]
        channels:
          mail: {{type: email, to: [desk@example.org],
                 smtp: {{host: 127.0.0.1, port: 9, username: nw, password: written-out-secret}}}}
          mail2: {{type: email, to: [desk@example.org],
                  smtp: {{host: 127.0.0.1, port: 9, password: "${{file:{secret}}}"}}}}
        rules: [{{name: pact, query: 'Russia AND "North Korea"', notify: [mail, mail2]}}]
        """,
    )
    for path in (config, secret):
        path.chmod(0o600)
    c = ("-c", str(config))
    with Daemon(*c, umask=0o022) as daemon:
        daemon.wait_for(" running: ")
        created = {
            "var/": _mode(tmp_path / "var"),
            "var/lib/": _mode(state.parent),
            "state.db": _mode(state),
            "state.db-wal": _mode(state.with_name("state.db-wal")),
            "state.db-shm": _mode(state.with_name("state.db-shm")),
        }
        assert daemon.stop() == 0
        quiet = daemon.output
    assert created == {
        "var/": 0o700,
        "var/lib/": 0o700,
        "state.db": 0o600,
        "state.db-wal": 0o600,
        "state.db-shm": 0o600,
    }
    assert "open to other users" not in quiet
    assert cli("check", *c).err.count("open to other users") == 0
    # Files someone made readable by everyone:
    for path in (state, config, secret):
        path.chmod(0o644)
    check = cli("check", *c)
    assert check.code == 0 and check.err.count("open to other users") == 3, check.err
    assert (
        f"{config}:5: warning: channels.mail.smtp.password: a secret is written out here, "
        "and this file is open to other users (mode 0644)"
    ) in check.err, check.err
    assert f"chmod 600 {state}" in check.err and f"chmod 600 {secret}" in check.err
    assert cli("check", "--strict", *c).code == 1
    with Daemon(*c) as daemon:
        daemon.wait_for(" running: ")
        assert daemon.stop() == 0
    assert daemon.output.count("open to other users") == 3
    for text in (check.text, daemon.output):
        assert "hunter2-secret" not in text and "written-out-secret" not in text
    MATRIX.record(
        "9. world-readable state",
        "state 0600 in 0700 folders; warn on files others can read",
        "umask 022: folders 0700, state.db/-wal/-shm 0600; 3 of 3 exposed files warned "
        "(check and run)",
    )


# --------------------------------------------------------------------------- hostile feeds
#
# One `newswatch poll --once` process polls every hostile feed below plus one
# good feed; a second polls only the good feed (the baseline). Each case
# then reads its own feed's outcome from the state database, and the bombs
# are judged on the first process's peak RSS against the baseline's.

MiB = 1024 * 1024
# Issue 7's target: no bomb may grow the process by more than this.
RSS_BOUND_MIB = 64
POLL_TIMEOUT = 2.0  # poll.timeout of these runs: the slowloris is cut here
MAX_BODY = "2MiB"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE rss ['
    '<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {b} "{("&" + a + ";") * 10}">'
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + ']><rss version="2.0"><channel><title>laughs</title><item><title>&i;</title>'
    "<guid>laughs-1</guid><description>&i;</description></item></channel></rss>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>xxe</title><item><title>xxe &xxe;</title>'
    "<guid>xxe-1</guid><description>Russia and North Korea &xxe;</description>"
    "</item></channel></rss>"
)
POISON_ENTRIES = [
    ("surrogate pair", "Emoji &#xD83D;&#xDE00; written the UTF-16 way"),
    ("lone surrogate", "Broken &#xDC00; reference"),
    ("beyond U+10FFFF", "Out of range &#x110000; reference"),
]
ILL_FORMED: dict[str, Reply] = {
    "truncated": Reply(body=rss(*items(3, prefix="trunc"))[:-60]),
    "html page": Reply(body=b"<!doctype html><html><body><p>Not a feed</p></body></html>"),
    "binary garbage": Reply(body=bytes(range(256)) * 64, content_type="application/octet-stream"),
    "empty body": Reply(body=b""),
    "broken json feed": Reply(
        body=b'{"version": "https://jsonfeed.org/version/1", "items": [',
        content_type="application/feed+json",
    ),
    "wrong encoding": Reply(
        body=rss(*items(2, prefix="enc")).replace(b"UTF-8", b"Shift_JIS") + "ü".encode("latin-1"),
    ),
}
SSRF_TARGETS = {
    "127.0.0.1": "http://127.0.0.1:{port}/hostile/inside.xml",
    "127.1": "http://127.1:{port}/hostile/inside.xml",
    "2130706433": "http://2130706433:{port}/hostile/inside.xml",
    "[::1]": "http://[::1]:{port}/hostile/inside.xml",
    "169.254.169.254": "http://169.254.169.254/latest/meta-data/",
    "10.0.0.1": "http://10.0.0.1/feed.xml",
}


def _poison_feed() -> bytes:
    good = [
        f"<item><title>good {i}</title><guid>poison-good-{i}</guid>"
        f"<description>{MATCHING}</description></item>"
        for i in range(5)
    ]
    bad = [
        f"<item><title>{text}</title><guid>poison-bad-{i}</guid>"
        f"<description>{MATCHING} {text}</description></item>"
        for i, (_, text) in enumerate(POISON_ENTRIES)
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>poison</title>'
        + "".join(good[:2] + bad + good[2:])
        + "</channel></rss>"
    ).encode()


@dataclass
class Hostile:
    run: Run
    baseline: Run
    feeds: dict[str, tuple[str, str | None, int]]  # name -> (status, last error, articles)
    contents: str  # every stored article's text
    alerts: dict[str, int]  # feed name -> outbox rows


@pytest.fixture(scope="module")
def hostile(server: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    gzip_gib = compressed_zeros(1024 * MiB, "gzip")
    server.route("/hostile/good.xml", body=rss(*items(3, prefix="good")))
    server.route(
        "/hostile/gzip-gzip.xml",
        body=gzip.compress(gzip_gib, mtime=0),
        headers={"Content-Encoding": "gzip, gzip"},
    )
    server.route("/hostile/gzip-1GiB.xml", body=gzip_gib, headers={"Content-Encoding": "gzip"})
    server.route("/hostile/big.xml", body=bytes(8 * MiB), chunked=True)
    server.route("/hostile/slowloris.xml", body=rss(*items(1, prefix="slow")), trickle=0.5)
    server.route("/hostile/loop.xml", status=302, headers={"Location": "/hostile/loop.xml"})
    server.route("/hostile/laughs.xml", body=BILLION_LAUGHS)
    server.route("/hostile/xxe.xml", body=XXE)
    server.route("/hostile/poison.xml", body=_poison_feed())
    server.route("/hostile/inside.xml", body=rss(*items(2, prefix="inside")))
    for i, reply in enumerate(ILL_FORMED.values()):
        server.route(f"/hostile/ill-{i}.xml", reply)
    for i, target in enumerate(SSRF_TARGETS.values()):
        where = target.format(port=server.port)
        server.route(f"/hostile/ssrf-{i}.xml", status=302, headers={"Location": where})
    local = f"http://localhost:{server.port}"
    feeds = {
        "good": server.url("/hostile/good.xml"),
        "gzip, gzip": server.url("/hostile/gzip-gzip.xml"),
        "gzip 1 GiB": server.url("/hostile/gzip-1GiB.xml"),
        "8 MiB body": server.url("/hostile/big.xml"),
        "slowloris": server.url("/hostile/slowloris.xml"),
        "redirect loop": server.url("/hostile/loop.xml"),
        "billion laughs": server.url("/hostile/laughs.xml"),
        "xxe": server.url("/hostile/xxe.xml"),
        "poison": server.url("/hostile/poison.xml"),
        **{
            f"ill: {name}": server.url(f"/hostile/ill-{i}.xml") for i, name in enumerate(ILL_FORMED)
        },
        # Configured on "localhost": a redirect to another host must stay public.
        **{f"ssrf: {name}": f"{local}/hostile/ssrf-{i}.xml" for i, name in enumerate(SSRF_TARGETS)},
    }
    allowed = f"{local}/hostile/ssrf-0.xml?allowed"

    def config(folder: Path, names: list[str]) -> Path:
        lines = [f'  - {{url: "{feeds[n]}", name: "{n}", backfill: all}}' for n in names]
        if len(names) > 1:
            lines.append(
                f'  - {{url: "{allowed}", name: "ssrf: allowed", backfill: all, '
                "allow_private: true}"
            )
        folder.mkdir()
        return write(
            folder / "newswatch.yaml",
            f"state: sqlite:///{folder}/state.db\n"
            f"poll: {{timeout: {POLL_TIMEOUT}s, max_bytes: {MAX_BODY}}}\n"
            "feeds:\n" + "\n".join(lines) + "\n"
            "channels: {console: {type: console}}\n"
            "rules: [{name: pact, query: 'Russia AND \"North Korea\"', notify: [console]}]\n",
        )

    root = tmp_path_factory.mktemp("hostile")
    baseline = cli("poll", "--once", "-c", str(config(root / "baseline", ["good"])))
    assert baseline.code == 0, baseline.text
    folder = root / "all"
    run = cli("poll", "--once", "-c", str(config(folder, list(feeds))))
    assert run.code == 1, run.text  # hostile feeds fail on purpose: --fail-on any
    with sqlite3.connect(folder / "state.db") as db:
        rows = db.execute("SELECT label, status, last_error, article_count FROM feeds").fetchall()
        contents = "\n".join(
            " ".join(r) for r in db.execute("SELECT title, summary, content FROM articles")
        )
        alerts = dict(
            db.execute(
                "SELECT a.source, count(*) FROM outbox o JOIN articles a ON a.id = o.article_id "
                "GROUP BY a.source"
            ).fetchall()
        )
    return Hostile(
        run=run,
        baseline=baseline,
        feeds={label: (status, error, n) for label, status, error, n in rows},
        contents=contents,
        alerts=alerts,
    )


def _growth(h: Hostile) -> float:
    return h.run.peak_mib - h.baseline.peak_mib


def test_1_stacked_and_single_gzip_bombs_keep_memory_bounded(hostile: Hostile) -> None:
    """1. `Content-Encoding: gzip, gzip` is refused; a 1 GiB gzip bomb stops
    at the size cap; the whole run's peak RSS stays within 64 MiB of a run
    that polls only the good feed."""
    assert hostile.feeds["gzip, gzip"][:2] == (
        "failing",
        "refused: stacked content encodings gzip, gzip",
    )
    assert hostile.feeds["gzip 1 GiB"][:2] == ("failing", "body larger than 2.0 MiB limit")
    assert hostile.feeds["good"] == ("ok", None, 3)
    growth = _growth(hostile)
    assert growth < RSS_BOUND_MIB, f"peak RSS grew by {growth:.0f} MiB"
    MATRIX.record(
        "1. gzip bombs",
        "stacked codings refused; one coding inflates only to poll.max_bytes; < +64 MiB RSS",
        f"peak RSS {hostile.run.peak_mib:.0f} MiB vs {hostile.baseline.peak_mib:.0f} MiB baseline "
        f"(+{growth:.0f} MiB) with a 1.9 KB gzip,gzip bomb and a 1 GiB gzip bomb",
    )


def test_held_body_cap_slowloris_and_redirect_loop(hostile: Hostile) -> None:
    """Held: a body over poll.max_bytes is cut there; a server trickling a
    byte at a time is cut at poll.timeout; a redirect loop ends after the
    redirect limit. Each is a failing feed with a clear error."""
    assert hostile.feeds["8 MiB body"][:2] == ("failing", "body larger than 2.0 MiB limit")
    assert hostile.feeds["slowloris"][:2] == (
        "failing",
        f"no complete response within {POLL_TIMEOUT:.1f}s",
    )
    status, error, _ = hostile.feeds["redirect loop"]
    assert status == "failing" and error is not None and error.startswith("too many redirects")
    MATRIX.record(
        "held: body cap, slowloris, redirect loop",
        "cut at max_bytes / poll.timeout / the redirect limit; the feed fails, the rest flow",
        f"8 MiB body cut at {MAX_BODY}; trickle cut at {POLL_TIMEOUT:.0f} s; loop: {error}; "
        f"whole run {hostile.run.seconds:.1f} s",
    )


def test_held_billion_laughs_and_xxe(hostile: Hostile) -> None:
    """Held: entity expansion is refused or bounded and no external entity is
    read: nothing of /etc/passwd is stored, no stored text is large."""
    assert "root:" not in hostile.contents
    longest = max(len(line) for line in hostile.contents.splitlines())
    assert longest < 100_000
    laughs = hostile.feeds["billion laughs"]
    xxe = hostile.feeds["xxe"]
    MATRIX.record(
        "held: billion laughs, XXE",
        "no entity bomb expands, no external entity is read",
        f"laughs: {laughs[0]} ({laughs[2]} stored); xxe: {xxe[0]} ({xxe[2]} stored); "
        f"longest stored text {longest} chars; /etc/passwd never read",
    )


def test_3_poison_entries_are_repaired_or_skipped_not_the_feed(hostile: Hostile) -> None:
    """3. Character references to surrogates or beyond U+10FFFF do not sink
    the feed: its 5 good entries are stored and alert, the bad ones are
    repaired (U+FFFD) or skipped."""
    status, error, stored = hostile.feeds["poison"]
    assert status == "ok" and stored >= 5, (status, error, stored)
    assert hostile.alerts.get("poison", 0) >= 5
    assert "😀" in hostile.contents  # the UTF-16 pair, joined
    MATRIX.record(
        "3. poison entries",
        "a bad character reference costs at most its entry, never the feed",
        f"{stored} of {5 + len(POISON_ENTRIES)} entries stored, {hostile.alerts['poison']} alerts",
    )


def test_4_redirects_into_private_space_are_refused(hostile: Hostile) -> None:
    """4. A feed on "localhost" (the operator's choice) redirecting to
    loopback (also as 127.1 and 2130706433), [::1], link-local metadata or
    10/8 is refused, and its content never becomes alerts; with
    `allow_private: true` the redirect is followed."""
    refused = {name: hostile.feeds[f"ssrf: {name}"] for name in SSRF_TARGETS}
    for name, (status, error, stored) in refused.items():
        assert status == "failing" and stored == 0, (name, error)
        assert error is not None and error.startswith("refused: redirect to"), (name, error)
    assert hostile.alerts.get("ssrf: allowed", 0) == 2
    MATRIX.record(
        "4. SSRF by redirect",
        "redirects leaving for private addresses refused unless allow_private",
        f"{len(refused)} of {len(refused)} private targets refused (0 alerts); "
        "allow_private: followed (2 alerts)",
    )


def test_held_ill_formed_feeds_fail_alone_without_a_traceback(hostile: Hostile) -> None:
    """Held: truncated XML, an HTML page, binary garbage, an empty body, a
    broken JSON feed, a wrong declared encoding: each is stored as far as it
    is readable, or fails with a clear error; none prints a traceback, and
    the good feed still alerts."""
    assert "Traceback" not in hostile.run.text
    outcomes = {name: hostile.feeds[f"ill: {name}"] for name in ILL_FORMED}
    for name, (status, error, _) in outcomes.items():
        assert status in ("ok", "failing"), name
        assert status == "ok" or (error and "internal error" not in error), (name, error)
    assert hostile.alerts.get("good") == 3
    failed = sum(status == "failing" for status, _, _ in outcomes.values())
    MATRIX.record(
        "held: ill-formed feeds",
        "each stored as far as readable or failed with a reason; no traceback",
        f"{len(outcomes)} kinds: {len(outcomes) - failed} read (partly), {failed} failed "
        "with a reason; 0 tracebacks; good feed: 3 alerts",
    )


# --------------------------------------------------------------------------- in-process pipeline
#
# These run the real pipeline (fetch from the loopback server, parse, store
# in SQLite, deliver) inside the test process, with a clock the test moves.


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def pipeline_config(tmp_path: Path, feeds: str, channels: str, notify: str) -> LoadedConfig:
    tmp_path.mkdir(exist_ok=True)
    path = write(
        tmp_path / "newswatch.yaml",
        f"""
        state: sqlite:///{tmp_path}/state.db
        feeds: {feeds}
        channels: {channels}
        rules: [{{name: pact, query: 'Russia AND "North Korea"', notify: {notify}}}]
        """,
    )
    return load_config(path, env={})


CONSOLE = ("{console: {type: console}}", "[console]")


async def _alerts_after_rewrite(
    tmp_path: Path, server: FeedServer, path: str, *, guids: bool, links: bool
) -> tuple[int, int]:
    """Outbox rows made by the second poll, after a silent first poll, when
    every GUID and/or link of the feed moved from http to https, and the
    key rewrites (storms) the poller counted."""
    before = items(50, prefix=path.strip("/"))
    after = [
        Item(
            title=it.title,
            link=it.link.replace("http:", "https:") if links else it.link,
            guid=(it.guid or "").replace("http:", "https:") if guids else it.guid,
            body=it.body,
        )
        for it in before
    ]
    server.route(path, body=rss(*before))
    loaded = pipeline_config(tmp_path, f'[{{url: "{server.url(path)}", name: rw}}]', *CONSOLE)
    async with App.open(loaded, out=io.StringIO()) as app:
        first = await app.poller.poll_all()
        assert first[0].new_articles == 50 and first[0].new_alerts == 0  # the silent first poll
        server.route(path, body=rss(*after))
        second = await app.poller.poll_all()
        return second[0].new_alerts, app.poller.stats.storms


async def test_2_guid_and_link_rewrite_after_a_silent_first_poll_alerts_nobody(
    tmp_path: Path, server: FeedServer
) -> None:
    """2. After a feed's silent first poll, a CMS migration rewrites every
    GUID (and then every link too) from http to https: the stories are
    known by their scheme-less URL, so nobody is alerted again."""
    guids, storms = await _alerts_after_rewrite(
        tmp_path / "g", server, "/rw-guids.xml", guids=True, links=False
    )
    both, _ = await _alerts_after_rewrite(
        tmp_path / "b", server, "/rw-both.xml", guids=True, links=True
    )
    assert (guids, both, storms) == (0, 0, 1)
    MATRIX.record(
        "2. ID-rewrite storm",
        "a known story under a new GUID or https link alerts nobody",
        f"50 GUIDs rewritten: {guids} alerts; 50 GUIDs and links rewritten: {both} alerts "
        f"(the poller counted {storms} key rewrite of the feed)",
    )


async def test_10_a_reused_guid_with_a_new_story_alerts(tmp_path: Path, server: FeedServer) -> None:
    """10. A feed that reuses one GUID for each new story: a GUID whose
    content changed completely is a new story and alerts."""
    server.route(
        "/reused.xml",
        body=rss(
            Item("Russia and North Korea: first", "https://n.example/1", guid="same", body=MATCHING)
        ),
    )
    loaded = pipeline_config(
        tmp_path, f'[{{url: "{server.url("/reused.xml")}", name: reused, backfill: all}}]', *CONSOLE
    )
    async with App.open(loaded, out=io.StringIO()) as app:
        assert (await app.poller.poll_all())[0].new_alerts == 1
        server.route(
            "/reused.xml",
            body=rss(
                Item(
                    "Seoul and Moscow: an entirely different story",
                    "https://n.example/2",
                    guid="same",
                    body="Russia and North Korea hold new talks on a different subject entirely.",
                )
            ),
        )
        alerts = (await app.poller.poll_all())[0].new_alerts
    MATRIX.record(
        "10. reused GUID",
        "a reused GUID with new content is a new story",
        f"{alerts} alert for the second story",
    )
    assert alerts == 1


async def test_10_an_edit_that_starts_matching_alerts_once(
    tmp_path: Path, server: FeedServer
) -> None:
    """10. An entry edited so that it starts matching a rule alerts once (and
    a further edit does not alert again)."""
    story = Item("Talks in Seoul", "https://n.example/edit", guid="edit-1", body="Nothing yet.")
    server.route("/edited.xml", body=rss(story))
    loaded = pipeline_config(
        tmp_path, f'[{{url: "{server.url("/edited.xml")}", name: edited, backfill: all}}]', *CONSOLE
    )
    async with App.open(loaded, out=io.StringIO()) as app:
        assert (await app.poller.poll_all())[0].new_alerts == 0
        edited = Item(story.title, story.link, guid=story.guid, body=MATCHING)
        server.route("/edited.xml", body=rss(edited))
        first = (await app.poller.poll_all())[0].new_alerts
        again = Item(story.title, story.link, guid=story.guid, body=MATCHING + " Updated.")
        server.route("/edited.xml", body=rss(again))
        second = (await app.poller.poll_all())[0].new_alerts
    MATRIX.record("10. edit starts matching", "alerts once", f"{first} then {second} alerts")
    assert (first, second) == (1, 0)


async def test_held_webhook_and_smtp_failures_deliver_exactly_once(
    tmp_path: Path, server: FeedServer
) -> None:
    """Held: a webhook answering 500, 500, then 200, and an SMTP server that
    refuses connections and then comes up: each alert is delivered exactly
    once, after its retries."""
    server.route("/fail/feed.xml", body=rss(*items(1, prefix="fail")))
    server.sequence("/fail/hook", [Reply(status=500), Reply(status=500), Reply(status=200)])
    smtp = SmtpServer()  # its port reserved, the server down
    try:
        channels = (
            f'{{hook: {{type: webhook, url: "{server.url("/fail/hook")}"}}, '
            f"mail: {{type: email, to: [desk@example.org], smtp: {{host: {smtp.host}, "
            f"port: {smtp.port}, starttls: false, timeout: 5s}}}}}}"
        )
        loaded = pipeline_config(
            tmp_path,
            f'[{{url: "{server.url("/fail/feed.xml")}", name: fail, backfill: all}}]',
            channels,
            "[{channel: hook, group_wait: 0s}, {channel: mail, group_wait: 0s}]",
        )
        clock = Clock()
        async with App.open(loaded, clock=clock, rng=random.Random(7)) as app:
            await app.poller.poll_all()
            for attempt in range(4):
                if attempt == 2:
                    smtp.start()
                await app.deliverer.deliver_due()
                clock.now += timedelta(hours=1)
            notes = app.store.notifications()
        hook_hits = server.hits("/fail/hook")
        mails = len(smtp.messages)
    finally:
        smtp.stop()
    assert {n.channel: (n.status.value, n.attempts) for n in notes} == {
        "hook": ("sent", 3),
        "mail": ("sent", 3),
    }
    assert (hook_hits, mails) == (3, 1)
    MATRIX.record(
        "held: webhook and SMTP failures",
        "retried with back-off until accepted; delivered exactly once",
        "webhook 500, 500, 200: 3 attempts, 1 delivery; SMTP refused twice, then up: 1 message",
    )


# --------------------------------------------------------------------------- 6. YAML bombs


def test_6_yaml_bombs_are_refused_at_load_with_file_and_line(tmp_path: Path) -> None:
    """6. An alias bomb (9 levels of 10 aliases) and 10,000 nested flow lists
    in a rules file are refused while loading, with file:line, in a second
    and a few MiB, instead of 4.6 GiB and a RecursionError; written into a
    running daemon's rules file, the bomb is refused, the daemon keeps its
    rules and stops at SIGTERM at once."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = write(
        tmp_path / "bomb.yaml", "aliases:\n" + "\n".join("  " + ln for ln in levels) + "\n"
    )
    nested = tmp_path / "nested.yaml"
    nested.write_text("rules: " + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    base = cli("check", "-c", str(write(tmp_path / "ok.yaml", "rules: []\n")))
    runs = {}
    for name, rules in (("alias bomb", bomb), ("nested lists", nested)):
        config = write(tmp_path / f"{rules.stem}-config.yaml", f"rules: {rules}\n")
        runs[name] = cli("check", "-c", str(config))
    for name, run in runs.items():
        assert run.code == 1, (name, run.text)
        assert "Traceback" not in run.text and "RecursionError" not in run.text, name
        assert run.peak_mib - base.peak_mib < RSS_BOUND_MIB, (name, run.peak_mib)
    assert f"{bomb}:" in runs["alias bomb"].err and "alias bomb" in runs["alias bomb"].err
    assert (
        f"{nested}:1:" in runs["nested lists"].err
        and "nested more than" in runs["nested lists"].err
    )
    live_rules = write(tmp_path / "live-rules.yaml", "rules: []\n")
    live = write(
        tmp_path / "live.yaml",
        f"state: sqlite:///{tmp_path}/live.db\nchannels: {{console: {{type: console}}}}\n"
        f"rules: {live_rules}\n",
    )
    with Daemon("-c", str(live)) as daemon:
        daemon.wait_for(" running: ")
        live_rules.write_text(bomb.read_text(encoding="utf-8"), encoding="utf-8")
        daemon.wait_for("configuration not reloaded, still running the previous one")
        stopping = time.monotonic()
        assert daemon.stop() == 0
        stopped = time.monotonic() - stopping
    assert "alias bomb" in daemon.output and "Traceback" not in daemon.output
    worst = max(runs.values(), key=lambda r: r.seconds)
    MATRIX.record(
        "6. YAML bombs",
        "refused at load with file:line; bounded time and memory; a live edit changes nothing",
        f"alias bomb and 10,000 nested lists refused in <= {worst.seconds:.1f} s, "
        f"peak RSS {max(r.peak_mib for r in runs.values()):.0f} MiB "
        f"(a valid config: {base.peak_mib:.0f} MiB); the bomb as a live edit: refused, "
        f"SIGTERM stopped the daemon in {stopped:.1f} s",
    )
