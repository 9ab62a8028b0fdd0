"""`read()` on the SQL stores: every record once, in seq order, whatever rows hold them.

SQLite reads by windows of seqs whose rows carry no seq (see `SQLYStore.read`);
these cases are the edges of that scheme (gaps, windows ending on the last seq,
rows that are not raw updates inside a window). Postgres reads pages of rows and
must give the same answers.
"""

from __future__ import annotations

import os
import uuid
from contextlib import suppress
from typing import Any

import anyio
import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ystores import CorruptStoreError, RecordKind, YDocNotFound, open_store
from ystores.sql import dispose_databases
from ystores.sql.store import FIRST_PAGE, SQLYStore

from .test_history import edits, text_of, written
from .test_schema import run_sql

pytestmark = pytest.mark.anyio


async def stored(db_url: str, updates: list[bytes]) -> SQLYStore:
    """The document's store, `updates` written to it one by one."""
    store = open_store(db_url, "doc")
    assert isinstance(store, SQLYStore)
    for update in updates:
        await store.write(update)
    return store


async def check_read(store: SQLYStore, updates: list[bytes]) -> None:
    """`read()` yields `updates`, each with the metadata and time `read_records()` gives."""
    got = await triples(store)
    assert [u for u, _m, _t in got] == updates
    assert got == await records(store)


async def triples(store: SQLYStore) -> list[tuple[bytes, bytes, float]]:
    return [t async for t in store.read()]


async def records(store: SQLYStore) -> list[tuple[bytes, bytes, float]]:
    """What `read()` must yield, read through the other read path (`read_records`)."""
    return [(r.update, r.metadata, r.timestamp) async for r in store.read_records()]


@pytest.mark.parametrize("count", [FIRST_PAGE - 1, FIRST_PAGE, FIRST_PAGE + 1, 3 * FIRST_PAGE])
async def test_a_read_ending_on_a_window_edge_misses_nothing(db_url: str, count: int) -> None:
    updates = edits(count)
    store = await stored(db_url, updates)
    await check_read(store, updates)
    await dispose_databases()


async def test_a_read_crosses_gaps_wider_than_a_window(db_url: str) -> None:
    # rows gone from the middle (as a retention cut or a hand-made repair leaves
    # them): the seqs of several windows hold no row at all
    updates = edits(FIRST_PAGE * 12)
    store = await stored(db_url, updates)
    await run_sql(
        db_url,
        f"DELETE FROM ystore_records WHERE seq > 5 AND seq <= {FIRST_PAGE * 10}",
        f"DELETE FROM ystore_records WHERE seq > {FIRST_PAGE * 11} AND seq <= {FIRST_PAGE * 12}",
    )
    await check_read(store, updates[:5] + updates[FIRST_PAGE * 10 : FIRST_PAGE * 11])
    await run_sql(db_url, "DELETE FROM ystore_records WHERE seq <= 5")
    assert await triples(store) == await records(store)
    await run_sql(db_url, "DELETE FROM ystore_records")
    with pytest.raises(YDocNotFound):
        await triples(store)
    await dispose_databases()


async def test_a_read_meets_blocks_compressed_rows_and_checkpoints_mid_window(
    db_url: str,
) -> None:
    # blocks of 100 records (wider than the first window), checkpoints left by
    # thinning, compressed pastes among raw keystrokes, and a raw tail
    updates = edits(700, paste_every=23)
    store, _seqs = await written(db_url, updates[:600], 100, compress=True)
    report = await store.pack(block_records=100)
    assert report is not None
    assert report.blocks >= 4
    store.compress = False
    for update in updates[600:650]:
        await store.write(update)
    store.compress = True
    for update in updates[650:]:
        await store.write(update)
    await check_read(store, updates)
    await dispose_databases()


async def test_a_read_after_a_squash_starts_at_the_snapshot(db_url: str) -> None:
    # the snapshot's seq lies past the first window: the read jumps to it
    updates = edits(FIRST_PAGE * 3)
    store = await stored(db_url, updates[: FIRST_PAGE * 2])
    assert await store.squash() is not None
    for update in updates[FIRST_PAGE * 2 :]:
        await store.write(update)
    got = await triples(store)
    assert len(got) == 1 + FIRST_PAGE
    assert [u for u, _m, _t in got[1:]] == updates[FIRST_PAGE * 2 :]
    assert got == await records(store)
    await dispose_databases()


async def test_a_read_yields_what_is_written_while_it_reads(db_url: str) -> None:
    # written once the first window (page) is read, then once the read has met the
    # end of what was stored: a read yields a prefix of the log, at least what was
    # stored when it began; SQLite's windows stop there, Postgres's pages may go on
    updates = edits(FIRST_PAGE * 4)
    store = await stored(db_url, updates[: FIRST_PAGE * 2])
    got: list[bytes] = []
    async for update, _m, _t in store.read():
        got.append(update)
        if len(got) == 10:
            for more in updates[FIRST_PAGE * 2 : FIRST_PAGE * 3]:
                await store.write(more)
        elif len(got) == FIRST_PAGE * 2 - 5:
            for more in updates[FIRST_PAGE * 3 :]:
                await store.write(more)
    assert got == updates[: len(got)]
    assert len(got) >= FIRST_PAGE * 2
    if db_url.startswith("sqlite"):
        assert got == updates[: FIRST_PAGE * 2]
    assert [u for u, _m, _t in await triples(store)] == updates
    await dispose_databases()


