"""One parse worker process, seen from the pool: start, call, kill.

The worker is ``python -P -m newswatch.feeds._parseworker`` with pipes on its
stdin and stdout (framing in ``_frames``). Its replies are unpickled with
only the result types allowed (``Replies``): a worker handles hostile input,
so it must not be able to make this process build arbitrary objects. It gets
only the interpreter's environment variables, never the daemon's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any, Final

import newswatch
from newswatch.feeds._frames import HEADER, MEMORY_LIMIT_ENV

# A worker starts a fresh interpreter and imports feedparser: ~0.3 s here,
# more on a loaded machine.
_START_TIMEOUT: Final = 30.0
# Seconds a closing worker gets to exit on end of input before it is killed.
_EXIT_GRACE: Final = 2.0
# Environment variables a worker inherits (besides LC_* and PYTHON*).
_ENV_KEPT: Final = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR", "SYSTEMROOT"})
# What a reply may contain (see ``Replies``).
_ALLOWED: Final = frozenset(
    {
        ("newswatch.model", "ParsedFeed"),
        ("newswatch.model", "ParsedEntry"),
        ("datetime", "datetime"),
        ("datetime", "timezone"),
        ("datetime", "timedelta"),
    }
)


class Replies(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a parse worker sent a {module}.{name}")
        return super().find_class(module, name)


class WorkerDied(Exception):
    pass


def worker_env(memory_limit: int | None) -> dict[str, str]:
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


class Worker:
    """One worker process and its two pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.jobs = 0

    @classmethod
    async def start(cls, env: dict[str, str]) -> Worker:
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
            raise WorkerDied("the parse worker did not start")
        return worker

    async def _receive(self) -> Any:
        assert self.proc.stdout is not None
        try:
            (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
            payload = await self.proc.stdout.readexactly(size)
        except asyncio.IncompleteReadError:
            raise WorkerDied(await self._death()) from None
        try:
            return Replies(io.BytesIO(payload)).load()
        except Exception as exc:
            raise WorkerDied(f"the parser process sent an unreadable reply: {exc}") from None

    async def call(self, meta: bytes, body: bytes) -> Any:
        assert self.proc.stdin is not None
        self.jobs += 1
        try:
            self.proc.stdin.writelines((HEADER.pack(len(meta)), meta, HEADER.pack(len(body)), body))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerDied(await self._death()) from None
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
