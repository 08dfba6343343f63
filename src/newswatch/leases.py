"""Who holds a lease, and which holders are gone.

Feeds and notifications are leased while a process works on them. A lease
is short and renewed while the work runs (``Renewer``), so the rows of a
process that died come back within one lease. A restarted process can do
better: each lease records its owner, ``host:pid:token``, and a process
starting on the same host frees, before its first claim, the leases of
owners whose process no longer exists. So after ``kill -9`` and a restart
the work resumes at once, not after the lease.

A lease whose owner is on another host (a replica) or still running is
never touched: only its expiry frees it. ``stale_owners`` is pure; the
caller passes the host, its own owner and a liveness check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from newswatch.store.errors import StateError

log = logging.getLogger("newswatch.leases")


@dataclass(frozen=True, slots=True)
class Owner:
    """A lease holder: a process on a host. ``token`` tells two processes
    apart that got the same pid (a container's pid 1, restarted)."""

    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest)

    @classmethod
    def this_process(cls) -> Owner:
        # The host name is cut to what the lease_owner column holds.
        return cls(socket.gethostname()[:100], os.getpid(), secrets.token_hex(6))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user
        return True
    except OSError:
        return True  # unknown: assume alive, so its leases are never taken
    return True


def stale_owners(owners: Iterable[str], me: Owner, alive: Callable[[int], bool]) -> list[str]:
    """The owners among ``owners`` known to be gone: on this host, and either
    a pid that no longer runs, or this very pid with another token (our
    predecessor, when pids restart from the same number). Sorted."""
    gone = []
    for text in owners:
        owner = Owner.parse(text)
        if owner is None or owner.host != me.host or owner == me:
            continue
        if owner.pid == me.pid or not alive(owner.pid):
            gone.append(text)
    return sorted(gone)


class Renewer:
    """Keeps the leases of work in flight ahead of the clock.

    ``keys()`` is what is in flight now; every ``lease / 3`` the leases of
    those are set to ``clock() + lease`` by ``renew(keys, until)`` (a store
    call, awaited). A failed renewal is logged and tried again next period:
    the lease has two more periods to live.
    """

    def __init__(
        self,
        *,
        lease: timedelta,
        keys: Callable[[], Collection[str]],
        renew: Callable[[list[str], datetime], Awaitable[None]],
        clock: Callable[[], datetime],
        what: str,
    ) -> None:
        if lease <= timedelta(seconds=3):
            raise ValueError(f"lease ({lease}) is too short to be renewed")
        self._lease = lease
        self._keys = keys
        self._renew = renew
        self._clock = clock
        self._what = what
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Renewer:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        period = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            keys = sorted(self._keys())
            if not keys:
                continue
            try:
                await self._renew(keys, self._clock() + self._lease)
            except Exception as exc:
                # A store error's text may quote statements; ours are one line.
                why = exc if isinstance(exc, StateError) else type(exc).__name__
                log.error("could not renew %d %s leases: %s", len(keys), self._what, why)
