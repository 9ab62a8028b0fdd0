"""Cancelling a Postgres store while it connects never leaves a connection behind.

A store's start opens connections (the schema check, the pool's, the writer's); a
caller may be cancelled at any point of it (a request timing out, a server
shutting down). Whatever the point, once the pool is disposed of, no connection
of this process may be left open on the server: one cut off half-way through its
handshake or between its checkout and its first use must be closed, not left to
the garbage collector (switched off here, so that nothing is cleaned up by luck).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

from backends import new_postgres_database
from ystores.sql import PostgresYStore, dispose_databases

pytestmark = pytest.mark.anyio

STEPS = 120


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SQL stores run on asyncio only


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _connections(admin: asyncpg.Connection, database: str) -> int:
    count = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return int(count)


async def _wait_for_zero(admin: asyncpg.Connection, database: str) -> int:
    """The connections left, once none are (a closed socket's backend takes a moment to
    go), or after 5 seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while (left := await _connections(admin, database)) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return left


async def _start_and_use(url: str, doc: str) -> None:
    async with PostgresYStore(doc, url=url) as store:
        await store.write(b"\x00\x00")
        [_ async for _ in store.read()]


async def _time_to_start(url: str) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _start_and_use(url, "warm")
    await dispose_databases()
    return loop.time() - started


async def test_a_store_cancelled_while_connecting_leaves_no_connection(no_gc: None) -> None:
    url = new_postgres_database()
    database = make_url(url).database
    assert database is not None
    admin = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(False)
    )
    try:
        # The cancel points sweep the whole start (schema check included, on a new
        # database), from the first await to past the first read.
        span = 1.5 * await _time_to_start(new_postgres_database())
        cancelled = 0
        for step in range(STEPS):
            task = asyncio.ensure_future(_start_and_use(url, f"doc-{step}"))
            await asyncio.sleep(span * step / STEPS)
            if not task.done():
                task.cancel()
                cancelled += 1
            await asyncio.wait([task])
            assert task.cancelled() or task.exception() is None
            await dispose_databases()
            left = await _wait_for_zero(admin, database)
            assert left == 0, f"{left} connection(s) left after a cancel at step {step}"
        # The sweep did cut starts short, at many points (about a third of the steps
        # land inside a start; how many exactly varies with the machine's load).
        assert cancelled >= STEPS // 5, f"only {cancelled} of {STEPS} starts were cut short"
    finally:
        await admin.close()
