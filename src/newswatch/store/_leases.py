"""Lease owners: who holds the feeds and notifications leased right now, and
freeing the leases of owners known to be dead.

Leases are short and renewed while the work runs, so a process killed with
``kill -9`` frees its rows within one lease anyway. A restarted process does
better: it finds the leases its dead predecessor held (same host, a process
that no longer exists; ``newswatch.leases`` decides) and frees them before
its first claim, so it resumes at once. Freed notifications keep their
attempt count: the dead process may have reached the service, and the
retry carries the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from newswatch.store._tx import Transactional, chunks
from newswatch.store.base import NotificationStatus
from newswatch.store.schema import feeds, notifications


class LeaseMixin(Transactional):
    def lease_owners(self, now: datetime) -> set[str]:
        """Owners of the feed and notification leases held at ``now``."""
        f, n = feeds.c, notifications.c
        with self._tx(write=False) as conn:
            found = set(
                conn.execute(
                    select(f.lease_owner)
                    .where(f.lease_owner.is_not(None), f.lease_until >= now)
                    .distinct()
                ).scalars()
            )
            found.update(
                conn.execute(
                    select(n.lease_owner)
                    .where(
                        n.lease_owner.is_not(None),
                        n.status == NotificationStatus.SENDING.value,
                        n.lease_until >= now,
                    )
                    .distinct()
                ).scalars()
            )
        return {owner for owner in found if owner}

    def free_leases(self, owners: Sequence[str]) -> tuple[int, int]:
        """End every lease ``owners`` hold, as if it had expired: (feeds,
        notifications) freed. Only for owners that are gone."""
        wanted = sorted(set(owners))
        freed_feeds = freed_notes = 0
        if not wanted:
            return 0, 0
        f, n = feeds.c, notifications.c
        with self._tx(write=True) as conn:
            for chunk in chunks(wanted):
                freed_feeds += conn.execute(
                    update(feeds)
                    .where(f.lease_owner.in_(chunk), f.lease_until.is_not(None))
                    .values(lease_until=None, lease_owner=None)
                ).rowcount
                # Left in "sending" with no lease: the next claim takes it as
                # a crashed worker's (attempts kept).
                freed_notes += conn.execute(
                    update(notifications)
                    .where(
                        n.lease_owner.in_(chunk),
                        n.status == NotificationStatus.SENDING.value,
                    )
                    .values(lease_until=None, lease_owner=None)
                ).rowcount
        return freed_feeds, freed_notes
