"""FileYStore on asyncio and on trio: group commit, both lifecycles, legacy and torn files."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ydocs import text_of, typing_updates
from ystores import FileYStore, LegacyFormatError, Record, TornTail

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


async def _records(store: FileYStore) -> list[Record]:
    return [record async for record in store.read_records()]


async def test_concurrent_writers_are_group_committed(tmp_path: Path) -> None:
    writers = 8
    per_writer = 25
    updates = {w: typing_updates("x" * per_writer, client_id=w + 1) for w in range(writers)}
    async with FileYStore(
        str(tmp_path / "doc.y"), metadata_callback=lambda: b"m", clock=lambda: 2.0
    ) as store:

        async def writer(w: int) -> None:
            for update in updates[w]:
                await store.write(update)

        async with anyio.create_task_group() as tg:
            for w in range(writers):
                tg.start_soon(writer, w)

    records = await _records(FileYStore(str(tmp_path / "doc.y")))
    assert [r.seq for r in records] == list(range(1, writers * per_writer + 1))
    for w in range(writers):  # each writer's updates all there, in its own order
        assert [r.update for r in records if r.update in updates[w]] == updates[w]
    assert {(r.metadata, r.timestamp) for r in records} == {(b"m", 2.0)}
    assert text_of([r.update for r in records]) == "x" * writers * per_writer


async def test_start_stop_lifecycle_flushes_writes(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    updates = typing_updates("hello")
    store = FileYStore(str(path))
    async with anyio.create_task_group() as tg:
        await tg.start(store.start)
        for update in updates:
            tg.start_soon(store.write, update)
        await anyio.sleep(0.05)
        store.stop()
    assert text_of([u async for u, _m, _t in FileYStore(str(path)).read()]) == "hello"
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await FileYStore(str(path)).apply_updates(doc)
    assert str(doc.get("t", type=pycrdt.Text)) == "hello"


async def test_torn_tail_and_legacy_file(tmp_path: Path, fixtures_dir: Path) -> None:
    path = tmp_path / "doc.y"
    store = FileYStore(str(path), clock=lambda: 1.0)
    for update in typing_updates("ab"):
        await store.write(update)
    size = path.stat().st_size
    with path.open("ab") as file:
        file.write(b"\x20\x00\x00")
    records = await _records(store)
    assert len(records) == 2
    assert store.torn_tail == TornTail(size, 3)
    await store.write(b"\x00\x00")
    assert [r.seq for r in await _records(store)] == [1, 2, 3]
    assert path.stat().st_size > size

    legacy = tmp_path / "legacy.y"
    shutil.copyfile(fixtures_dir / "ypy-websocket-0.12.4" / "file-v2" / "basic.y", legacy)
    legacy_store = FileYStore(str(legacy))
    assert len(await _records(legacy_store)) == 8
    with pytest.raises(LegacyFormatError):
        await legacy_store.write(b"\x00\x00")


def _open_fds(path: Path) -> int:
    """How many descriptors this process holds open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return count


async def test_abandoning_a_read_warns_nowhere_and_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store = FileYStore(str(path))
    for update in typing_updates("hello", client_id=5):
        await store.write(update)
    await store.aclose()
    assert _open_fds(path) == 0
    # trio warns (a ResourceWarning, an error here) about abandoned async generators
    for _ in range(20):
        async for _update, _metadata, _timestamp in store.read():
            break
        async for _record in store.read_records():
            break
    gc.collect()
    assert _open_fds(path) == 0
    updates = store.read()
    assert (await anext(updates))[0] == typing_updates("hello", client_id=5)[0]
    assert _open_fds(path) == 1
    del updates
    assert _open_fds(path) == 0
    assert text_of([u async for u, _m, _t in store.read()]) == "hello"


async def test_two_stores_in_one_process_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    stores = [FileYStore(str(path), fsync=False) for _ in range(2)]
    updates = [typing_updates(c * 150, client_id=i + 1) for i, c in enumerate("ab")]

    async def writer(store: FileYStore, mine: list[bytes]) -> None:
        for update in mine:
            await store.write(update)

    async with anyio.create_task_group() as tg:
        for store, mine in zip(stores, updates, strict=True):
            tg.start_soon(writer, store, mine)
    records = await _records(FileYStore(str(path)))
    assert [r.seq for r in records] == list(range(1, 301))
    for mine in updates:
        assert [r.update for r in records if r.update in mine] == mine
