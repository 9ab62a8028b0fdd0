"""`SQLiteYStore(db_path=":memory:")`: one ephemeral database per event loop."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from ydocs import text_of, typing_updates
from ystores import SQLiteYStore, YDocNotFound
from ystores.jupyter import SQLiteYStore as JupyterSQLiteYStore


async def _write_and_read_back() -> tuple[str, Path]:
    writer = SQLiteYStore("doc", db_path=":memory:")
    for update in typing_updates("in memory"):
        await writer.write(update)
    reader = SQLiteYStore("doc", db_path=":memory:")  # another store of the same loop
    updates = [update async for update, _metadata, _timestamp in reader.read()]
    database = (await reader.database()).url.database
    assert database is not None
    return text_of(updates), Path(database)


async def _missing() -> bool:
    try:
        await SQLiteYStore("doc", db_path=":memory:").apply_updates(pycrdt.Doc())
    except YDocNotFound:
        return True
    return False


def test_stores_of_one_loop_share_one_database_that_goes_with_the_loop() -> None:
    text, file = asyncio.run(_write_and_read_back())
    assert text == "in memory"
    gc.collect()
    assert not file.parent.exists()  # deleted with its loop
    assert asyncio.run(_missing())  # a new loop starts empty


def test_loops_never_see_each_others_memory_database() -> None:
    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        loop_a.run_until_complete(_write_and_read_back())
        assert loop_b.run_until_complete(_missing())
    finally:
        loop_a.close()
        loop_b.close()


@pytest.mark.anyio
async def test_the_jupyter_store_accepts_memory() -> None:
    store = JupyterSQLiteYStore(path=".file:1.y", db_path=":memory:")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc["source"] = pycrdt.Text("ephemeral")
    async with store:
        await store.encode_state_as_update(doc)
        loaded: pycrdt.Doc[Any] = pycrdt.Doc()
        await JupyterSQLiteYStore(path=".file:1.y", db_path=":memory:").apply_updates(loaded)
    assert str(loaded.get("source", type=pycrdt.Text)) == "ephemeral"
