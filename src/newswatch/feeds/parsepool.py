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
talking over their stdin and stdout; replies are unpickled with only the
result types allowed, so a worker (which handles hostile input) cannot make
this process build arbitrary objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import pickle
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self

import newswatch
from newswatch.feeds._frames import HEADER, MAX_FRAME, MEMORY_LIMIT_ENV
from newswatch.feeds.parse import FeedParseError, parse_feed
from newswatch.model import ParsedFeed

__all__ = ["DEFAULT_DEADLINE", "InlineParser", "ParsePool", "Parser", "default_workers"]

log = logging.getLogger(__name__)

# Seconds one parse may take when the caller has no better figure. The
# slowest real feed measured parses in under 1 s (benchmarks/parse.py).
DEFAULT_DEADLINE: Final = 20.0
# A worker starts a fresh interpreter and imports feedparser: ~0.3 s here,
# more on a loaded machine.
_START_TIMEOUT: Final = 30.0
# Seconds a closing worker gets to exit on end of input before it is killed.
_EXIT_GRACE: Final = 2.0
# A worker is replaced after this many parses, so that memory fragmented by
# big documents is handed back to the system.
_JOBS_PER_WORKER: Final = 500
# Pause before retrying a worker that failed to start.
_RESTART_PAUSE: Final = 1.0

# Environment variables a worker inherits (besides LC_* and PYTHON*).
_ENV_KEPT: Final = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR", "SYSTEMROOT"})
# What a reply may contain (see ``_Replies``).
_ALLOWED: Final = frozenset(
    {
        ("newswatch.model", "ParsedFeed"),
        ("newswatch.model", "ParsedEntry"),
        ("datetime", "datetime"),
        ("datetime", "timezone"),
        ("datetime", "timedelta"),
    }
)


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


def _abandoned(deadline: float) -> FeedParseError:
    return FeedParseError(f"parse took longer than {deadline:g}s; abandoned")


class InlineParser:
    """``Parser`` in a thread of this process; a late parse is abandoned
    (the caller gets the error at the deadline) but runs on to its end."""

    async def parse(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None,
        deadline: float,
        label: str | None = None,
    ) -> ParsedFeed:
        work = asyncio.to_thread(parse_feed, body, url=url, content_type=content_type, label=label)
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


class _Replies(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a parse worker sent a {module}.{name}")
        return super().find_class(module, name)


class _WorkerDied(Exception):
    pass


def _worker_env(memory_limit: int | None) -> dict[str, str]:
    # Only what an interpreter needs: the daemon's environment holds secrets
    # (${SMTP_PASSWORD}, tokens) that a process reading hostile input never needs.
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT or k.startswith(("LC_", "PYTHON"))}
    # The worker imports newswatch from where this process did, installed or not.
    source = str(Path(newswatch.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    if memory_limit is not None:
        env[MEMORY_LIMIT_ENV] = str(memory_limit)
    else:
        env.pop(MEMORY_LIMIT_ENV, None)
    return env


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.jobs = 0

    @classmethod
    async def start(cls, env: dict[str, str]) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # no current directory on sys.path: only newswatch's own code
            "-m",
            "newswatch.feeds._parseworker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = cls(proc)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                hello = await worker._receive()
        except BaseException:
            await worker.kill()
            raise
        if not (isinstance(hello, tuple) and hello[:1] == ("ready",)):
            await worker.kill()
            raise _WorkerDied("the parse worker did not start")
        return worker

    async def _receive(self) -> Any:
        assert self.proc.stdout is not None
        try:
            (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
            payload = await self.proc.stdout.readexactly(size)
        except asyncio.IncompleteReadError:
            raise _WorkerDied(await self._death()) from None
        try:
            return _Replies(io.BytesIO(payload)).load()
        except Exception as exc:
            raise _WorkerDied(f"the parser process sent an unreadable reply: {exc}") from None

    async def call(self, meta: bytes, body: bytes) -> Any:
        assert self.proc.stdin is not None
        self.jobs += 1
        try:
            self.proc.stdin.writelines((HEADER.pack(len(meta)), meta, HEADER.pack(len(body)), body))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise _WorkerDied(await self._death()) from None
        return await self._receive()

    async def _death(self) -> str:
        code = await self.proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the parser process crashed ({name})"
        return f"the parser process exited unexpectedly (status {code})"

    def signal_kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def kill(self) -> None:
        self.signal_kill()
        await self.proc.wait()

    async def stop(self) -> None:
        """End of input, a moment to exit, then kill."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(_EXIT_GRACE):
                await self.proc.wait()
        except TimeoutError:
            await self.kill()


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
        self._env = _worker_env(memory_limit)
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._busy: set[_Worker] = set()
        self._live: set[_Worker] = set()  # started and not yet stopped
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
            *(_Worker.start(self._env) for _ in range(self.size)), return_exceptions=True
        )
        for worker in started:
            if isinstance(worker, _Worker):
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
    ) -> ParsedFeed:
        """Parse in a worker; ``deadline`` is seconds of that worker's time.

        Raises ``FeedParseError`` for a document that is not a feed, a parse
        past its deadline, a worker that died, or a closed pool.
        """
        if len(body) > MAX_FRAME:
            raise FeedParseError("the document is too large to parse")
        job_id = next(self._ids)
        meta = pickle.dumps((job_id, url, content_type, label), protocol=pickle.HIGHEST_PROTOCOL)
        worker = await self._acquire()
        try:
            async with asyncio.timeout(deadline):
                reply = await worker.call(meta, body)
        except TimeoutError:
            await worker.kill()  # gone before the caller hears of it
            self._replace(worker)
            raise _abandoned(deadline) from None
        except _WorkerDied as died:
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

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise FeedParseError("the parse pool is closed")
        worker = await self._idle.get()
        if worker is None:  # closing: pass the word on to the next waiter
            self._idle.put_nowait(None)
            raise FeedParseError("the parse pool is closed")
        self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            return  # aclose() stopped every worker it found busy
        self._busy.discard(worker)
        self._idle.put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        if self._closed:
            return
        self._busy.discard(worker)
        self._spawn(self._restart(worker))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _restart(self, old: _Worker) -> None:
        self._live.discard(old)
        await old.kill()
        while not self._closed:
            try:
                worker = await _Worker.start(self._env)
            except (OSError, _WorkerDied, TimeoutError) as exc:
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
        idle: list[_Worker] = []
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
