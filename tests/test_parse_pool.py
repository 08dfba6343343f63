"""The parse pool: worker processes, a deadline per parse, crashes contained,
nothing left behind; and the in-process parser with the same interface."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import pickle
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newswatch.feeds._workerproc import Replies
from newswatch.feeds.normalize import html_to_text
from newswatch.feeds.parse import FeedParseError, parse_feed, with_texts
from newswatch.feeds.parsepool import (
    InlineParser,
    ParsePool,
    Parser,
    default_workers,
    make_parser,
)
from newswatch.model import ParsedEntry, ParsedFeed

FEEDS = Path(__file__).parent / "data" / "feeds"
SMALL = (FEEDS / "rss2-cdata-entities.xml").read_bytes()
JSON_FEED = (FEEDS / "jsonfeed-1.1.json").read_bytes()
URL = "https://gazette.example/world/feed/"


def big_feed(items: int) -> bytes:
    """About 1.1 KB per item; feedparser needs ~0.1 s per 1,000 here."""
    body = "".join(
        f"<item><title>Story {i}</title><link>https://big.example/{i}</link>"
        f"<description>{'word ' * 200}</description></item>"
        for i in range(items)
    )
    return f"<rss version='2.0'><channel><title>big</title>{body}</channel></rss>".encode()


# Half a second of parsing here: ten times the deadlines it is given.
SLOW = big_feed(5_000)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_until_busy(pool: ParsePool, count: int) -> list[int]:
    for _ in range(500):
        busy = pool.pids(busy=True)
        if len(busy) >= count:
            return busy
        await asyncio.sleep(0.01)
    raise AssertionError("the workers never got busy")


async def wait_for_workers(pool: ParsePool, count: int) -> None:
    for _ in range(1000):
        if len(pool.pids()) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(pool.pids())} workers, not {count}")


async def test_parses_in_worker_processes() -> None:
    async with ParsePool(2) as pool:
        assert pool.size == 2
        assert len(pool.pids()) == 2 and os.getpid() not in pool.pids()
        got = await asyncio.gather(
            pool.parse(SMALL, url=URL, content_type="application/rss+xml", deadline=30),
            pool.parse(JSON_FEED, url=URL, content_type=None, deadline=30),
            pool.parse(SMALL, url=URL, content_type=None, deadline=30),
        )
    assert got[0] == parse_feed(SMALL, url=URL, content_type="application/rss+xml")
    assert got[1] == parse_feed(JSON_FEED, url=URL)
    assert got[2] == got[0]


async def test_workers_do_not_inherit_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-secret")
    async with ParsePool(1) as pool:
        (pid,) = pool.pids()
        environ = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
        assert (await pool.parse(SMALL, url=URL, content_type=None, deadline=30)).entries
    assert b"hunter2-secret" not in environ
    assert b"PATH=" in environ


async def test_worker_logs_reach_this_process(caplog: pytest.LogCaptureFixture) -> None:
    async with ParsePool(1) as pool:
        with caplog.at_level(logging.WARNING):
            await pool.parse(JSON_FEED, url=URL, content_type=None, deadline=30, label="Signal")
    assert "Signal: JSON Feed item 4 skipped" in caplog.text


async def test_not_a_feed_is_a_parse_error_and_the_worker_stays() -> None:
    async with ParsePool(1) as pool:
        (pid,) = pool.pids()
        with pytest.raises(FeedParseError, match="not a feed: the document is an HTML page"):
            await pool.parse(b"<!doctype html><p>hi", url=URL, content_type=None, deadline=30)
        assert pool.pids() == [pid]


async def test_a_parse_past_its_deadline_is_abandoned_alone() -> None:
    async with ParsePool(2) as pool:
        started = time.monotonic()
        slow = asyncio.create_task(pool.parse(SLOW, url=URL, content_type=None, deadline=0.05))
        (slow_pid,) = await wait_until_busy(pool, 1)
        fine = await pool.parse(SMALL, url=URL, content_type=None, deadline=30)
        with pytest.raises(FeedParseError, match=r"^parse took longer than 0.05s; abandoned$"):
            await slow
        assert time.monotonic() - started < 5
        assert len(fine.entries) == 4  # the other worker was not disturbed
        assert not alive(slow_pid)  # killed, not left running
        # The pool is whole again: a new worker replaces the killed one.
        await wait_for_workers(pool, 2)
        assert slow_pid not in pool.pids()
        again = await asyncio.gather(
            *(pool.parse(SMALL, url=URL, content_type=None, deadline=30) for _ in range(3))
        )
        assert all(f == fine for f in again)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
async def test_a_crashing_worker_fails_only_its_feed(sig: signal.Signals) -> None:
    async with ParsePool(2) as pool:
        parses = [
            asyncio.create_task(pool.parse(SLOW, url=URL, content_type=None, deadline=60))
            for _ in range(2)
        ]
        victim, _ = await wait_until_busy(pool, 2)
        os.kill(victim, sig)
        results = await asyncio.gather(*parses, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], FeedParseError)
        assert str(errors[0]) == f"the parser process crashed ({sig.name})"
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        await wait_for_workers(pool, 2)  # replaced
        assert victim not in pool.pids()
        assert (await pool.parse(SMALL, url=URL, content_type=None, deadline=30)).entries


async def test_out_of_memory_fails_the_feed_not_the_pool() -> None:
    huge = (
        "<rss version='2.0'><channel><title>big</title><item><title>x</title><description>"
        + "wörd " * 6_000_000
        + "</description></item></channel></rss>"
    ).encode()
    async with ParsePool(1, memory_limit=150 * 1024 * 1024) as pool:
        with pytest.raises(FeedParseError, match="ran out of memory"):
            await pool.parse(huge, url=URL, content_type=None, deadline=60)
        assert (await pool.parse(SMALL, url=URL, content_type=None, deadline=30)).entries


async def test_a_cancelled_parse_does_not_leak_its_reply() -> None:
    async with ParsePool(1) as pool:
        task = asyncio.create_task(pool.parse(SLOW, url=URL, content_type=None, deadline=60))
        await wait_until_busy(pool, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The next job gets its own answer, not the abandoned one's.
        feed = await pool.parse(SMALL, url=URL, content_type=None, deadline=30)
        assert feed.title == "The Harbour Gazette – World"


async def test_closing_leaves_no_process_behind() -> None:
    pool = ParsePool(2)
    async with pool:
        pids = pool.pids()
        in_flight = asyncio.create_task(pool.parse(SLOW, url=URL, content_type=None, deadline=60))
        waiting = [
            asyncio.create_task(pool.parse(SLOW, url=URL, content_type=None, deadline=60))
            for _ in range(3)
        ]
        await wait_until_busy(pool, 2)
    assert pool.closed
    assert not any(alive(pid) for pid in pids)
    for task in (in_flight, *waiting):
        with pytest.raises(FeedParseError, match="the parse pool is closed"):
            await task
    with pytest.raises(FeedParseError, match="the parse pool is closed"):
        await pool.parse(SMALL, url=URL, content_type=None, deadline=30)
    await pool.aclose()  # closing twice is harmless


async def test_inline_parser_has_the_same_interface() -> None:
    parsers: list[Parser] = [InlineParser(), ParsePool(1)]
    for parser in parsers:
        async with parser:
            feed = await parser.parse(SMALL, url=URL, content_type=None, deadline=30)
            assert feed == parse_feed(SMALL, url=URL)
            with pytest.raises(FeedParseError, match="not a feed"):
                await parser.parse(b"{}", url=URL, content_type=None, deadline=30)


async def test_inline_parser_abandons_a_late_parse() -> None:
    async with InlineParser() as parser:
        with pytest.raises(FeedParseError, match=r"^parse took longer than 0.01s; abandoned$"):
            await parser.parse(big_feed(3_000), url=URL, content_type=None, deadline=0.01)


def test_pool_size() -> None:
    assert default_workers() >= 1
    assert ParsePool().size == default_workers()
    with pytest.raises(ValueError, match="at least one worker"):
        ParsePool(0)
    assert isinstance(make_parser(0), InlineParser)
    pool = make_parser(3)
    assert isinstance(pool, ParsePool) and pool.size == 3
    assert isinstance(make_parser(), ParsePool)


def test_replies_may_only_hold_feeds() -> None:
    entry = ParsedEntry(
        guid="g",
        link=None,
        title="t",
        summary="",
        content="",
        author="",
        categories=("c",),
        published=datetime(2025, 3, 10, tzinfo=UTC),
        updated=None,
    )
    feed = ParsedFeed(title="t", link=None, entries=(entry,), ttl=5)
    reply = (1, True, feed, [("newswatch", 30, "m")], False)
    assert Replies(io.BytesIO(pickle.dumps(reply))).load() == reply
    with pytest.raises(pickle.UnpicklingError, match=r"a parse worker sent a posix\.system"):
        Replies(io.BytesIO(pickle.dumps((1, True, os.system, [], False)))).load()


async def test_the_worker_extracts_the_entries_text_when_asked() -> None:
    async with ParsePool(1) as pool:
        plain = await pool.parse(SMALL, url=URL, content_type=None, deadline=30)
        texts = await pool.parse(SMALL, url=URL, content_type=None, deadline=30, texts=True)
    assert all(e.summary_text is None and e.content_text is None for e in plain.entries)
    assert texts.entries and texts == with_texts(plain)
    for raw, done in zip(plain.entries, texts.entries, strict=True):
        assert done.summary_text == html_to_text(raw.summary)
        assert done.content_text == html_to_text(raw.content)
        assert dataclasses.replace(done, summary_text=None, content_text=None) == raw
    inline = await InlineParser().parse(SMALL, url=URL, content_type=None, deadline=30, texts=True)
    assert inline == texts