@pytest.mark.parametrize("count", [10, FIRST_PAGE, FIRST_PAGE * 3 + 1])
async def test_a_reader_that_writes_back_what_it_reads_finishes(db_url: str, count: int) -> None:
    # each record read is written again (a copy into the same document): the read
    # must not chase its own writes (SQLite's windows followed them for ever)
    updates = edits(count)
    store = await stored(db_url, updates)
    got: list[bytes] = []
    with anyio.fail_after(60):
        async for update, _m, _t in store.read():
            got.append(update)
            assert len(got) <= count * 3, "the read is chasing its own writes"
            await store.write(update)
    assert got[:count] == updates
    if db_url.startswith("sqlite"):
        assert got == updates
    await dispose_databases()


async def test_a_read_that_a_squash_overtakes_yields_the_snapshot(db_url: str) -> None:
    # a squash while the read runs, of what was stored and written since: its
    # snapshot lies past the read's end, and holds what the read has not yielded yet
    updates = edits(FIRST_PAGE * 3)
    store = await stored(db_url, updates[: FIRST_PAGE * 2])
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    got = 0
    async for update, _m, _t in store.read():
        doc.apply_update(update)
        got += 1
        if got == 5:
            for more in updates[FIRST_PAGE * 2 :]:
                await store.write(more)
            assert await store.squash() is not None
    assert str(doc.get("t", type=pycrdt.Text)) == text_of(updates)
    await dispose_databases()


async def test_a_read_starts_at_the_latest_snapshot_with_rows_left_before_it(
    db_url: str,
) -> None:
    # a snapshot past the first window, the rows before it still stored: the read
    # skips them, whichever windows they fill
    updates = edits(FIRST_PAGE * 4)
    store = await stored(db_url, updates)
    snapshot = FIRST_PAGE * 2 + 7
    await run_sql(
        db_url,
        f"UPDATE ystore_records SET kind = {RecordKind.SNAPSHOT.value} WHERE seq = {snapshot}",
    )
    await check_read(store, updates[snapshot - 1 :])
    await dispose_databases()


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 150), st.booleans()),  # how many, compressed
        st.tuples(st.just("checkpoint"), st.just(0), st.just(False)),
        st.tuples(st.just("pack"), st.sampled_from([2, 7, 100]), st.just(False)),  # per block
        st.tuples(st.just("squash"), st.just(0), st.just(False)),
        st.tuples(st.just("cut"), st.integers(0, 500), st.integers(1, 200)),  # rows (a, a + n]
    ),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=int(os.environ.get("YSTORES_READ_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=_STEPS)
async def test_read_yields_what_read_records_holds_for_any_history(
    db_url: str, steps: list[tuple[str, int, bool]]
) -> None:
    # Any mix of raw and compressed rows, checkpoints, blocks, snapshots and rows
    # removed behind the store's back, over several windows: `read()` gives the
    # records `read_records()` gives through its own paging, in order, once each.
    doc = f"doc-{uuid.uuid4().hex}"
    store = open_store(db_url, doc)
    assert isinstance(store, SQLYStore)
    written = 0
    for step, number, flag in steps:
        if step == "write":
            store.compress = flag
            for update in edits(number, seed=written, paste_every=9):
                await store.write(update)
            written += number
        elif step == "checkpoint":
            # A document without records has nothing to do; one whose rows a cut
            # removed may not replay to a state that checks out: refused, nothing written.
            with suppress(YDocNotFound, CorruptStoreError):
                await store.checkpoint()
        elif step == "pack":
            with suppress(YDocNotFound, CorruptStoreError):
                await store.pack(block_records=number)
        elif step == "squash":
            with suppress(YDocNotFound, CorruptStoreError):
                await store.squash()
        else:
            await run_sql(
                db_url,
                f"DELETE FROM ystore_records WHERE doc = '{doc}' "
                f"AND seq > {number} AND seq <= {number + (200 if flag else 1)}",
            )
    try:
        expected = await records(store)
    except YDocNotFound:
        with pytest.raises(YDocNotFound):
            await triples(store)
    else:
        assert await triples(store) == expected
    await dispose_databases()


async def test_a_pack_between_a_windows_two_reads_loses_no_record(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first window holds a compressed row, so it is read twice (`read_window`,
    # then in full); another store packs the history in between, moving the
    # window's rows into a block whose seq lies past the window. The records
    # before the block's seq must still come out, from the block.
    updates = edits(300, paste_every=20)
    store = open_store(sqlite_db, "doc", compress=True)
    assert isinstance(store, SQLYStore)
    for update in updates[:250]:
        await store.write(update)
    assert await store.checkpoint() is not None
    store.compress = False
    for update in updates[250:]:
        await store.write(update)
    db = await store.database()
    window = db.statements.read_window
    assert window is not None
    fetch_rows = db.fetch_rows
    packs: list[object] = []

    async def packing_after_the_first_window(sql: str, args: tuple[Any, ...]) -> list[Any]:
        rows = await fetch_rows(sql, args)
        if sql == window.sql and not packs:
            packs.append(await open_store(sqlite_db, "doc").pack(block_records=1000))
        return rows

    monkeypatch.setattr(db, "fetch_rows", packing_after_the_first_window)
    got = [u for u, _m, _t in await triples(store)]
    monkeypatch.undo()
    assert len(packs) == 1
    assert packs[0] is not None  # the pack did take the first window's rows
    assert got == updates
    await dispose_databases()
