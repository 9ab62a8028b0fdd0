"""The ystores schema under Alembic, on SQLite and Postgres."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ystores import (
    ForeignSchemaError,
    SchemaOutdatedError,
    YDocNotFound,
    open_store,
)
from ystores.sql import schema
from ystores.sql.engines import create_engine
from ystores.sql.tables import VERSION_TABLE, metadata
from ystores.sql.urls import database_url

pytestmark = pytest.mark.anyio

FIRST = "0001_initial"


async def run_sql(url: str, *statements: str) -> None:
    engine = create_engine(database_url(url))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def test_head_matches_the_tables_in_the_code(db_url: str) -> None:
    await schema.upgrade(db_url)
    assert await schema.current(db_url) == schema.head_revision()
    assert await schema.check(db_url)
    assert await schema.diff(db_url) == []
    found = await schema.state(db_url)
    assert found.tables >= {t.name for t in metadata.sorted_tables} | {VERSION_TABLE}


async def test_a_store_creates_the_schema_at_head_in_an_empty_database(db_url: str) -> None:
    store = open_store(db_url, "doc")
    await store.write(b"\x00\x00")
    assert await schema.check(db_url)
    assert await schema.diff(db_url) == []
    await store.aclose()


async def test_upgrade_downgrade_base_upgrade(db_url: str) -> None:
    await schema.upgrade(db_url, FIRST)
    assert await schema.current(db_url) == FIRST
    assert not await schema.check(db_url)
    await schema.upgrade(db_url)
    await schema.downgrade(db_url, "base")
    found = await schema.state(db_url)
    assert found.revision is None
    assert not found.tables & {t.name for t in metadata.sorted_tables}
    await schema.upgrade(db_url)
    assert await schema.diff(db_url) == []
    store = open_store(db_url, "doc")
    await store.write(b"\x00\x00")
    assert [u async for u, _, _ in store.read()] == [b"\x00\x00"]


async def test_downgrade_one_step_keeps_the_data(db_url: str) -> None:
    store = open_store(db_url, "doc")
    await store.write(b"\x00\x00")
    await schema.downgrade(db_url, FIRST)
    await schema.upgrade(db_url)
    assert [u async for u, _, _ in open_store(db_url, "doc").read()] == [b"\x00\x00"]


async def test_an_outdated_schema_is_refused_and_names_ystore_migrate(db_url: str) -> None:
    await schema.upgrade(db_url, FIRST)
    store = open_store(db_url, "doc")
    with pytest.raises(SchemaOutdatedError, match="ystore migrate") as info:
        await store.write(b"\x00\x00")
    assert FIRST in str(info.value)
    scheme = db_url.split("://")[0]
    assert f"`ystore migrate {scheme}://" in str(info.value)  # pasteable: no driver name
    with pytest.raises(SchemaOutdatedError, match="ystore migrate"):
        [_ async for _ in store.read()]
    assert await schema.current(db_url) == FIRST  # never migrated behind the user's back


async def test_without_create_schema_an_empty_database_is_refused(db_url: str) -> None:
    store = open_store(db_url, "doc", create_schema=False)
    with pytest.raises(SchemaOutdatedError, match="ystore migrate"):
        await store.write(b"\x00\x00")
    assert (await schema.state(db_url)).status == "empty"


async def test_foreign_tables_with_our_names_are_refused(db_url: str) -> None:
    await run_sql(db_url, "CREATE TABLE ystore_records (id INTEGER PRIMARY KEY, note TEXT)")
    with pytest.raises(ForeignSchemaError, match="did not create them"):
        await open_store(db_url, "doc").write(b"\x00\x00")
    with pytest.raises(ForeignSchemaError):
        await schema.upgrade(db_url)
    assert (await schema.state(db_url)).status == "foreign"


async def test_other_applications_tables_are_left_alone(db_url: str) -> None:
    await run_sql(db_url, "CREATE TABLE app_users (id INTEGER PRIMARY KEY, name TEXT)")
    await schema.upgrade(db_url)
    assert await schema.diff(db_url) == []
    await schema.downgrade(db_url, "base")
    assert "app_users" in (await schema.state(db_url)).tables


async def test_a_legacy_ypy_database_is_refused_until_converted(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE yupdates (path TEXT NOT NULL, yupdate BLOB, metadata BLOB, "
            "timestamp REAL NOT NULL)"
        )
    conn.close()
    store = open_store(str(path), "doc")
    with pytest.raises(SchemaOutdatedError, match="ystore migrate"):
        await store.write(b"\x00\x00")
    names = {p.name for p in tmp_path.iterdir()}  # noqa: ASYNC240
    assert "legacy.db" in names  # never renamed aside
    assert names <= {"legacy.db", "legacy.db-wal", "legacy.db-shm"}


async def test_the_version_table_is_ystores_own(db_url: str) -> None:
    await run_sql(
        db_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('app_rev_1')",
    )
    await schema.upgrade(db_url)
    engine = create_engine(database_url(db_url))
    try:
        async with engine.connect() as conn:
            app = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await engine.dispose()
    assert app == [("app_rev_1",)]


async def test_reading_an_unknown_document_is_not_found_not_an_error(db_url: str) -> None:
    with pytest.raises(YDocNotFound):
        [_ async for _ in open_store(db_url, "missing").read()]


async def test_looking_at_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    assert (await schema.state(f"sqlite:///{path}")).status == "empty"
    assert await schema.current(f"sqlite:///{path}") is None
    assert not path.exists()


def test_offline_sql_for_both_dialects() -> None:
    pg = schema.sql_script("postgresql://u@h/db")
    assert "CREATE TABLE ystore_records" in pg
    assert "BYTEA" in pg
    assert VERSION_TABLE in pg
    lite = schema.sql_script("sqlite:///x.db", "base", downgrade=True)
    assert "DROP TABLE ystore_records" in lite
    step = schema.sql_script("sqlite:///x.db", from_revision=FIRST)
    assert "ix_ystore_records_doc_kind_seq" in step
    assert "CREATE TABLE ystore_records" not in step


def test_the_script_directory_ships_in_the_package() -> None:
    from ystores.sql.alembic_setup import script_location

    location = Path(script_location())
    assert (location / "env.py").is_file()
    assert location.is_relative_to(Path(schema.__file__).parent)
    assert len(list((location / "versions").glob("r*.py"))) == len(schema.history())


def test_history_lists_the_revisions_oldest_first() -> None:
    revisions = schema.history()
    assert revisions[0].revision == FIRST
    assert revisions[-1].revision == schema.head_revision()
    assert all(r.message for r in revisions)
