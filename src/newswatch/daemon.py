"""The long-running process: wiring, APScheduler ticks, signals, live reload.

APScheduler is only a timer here. It holds three fixed jobs (poll tick,
deliver tick, reload check); each tick starts at most one background task of
its kind, so a slow poll never stacks up behind itself. Everything that must
survive a restart (what is due, what was seen, what is still to send) is in
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url

from newswatch.config import Config, ConfigError, LoadedConfig, load_config
from newswatch.feeds.fetch import Fetcher
from newswatch.notify.channels import Channel, build_channels
from newswatch.notify.deliver import Deliverer
from newswatch.notify.digests import run_digests
from newswatch.notify.render import RenderContext
from newswatch.notify.templates import Templates
from newswatch.poll import FeedOutcome, Poller, PollPool, PollStats, Rules, feed_specs
from newswatch.store.sql import PRUNE_BATCH, SqlStore, open_store

log = logging.getLogger("newswatch.daemon")

# Tick periods. Feeds have their own intervals (stored next_poll_at); the
# poll tick only looks for feeds that are due, so it can be short.
POLL_TICK = timedelta(seconds=5)
DELIVER_TICK = timedelta(seconds=2)
RELOAD_TICK = timedelta(seconds=3)
# Digests: fire times are on the minute; a 20 s tick sends them within it.
DIGEST_TICK = timedelta(seconds=20)
# Retention: forget old articles this often (and once at start-up).
MAINTENANCE_TICK = timedelta(hours=1)
# On SIGTERM, in-flight work gets this long to finish before it is cancelled
# (cancelled work releases its leases, so nothing is lost either way).
SHUTDOWN_GRACE = timedelta(seconds=3)


def utcnow() -> datetime:
    return datetime.now(UTC)


def state_url(config: Config) -> str:
    """NEWSWATCH_STATE overrides the configured state URL (containers, tests)."""
    return os.environ.get("NEWSWATCH_STATE") or config.state


def render_context(loaded: LoadedConfig) -> RenderContext:
    """Templates (the user's folder over the shipped ones) and the wall clock."""
    config = loaded.config
    user_dir = None
    if config.templates:
        user_dir = (loaded.path.resolve().parent / config.templates).resolve()
    return RenderContext(
        tz=config.zone, templates=Templates(user_dir), config_name=str(loaded.path)
    )


@dataclass
class App:
    """The wired-up pipeline for one configuration."""

    loaded: LoadedConfig
    store: SqlStore
    http: httpx.AsyncClient
    fetcher: Fetcher
    channels: dict[str, Channel]
    poller: Poller
    pool: PollPool
    deliverer: Deliverer
    clock: Callable[[], datetime]
    rng: random.Random
    out: TextIO | None

    @property
    def config(self) -> Config:
        return self.loaded.config

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        loaded: LoadedConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        out: TextIO | None = None,
    ) -> AsyncIterator[App]:
        config = loaded.config
        rng = rng or random.Random()
        rules = Rules.from_config(config, loaded.index)
        async with contextlib.AsyncExitStack() as stack:
            store = await asyncio.to_thread(open_store, state_url(config))
            stack.push_async_callback(asyncio.to_thread, store.close)
            await asyncio.to_thread(store.sync_feeds, feed_specs(config), clock())
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))
            poll = config.poll
            fetcher = await stack.enter_async_context(
                Fetcher(
                    concurrency=poll.concurrency,
                    per_host=poll.per_host,
                    timeout=poll.timeout.total_seconds(),
                    max_bytes=poll.max_bytes,
                    user_agent=poll.user_agent,
                    clock=clock,
                )
            )
            channels = build_channels(
                config.channels, http=http, out=out, tz=config.zone, render=render_context(loaded)
            )
            poller = Poller(
                config=config,
                rules=rules,
                store=store,
                fetcher=fetcher,
                clock=clock,
                rng=rng,
                stats=PollStats(),
            )
            app = cls(
                loaded=loaded,
                store=store,
                http=http,
                fetcher=fetcher,
                channels=channels,
                poller=poller,
                pool=PollPool(poller, slots=poll.concurrency, per_host=poll.per_host),
                deliverer=Deliverer(
                    store,
                    channels,
                    targets=rules.targets,
                    clock=clock,
                    rng=rng,
                    max_items=config.digest_defaults.max_items,
                ),
                clock=clock,
                rng=rng,
                out=out,
            )
            # The channels of the moment (a reload may have replaced them).
            stack.push_async_callback(app._close_channels)
            await asyncio.to_thread(app.poller.backfill_rules)
            yield app

    async def _close_channels(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()

    async def reload(self, loaded: LoadedConfig) -> None:
        """Swap in a new, already validated configuration."""
        config = loaded.config
        if state_url(config) != state_url(self.config):
            log.warning("the 'state' setting changed; it takes effect after a restart")
        fetch_settings = ("timeout", "max_bytes", "user_agent")
        changed = [
            k for k in fetch_settings if getattr(config.poll, k) != getattr(self.config.poll, k)
        ]
        if changed:
            log.warning("poll.%s changed; it takes effect after a restart", ", poll.".join(changed))
        rules = Rules.from_config(config, loaded.index)
        # Channels render with the templates and time zone: rebuild them when
        # any of those changed (a `timezone:` edit must reach every message).
        rendering = (config.channels, config.timezone, config.templates)
        if rendering != (self.config.channels, self.config.timezone, self.config.templates):
            old = self.channels
            self.channels = build_channels(
                config.channels,
                http=self.http,
                out=self.out,
                tz=config.zone,
                render=render_context(loaded),
            )
            self.deliverer.channels = self.channels
            for channel in old.values():
                await channel.aclose()
        # The pool's limits apply at once; the fetcher's own (a second
        # guard) keep their start-up values.
        self.pool.slots = min(config.poll.concurrency, self.config.poll.concurrency)
        self.pool.per_host = min(config.poll.per_host, self.config.poll.per_host)
        if (config.poll.concurrency, config.poll.per_host) > (
            self.config.poll.concurrency,
            self.config.poll.per_host,
        ):
            log.warning("raising poll.concurrency or poll.per_host takes effect after a restart")
        self.deliverer.targets = rules.targets
        self.deliverer.max_items = config.digest_defaults.max_items
        await asyncio.to_thread(self.poller.reconfigure, config, rules)
        await asyncio.to_thread(self.poller.backfill_rules)
        self.loaded = loaded
        log.info(
            "configuration reloaded: %d feeds, %d rules, %d channels",
            len(config.feeds),
            len(rules.index.rule_names),
            len(config.channels),
        )


class Daemon:
    """Runs an App until SIGTERM/SIGINT."""

    def __init__(
        self,
        app: App,
        *,
        poll_tick: timedelta = POLL_TICK,
        deliver_tick: timedelta = DELIVER_TICK,
        reload_tick: timedelta = RELOAD_TICK,
    ) -> None:
        self.app = app
        app.pool.tick = poll_tick.total_seconds()
        app.pool.on_outcome = self._polled
        self._periods = {
            "poll": poll_tick,
            "deliver": deliver_tick,
            "digest": DIGEST_TICK,
            "reload": reload_tick,
            "maintenance": MAINTENANCE_TICK,
        }
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._fingerprint = app.loaded.fingerprint()
        self._bad_fingerprint: object = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                pass
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._reload_now)
            installed.append(signal.SIGHUP)

        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                # A tick that was missed (laptop asleep, loop busy) runs once
                # late rather than being dropped or replayed many times.
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,
            },
        )
        now = datetime.now(UTC)
        for name, job in (
            ("poll", self._tick_poll),
            ("deliver", self._tick_deliver),
            ("digest", self._tick_digest),
            ("reload", self._tick_reload),
            ("maintenance", self._tick_maintenance),
        ):
            seconds = self._periods[name].total_seconds()
            scheduler.add_job(job, "interval", seconds=seconds, id=name, next_run_time=now)
        config = self.app.config
        stats = self.app.poller.rules.index.stats()
        log.info(
            "newswatch running: %d feeds, %d rules (%d evaluated on every article), "
            "%d channels, state %s",
            len(config.feeds),
            stats.rules,
            stats.always_candidates,
            len(self.app.channels),
            safe_url(state_url(config)),
        )
        scheduler.start()
        try:
            await self._stop.wait()
        finally:
            log.info("stopping: finishing in-flight work")
            scheduler.shutdown(wait=False)
            await self._drain_tasks()
            for sig in installed:
                loop.remove_signal_handler(sig)
            log.info("stopped")

    async def _drain_tasks(self) -> None:
        tasks = [t for t in self._tasks.values() if not t.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE.total_seconds())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ ticks

    def _start(self, name: str, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._stop.is_set():
            return
        running = self._tasks.get(name)
        if running is not None and not running.done():
            return  # the previous one is still at work; it picks up what is due
        self._tasks[name] = asyncio.get_running_loop().create_task(make(), name=name)

    async def _tick_poll(self) -> None:
        self._start("poll", self._poll_loop)

    async def _tick_deliver(self) -> None:
        self._start("deliver", self._deliver_once)

    async def _tick_reload(self) -> None:
        self._start("reload", self._reload_if_changed)

    async def _tick_digest(self) -> None:
        self._start("digest", self._digest_once)

    async def _tick_maintenance(self) -> None:
        self._start("maintenance", self._prune_once)

    def _reload_now(self) -> None:
        self._fingerprint = ()
        self._start("reload", self._reload_if_changed)

    async def _poll_loop(self) -> None:
        """The poll pool, until stopped; the poll tick restarts it if it
        ever fails (the failure is logged, feeds in flight are released)."""
        try:
            await self.app.pool.run(self._stop)
        except Exception:
            log.exception("the poll pool failed; restarting it on the next tick")

    def _polled(self, outcome: FeedOutcome) -> None:
        # New alerts should not wait for the next deliver tick.
        if outcome.new_alerts:
            self._start("deliver", self._deliver_once)

    async def _deliver_once(self) -> None:
        try:
            await self.app.deliverer.deliver_due()
        except Exception:
            log.exception("deliver tick failed")

    async def _digest_once(self) -> None:
        app = self.app
        config = app.config
        try:
            now = app.clock()
            mutes = await asyncio.to_thread(app.store.mutes, now)
            done = await asyncio.to_thread(
                run_digests,
                app.store,
                app.poller.rules.targets,
                mutes,
                now,
                max_items=config.digest_defaults.max_items,
                send_empty=config.digest_defaults.send_empty,
            )
        except Exception:
            log.exception("digest tick failed")
            return
        if any(outcome.notifications for _, outcome in done):
            self._start("deliver", self._deliver_once)

    async def _prune_once(self) -> None:
        retention = self.app.config.retention
        if not isinstance(retention, timedelta):
            return
        before = self.app.clock() - retention
        articles = outbox = 0
        try:
            while not self._stop.is_set():
                gone = await asyncio.to_thread(self.app.store.prune, before)
                articles += gone.articles
                outbox += gone.outbox
                if gone.articles < PRUNE_BATCH:
                    break
        except Exception:
            log.exception("retention: pruning old articles failed")
        if articles:
            log.info(
                "retention: forgot %d articles not seen since %s (and %d settled alerts)",
                articles,
                before.strftime("%Y-%m-%d"),
                outbox,
            )

    async def _reload_if_changed(self) -> None:
        loaded = self.app.loaded
        fingerprint = loaded.fingerprint()
        if fingerprint == self._fingerprint or fingerprint == self._bad_fingerprint:
            return
        try:
            new = await asyncio.to_thread(load_config, loaded.path)
        except ConfigError as exc:
            # A bad edit never stops the daemon: keep running the last good
            # configuration and say exactly what is wrong.
            self._bad_fingerprint = fingerprint
            log.error(
                "configuration not reloaded, still running the previous one:\n  %s",
                "\n  ".join(exc.problems),
            )
            return
        self._fingerprint = new.fingerprint()
        self._bad_fingerprint = None
        await self.app.reload(new)


def safe_url(url: str) -> str:
    """A state URL for logs: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable state URL)"
