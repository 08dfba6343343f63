"""Noticing configuration edits, and loading them where a bad file cannot hurt.

``ConfigWatcher`` waits on file-system events (``watchfiles``: inotify on
Linux) for the configuration file, its rule files and folders and its
template folder, and calls back once per burst of changes (an editor's
write-rename-chmod is one burst). It watches the folders that hold those
files, not the files themselves, so a save by rename (a new inode) is
seen, and it re-reads what to watch after every reload.

``load_off_loop`` runs ``load_config`` in a daemon thread of its own with
a deadline: the event loop keeps serving while it parses, a file that
takes too long is given up on (the previous configuration keeps running),
and a stuck load never keeps the process from exiting on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from newswatch.config import ConfigCache, LoadedConfig, load_config

log = logging.getLogger("newswatch.reload")

# Changes closer together than this are one burst (one reload).
DEBOUNCE_MS = 250
# A configuration that takes longer than this to load is refused. Loading
# is linear and bounded (config/load.py), so only a pathological file or a
# hung file system gets near it.
LOAD_DEADLINE_S = 30.0
# How often the watcher thread looks at its stop flag.
_STEP_MS = 50
_RULE_SUFFIXES = (".yaml", ".yml")

_T = TypeVar("_T")


def watch_targets(loaded: LoadedConfig) -> tuple[set[Path], set[Path], set[Path]]:
    """(files, folders whose YAML files count, folders to watch) for a configuration."""
    files: set[Path] = set()
    folders: set[Path] = set()
    for path in loaded.files:
        resolved = path.resolve()
        (folders if resolved.is_dir() else files).add(resolved)
    config = loaded.config
    if config.templates:
        templates = (loaded.path.resolve().parent / config.templates).resolve()
        folders.add(templates)
    roots = {f.parent for f in files} | folders
    return files, folders, {r for r in roots if r.is_dir()}


def relevant(path: Path, files: set[Path], folders: set[Path]) -> bool:
    if path in files:
        return True
    return path.parent in folders and (path.suffix in _RULE_SUFFIXES or path.suffix == ".j2")


class _Flag:
    """What watchfiles polls from its thread: stop, or restart with new paths."""

    def __init__(self, stop: asyncio.Event, restart: threading.Event) -> None:
        self._stop = stop
        self._restart = restart

    def is_set(self) -> bool:
        return self._stop.is_set() or self._restart.is_set()


class ConfigWatcher:
    """Calls ``on_change`` when a file of the current configuration changes."""

    def __init__(
        self,
        current: Callable[[], LoadedConfig],
        on_change: Callable[[], None],
        *,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self._current = current
        self._on_change = on_change
        self._debounce = debounce_ms
        self._restart = threading.Event()
        self.watching: tuple[Path, ...] = ()

    def refresh(self) -> None:
        """Re-read what to watch (after a reload: rule files may have changed)."""
        self._restart.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set. Raises if file watching is unavailable."""
        from watchfiles import awatch

        while not stop.is_set():
            self._restart.clear()
            files, folders, roots = watch_targets(self._current())
            self.watching = tuple(sorted(roots))
            if not roots:
                await asyncio.sleep(1)
                continue
            async for changes in awatch(
                *roots,
                stop_event=_Flag(stop, self._restart),
                debounce=self._debounce,
                step=_STEP_MS,
                recursive=False,
                watch_filter=None,
            ):
                hits = sorted({p for _, p in changes if relevant(Path(p), files, folders)})
                if hits:
                    log.debug("configuration files changed: %s", ", ".join(hits))
                    self._on_change()


class LoadTimeout(Exception):
    """The configuration did not load within the deadline."""


async def load_off_loop(
    path: Path, cache: ConfigCache, *, deadline: float = LOAD_DEADLINE_S
) -> LoadedConfig:
    """``load_config(path, cache=cache)`` in a daemon thread, within ``deadline``.

    On LoadTimeout the thread may still be using ``cache``: pass a fresh
    ConfigCache to the next load.
    """
    return await run_off_loop(lambda: load_config(path, cache=cache), deadline=deadline)


async def run_off_loop(work: Callable[[], _T], *, deadline: float) -> _T:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: _T | None = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: the daemon is gone
            loop.call_soon_threadsafe(settle, result, error)

    # A daemon thread: a load that never returns cannot hold up exit.
    threading.Thread(target=target, name="newswatch-config-load", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), deadline)
    except TimeoutError:
        raise LoadTimeout(f"loading the configuration took over {deadline:g}s") from None


def describe_roots(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "nothing"
