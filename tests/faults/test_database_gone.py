"""A room whose Postgres database goes away (issue 11, case 2): clients are closed with 4500,
newcomers refused, and once the database is back the room stores its whole document again.

The database "goes away" by refusing connections (`ALLOW_CONNECTIONS false`) with every
session terminated, as a database down for maintenance does.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pycrdt
import pytest
from sqlalchemy.engine import make_url

from backends import _admin_dsn, new_postgres_database
from room.kit import MemoryChannel
from ystores.room import YRoom
from ystores.room.protocol import encode_update
from ystores.sql import PostgresYStore

from .waits import closed, until

pytestmark = pytest.mark.anyio


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_room_survives_its_database_going_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    url = new_postgres_database()
    name = make_url(url).database
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    writer, refused = MemoryChannel("/writer"), MemoryChannel("/refused")
    store = PostgresYStore("doc", url=url)
    try:
        room = YRoom(ystore=store, store_retry_delay=0.1)
        async with room, anyio.create_task_group() as tg:
            tg.start_soon(room.serve, writer)
            text += "kept before; "
            await writer.put(encode_update(sent[-1]))
            await until(
                lambda: room.unsaved == 0 and "kept" in str(room.ydoc.get("text", type=pycrdt.Text))
            )
            # The database goes away: no new connection, every session ended.
            await _admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            await _admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            text += "sent while gone"
            await writer.put(encode_update(sent[-1]))
            assert await closed(writer) == (4500, "The document could not be saved.")
            tg.start_soon(room.serve, refused)
            code, reason = await closed(refused)
            assert code == 4500
            assert "could not be saved" in reason
            await _admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            await until(lambda: room.write_error is None)
            assert room.unsaved == 0
        assert "works again" in caplog.text
        reopened = PostgresYStore("doc", url=url)
        async with reopened:
            check: pycrdt.Doc[Any] = pycrdt.Doc()
            await reopened.apply_updates(check)
        assert str(check.get("text", type=pycrdt.Text)) == "kept before; sent while gone"
    finally:
        writer.aclose_streams()
        refused.aclose_streams()
