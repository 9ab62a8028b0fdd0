"""Store factories for the contract suite: one entry per backend.

A factory makes stores for one backend inside one test: calling it twice with
the same document name gives two stores over the same document. Backends that
need per-test resources (a database, a schema) set them up in their entry.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from ystores import BaseYStore, FileYStore, TempFileYStore
from ystores.sql import PostgresYStore, SQLiteYStore

T = TypeVar("T")

POSTGRES_URL = os.environ.get("YSTORES_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""The server the Postgres tests use; each test gets its own database on it."""


class StoreFactory(Protocol):
    def __call__(self, name: str = "doc", **kwargs: Any) -> BaseYStore: ...


def file_factory(tmp_path: Path) -> StoreFactory:
    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return FileYStore(name, root=tmp_path, **kwargs)

    return make


def tempfile_factory(tmp_path: Path) -> StoreFactory:
    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return TempFileYStore(name, base_dir=tmp_path, **kwargs)

    return make


def sqlite_factory(tmp_path: Path) -> StoreFactory:
    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return SQLiteYStore(name, db_path=tmp_path / "ystore.db", **kwargs)

    return make


def run_sync(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in its own loop and thread (safe inside a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro()).result()


_created_databases: list[str] = []


def _admin_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)


def new_postgres_database() -> str:
    """Create an empty database with a random name; return its URL (dropped at exit).

    Fails (never skips) when the server is down: CI starts it.
    """
    name = f"ystores_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        finally:
            await conn.close()

    run_sync(create)
    if not _created_databases:
        atexit.register(_drop_databases)
    _created_databases.append(name)
    return make_url(POSTGRES_URL).set(database=name).render_as_string(False)


def _drop_databases() -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            for name in _created_databases:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    asyncio.run(drop())  # at exit no loop runs, and no new thread may start


def postgres_factory(tmp_path: Path) -> StoreFactory:
    url = new_postgres_database()

    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return PostgresYStore(name, url=url, **kwargs)

    return make


# backend name -> (factory maker, event loops it runs on)
BACKENDS: dict[str, tuple[Callable[[Path], StoreFactory], tuple[str, ...]]] = {
    "file": (file_factory, ("asyncio", "trio")),
    "tempfile": (tempfile_factory, ("asyncio", "trio")),
    "sqlite": (sqlite_factory, ("asyncio",)),
    "postgres": (postgres_factory, ("asyncio",)),
}
