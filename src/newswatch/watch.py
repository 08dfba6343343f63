"""Noticing configuration edits, and loading them where a bad file cannot hurt.

``Reloader`` ties it together for the daemon: SIGHUP, the file watcher (or,
where file watching is unavailable, a periodic look at the files' mtimes)
ask for a reload; requests that arrive while one runs make one more; each
reload loads off the loop, refuses a bad result (the problems are kept for
the status page and the metric) or hands the new configuration over.

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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from newswatch.config import ConfigCache, ConfigError, LoadedConfig, Problem, load_config
from newswatch.reloads import vanished_rules
from newswatch.store.errors import StateBusyError

log = logging.getLogger("newswatch.reload")

# Changes closer together than this are one burst (one reload).
DEBOUNCE_MS = 250
# A configuration that takes longer than this to load is refused. Loading
# is linear and bounded (config/load.py), so only a pathological file or a
# hung file system gets near it.
LOAD_DEADLINE_S = 30.0
# How often the watcher thread looks at its stop flag.
_STEP_MS = 50
# The watcher answers at least this often (an empty set when nothing
# changed); its first answer after a (re)start compares the files once.
_SETTLE_MS = 500
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
        # Templates live one level down, by kind (text/, email/, ...).
        if templates.is_dir():
            folders.update(p for p in templates.iterdir() if p.is_dir())
    roots = {f.parent for f in files} | folders
    return files, folders, {r for r in roots if r.is_dir()}


def stamps(loaded: LoadedConfig) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every watched file: the configuration, its
    rule files, the YAML files of its rule folders and its templates."""
    files, folders, _ = watch_targets(loaded)
    found = set(files)
    for folder in folders:
        try:
            found.update(p for p in folder.iterdir() if relevant(p, files, folders))
        except OSError:
            continue
    out = []
    for path in sorted(found):
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), -1, -1))
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


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
        drifted: Callable[[], bool] = lambda: False,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self._current = current
        self._on_change = on_change
        self._drifted = drifted
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
            settled = False
            async for changes in awatch(
                *roots,
                stop_event=_Flag(stop, self._restart),
                debounce=self._debounce,
                step=_STEP_MS,
                rust_timeout=_SETTLE_MS,
                yield_on_timeout=True,
                recursive=False,
                watch_filter=None,
            ):
                if not settled:
                    # The first answer after (re)starting: the watch is in
                    # place, so an edit made while it was being set up (or
                    # during the last load) is caught here, once.
                    settled = True
                    if self._drifted():
                        self._on_change()
                        continue
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
    # A load given up on (deadline, shutdown) is awaited by nobody: its
    # outcome is taken here, so it is not reported as never retrieved.
    done.add_done_callback(lambda f: f.cancelled() or f.exception())

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


# --------------------------------------------------------------------------- reloader

# Without file watching, the files' mtimes are looked at this often.
FALLBACK_POLL = timedelta(seconds=3)


class Reloadable(Protocol):
    @property
    def loaded(self) -> LoadedConfig: ...
    async def reload(self, loaded: LoadedConfig) -> None: ...


class Reloader:
    """Reloads ``target``'s configuration when asked or when its files change.

    ``problems`` holds the last refused reload's problems (empty once a
    reload succeeds); ``on_result(ok)`` is told each outcome (the metric).
    """

    def __init__(
        self,
        target: Reloadable,
        *,
        clock: Callable[[], datetime],
        on_result: Callable[[bool], None] = lambda ok: None,
        watch: bool = True,
        poll_every: timedelta = FALLBACK_POLL,
        deadline: float = LOAD_DEADLINE_S,
    ) -> None:
        self._target = target
        self._clock = clock
        self._on_result = on_result
        self._watch = watch
        self._poll_every = poll_every.total_seconds()
        self._deadline = deadline
        self._cache = target.loaded.cache
        self._wanted = asyncio.Event()
        self._watcher = ConfigWatcher(
            lambda: self._target.loaded,
            self.request,
            drifted=lambda: stamps(self._target.loaded) != self._fingerprint,
        )
        self._fingerprint = stamps(target.loaded)
        self.problems: tuple[Problem, ...] = ()
        self.error_at: datetime | None = None
        self.reloaded_at: datetime = clock()
        self.watching = False  # file events (True) or mtime polling
        self.attempts = 0  # reloads tried (accepted or refused)

    def request(self) -> None:
        """Reload soon (SIGHUP, a file event); coalesces with a reload in progress."""
        self._wanted.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and reload until ``stop`` is set."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._watch_files(stop))
            worker = tasks.create_task(self._work())
            await stop.wait()
            worker.cancel()  # a load in its thread is abandoned (a daemon thread)

    async def _work(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self.reload_once()

    async def _watch_files(self, stop: asyncio.Event) -> None:
        if self._watch:
            try:
                self.watching = True
                await self._watcher.run(stop)
                return
            except Exception as exc:  # no inotify, too many watches, ...
                self.watching = False
                log.warning(
                    "watching the configuration files failed (%s: %s); "
                    "looking at their mtimes every %gs instead",
                    type(exc).__name__,
                    exc,
                    self._poll_every,
                )
        while not stop.is_set():
            fingerprint = stamps(self._target.loaded)
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self.request()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_every)

    async def reload_once(self) -> bool:
        """Load, check and hand over the configuration; False if refused."""
        try:
            return await self._reload()
        finally:
            self.attempts += 1

    async def _reload(self) -> bool:
        current = self._target.loaded
        path = current.path
        # Taken before reading: an edit during the load shows as a drift.
        self._fingerprint = stamps(current)
        try:
            new = await load_off_loop(path, self._cache, deadline=self._deadline)
        except ConfigError as exc:
            return self._refuse(exc.details)
        except LoadTimeout as exc:
            self._cache = ConfigCache()  # the abandoned load may still be using the old one
            return self._refuse([Problem(str(path), 0, "", str(exc))])
        except Exception as exc:
            log.exception("loading the configuration failed")
            return self._refuse(
                [Problem(str(path), 0, "", f"internal error: {type(exc).__name__}")]
            )
        why = vanished_rules(current, new)
        if why is not None:
            return self._refuse([Problem(str(new.files[1]), 0, "rules", why)])
        try:
            await self._target.reload(new)
        except StateBusyError as exc:
            # Not the file's fault: the next check tries again.
            log.warning("configuration not reloaded yet: %s", exc)
            self._fingerprint = ()
            return False
        if new.files != current.files:  # other files now: their stamps are the baseline
            self._fingerprint = stamps(new)
        self.problems = ()
        self.error_at = None
        self.reloaded_at = self._clock()
        self._on_result(True)
        self._watcher.refresh()
        return True

    def _refuse(self, problems: Sequence[Problem]) -> bool:
        # A bad edit never stops the daemon: the last good configuration
        # keeps running, and the problems are said exactly, once per attempt.
        self.problems = tuple(problems)
        self.error_at = self._clock()
        log.error(
            "configuration not reloaded, still running the previous one:\n  %s",
            "\n  ".join(str(p) for p in problems),
        )
        self._on_result(False)
        self._watcher.refresh()
        return False
