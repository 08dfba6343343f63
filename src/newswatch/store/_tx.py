"""What every role of the store shares: a transaction per call, and chunked
``IN (...)`` lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from sqlalchemy.engine import Connection

# Keys per IN (...) list: far below SQLite's bound-parameter limit (32766
# since 3.32, 999 before) and PostgreSQL's (65535).
IN_CHUNK = 500

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = IN_CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Transactional:
    """A store role: each public method runs in one ``_tx`` transaction.

    ``quick``: a write that need not wait for another process's lock beyond
    SQLite's busy timeout (releasing or renewing leases, which expire
    anyway): shutdown must not hang on a lock for a minute.
    """

    def _tx(self, *, write: bool, quick: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError
