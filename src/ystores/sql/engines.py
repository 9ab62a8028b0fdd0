"""SQLAlchemy async engines: how ystores connects, and one engine per database per loop.

asyncio only: aiosqlite, asyncpg and SQLAlchemy's async layer run on asyncio,
not on trio.

An async engine's connections belong to the event loop that opened them, so the
registry keys engines by (database URL, running loop). Every store of one
database in one loop shares one `Database` (engine, pool, group committer).
When the loop shuts down (`asyncio.run` cancels what is left), a keeper task
disposes of the engine; `dispose_databases()` does it on demand.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import StoreConnectionError, StoreStateError
from .timeouts import Timeouts, without_timeouts
from .urls import safe_url

__all__ = [
    "AUTO_VACUUM",
    "SQLITE_BUSY_TIMEOUT",
    "create_engine",
    "dispose_databases",
    "enable_wal",
    "running_loop",
    "shared",
]

SQLITE_BUSY_TIMEOUT = 60.0
"""Seconds a SQLite connection waits for another process's write lock before failing."""


AUTO_VACUUM = "PRAGMA auto_vacuum = INCREMENTAL"
"""Run on every connection: it takes effect in a new, empty database (ystores creates
them so), and lets `PRAGMA incremental_vacuum` give a squash's free pages back."""


def _sqlite_on_connect(timeouts: Timeouts) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The connection runs with sqlite3's autocommit (isolation_level None): ystores
        # opens transactions itself, with BEGIN IMMEDIATE, so that a writer takes the
        # write lock up front (waiting on busy_timeout) instead of failing to upgrade
        # a read lock half-way ("database is locked").
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeouts.statement * 1000)}")
            cursor.execute(AUTO_VACUUM)
            enable_wal(cursor, timeouts.connect)
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    return on_connect


def enable_wal(cursor: Any, within: float = SQLITE_BUSY_TIMEOUT) -> None:
    """Put a SQLite database in WAL mode (a no-op when it is already).

    Switching a new database to WAL needs its exclusive lock, and SQLite answers
    "database is locked" at once, without its busy handler, when another process
    is switching it at the same moment; that is retried here for up to `within`
    seconds.
    """
    deadline = time.monotonic() + within
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _check_sqlite_directory(url: URL) -> None:
    # Checked up front: aiosqlite, failing to open a file, leaves its worker thread
    # to report to a loop that may be closed by then.
    directory = Path(url.database or "").parent
    if not directory.is_dir():
        raise StoreConnectionError(
            f"Could not connect to the database {safe_url(url)}: the directory "
            f"{str(directory)!r} does not exist.",
            url=safe_url(url),
        )


def create_engine(url: URL) -> AsyncEngine:
    """A new async engine for a URL made by `database_url` (the caller disposes of it).

    SQLite connections use WAL, `busy_timeout` and `BEGIN IMMEDIATE` for every
    transaction SQLAlchemy opens, so several processes can share one file. The
    URL's timeouts (see `ystores.sql.timeouts`) bound connecting and, on SQLite,
    waiting for locks.

    Raises:
        StoreConnectionError: The SQLite file's directory does not exist.
    """
    timeouts = Timeouts.from_url(url)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_directory(url)
        engine = create_async_engine(
            url.set(query={}),  # ystores' own options are not the driver's
            connect_args={"isolation_level": None, "timeout": timeouts.statement},
            pool_size=4,
            max_overflow=16,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect(timeouts))
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        without_timeouts(url),
        connect_args={"timeout": timeouts.connect},
        pool_size=5,
        max_overflow=20,
        pool_pre_ping=False,
        pool_timeout=timeouts.connect,
    )


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop.

    Raises:
        StoreStateError: Not called from asyncio (for instance from trio).
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise StoreStateError(
            "The SQL stores run on asyncio only (aiosqlite, asyncpg and SQLAlchemy's "
            "async layer do not support trio); call them from an asyncio event loop."
        ) from None


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def shared(url: URL, make: Callable[[URL], Any]) -> Any:
    """The object shared by every store of `url` in the running loop, made on first use.

    `make(url)` builds it; it must have an async `aclose()` and a `closed`
    `asyncio.Event`-like attribute set when closed. A keeper task closes it when
    the loop shuts down.
    """
    loop = running_loop()
    key = url.render_as_string(hide_password=False)
    per_loop = _registry.setdefault(loop, {})
    obj = per_loop.get(key)
    if obj is None:
        obj = make(url)
        per_loop[key] = obj
        task = loop.create_task(_keep(obj, per_loop, key), name=f"ystores {safe_url(url)}")
        obj._keeper = task
    return obj


async def _keep(obj: Any, per_loop: dict[str, Any], key: str) -> None:
    try:
        await obj.closed.wait()
    finally:
        if per_loop.get(key) is obj:
            del per_loop[key]
        await obj.aclose()


async def dispose_databases() -> None:
    """Close every shared engine of the running loop (stores reopen them on next use)."""
    loop = running_loop()
    for obj in list(_registry.get(loop, {}).values()):
        await obj.aclose()
        keeper = getattr(obj, "_keeper", None)
        if keeper is not None:
            await keeper
