"""The store contract: every backend passes every test here (see tests/backends.py)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel
import pycrdt
import pytest
import y_py as Y

from backends import StoreFactory
from ydocs import text_of, transaction, typing_updates
from ystores import BaseYStore, InvalidUpdateError, StoreStateError, YDocNotFound, YStoreError

pytestmark = pytest.mark.anyio


async def read_all(store: BaseYStore) -> list[tuple[bytes, bytes, float]]:
    return [entry async for entry in store.read()]


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


async def test_read_yields_updates_metadata_and_timestamps_in_write_order(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock()
    counter = iter(range(100))
    store = make_store(metadata_callback=lambda: f"m{next(counter)}".encode(), clock=clock)
    updates = typing_updates("hello")
    for update in updates:
        await store.write(update)
    entries = await read_all(store)
    assert [update for update, _, _ in entries] == updates
    assert [metadata for _, metadata, _ in entries] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [timestamp for _, _, timestamp in entries] == [
        1_700_000_001.5 + 1.5 * i for i in range(5)
    ]


async def test_a_document_without_records_is_not_found(make_store: StoreFactory) -> None:
    store = make_store("nothing-here")
    with pytest.raises(YDocNotFound):
        await read_all(store)
    with pytest.raises(YDocNotFound):
        await store.apply_updates(Y.YDoc())
    assert issubclass(YDocNotFound, YStoreError)


async def test_apply_updates_rebuilds_y_py_and_pycrdt_documents(make_store: StoreFactory) -> None:
    store = make_store()
    for update in typing_updates("collaborate"):
        await store.write(update)
    ydoc = Y.YDoc()
    await store.apply_updates(ydoc)
    assert str(ydoc.get_text("t")) == "collaborate"
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    assert str(doc.get("t", type=pycrdt.Text)) == "collaborate"


async def test_encode_state_as_update_stores_the_whole_document(make_store: StoreFactory) -> None:
    source: pycrdt.Doc[Any] = pycrdt.Doc()
    source.get("t", type=pycrdt.Text).insert(0, "snapshot")
    source.get("m", type=pycrdt.Map)["k"] = [1, 2]
    store = make_store()
    await store.encode_state_as_update(source)
    ydoc = Y.YDoc()
    with transaction(ydoc) as txn:
        ydoc.get_array("a").extend(txn, ["x"])
    await store.encode_state_as_update(ydoc)
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(restored)
    assert str(restored.get("t", type=pycrdt.Text)) == "snapshot"
    assert restored.get("m", type=pycrdt.Map).to_py() == {"k": [1.0, 2.0]}
    assert restored.get("a", type=pycrdt.Array).to_py() == ["x"]


async def test_metadata_callback_may_be_async(make_store: StoreFactory) -> None:
    async def metadata() -> bytes:
        await anyio.lowlevel.checkpoint()
        return b"async-meta"

    store = make_store(metadata_callback=metadata)
    await store.write(typing_updates("a")[0])
    assert [m for _, m, _ in await read_all(store)] == [b"async-meta"]


async def test_metadata_defaults_to_empty_bytes(make_store: StoreFactory) -> None:
    store = make_store()
    await store.write(b"\x00\x00")
    [(update, metadata, timestamp)] = await read_all(store)
    assert (update, metadata) == (b"\x00\x00", b"")
    assert abs(timestamp - time.time()) < 60


async def test_garbage_is_refused_and_nothing_is_written(make_store: StoreFactory) -> None:
    store = make_store()
    good = typing_updates("ok")
    for update in good:
        await store.write(update)
    for garbage in (b"", b"garbage", b"\x01\x02\x03"):
        with pytest.raises(InvalidUpdateError):
            await store.write(garbage)
    assert [u for u, _, _ in await read_all(store)] == good


async def test_concurrent_writes_are_all_stored_once(make_store: StoreFactory) -> None:
    store = make_store()
    updates = typing_updates("concurrent writers!" * 5)
    async with anyio.create_task_group() as tg:
        for update in updates:
            tg.start_soon(store.write, update)
    stored = [u for u, _, _ in await read_all(store)]
    assert sorted(stored) == sorted(updates)
    assert text_of(stored) == "concurrent writers!" * 5


async def test_documents_are_independent_and_survive_reopening(make_store: StoreFactory) -> None:
    first, second = make_store("notes/a"), make_store("notes/b")
    await first.write(typing_updates("A")[0])
    await second.write(typing_updates("B")[0])
    await first.aclose()
    await second.aclose()
    assert text_of([u for u, _, _ in await read_all(make_store("notes/a"))]) == "A"
    assert text_of([u for u, _, _ in await read_all(make_store("notes/b"))]) == "B"


async def test_async_with_starts_and_stops(make_store: StoreFactory) -> None:
    store = make_store()
    async with store as entered:
        assert entered is store
        assert store.started.is_set()
        await store.write(typing_updates("x")[0])
    assert not store.running
    assert len(await read_all(make_store())) == 1


async def test_start_and_stop_in_a_task_group(make_store: StoreFactory) -> None:
    store = make_store()
    async with anyio.create_task_group() as tg:
        await tg.start(store.start)
        assert store.started.is_set()
        with pytest.raises(StoreStateError):
            await store.start()
        await store.write(typing_updates("y")[0])
        store.stop()
    assert not store.running
    with pytest.raises(RuntimeError):  # the ancestor raised RuntimeError: still caught
        store.stop()
    async with store:  # a stopped store starts again
        assert len(await read_all(store)) == 1


async def test_start_with_start_soon_then_wait_for_started(make_store: StoreFactory) -> None:
    store = make_store()
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.start)
        await store.started.wait()
        await store.write(b"\x00\x00")
        store.stop()
    assert len(await read_all(make_store())) == 1


async def test_class_attribute_metadata_callback_is_honoured(make_store: StoreFactory) -> None:
    store = make_store()
    type(store).metadata_callback = staticmethod(lambda: b"from-class")
    try:
        await store.write(b"\x00\x00")
        assert [m for _, m, _ in await read_all(store)] == [b"from-class"]
    finally:
        type(store).metadata_callback = None
