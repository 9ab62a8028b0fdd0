"""A full disk during compaction and writes (issue 11, case 2), on a real tmpfs that fills up."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from room.kit import MemoryChannel
from ystores import FileYStore, StoreIOError, YStoreError
from ystores.compaction.policy import CompactionPolicy
from ystores.room import YRoom
from ystores.room.protocol import encode_sync_step2, encode_update
from ystores.sql import SQLiteYStore

from .disk import fill, release, small_disk
from .waits import WAIT, closed, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


def big_updates(count: int, size: int = 1024) -> list[bytes]:
    """`count` updates of about `size` bytes each that merge into nothing smaller."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for _ in range(count):
        text += secrets.token_hex(size // 2)
    return updates


def temporaries(disk: Path) -> list[str]:
    return sorted(p.name for p in disk.iterdir() if p.name.endswith(".tmp"))


async def text_in(store: FileYStore) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return str(doc.get("text", type=pycrdt.Text))


async def test_squash_on_a_full_disk_raises_store_io_error(disk: Path) -> None:
    updates = big_updates(40)
    async with FileYStore("doc", root=disk) as store:
        for update in updates:
            await store.write(update)
        content = await text_in(store)
        fill(disk)
        with pytest.raises(StoreIOError, match="unchanged"):
            await store.squash()
        assert await text_in(store) == content
        assert temporaries(disk) == []
        release(disk)
        report = await store.squash()
        assert report is not None
        assert report.records_after == 1
        assert await text_in(store) == content


async def test_background_compaction_failing_never_ends_the_store(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The squash cannot fit, appends still do: the store keeps running and writing; once
    space is back, the retried compaction succeeds."""
    caplog.set_level(logging.INFO)
    updates = big_updates(42)
    policy = CompactionPolicy(max_updates=5)
    store = FileYStore("doc", root=disk, compaction=policy)
    store.compaction_interval = 0.2
    async with store:
        for update in updates[:30]:
            await store.write(update)
        await until(lambda: "Squashed" in caplog.text)  # compaction works at first
        async with compactor_held_off(store):
            # A write lets go of any file a squash replaced: the space it held is free.
            await store.write(updates[30])
            size = (disk / "doc").stat().st_size
            # Less room than the file takes: a squashed copy never fits, appends do. (It
            # left 48 KiB beside a 31 KiB file: a squash could still succeed after the
            # fill, and for a moment the copy and the replaced file, held open by the
            # compactor's lease, left no byte free for a write that came in then.)
            fill(disk, leave=size - 8 * 1024)
        for update in updates[31:]:
            await store.write(update)
        await until(lambda: "Compaction of" in caplog.text and "failed" in caplog.text)
        assert store.running
        await store.write(updates[0])  # still writable
        caplog.clear()
        release(disk)
        await until(lambda: "Squashed" in caplog.text)
        assert store.running
        expected = await text_in(store)
    assert len(expected) == 42 * 1024
    async with FileYStore("doc", root=disk) as again:
        assert await text_in(again) == expected


@contextlib.asynccontextmanager
async def compactor_held_off(store: FileYStore) -> AsyncIterator[None]:
    """Hold the store's compaction lease: inside, no squash runs, and none that ran before
    still holds the file it replaced open through its lease, so free space is what it seems."""
    with anyio.fail_after(WAIT):
        while True:
            async with store.compaction_lease() as held:
                if held:
                    yield
                    return
            await anyio.sleep(0.02)


async def test_a_room_survives_a_full_disk_and_loses_nothing(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's scenario: a client sends 80 updates into a room whose store (with
    background compaction) runs out of space. The client is closed with 4500, the room
    refuses newcomers while the disk is full, serves again once space is back, and every
    one of the 80 updates ends up stored: nothing a client sent is silently dropped."""
    caplog.set_level(logging.INFO)
    store = FileYStore("doc", root=disk, compaction=CompactionPolicy(max_updates=10))
    store.compaction_interval = 0.2
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    chunks = [secrets.token_hex(256) for _ in range(80)]
    writer, refused, again = MemoryChannel("/writer"), MemoryChannel("/b"), MemoryChannel("/writer")
    try:
        await _fill_the_disk_under_a_room(disk, store, doc, sent, chunks, writer, refused, again)
    finally:
        for channel in (writer, refused, again):
            channel.aclose_streams()
    assert "Writing to" in caplog.text
    async with FileYStore("doc", root=disk) as reopened:
        assert await text_in(reopened) == "".join(chunks)


async def _fill_the_disk_under_a_room(
    disk: Path,
    store: FileYStore,
    doc: pycrdt.Doc[Any],
    sent: list[bytes],
    chunks: list[str],
    writer: MemoryChannel,
    refused: MemoryChannel,
    again: MemoryChannel,
) -> None:
    text = doc.get("text", type=pycrdt.Text)
    async with YRoom(ystore=store, store_retry_delay=0.1) as room, anyio.create_task_group() as tg:
        tg.start_soon(room.serve, writer)
        fill(disk, leave=12 * 1024)
        for chunk in chunks:
            text += chunk
            if writer.closed is None:
                await writer.put(encode_update(sent[-1]))
        assert await closed(writer) == (4500, "The document could not be saved.")
        assert room.write_error is not None
        tg.start_soon(room.serve, refused)
        code, reason = await closed(refused)
        assert code == 4500
        assert "could not be saved" in reason
        release(disk)
        await until(lambda: room.write_error is None)
        # The closed client reconnects and resyncs: it sends what the room lacks.
        tg.start_soon(room.serve, again)
        await again.put(encode_sync_step2(doc.get_update()))
        await until(lambda: str(room.ydoc.get("text", type=pycrdt.Text)) == str(text))
        await until(lambda: room.unsaved == 0)
        again.hang_up()


async def test_sqlite_background_compaction_on_a_full_disk_never_ends_the_store(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes until the disk refuses them; the compactor's squash fails too, is logged and
    retried, and the store keeps running; with space back, writes and squashes resume."""
    caplog.set_level(logging.INFO)
    updates = big_updates(400, size=2048)
    policy = CompactionPolicy(max_updates=5)
    store = SQLiteYStore("doc", db_path=str(disk / "s.db"), compaction=policy)
    store.compaction_interval = 0.2
    async with store:
        fill(disk, leave=512 * 1024)
        written = 0
        for update in updates:
            try:
                await store.write(update)
            except YStoreError:
                break  # the disk is full for appends too: the write says so
            written += 1
        assert 0 < written < len(updates)
        await until(lambda: "Compaction of" in caplog.text and "failed" in caplog.text)
        assert store.running
        caplog.clear()
        release(disk)
        for update in updates[written : written + 10]:
            await store.write(update)
        await until(lambda: "Squashed" in caplog.text)
        assert store.running
    async with SQLiteYStore("doc", db_path=str(disk / "s.db")) as again:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await again.apply_updates(doc)
        assert len(str(doc.get("text", type=pycrdt.Text))) == (written + 10) * 2048
