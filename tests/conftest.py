"""Fixtures shared across test modules."""

from __future__ import annotations

import functools
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from newswatch.store import SqlStore, open_store

PG_URL = os.environ.get("NEWSWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # made once: loading the CA store costs


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The httpx client a test's channels share (loopback receivers)."""
    async with httpx.AsyncClient(verify=_tls()) as client:
        yield client


@functools.cache
def postgres_unreachable() -> str | None:
    """Why the test PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=2):
            return None
    except psycopg.Error as exc:
        url = sa.make_url(PG_URL)
        return f"PostgreSQL not reachable at {url.host}:{url.port or 5432}: {exc}".strip()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state database: a SQLite file, or a new schema in the test
    PostgreSQL (dropped afterwards); skipped with the reason when unreachable."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'newswatch.db'}"
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    name = f"nw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability matrix's figures (tests/test_reliability.py), when it ran."""
    module = sys.modules.get("test_reliability")
    matrix = getattr(module, "MATRIX", None)
    if matrix is None or not matrix.figures:
        return
    terminalreporter.write_line("")
    for line in matrix.lines():
        terminalreporter.write_line(line)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """An open store on ``store_url`` (both backends), closed afterwards."""
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def open_stores(store_url: str) -> Iterator[Callable[[int], list[SqlStore]]]:
    """Several stores on one database, as separate processes or replicas would be."""
    opened: list[SqlStore] = []

    def make(n: int) -> list[SqlStore]:
        new = [open_store(store_url) for _ in range(n)]
        opened.extend(new)
        return new

    yield make
    for s in opened:
        s.close()
