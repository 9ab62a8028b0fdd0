"""`Database.chain`: dependent reads together, with work done on the caller's thread
while a `Meanwhile` query runs (how a Postgres restore applies its checkpoint while
the tail after it is read)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ystores import open_store
from ystores.sql import dispose_databases
from ystores.sql.database import Database, Meanwhile, Reads

pytestmark = pytest.mark.anyio


async def database(url: str) -> Database:
    store = open_store(url, "doc")
    await store.write(b"\x00\x00")
    return await store.database()  # type: ignore[attr-defined, no-any-return]


async def test_postgres_runs_a_meanwhile_query_while_the_work_runs(postgres_db: str) -> None:
    """The query is on the server before the work starts: a one-second query and a
    one-second work take about one second together, never the two in turn."""
    db = await database(postgres_db)
    seen: list[str] = []

    def work() -> None:
        seen.append("work")
        time.sleep(1.0)

    def reads() -> Reads[tuple[Any, Any]]:
        first = yield "SELECT 1", ()
        second = yield Meanwhile("SELECT pg_sleep(1.0), 2", (), work)
        return first[0][0], second[0][1]

    # A connection's first run of a statement prepares it (a round trip) before
    # sending it, so the first chain may not overlap: the next ones must.
    assert await db.chain(reads) == (1, 2)
    for _ in range(2):
        start = time.monotonic()
        assert await db.chain(reads) == (1, 2)
        elapsed = time.monotonic() - start
        assert elapsed < 1.8, f"the query and the work ran one after the other ({elapsed:.2f} s)"
    assert seen == ["work"] * 3
    await dispose_databases()


async def test_a_failing_work_fails_the_chain_and_leaves_the_database_usable(db_url: str) -> None:
    db = await database(db_url)
    ran: list[str] = []

    def work() -> None:
        ran.append("work")
        raise RuntimeError("the checkpoint did not apply")

    def reads() -> Reads[Any]:
        return (yield Meanwhile("SELECT 7", (), work))

    for _ in range(24):  # more than the pool holds: every connection went back
        with pytest.raises(RuntimeError, match="did not apply"):
            await db.chain(reads)
    assert ran == ["work"] * 24
    assert [tuple(row) for row in await db.fetch("SELECT 8", ())] == [(8,)]
    await dispose_databases()


async def test_every_work_runs_in_order_on_the_callers_thread(db_url: str) -> None:
    db = await database(db_url)
    threads: list[int] = []
    order: list[int] = []

    def work(n: int) -> None:
        threads.append(threading.get_ident())
        order.append(n)

    def reads() -> Reads[list[int]]:
        found = []
        for n in (1, 2, 3):
            rows = yield Meanwhile(f"SELECT {n}", (), lambda n=n: work(n))  # type: ignore[misc]
            found.append(int(rows[0][0]))
        return found

    assert await db.chain(reads) == [1, 2, 3]
    assert order == [1, 2, 3]
    assert set(threads) == {threading.get_ident()}
    await dispose_databases()
