"""Idempotency keys of notifications. Pure.

A notification's key is the same on every retry and distinct between
notifications: it becomes the webhook ``Idempotency-Key``, the email
Message-ID, the Matrix transaction id. It is derived from what the
notification is (its rows, or its digest period), so recomposing the same
rows after a crash gives the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime


def short_hash(parts: Iterable[object], length: int = 32) -> str:
    text = "\0".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def group_key(channel: str, row_ids: Iterable[int]) -> str:
    """An immediate notification (alert, group, summary) of outbox rows."""
    return "nw-" + short_hash([channel, *sorted(row_ids)])


def digest_key(digest: str, period_end: datetime, number: int = 0) -> str:
    """Part ``number`` of the digest ``digest`` for the period ending then."""
    return "nwd-" + short_hash([digest, period_end.isoformat(), number])


def feed_key_for(source: str) -> str:
    """A feed's key in the store: a hash of its source (URL, or file:// URI).
    The URL may carry credentials; it stays in the configuration."""
    return "f-" + short_hash([source])
