"""Parse feeds off the event loop, in worker processes, each with a deadline.

Parsing is CPU-bound pure Python (feedparser, html.parser): in a thread it
holds the GIL and slows the event loop and every ingest thread, and a
pathological document can run for minutes. So feeds are parsed in a pool of
worker processes, one job at a time each:

- ``await pool.parse(body, url=..., content_type=..., deadline=20.0)`` waits
  for a free worker, and gives ``deadline`` seconds of that worker's time.
  Past it the worker is killed (and replaced) and the call raises
  ``FeedParseError("parse took longer than 20s; abandoned")``. Other parses
  in flight run on other processes and are not disturbed.
- A worker that dies (segfault, killed, out of memory) fails that one feed
  with a ``FeedParseError`` saying so, and is replaced.
- ``async with ParsePool() as pool:`` closes every worker on exit; no
  process is left behind.

``InlineParser`` has the same interface and parses in a thread of this
process (tests, ``poll --once`` of a few feeds): no process start-up cost,
but a parse past its deadline can only be abandoned, not stopped.

Workers are plain ``python -m newswatch.feeds._parseworker`` children
talking over their stdin and stdout (``_workerproc`` is this side of one:
restricted unpickling, a minimal environment).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
from types import TracebackType
from typing import Any, Final, Protocol, Self

from newswatch.feeds._frames import MAX_FRAME
from newswatch.feeds._workerproc import Worker, WorkerDied, worker_env
from newswatch.feeds.parse import FeedParseError, parse_feed
from newswatch.model import ParsedFeed

__all__ = [
    "DEFAULT_DEADLINE",
    "InlineParser",
    "ParsePool",
    "Parser",
    "default_workers",
    "make_parser",
]

log = logging.getLogger(__name__)

# Seconds one parse may take when the caller has no better figure. The
# slowest real feed measured parses in under 1 s (benchmarks/parse.py).
DEFAULT_DEADLINE: Final = 20.0
# A worker is replaced after this many parses, so that memory fragmented by
# big documents is handed back to the system.
_JOBS_PER_WORKER: Final = 500
# Pause before retrying a worker that failed to start.
_RESTART_PAUSE: Final = 1.0


class Parser(Protocol):
    """What the poll loop needs: ``ParsePool`` and ``InlineParser`` both are."""

    async def parse(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None,
        deadline: float,
        label: str | None = None,
        texts: bool = False,
    ) -> ParsedFeed: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def default_workers() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def make_parser(workers: int | None = None, *, memory_limit: int | None = None) -> Parser:
    """``workers`` processes (default: one per core), or with 0 none at all:
    an ``InlineParser`` (a setting of ``parse_workers: 0``, say)."""
    if workers == 0:
        return InlineParser()
    return ParsePool(workers, memory_limit=memory_limit)


def _abandoned(deadline: float) -> FeedParseError:
    return FeedParseError(f"parse took longer than {deadline:g}s; abandoned")


class InlineParser:
    """``Parser`` in a thread of this process; a late parse is abandoned
    (the caller gets the error at the deadline) but runs on to its end.

    At most ``limit`` parses run at once (default: one per core): more would
    not run faster under the GIL, and each holds a whole parse tree."""

    def __init__(self, limit: int | None = None) -> None:
        self._gate = asyncio.Semaphore(limit or os.cpu_count() or 1)

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
        async with self._gate:
            work = asyncio.to_thread(
                parse_feed, body, url=url, content_type=content_type, label=label, texts=texts
            )
            try:
                return await asyncio.wait_for(work, deadline)
            except TimeoutError:
                raise _abandoned(deadline) from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class ParsePool:
    """Worker processes parsing feeds (see the module docstring).

    ``workers`` defaults to the cores available. ``memory_limit`` (bytes)
    caps each worker's address space: a document that needs more fails with
    an out-of-memory error instead of growing the machine's memory.
    """

    def __init__(self, workers: int | None = None, *, memory_limit: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError("a parse pool needs at least one worker (use InlineParser for none)")
        self.size = workers or default_workers()
        self._env = worker_env(memory_limit)
        self._idle: asyncio.Queue[Worker | None] = asyncio.Queue()
        self._busy: set[Worker] = set()
        self._live: set[Worker] = set()  # started and not yet stopped
        self._starting: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def pids(self, *, busy: bool | None = None) -> list[int]:
        """Process ids of the live workers: all, or only the busy (or idle) ones."""
        return [w.proc.pid for w in self._live if busy is None or (w in self._busy) == busy]

    async def __aenter__(self) -> Self:
        started = await asyncio.gather(
            *(Worker.start(self._env) for _ in range(self.size)), return_exceptions=True
        )
        for worker in started:
            if isinstance(worker, Worker):
                self._live.add(worker)
                self._idle.put_nowait(worker)
        failed = [exc for exc in started if isinstance(exc, BaseException)]
        if failed:
            await self.aclose()  # the ones that did start
            raise RuntimeError(f"could not start the parse workers: {failed[0]}") from failed[0]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

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
        """Parse in a worker; ``deadline`` is seconds of that worker's time;
        ``texts``: the worker also extracts the entries' text (``parse_feed``).

        Raises ``FeedParseError`` for a document that is not a feed, a parse
        past its deadline, a worker that died, or a closed pool.
        """
        if len(body) > MAX_FRAME:
            raise FeedParseError("the document is too large to parse")
        job_id = next(self._ids)
        meta = pickle.dumps(
            (job_id, url, content_type, label, texts), protocol=pickle.HIGHEST_PROTOCOL
        )
        worker = await self._acquire()
        try:
            async with asyncio.timeout(deadline):
                reply = await worker.call(meta, body)
        except TimeoutError:
            await worker.kill()  # gone before the caller hears of it
            self._replace(worker)
            raise _abandoned(deadline) from None
        except WorkerDied as died:
            self._replace(worker)
            raise FeedParseError(
                "the parse pool is closed" if self._closed else str(died)
            ) from None
        except BaseException:
            # Cancelled mid-parse: the worker is still busy with this job.
            # Signal it now; the restart reaps it.
            worker.signal_kill()
            self._replace(worker)
            raise
        try:
            reply_id, ok, result, records, recycle = reply
        except (TypeError, ValueError):
            reply_id = None
        if reply_id != job_id:
            self._replace(worker)
            raise FeedParseError("the parser process answered out of turn")
        if recycle or worker.jobs >= _JOBS_PER_WORKER:
            self._replace(worker)
        else:
            self._release(worker)
        for name, level, message in records:
            logging.getLogger(name).log(level, "%s", message)
        if not ok:
            raise FeedParseError(result)
        if not isinstance(result, ParsedFeed):
            raise FeedParseError("the parser process sent something that is not a feed")
        return result

    async def _acquire(self) -> Worker:
        if self._closed:
            raise FeedParseError("the parse pool is closed")
        worker = await self._idle.get()
        if worker is None:  # closing: pass the word on to the next waiter
            self._idle.put_nowait(None)
            raise FeedParseError("the parse pool is closed")
        self._busy.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        if self._closed:
            return  # aclose() stopped every worker it found busy
        self._busy.discard(worker)
        self._idle.put_nowait(worker)

    def _replace(self, worker: Worker) -> None:
        if self._closed:
            return
        self._busy.discard(worker)
        self._spawn(self._restart(worker))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _restart(self, old: Worker) -> None:
        self._live.discard(old)
        await old.kill()
        while not self._closed:
            try:
                worker = await Worker.start(self._env)
            except (OSError, WorkerDied, TimeoutError) as exc:
                log.error("could not start a parse worker (retrying): %s", exc)
                await asyncio.sleep(_RESTART_PAUSE)
                continue
            if self.closed:  # closed while this worker started
                await worker.stop()
            else:
                self._live.add(worker)
                self._idle.put_nowait(worker)
            return

    async def aclose(self) -> None:
        """Stop every worker; parses in flight or waiting fail as closed."""
        if self._closed:
            await self._settle()
            return
        self._closed = True
        idle: list[Worker] = []
        while not self._idle.empty():
            worker = self._idle.get_nowait()
            if worker is not None:
                idle.append(worker)
        self._idle.put_nowait(None)
        busy = list(self._busy)
        self._busy.clear()
        await asyncio.gather(
            *(w.stop() for w in idle), *(w.kill() for w in busy), return_exceptions=True
        )
        self._live.clear()
        await self._settle()

    async def _settle(self) -> None:
        """Wait for workers being started or killed (they stop themselves)."""
        while self._starting:
            await asyncio.gather(*list(self._starting), return_exceptions=True)
