"""Database timeouts: configuration, and a SQLite file locked by another process.

Regression: a write waited 60 s for another process's lock, whatever the caller
wanted. Now `statement_timeout` (SQLite's busy timeout) and `write_timeout`
bound it, the error is a `StoreConnectionError` that says nothing was stored,
and writing works again once the lock is released.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest
from sqlalchemy.engine import make_url

from ystores import InvalidStoreURLError, StoreConnectionError, open_store
from ystores.sql import PostgresYStore, SQLiteYStore
from ystores.sql.timeouts import Timeouts

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def updates(count: int) -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    found = []
    for i in range(count):
        before = doc.get_state()
        text += str(i % 10)
        found.append(doc.get_update(before))
    return found


def test_defaults_and_url_parameters() -> None:
    assert Timeouts() == Timeouts(connect=10.0, statement=10.0, write=15.0)
    store = PostgresYStore("d", url="postgresql://u@h/db?write_timeout=3&connect_timeout=0.5")
    assert Timeouts.from_url(store.database_url) == Timeouts(connect=0.5, statement=10.0, write=3.0)
    # the constructor argument wins over the URL
    store = PostgresYStore("d", url="postgresql://u@h/db?write_timeout=3", write_timeout=7)
    assert Timeouts.from_url(store.database_url).write == 7.0
    sqlite = open_store("sqlite:////tmp/x.db?statement_timeout=2.5", "d")
    assert isinstance(sqlite, SQLiteYStore)
    assert Timeouts.from_url(sqlite.database_url).statement == 2.5
    assert make_url(str(sqlite.database_url)).query["statement_timeout"] == "2.5"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db?write_timeout=0",
        "postgresql://u@h/db?connect_timeout=-1",
        "postgresql://u@h/db?statement_timeout=soon",
        "sqlite:////tmp/x.db?write_timeout=inf",
    ],
)
def test_a_bad_timeout_is_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError, match="positive number of seconds"):
        open_store(url, "d")


def test_a_bad_constructor_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURLError, match="positive number of seconds"):
        SQLiteYStore("d", db_path=tmp_path / "x.db", write_timeout=0)


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, held until told
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


class Locker:
    """Another process holding the SQLite file's write lock until released."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.process.communicate("\n", timeout=60)


async def test_a_database_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    written = updates(4)
    store = SQLiteYStore("doc", db_path=path, statement_timeout=1, write_timeout=3)
    await store.write(written[0])
    locker = Locker(path)
    try:
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match="locked") as caught:
            await store.write(written[1])
        assert time.monotonic() - started < 3 + 5  # within write_timeout, with room
        assert not caught.value.commit_unknown  # SQLite rolled it back: nothing stored
    finally:
        locker.release()
    await store.write(written[2])  # the lock is gone: the store works again
    await store.write(written[3])
    counts = Counter([update async for update, _m, _t in store.read()])
    assert counts == Counter([written[0], written[2], written[3]])
    await store.aclose()


async def stored(store: SQLiteYStore) -> Counter[bytes]:
    return Counter([update async for update, _m, _t in store.read()])


async def wait_for(store: SQLiteYStore, update: bytes) -> Counter[bytes]:
    db = await store.database()
    with anyio.fail_after(60):
        while db.in_doubt or db._detached or (await stored(store))[update] == 0:
            await anyio.sleep(0.05)
    return await stored(store)


async def test_a_write_past_its_timeout_is_resolved_once_the_lock_goes(tmp_path: Path) -> None:
    path = tmp_path / "slow.db"
    written = updates(3)
    # The lock is waited for longer than the write may take: the outcome is unknown.
    store = SQLiteYStore("doc", db_path=path, statement_timeout=30, write_timeout=1)
    await store.write(written[0])
    locker = Locker(path)
    try:
        with pytest.raises(StoreConnectionError) as caught:
            await store.write(written[1])
        assert caught.value.commit_unknown
    finally:
        locker.release()
    counts = await wait_for(store, written[1])
    await store.write(written[2])
    counts = await stored(store)
    assert counts == Counter(written)  # each exactly once
    await store.aclose()


async def test_a_cancelled_sqlite_write_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "cancel.db"
    written = updates(2)
    store = SQLiteYStore("doc", db_path=path, statement_timeout=1, write_timeout=3)
    await store.write(written[0])
    locker = Locker(path)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError), anyio.fail_after(0.3):
            await store.write(written[1])
        assert time.monotonic() - started < 0.3 + 3  # the caller left at its deadline
        await anyio.sleep(2)  # the flush fails on the lock meanwhile: the record waits
    finally:
        locker.release()
    counts = await wait_for(store, written[1])
    assert counts == Counter(written)
    await store.aclose()
