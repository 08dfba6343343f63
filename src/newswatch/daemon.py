"""The long-running process: wiring, APScheduler ticks, signals, live
reload, the HTTP listener and shutdown.

APScheduler is only a timer here. It holds fixed jobs (poll, deliver,
digest, maintenance ticks); each tick starts at most one background task of
its kind, so a slow poll never stacks up behind itself. Everything that must
survive a restart (what is due, what was seen, what is still to send) is in
the database.

Reloads (``watch.Reloader``: file events and SIGHUP) build the new rules,
targets and channels first, then swap them in at once (``App.reload``).
SIGTERM stops the ticks (no new claims), cancels polls at once (their
leases are released), gives sends in flight ``shutdown_grace`` to finish,
then cancels the rest (released too) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TextIO

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url

from newswatch.config import Config, LoadedConfig
from newswatch.feeds.fetch import Fetcher
from newswatch.feeds.parsepool import make_parser
from newswatch.health import Heartbeats, loop_limit
from newswatch.leases import Owner, pid_alive, stale_owners
from newswatch.logs import config_secrets, cycle_line, secret_mask
from newswatch.metrics import Metrics, cycle_from_outcomes
from newswatch.notify.channels import Channel, build_channels
from newswatch.notify.deliver import SEND_TIMEOUT, Deliverer, more_at_once
from newswatch.notify.digests import run_digests
from newswatch.notify.render import RenderContext
from newswatch.notify.templates import Templates
from newswatch.poll import FeedOutcome, LazyParser, Poller, PollPool, PollStats, Rules, feed_specs
from newswatch.reloads import config_diff
from newswatch.store.errors import StateBusyError
from newswatch.store.sql import PRUNE_BATCH, SqlStore, open_store
from newswatch.watch import Reloader
from newswatch.web import HttpListener, Runtime, create_app

log = logging.getLogger("newswatch.daemon")

# Tick periods. Feeds have their own intervals (stored next_poll_at); the
# poll tick only looks for feeds that are due, so it can be short.
POLL_TICK = timedelta(seconds=5)
DELIVER_TICK = timedelta(seconds=2)
# Without file watching (watch=False, or watchfiles unavailable) the config
# files' mtimes are looked at this often.
RELOAD_TICK = timedelta(seconds=3)
# Digests: fire times are on the minute; a 20 s tick sends them within it.
DIGEST_TICK = timedelta(seconds=20)
# Retention: forget old articles this often (and once at start-up).
MAINTENANCE_TICK = timedelta(hours=1)
# A store that takes longer than this to answer a ping is not ready.
PING_TIMEOUT_S = 2.0
# Loops whose progress /readyz watches.
WATCHED_LOOPS = ("poll", "deliver", "digest")


def utcnow() -> datetime:
    return datetime.now(UTC)


def state_url(config: Config) -> str:
    """NEWSWATCH_STATE overrides the configured state URL (containers, tests)."""
    return os.environ.get("NEWSWATCH_STATE") or config.state


def newswatch_version() -> str:
    try:
        return version("newswatch")
    except PackageNotFoundError:  # running from a source tree
        return "dev"


def render_context(loaded: LoadedConfig) -> RenderContext:
    """Templates (the user's folder over the shipped ones) and the wall clock."""
    config = loaded.config
    user_dir = None
    if config.templates:
        user_dir = (loaded.path.resolve().parent / config.templates).resolve()
    return RenderContext(
        tz=config.zone, templates=Templates(user_dir), config_name=str(loaded.path)
    )


def free_stale_leases(store: SqlStore, me: Owner, now: datetime) -> None:
    """Free the leases of newswatch processes on this host that are gone
    (``kill -9``, a crash, a power cut), so their feeds and notifications
    are taken up at once instead of after their leases."""
    stale = stale_owners(store.lease_owners(now), me, pid_alive)
    if not stale:
        return
    feeds, notes = store.free_leases(stale)
    log.info(
        "freed the leases of %d stopped newswatch process(es) on this host: "
        "%d feed(s), %d notification(s) resume now",
        len(stale),
        feeds,
        notes,
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
    metrics: Metrics
    clock: Callable[[], datetime]
    rng: random.Random
    out: TextIO | None
    # Channels a reload replaced: closed once no delivery round uses them.
    retired: list[Channel] = field(default_factory=list)

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
        secret_mask.set(config_secrets(config))
        rng = rng or random.Random()
        rules = Rules.from_config(config, loaded.index)
        owner = Owner.this_process()
        async with contextlib.AsyncExitStack() as stack:
            store = await asyncio.to_thread(open_store, state_url(config))
            stack.push_async_callback(asyncio.to_thread, store.close)
            await asyncio.to_thread(store.sync_feeds, feed_specs(config), clock())
            await asyncio.to_thread(free_stale_leases, store, owner, clock())
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
            metrics = Metrics(version=newswatch_version(), store=store, clock=clock)
            # Feeds are parsed in worker processes (one per core, each parse
            # with a deadline), started on the first parse.
            parser = LazyParser(make_parser)
            stack.push_async_callback(parser.aclose)
            poller = Poller(
                parser=parser,
                config=config,
                rules=rules,
                store=store,
                fetcher=fetcher,
                clock=clock,
                rng=rng,
                stats=PollStats(),
                owner=str(owner),
            )
            deliverer = Deliverer(
                store,
                channels,
                targets=rules.targets,
                clock=clock,
                rng=rng,
                max_items=config.digest_defaults.max_items,
                owner=str(owner),
            )
            deliverer.observer = metrics.notification
            app = cls(
                loaded=loaded,
                store=store,
                http=http,
                fetcher=fetcher,
                channels=channels,
                poller=poller,
                pool=PollPool(poller, slots=poll.concurrency, per_host=poll.per_host),
                deliverer=deliverer,
                metrics=metrics,
                clock=clock,
                rng=rng,
                out=out,
            )
            # The channels of the moment (a reload may have replaced them).
            stack.push_async_callback(app._close_channels)
            await asyncio.to_thread(app.poller.backfill_rules)
            yield app

    async def _close_channels(self) -> None:
        await self.close_retired()
        for channel in self.channels.values():
            await channel.aclose()

    async def close_retired(self) -> None:
        retired, self.retired = self.retired, []
        for channel in retired:
            with contextlib.suppress(Exception):
                await channel.aclose()

    async def reload(self, loaded: LoadedConfig) -> None:
        """Swap in a new, already validated configuration.

        Everything is built first; then rules, targets, channels and feeds
        are swapped in one step (no await in between), so a poll or a
        delivery round sees the old configuration or the new one, never a
        mix. The store learns the new feed list right after (new feeds are
        due at once), and rules that ask for a backfill run it.
        """
        old = self.config
        config = loaded.config
        diff = config_diff(old, config)
        restart = list(diff.restart_only)
        if state_url(config) != state_url(old) and "state" not in restart:
            restart.insert(0, "state")
        rules = Rules.from_config(config, loaded.index)
        # Channels render with the templates and time zone: rebuild them when
        # any of those changed (a `timezone:` edit must reach every message).
        channels = self.channels
        rendering = (config.channels, config.timezone, config.templates)
        if rendering != (old.channels, old.timezone, old.templates):
            channels = build_channels(
                config.channels,
                http=self.http,
                out=self.out,
                tz=config.zone,
                render=render_context(loaded),
            )
            # A delivery round in progress keeps using the old ones until it ends.
            self.retired.extend(self.channels.values())
        # --- the swap: no await from here to the end of the block
        self.loaded = loaded
        self.channels = channels
        self.deliverer.channels = channels
        self.deliverer.targets = rules.targets
        self.deliverer.max_items = config.digest_defaults.max_items
        self.poller.config = config
        self.poller.rules = rules
        secret_mask.set(config_secrets(config))
        # ---
        await asyncio.to_thread(self.store.sync_feeds, feed_specs(config), self.clock())
        for name in restart:
            log.warning("%s changed; it takes effect after a restart", name)
        log.info(
            "configuration reloaded (%d feeds, %d rules, %d channels): %s",
            len(config.feeds),
            len(rules.index.rule_names),
            len(config.channels),
            diff.describe(),
        )
        await asyncio.to_thread(self.poller.backfill_rules)


class Daemon:
    """Runs an App until SIGTERM/SIGINT; serves its status page if configured."""

    def __init__(
        self,
        app: App,
        *,
        poll_tick: timedelta = POLL_TICK,
        deliver_tick: timedelta = DELIVER_TICK,
        reload_tick: timedelta = RELOAD_TICK,
        watch: bool = True,
        http: bool = True,
    ) -> None:
        self.app = app
        app.pool.tick = poll_tick.total_seconds()
        app.pool.on_cycle = self._poll_cycle
        app.pool.on_outcome = self._polled
        app.pool.on_beat = self._poll_beat
        self._periods = {
            "poll": poll_tick,
            "deliver": deliver_tick,
            "digest": DIGEST_TICK,
            "maintenance": MAINTENANCE_TICK,
        }
        self._stop = asyncio.Event()
        self._stopping = False
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.heartbeats = Heartbeats(WATCHED_LOOPS)
        app.metrics.ticks = self.heartbeats.ages
        self.started_at = app.clock()
        self.reloader = Reloader(
            app,
            clock=app.clock,
            on_result=lambda ok: app.metrics.reloaded(ok, app.clock()),
            watch=watch,
            poll_every=reload_tick,
        )
        self.listener: HttpListener | None = None
        settings = app.config.http
        if http and settings is not None:
            self.listener = HttpListener(create_app(self), settings.host, settings.port)

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ run

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
            loop.add_signal_handler(signal.SIGHUP, self.reloader.request)
            installed.append(signal.SIGHUP)
        try:
            await self._serve(loop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.listener is not None:
            await self._start_listener(self.listener)
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
            ("maintenance", self._tick_maintenance),
        ):
            seconds = self._periods[name].total_seconds()
            scheduler.add_job(job, "interval", seconds=seconds, id=name, next_run_time=now)
        config = self.app.config
        stats = self.app.poller.rules.index.stats()
        log.info(
            "newswatch %s running: %d feeds, %d rules (%d evaluated on every article), "
            "%d channels, state %s",
            newswatch_version(),
            len(config.feeds),
            stats.rules,
            stats.always_candidates,
            len(self.app.channels),
            safe_url(state_url(config)),
        )
        reloads = loop.create_task(self.reloader.run(self._stop), name="reload")
        scheduler.start()
        try:
            await self._stop.wait()
        finally:
            self._stopping = True
            grace = self.app.config.shutdown_grace
            log.info(
                "stopping: no new polls or sends; sends in flight get %gs to finish",
                grace.total_seconds(),
            )
            scheduler.shutdown(wait=False)
            self.app.deliverer.stopping = True
            self._stop.set()
            await self._drain_tasks(grace)
            await asyncio.gather(reloads, return_exceptions=True)
            if self.listener is not None:
                await self.listener.stop()
            log.info("stopped")

    async def _start_listener(self, listener: HttpListener) -> None:
        settings = self.app.config.http
        assert settings is not None
        try:
            host, port = listener.bind()
        except OSError as exc:
            raise SystemExit(
                f"newswatch: cannot listen on {settings.listen}: {exc.strerror or exc}"
            ) from None
        shown = f"[{host}]" if ":" in host else host
        if settings.loopback:
            log.info("status page on http://%s:%d/ (loopback only)", shown, port)
        else:
            assert settings.auth is not None
            kind = "a bearer token" if settings.auth.token else "basic auth"
            log.warning(
                "status page on http://%s:%d/, reachable from other hosts: "
                "the page and /metrics require %s (http.auth); /healthz and /readyz are open",
                shown,
                port,
                kind,
            )
        await listener.start()

    async def _drain_tasks(self, grace: timedelta) -> None:
        # Polls and the rest stop now: cancelled, they release their leases.
        # Sends in flight get the grace period.
        sends = [t for name, t in self._tasks.items() if name == "deliver" and not t.done()]
        others = [t for name, t in self._tasks.items() if name != "deliver" and not t.done()]
        for task in others:
            task.cancel()
        pending: set[asyncio.Task[Any]] = set(others)
        if sends:
            _, late = await asyncio.wait(sends, timeout=grace.total_seconds())
            for task in late:
                task.cancel()
            pending |= late
        await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ status (web.Source)

    def loaded(self) -> LoadedConfig:
        return self.app.loaded

    def now(self) -> datetime:
        return self.app.clock()

    @property
    def store(self) -> SqlStore:
        return self.app.store

    @property
    def metrics(self) -> Metrics:
        return self.app.metrics

    def runtime(self) -> Runtime:
        return Runtime(
            version=newswatch_version(),
            started_at=self.started_at,
            reloaded_at=self.reloader.reloaded_at,
            config_problems=self.reloader.problems,
            config_error_at=self.reloader.error_at,
            failing_channels=self.app.deliverer.failing,
            stale_loops=tuple(self.heartbeats.stale(self.loop_limits())),
        )

    def loop_limits(self) -> dict[str, float]:
        """Seconds without progress after which each watched loop is stale."""
        config = self.app.config
        return {
            # A cycle waits for the slowest fetch (poll.timeout), then parses and stores.
            "poll": loop_limit(self._periods["poll"], 2 * config.poll.timeout),
            "deliver": loop_limit(self._periods["deliver"], SEND_TIMEOUT),
            "digest": loop_limit(self._periods["digest"]),
        }

    async def readiness(self) -> list[str]:
        if self._stopping:
            return ["shutting down"]
        failed = []
        ages = self.heartbeats.ages()
        limits = self.loop_limits()
        for name in self.heartbeats.stale(limits):
            failed.append(
                f"{name} loop made no progress for {ages[name]:.0f}s (limit {limits[name]:.0f}s)"
            )
        try:
            await asyncio.wait_for(asyncio.to_thread(self.app.store.ping), PING_TIMEOUT_S)
        except TimeoutError:
            failed.append(f"state database did not answer within {PING_TIMEOUT_S:g}s")
        except Exception as exc:
            failed.append(f"state database unreachable ({type(exc).__name__})")
        return failed

    # ------------------------------------------------------------------ ticks

    def _start(self, name: str, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._stop.is_set():
            return
        running = self._tasks.get(name)
        if running is not None and not running.done():
            return  # the previous one is still at work; it picks up what is due
        self.heartbeats.started(name)
        task = asyncio.get_running_loop().create_task(make(), name=name)
        task.add_done_callback(lambda _: self.heartbeats.finished(name))
        self._tasks[name] = task

    async def _tick_poll(self) -> None:
        self._start("poll", self._poll_loop)

    async def _tick_deliver(self) -> None:
        self._start("deliver", self._deliver_once)

    async def _tick_digest(self) -> None:
        self._start("digest", self._digest_once)

    async def _tick_maintenance(self) -> None:
        self._start("maintenance", self._prune_once)

    async def _poll_loop(self) -> None:
        """The poll pool, until stopped; the poll tick restarts it if it
        ever fails (the failure is logged, feeds in flight are released)."""
        try:
            await self.app.pool.run(self._stop)
        except Exception:
            log.exception("the poll pool failed; restarting it on the next tick")

    def _poll_beat(self) -> None:
        # The pool runs for good: each turn of its loop is progress.
        self.heartbeats.started("poll")
        self.heartbeats.finished("poll")

    def _polled(self, outcome: FeedOutcome) -> None:
        # New alerts should not wait for the next deliver tick.
        if outcome.new_alerts:
            self._start("deliver", self._deliver_once)

    def _poll_cycle(self, outcomes: Sequence[FeedOutcome], seconds: float) -> None:
        """One line and the metrics for each pass over the due feeds."""
        level, line = cycle_line(outcomes, seconds)
        log.log(level, "%s", line)
        cycle = cycle_from_outcomes(outcomes, seconds)
        rules = Counter(rule for o in outcomes for rule in o.matched_rules)
        self.app.metrics.poll_cycle(dataclasses.replace(cycle, matches=dict(rules)))

    async def _deliver_once(self) -> None:
        deliverer = self.app.deliverer
        try:
            # Channels a reload replaced: no round uses them now (one at a time).
            await self.app.close_retired()
            # Rounds follow each other while they are full and clean (a burst
            # went at 50 notifications a tick before).
            while not self._stop.is_set():
                stats = await deliverer.deliver_due()
                if not more_at_once(stats, deliverer.batch):
                    break
        except StateBusyError as exc:
            log.warning("deliver tick skipped: %s", exc)
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
        except StateBusyError as exc:
            log.warning("digest tick skipped: %s", exc)
            return
        except Exception:
            log.exception("digest tick failed")
            return
        if any(outcome.notifications for _, outcome in done):
            self._start("deliver", self._deliver_once)

    async def _prune_once(self) -> None:
        await self._prune_story_bands()
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
        except StateBusyError as exc:
            log.warning("retention skipped: %s", exc)
        except Exception:
            log.exception("retention: pruning old articles failed")
        if articles:
            log.info(
                "retention: forgot %d articles not seen since %s (and %d settled alerts)",
                articles,
                before.strftime("%Y-%m-%d"),
                outbox,
            )

    async def _prune_story_bands(self) -> None:
        """Forget the LSH bands of stories last seen before the clustering
        window: no copy can join them any more (issue 9)."""
        before = self.app.clock() - self.app.config.stories.window
        try:
            gone = await asyncio.to_thread(self.app.store.prune_story_bands, before)
        except Exception:
            log.exception("stories: pruning old bands failed")
            return
        if gone:
            log.info("stories: forgot %d bands of stories not seen since %s", gone, before)


def safe_url(url: str) -> str:
    """A state URL for logs: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable state URL)"
