"""Real processes for the reliability matrix (tests/test_reliability.py).

- ``cli(...)`` runs one ``newswatch`` command in a fresh process and reports
  its exit code, output, wall time and peak RSS (the child's own VmHWM,
  which it reports as it exits).
- ``Daemon`` runs ``newswatch run`` and follows its output line by line.
- ``LockHolder`` is a second process that holds SQLite's write lock
  (``BEGIN IMMEDIATE``) on a state file for a while.
- ``dump_state`` renders every row of every table of a SQLite file.
- ``Matrix`` collects each case's figure and prints the table at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

# Every child process gets these on top of the environment (no colour codes,
# output as it happens).
_CHILD_ENV = {"PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float
    peak_mib: float

    @property
    def text(self) -> str:
        return self.out + self.err


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    return {**env, **_CHILD_ENV, **(extra or {})}


def _umask(mask: int | None) -> Callable[[], None] | None:
    """A preexec_fn that sets the child's umask (None: inherit ours)."""
    if mask is None:
        return None

    def set_mask() -> None:
        os.umask(mask)

    return set_mask


def _reader(stream: IO[str], sink: list[str], cond: threading.Condition | None = None) -> None:
    for line in stream:
        if cond is None:
            sink.append(line)
            continue
        with cond:
            sink.append(line)
            cond.notify_all()


# Starts the command in the child and, at its exit, writes the child's own
# peak RSS (VmHWM, KiB) to $NW_PEAK_FILE. Not rusage's ru_maxrss: on Linux
# that keeps the peak of the process image before exec, i.e. of the forking
# parent (pytest, hundreds of MiB late in a run), which would hide a bomb.
_LAUNCH = """
import atexit, os

def _report_peak():
    with open("/proc/self/status") as status:
        peak = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "0")
    with open(os.environ["NW_PEAK_FILE"], "w") as out:
        out.write(peak)

atexit.register(_report_peak)
{prelude}
from newswatch.cli import main
main(prog_name="newswatch")
"""


def cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    umask: int | None = None,
    timeout: float = 40.0,
    prelude: str = "",
) -> Run:
    """Run ``newswatch ARGS`` to completion in a new process; ``prelude``:
    Python run first in that process (e.g. to shorten a limit)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH.format(prelude=prelude), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**_env(env), "NW_PEAK_FILE": str(peak_file)},
            preexec_fn=_umask(umask),
        )
        out: list[str] = []
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=_reader, args=(proc.stdout, out), daemon=True),
            threading.Thread(target=_reader, args=(proc.stderr, err), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        for reader in readers:
            reader.join(5)
        proc.stdout.close()
        proc.stderr.close()
        peak_kib = int(peak_file.read_text() or 0) if peak_file.exists() else 0
    return Run(code, "".join(out), "".join(err), time.monotonic() - started, peak_kib / 1024)


class Proc:
    """A ``newswatch`` command in its own process (stderr merged into
    stdout), followed line by line: ``wait_for`` a line, ``finish``."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, umask: int | None = None
    ) -> None:
        self.started = time.monotonic()
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "newswatch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(env),
            preexec_fn=_umask(umask),
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=_reader, args=(self.proc.stdout, self._lines, self._cond), daemon=True
        )
        self._reader.start()

    @property
    def output(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, text: str, within: float = 20.0) -> float:
        """Seconds until ``text`` appeared in the output (raises if it did not)."""
        started = time.monotonic()
        deadline = started + within
        with self._cond:
            while not any(text in line for line in self._lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{text!r} not in the daemon's output:\n{self.output}")
                self._cond.wait(min(left, 0.2))
        return time.monotonic() - started

    def finish(self, within: float = 60.0) -> int:
        """Wait for the process to end by itself; its exit code."""
        try:
            return self.proc.wait(within)
        finally:
            self._reader.join(5)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, within: float = 15.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(within)
        finally:
            self._reader.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Daemon(Proc):
    """``newswatch run ARGS`` in its own process."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, umask: int | None = None
    ) -> None:
        super().__init__("run", *args, env=env, umask=umask)


# Holds the lock until a line arrives on stdin, or at most argv[2] seconds.
_HOLD = """
import select, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


class LockHolder:
    """A second process holding SQLite's write lock (``BEGIN IMMEDIATE``) on
    ``path`` from ``with`` until ``release()`` (at most ``limit`` seconds)."""

    def __init__(self, path: Path, limit: float = 120.0) -> None:
        self.path = path
        self.limit = limit
        self.held_for: float | None = None

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(self.path), str(self.limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "held"
        self.held_at = time.monotonic()
        return self

    def release(self) -> float:
        """Commit and end; how long the lock was held."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"the lock holder gave up after {self.limit:g}s") from None
        assert self.proc.stdout.readline().strip() == "released"
        self.held_for = time.monotonic() - self.held_at
        self.proc.wait(10)
        return self.held_for

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):  # stdin of a process gone
                    stream.close()


def dump_state(path: Path) -> str:
    """Every row of every table of the SQLite file at ``path``, as text."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = []
        for table in tables:
            out.append(f"== {table}")
            out.extend(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))
        return "\n".join(out)
    finally:
        db.close()


def raw_state(path: Path) -> bytes:
    """The bytes of the database and its -wal file (free pages included)."""
    data = b""
    for name in (path.name, path.name + "-wal"):
        file = path.with_name(name)
        if file.exists():
            data += file.read_bytes()
    return data


@dataclass
class Figure:
    case: str
    promise: str
    figure: str = "(not run)"


@dataclass
class Matrix:
    """Each case's promise and measured figure, printed after the module."""

    figures: dict[str, Figure] = field(default_factory=dict)

    def record(self, case: str, promise: str, figure: str) -> None:
        self.figures[case] = Figure(case, promise, figure)

    def lines(self) -> Iterator[str]:
        width = max((len(f.case) for f in self.figures.values()), default=4)
        yield "reliability matrix (docs/reliability.md):"
        for f in sorted(self.figures.values(), key=lambda f: _order(f.case)):
            yield f"  {f.case.ljust(width)}  {f.figure}"


def _order(case: str) -> tuple[int, str]:
    head = case.split(" ", 1)[0].rstrip(".")
    return (int(head), case) if head.isdigit() else (100, case)
