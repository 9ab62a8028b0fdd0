"""The partial `(doc, kind, seq)` index of the rows that are not updates (`KIND_INDEX`):
every lookup by kind reaches it on both engines, and revision `0005_partial_kind_index`
moves a database to it and back without touching a record."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from ystores import SchemaOutdatedError, open_store
from ystores.cli import app
from ystores.sql import (
    blocks,
    dispose_databases,
    follow_reads,
    history,
    history_write,
    outcomes,
    schema,
)
from ystores.sql import squashing as squash
from ystores.sql.statements import Compiled, compile_for, statements_for
from ystores.sql.store import SQLYStore
from ystores.sql.tables import KIND_INDEX

from .test_history import edits, restored, text_of, written
from .test_packing import query, snapshot_of

pytestmark = pytest.mark.anyio

runner = CliRunner()
OLD_INDEX = "ix_ystore_records_doc_kind_seq"
NEW_INDEX = str(KIND_INDEX.name)
BEFORE = "0004_blocks"

# every parameter any of the statements below takes
VALUES: dict[str, Any] = {
    "doc": "doc",
    "at": 1000.0,
    "after": 0,
    "limit": 100,
    "until": 10**6,
    "since": 0,
    "cut": 10,
    "docs": ["doc"],
    "afters": [0],
    "limits": [100],
    "ts": 1000.0,
}


def lookups(backend: str) -> dict[str, Compiled]:
    """Every statement that finds snapshots, checkpoints or blocks by kind (alone or
    as the latest-snapshot subquery of a read), as the stores compile it."""
    found = {
        name: compile_for(stmt, backend)
        for name, stmt in {
            "landmarks": history._LANDMARKS,
            "newest checkpoint": history._NEWEST,
            "first record after a time": history_write._FIRST_AFTER,
            "squash stats": squash._STATS,
            "checkpoints after a cut": squash._LATER_CHECKPOINTS,
            "blocks up to a cut": squash._BLOCKS_UP_TO,
            "next block": squash._NEXT_BLOCK,
            "straddling block": blocks._STRADDLER,
            "block headers": blocks._HEADERS,
            "blocks after a time": outcomes._IN_BLOCKS,
        }.items()
    }
    stmts = statements_for(backend)
    found["read page"] = stmts.page
    found["restore page"] = stmts.update_page
    if backend == "postgresql":
        found["followers' batch"] = follow_reads._POSTGRES_BATCH
    return found


async def plans(url: str) -> dict[str, str]:
    """Each lookup's plan: SQLite's EXPLAIN QUERY PLAN; Postgres' generic plan (the
    one a prepared statement settles on), sequential scans priced out."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(str(parsed.database)) as conn:
            return {
                name: "\n".join(
                    row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {c.sql}", c.args(**VALUES))
                )
                for name, c in lookups("sqlite").items()
            }
    dsn = parsed.set(drivername="postgresql", query={}).render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        found = {}
        for i, (name, c) in enumerate(lookups("postgresql").items()):
            # EXPLAIN of the bare statement would plan it for these values, not generically
            await conn.execute(f"PREPARE lookup{i} AS {c.sql}")
            args = ", ".join(map(literal, c.args(**VALUES)))
            rows = await conn.fetch(f"EXPLAIN EXECUTE lookup{i}({args})")
            found[name] = "\n".join(row[0] for row in rows)
        return found
    finally:
        await conn.close()


def literal(value: Any) -> str:
    """`value` (one of `VALUES`) as a Postgres literal."""
    if isinstance(value, list):
        return "'{" + ",".join(map(str, value)) + "}'"
    return f"'{value}'" if isinstance(value, str) else repr(value)


