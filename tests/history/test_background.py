"""A started store writes checkpoints when due and applies retention, in the background."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pycrdt
import pytest
from sqlalchemy.engine import make_url

from backends import BACKENDS, StoreFactory, _admin_dsn, new_postgres_database
from ystores import BaseYStore, RecordKind
from ystores.errors import HistoryNotKeptError
from ystores.history import CheckpointPolicy, RetentionPolicy
from ystores.sql import PostgresYStore

pytestmark = pytest.mark.anyio

T0 = 1_767_000_000.0


@pytest.fixture(params=["file", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    maker, _loops = BACKENDS[request.param]
    return maker(tmp_path)


class Clock:
    """A settable clock: the stores' timestamps and retention's "now"."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    with anyio.fail_after(60):
        while not await check():
            await anyio.sleep(0.05)


async def type_into(store: BaseYStore, doc: pycrdt.Doc[Any], words: list[str]) -> None:
    text = doc.get("text", type=pycrdt.Text)
    for word in words:
        before = doc.get_state()
        text += word
        await store.write(doc.get_update(before))


async def loaded(store: BaseYStore) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return str(doc.get("text", type=pycrdt.Text))


async def checkpoint_count(store: BaseYStore) -> int:
    kinds = [r.kind async for r in store.read_records(checkpoints=True)]  # type: ignore[call-arg]
    return kinds.count(RecordKind.CHECKPOINT)


async def test_a_started_store_writes_a_checkpoint_once_due(make_store: StoreFactory) -> None:
    store = make_store("doc", checkpoints=CheckpointPolicy(every_updates=10))
    store.history_interval = 0.05
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    words = [f"w{i} " for i in range(8)]
    async with store:
        await type_into(store, doc, words)
        await anyio.sleep(0.5)  # ten rounds: 8 records are not more than 10
        assert await checkpoint_count(store) == 0
        more = [f"x{i} " for i in range(12)]
        await type_into(store, doc, more)
        await until(lambda: _has_checkpoint(store))
        stats = await store.history_stats()
        assert stats is not None
        assert stats.records_since < 10
    reopened = make_store("doc")
    try:
        assert await loaded(reopened) == "".join(words + more)
        # The log itself is untouched: read() still yields every update, no checkpoint.
        assert len([u async for u in reopened.read()]) == 20
    finally:
        await reopened.aclose()


async def _has_checkpoint(store: BaseYStore) -> bool:
    return await checkpoint_count(store) >= 1


async def test_retention_drops_old_history_in_the_background(make_store: StoreFactory) -> None:
    clock = Clock(T0)
    writer = make_store("doc", clock=clock)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await type_into(writer, doc, ["old ", "history "])
    clock.now = T0 + 7200
    await type_into(writer, doc, ["recent"])
    await writer.aclose()
    store = make_store("doc", clock=clock, retention=RetentionPolicy(window=3600))
    store.retention_interval = 0.05

    async def dropped() -> bool:
        try:
            await store.state_at(T0 - 1)
        except HistoryNotKeptError:
            return True
        return False

    async with store:
        await until(dropped)
        assert await loaded(store) == "old history recent"
        old: pycrdt.Doc[Any] = pycrdt.Doc()
        old.apply_update(await store.state_at(T0 + 7200))
        assert str(old.get("text", type=pycrdt.Text)) == "old history recent"


async def test_a_failing_round_is_logged_retried_and_never_stops_the_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    url = new_postgres_database()
    name = make_url(url).database
    clock = Clock(T0)
    writer = PostgresYStore("doc", url=url, clock=clock)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await type_into(writer, doc, ["old ", "history "])
    clock.now = T0 + 7200
    await type_into(writer, doc, ["recent"])
    await writer.aclose()
    from ystores.sql import dispose_databases

    await dispose_databases()
    await _admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    store = PostgresYStore("doc", url=url, clock=clock, retention=RetentionPolicy(window=3600))
    store.retention_interval = 0.05
    try:
        async with store:
            with anyio.fail_after(30):
                while "History upkeep of doc failed" not in caplog.text:
                    await anyio.sleep(0.05)
            assert store.running
            await _admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

            async def dropped() -> bool:
                try:
                    await store.state_at(T0 - 1)
                except HistoryNotKeptError:
                    return True
                except Exception:  # the database may still be coming back
                    return False
                return False

            await until(dropped)
            assert await loaded(store) == "old history recent"
    finally:
        await _admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
