"""Bad URLs and unreachable databases raise clear ystores errors, never raw driver ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from backends import POSTGRES_URL
from ydocs import typing_updates
from ystores import (
    InvalidStoreURLError,
    PostgresYStore,
    SQLiteYStore,
    StoreConnectionError,
    StoreDatabaseError,
    StoreStateError,
    YStoreError,
    open_store,
)
from ystores.sql import schema

from .test_schema import run_sql

pytestmark = pytest.mark.anyio


def pg(**parts: object) -> str:
    return make_url(POSTGRES_URL).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["mysql://u@h/db", "ftp://example.com/x", "just-a-name", "", "sqlite://", "postgresql://h"],
)
def test_urls_ystores_cannot_use(url: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url, "doc")
    assert str(info.value).endswith(".")
    assert isinstance(info.value, ValueError)


def test_postgres_store_needs_a_url() -> None:
    with pytest.raises(InvalidStoreURLError, match="db_url"):
        PostgresYStore("doc")


async def test_an_unreachable_server(tmp_path: Path) -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/test", "doc")
    with pytest.raises(StoreConnectionError, match="Could not connect") as info:
        await store.write(b"\x00\x00")
    assert info.value.__cause__ is not None
    with pytest.raises(StoreConnectionError):
        await schema.current("postgresql://postgres@127.0.0.1:1/test")


async def test_a_database_that_does_not_exist() -> None:
    store = open_store(pg(database="ystores_no_such_database"), "doc")
    with pytest.raises(StoreConnectionError, match="ystores_no_such_database"):
        await store.write(b"\x00\x00")


async def test_a_user_the_server_refuses() -> None:
    store = open_store(pg(username="ystores_nobody", password="secret-pw"), "doc")
    with pytest.raises(StoreConnectionError) as info:
        await store.write(b"\x00\x00")
    assert "secret-pw" not in str(info.value)
    assert "ystores_nobody" in str(info.value)


async def test_a_sqlite_file_in_a_missing_directory(tmp_path: Path) -> None:
    store = SQLiteYStore("doc", db_path=tmp_path / "missing" / "ystore.db")
    with pytest.raises(StoreConnectionError, match="Could not connect"):
        await store.write(b"\x00\x00")


async def test_a_sqlite_store_opens_its_database_when_it_starts(tmp_path: Path) -> None:
    """As ypy-websocket's SQLiteYStore: the schema is there before the first write.
    A database that cannot be opened does not fail the start (a room reports it
    as its load error): the first read or write raises the error."""
    path = tmp_path / "ystore.db"
    async with SQLiteYStore("doc", db_path=path):
        assert await schema.current(f"sqlite:///{path}") is not None
    missing = SQLiteYStore("doc", db_path=tmp_path / "missing" / "ystore.db")
    async with missing:
        assert missing.started.is_set()
        with pytest.raises(StoreConnectionError, match="does not exist"):
            await missing.write(b"\x00\x00")
        with pytest.raises(StoreConnectionError, match="does not exist"):
            [_ async for _ in missing.read()]
    assert not (tmp_path / "missing").exists()


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database " * 200)
    with pytest.raises(StoreConnectionError, match="not a database") as info:
        await SQLiteYStore("doc", db_path=path).write(b"\x00\x00")
    assert "SQLite database" in str(info.value)
    assert path.read_bytes().startswith(b"these are notes")


async def test_a_refused_statement_is_a_database_error(db_url: str) -> None:
    store = open_store(db_url, "doc")
    await store.write(b"\x00\x00")
    await run_sql(db_url, "DROP TABLE ystore_records")
    with pytest.raises(StoreDatabaseError, match="refused a statement") as info:
        await store.write(b"\x00\x00")
    assert info.value.__cause__ is not None
    with pytest.raises(StoreDatabaseError):
        [_ async for _ in store.read()]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_sql_stores_say_they_need_asyncio(tmp_path: Path) -> None:
    store = SQLiteYStore("doc", db_path=tmp_path / "ystore.db")
    with pytest.raises(StoreStateError, match="asyncio"):
        await store.write(b"\x00\x00")


def test_every_new_error_is_a_ystore_error() -> None:
    from ystores import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), YStoreError)


async def test_writes_resume_after_the_server_drops_the_connection(postgres_db: str) -> None:
    """A server restart or failover ends every connection: at most the write in
    flight fails, with a ystores error; the next one reconnects; nothing
    acknowledged is lost."""
    updates = typing_updates("abcdef")
    async with open_store(postgres_db, "doc") as store:
        for update in updates[:3]:
            await store.write(update)
        assert len([u async for u, _, _ in store.read()]) == 3  # a pooled reader too
        await _terminate_other_connections(postgres_db)
        assert len([u async for u, _, _ in store.read()]) == 3
        acknowledged = list(updates[:3])
        for update in updates[3:]:
            try:
                await store.write(update)
            except StoreConnectionError:
                continue  # the write in flight on the dropped connection
            acknowledged.append(update)
        assert len(acknowledged) >= 5
        stored = [update async for update, _, _ in store.read()]
    assert [u for u in stored if u in acknowledged] == acknowledged


async def _terminate_other_connections(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