async def indexes(url: str) -> set[str]:
    """The names of the indexes on `ystore_records` (primary key aside)."""
    if url.startswith("sqlite"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ystore_records'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'ystore_records'"
    return {str(name) for (name,) in await query(url, sql)} - {
        "pk_ystore_records",
        "sqlite_autoindex_ystore_records_1",
    }


async def packed(url: str) -> tuple[SQLYStore, list[bytes]]:
    """A document with checkpoints, blocks and updates after them; what a reader sees."""
    updates = edits(320)
    store, _seqs = await written(url, updates[:300], 60, compress=True)
    for update in updates[300:]:
        await store.write(update)
    assert await store.pack() is not None
    return store, updates


async def test_every_lookup_by_kind_uses_the_partial_index(db_url: str) -> None:
    await packed(db_url)
    if db_url.startswith("sqlite"):
        sql = f"SELECT sql FROM sqlite_master WHERE name = '{NEW_INDEX}'"
    else:
        await query(db_url, "ANALYZE ystore_records")
        sql = f"SELECT indexdef FROM pg_indexes WHERE indexname = '{NEW_INDEX}'"
    await dispose_databases()
    assert await indexes(db_url) == {NEW_INDEX}
    [(definition,)] = await query(db_url, sql)
    assert definition.endswith(("WHERE kind != 0", "WHERE (kind <> 0)"))  # no update rows
    for name, plan in (await plans(db_url)).items():
        assert NEW_INDEX in plan, f"{name}:\n{plan}"
        # never a scan of the whole table (SQLite: SCAN; Postgres: a Seq Scan despite its price)
        assert "SCAN ystore_records" not in plan, f"{name}:\n{plan}"
        assert "Seq Scan" not in plan, f"{name}:\n{plan}"


async def test_upgrading_from_0004_keeps_every_record(db_url: str) -> None:
    store, updates = await packed(db_url)
    seen = await snapshot_of(store)
    await dispose_databases()
    await schema.downgrade(db_url, BEFORE)
    assert await indexes(db_url) == {OLD_INDEX}
    old = open_store(db_url, "doc")
    with pytest.raises(SchemaOutdatedError, match="ystore migrate"):
        await old.write(updates[0])
    assert await schema.current(db_url) == BEFORE  # a store never migrates by itself
    await dispose_databases()
    result = await anyio.to_thread.run_sync(runner.invoke, app, ["migrate", db_url])
    assert result.exit_code == 0, result.output
    assert await schema.current(db_url) == schema.head_revision()
    assert await indexes(db_url) == {NEW_INDEX}
    assert await schema.diff(db_url) == []
    reopened = open_store(db_url, "doc", compress=True)
    assert isinstance(reopened, SQLYStore)
    assert await snapshot_of(reopened) == seen
    assert await restored(reopened) == text_of(updates)
    await dispose_databases()


async def test_downgrading_below_0005_restores_the_full_index(db_url: str) -> None:
    store, _updates = await packed(db_url)
    seen = await snapshot_of(store)
    await dispose_databases()
    await schema.downgrade(db_url, BEFORE)
    assert await schema.current(db_url) == BEFORE
    assert await indexes(db_url) == {OLD_INDEX}
    await schema.upgrade(db_url)
    assert await indexes(db_url) == {NEW_INDEX}
    reopened = open_store(db_url, "doc")
    assert isinstance(reopened, SQLYStore)
    assert await snapshot_of(reopened) == seen
    await dispose_databases()


def test_the_offline_script_builds_the_partial_index_before_dropping_the_old() -> None:
    for url in ("postgresql://u@h/db", "sqlite:///x.db"):
        up = schema.sql_script(url, from_revision=BEFORE)
        assert up.index(f"CREATE INDEX {NEW_INDEX}") < up.index(f"DROP INDEX {OLD_INDEX}")
        assert "WHERE kind != 0" in up
        down = schema.sql_script(url, BEFORE, from_revision="head", downgrade=True)
        assert down.index(f"CREATE INDEX {OLD_INDEX}") < down.index(f"DROP INDEX {NEW_INDEX}")
