"""Packing a file store (format version 5): blocks of covered records, thinned checkpoints.

Real files throughout; crash safety with SIGKILL'ed subprocesses.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ydocs import text_of, typing_updates
from ystores import FileYStore
from ystores.errors import CorruptStoreError, UnknownFormatError
from ystores.filestore.checkpointing import _full_stats, _open
from ystores.filestore.formats import HEADER, detect_format
from ystores.filestore.frames import encode_block_frame, encode_frames
from ystores.filestore.hints import hint_path
from ystores.filestore.log import FileLog
from ystores.filestore.scanning import V3Scanner
from ystores.history import ThinningPolicy
from ystores.history.packing import decode_block_header
from ystores.operations.verifying import verify_store
from ystores.records import Record, RecordKind

pytestmark = pytest.mark.anyio


class Clock:
    """One second per record."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _text(doc: pycrdt.Doc[Any]) -> str:
    return str(doc.get("t", type=pycrdt.Text))


async def _restore(store: FileYStore) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return _text(doc)


async def _history(path: Path, text: str, every: int, **options: Any) -> FileYStore:
    """`text` typed one character a record, a checkpoint every `every` records."""
    store = FileYStore(str(path), fsync=False, clock=Clock(), **options)
    store.pack_after = 1
    for i, update in enumerate(typing_updates(text, client_id=7), 1):
        await store.write(update)
        if i % every == 0:
            await store.checkpoint()
    return store


async def _records(store: FileYStore, *, checkpoints: bool = False) -> list[Record]:
    return [r async for r in store.read_records(checkpoints=checkpoints)]


TEXT = "packed history reads back the same " * 12


async def test_pack_keeps_every_record_and_writes_version_5(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 40)
    before = await _records(store)
    triples = [t async for t in store.read()]
    states = {r.seq: await store.state_at(seq=r.seq) for r in before[::7]}
    times = {r.timestamp: await store.state_at(r.timestamp + 0.5) for r in before[::11]}
    size = path.stat().st_size
    assert path.read_bytes().startswith(HEADER)  # never packed: version 4
    report = await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=100), block_records=30)
    assert report is not None
    assert report.blocks > 0
    assert report.records_packed > 0
    assert report.checkpoints_dropped > 0
    assert report.bytes_after == path.stat().st_size < size
    assert path.read_bytes().startswith(b"VERSION:5\n")
    assert await _records(store) == before
    assert [t async for t in store.read()] == triples
    for seq, state in states.items():
        assert text_of([await store.state_at(seq=seq)]) == text_of([state]), seq
    for at, state in times.items():
        assert text_of([await store.state_at(at + 0.5)]) == text_of([state]), at
    assert await _restore(FileYStore(str(path))) == TEXT
    # the index was rewritten for the new file and is used: a restore reads the tail only
    index = json.loads(hint_path(path).read_bytes())
    assert index["inode"] == path.stat().st_ino
    assert index["checkpoints"]
    # writes go on after a pack, and a second pack with nothing due changes nothing
    await store.write(typing_updates(TEXT + "!", client_id=7)[-1])
    inode = path.stat().st_ino
    assert await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=100)) is None
    assert path.stat().st_ino == inode
    assert await _restore(FileYStore(str(path))) == TEXT + "!"
    await store.aclose()


async def test_blocks_never_span_a_kept_checkpoint_and_restore_starts_from_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 50)
    kept_before = [r for r in await _records(store, checkpoints=True) if r.kind == 2]
    assert await store.pack(thinning=ThinningPolicy(keep_recent=100), block_records=1000)
    records = await _records(store, checkpoints=True)
    assert [r for r in records if r.kind == 2] == kept_before  # none dropped
    # every kept checkpoint's first replayed record starts a frame (a block or a record)
    with path.open("rb") as file:
        size = path.stat().st_size
        fmt = detect_format(file, size, str(path))
        assert fmt is not None
        assert fmt.version == 5
        scanner = V3Scanner(file, fmt.data_offset, size, kinds=fmt.kinds)
        scanner.expand_blocks = False
        frames = [r for batch in scanner for r in batch]
    starts = {r.seq for r in frames}
    assert any(r.kind == RecordKind.BLOCK for r in frames)
    from ystores.history import decode_header

    for checkpoint in kept_before:
        header = decode_header(checkpoint.metadata)
        assert header is not None
        assert header.covers + 1 in starts
    assert await _restore(FileYStore(str(path))) == TEXT
    await store.aclose()


async def test_pack_is_cheap_and_does_nothing_when_not_due(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT[:120], 40)
    store.pack_after = 10_000
    before = path.read_bytes()
    started = time.perf_counter()
    for _ in range(20):
        assert await store.pack(thinning=ThinningPolicy(keep_recent=10)) is None
    assert path.read_bytes() == before
    assert (time.perf_counter() - started) / 20 < 0.05
    await store.aclose()


async def test_a_damaged_block_is_a_clear_error_never_a_wrong_document(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 60)
    assert await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=10_000))
    await store.aclose()
    data = bytearray(path.read_bytes())
    with path.open("rb") as file:
        fmt = detect_format(file, len(data), str(path))
        assert fmt is not None
        scanner = V3Scanner(file, fmt.data_offset, len(data), kinds=fmt.kinds)
        scanner.expand_blocks = False
        offsets: list[int] = []
        scanner.offsets = offsets
        frames = [r for batch in scanner for r in batch]
    block_at = next(o for o, r in zip(offsets, frames, strict=True) if r.kind == RecordKind.BLOCK)
    # damage the payload and fix the frame's CRC: only the block's own digest can tell
    from ystores.filestore.frames import FRAME_HEAD, frame_checksum

    length = FRAME_HEAD.unpack_from(data, block_at)[0]
    data[block_at + 8 + length - 3] ^= 0x20
    body = bytes(data[block_at + 8 : block_at + 8 + length])
    data[block_at + 4 : block_at + 8] = frame_checksum(
        bytes(data[block_at : block_at + 4]), body
    ).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    reader = FileYStore(str(path))
    with pytest.raises(CorruptStoreError, match="block"):
        await _records(reader)
    with pytest.raises(CorruptStoreError, match="block"):
        await reader.state_at(seq=3)
    # the restore starts from the latest checkpoint, past the block: the document is whole
    assert await _restore(reader) == TEXT
    await reader.aclose()
    report = await verify_store(str(path))
    (problem,) = report.problems
    assert problem.kind == "damaged"
    assert "block" in problem.message


def test_a_version_4_file_refuses_a_block_frame_and_version_6_is_refused(tmp_path: Path) -> None:
    updates = typing_updates("abcdef", client_id=3)
    records = [Record(i, u, b"", 1.0 + i) for i, u in enumerate(updates, 1)]
    block = encode_block_frame(records[2:])
    path = tmp_path / "doc.y"
    path.write_bytes(HEADER + encode_frames(records[:2]) + block)
    store = FileYStore(str(path))

    async def read() -> list[Record]:
        return await _records(store)

    with pytest.raises(CorruptStoreError):
        anyio.run(read)
    path.write_bytes(b"VERSION:5\n" + encode_frames(records[:2]) + block)
    assert [r.update for r in anyio.run(read)] == updates
    # a version this ystores does not know is refused, never read (its records are
    # reported as behind a header it cannot read, as an older ystores reports version 5)
    path.write_bytes(b"VERSION:6\n" + encode_frames(records[:2]))
    with pytest.raises((CorruptStoreError, UnknownFormatError), match="VERSION:6"):
        anyio.run(read)


async def test_retention_on_a_packed_file_keeps_a_block_it_cuts_into(tmp_path: Path) -> None:
    from ystores.history import RetentionPolicy

    path = tmp_path / "doc.y"
    clock = Clock()
    store = FileYStore(str(path), fsync=False, clock=clock)
    store.pack_after = 1
    updates = typing_updates(TEXT, client_id=7)
    for i, update in enumerate(updates, 1):
        await store.write(update)
        if i % 50 == 0:
            await store.checkpoint()
    assert await store.pack(
        thinning=ThinningPolicy(keep_recent=1, spacing=10_000), block_records=40
    )
    before = await _records(store)
    window = (clock.now - before[len(before) // 2 - 5].timestamp) + 0.5  # cut inside a block
    clock.now -= 1.0
    report = await store.retain(RetentionPolicy(window=window))
    assert report is not None
    after = await _records(store)
    assert after[0].kind == RecordKind.SNAPSHOT
    kept = [r for r in after if r.kind == RecordKind.UPDATE]
    assert [r.update for r in kept] == [r.update for r in before[-len(kept) :]]
    assert len(kept) >= len(before) // 2 - 5  # at least what the window keeps
    assert path.read_bytes().startswith(b"VERSION:5\n")
    assert await _restore(FileYStore(str(path))) == TEXT
    for record in after[1::9]:
        count = next(i for i, r in enumerate(before, 1) if r.seq == record.seq)
        assert text_of([await store.state_at(seq=record.seq)]) == text_of(updates[:count])
    await store.aclose()


async def test_a_follower_behind_a_pack_sees_every_record_once(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    text = TEXT[:200]
    store = await _history(path, text, 50)
    follower = FileYStore(str(path))
    follower.follow_interval = 0.01
    got: list[Record] = []
    batches = follower.follow(after=0, limit=30)
    with anyio.fail_after(20):
        got += await batches.__anext__()  # the follower is 30 records in
        assert await store.pack(
            thinning=ThinningPolicy(keep_recent=1, spacing=60), block_records=20
        )
        more = typing_updates(text + "after the pack", client_id=7)[len(text) :]
        for update in more:
            await store.write(update)
        expected = [r.seq for r in await _records(store)]
        while len(got) < len(expected):
            got += await batches.__anext__()
    await batches.aclose()
    assert [r.seq for r in got] == expected
    assert [r.update for r in got] == [r.update for r in await _records(store)]
    await follower.aclose()
    await store.aclose()


async def test_history_stats_from_the_index_equal_a_full_pass(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 45)

    def full() -> Any:
        file, fmt, size = _open(FileLog(path, fsync=False, upgrade=False, log=store.log))
        with file:
            return _full_stats(file, fmt, size, str(path), store.log)

    assert await store.history_stats() == full()
    assert "prefix" in json.loads(hint_path(path).read_bytes())
    for update in typing_updates(TEXT + "more", client_id=7)[len(TEXT) :]:
        await store.write(update)
    await store.checkpoint()
    assert await store.history_stats() == full()
    assert await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=60), block_records=25)
    assert await store.history_stats() == full()
    assert await store.history_stats() == full()  # from the cached prefix this time
    # a lying prefix only costs a full pass
    index = json.loads(hint_path(path).read_bytes())
    index["prefix"][0] += 3
    hint_path(path).write_text(json.dumps(index))
    assert await store.history_stats() == full()
    await store.aclose()


@pytest.mark.parametrize("lie", ["tail-inside-block", "times", "packed", "covers"])
async def test_a_hostile_index_on_a_packed_file_is_never_trusted(tmp_path: Path, lie: str) -> None:
    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 30)
    assert await store.pack(thinning=ThinningPolicy(keep_recent=3, spacing=60), block_records=20)
    records = await _records(store)
    truth = {r.seq: text_of([await store.state_at(seq=r.seq)]) for r in records[::5]}
    at_truth = {r.timestamp: text_of([await store.state_at(r.timestamp)]) for r in records[::13]}
    index = json.loads(hint_path(path).read_bytes())
    for row in index["checkpoints"]:
        if lie == "tail-inside-block":
            row[6] += 9
        elif lie == "times":
            row[5] -= 500.0
        elif lie == "covers":
            row[4] += 7
    if lie == "packed":
        index["packed"] = 10**9
    hint_path(path).write_text(json.dumps(index))
    reader = FileYStore(str(path))
    for seq, text in truth.items():
        assert text_of([await reader.state_at(seq=seq)]) == text, seq
    for at, text in at_truth.items():
        assert text_of([await reader.state_at(at)]) == text, at
    assert await _restore(reader) == TEXT
    await reader.aclose()
    await store.aclose()


_PACKER = """
import sys, anyio
from ystores import FileYStore
from ystores.history import ThinningPolicy
from ystores.history.packing import decode_block_header
from ystores.operations.verifying import verify_store

async def main():
    store = FileYStore(sys.argv[1])
    store.pack_after = 1
    print("ready", flush=True)
    sys.stdin.readline()
    await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=200), block_records=50)
    print("done", flush=True)

anyio.run(main)
"""


def test_a_kill_during_a_pack_leaves_the_version_4_file_or_the_packed_one(
    tmp_path: Path,
) -> None:
    """SIGKILL a process packing a version-4 file (its upgrade to 5) at random moments:
    the file is the old one byte for byte, or version 5 with the same records."""
    rng = random.Random(5)
    text = "kill the pack " * 150
    original = tmp_path / "original.y"
    first = anyio.run(_history, original, text, 100)
    anyio.run(first.aclose)
    old = original.read_bytes()
    index = hint_path(original).read_bytes()
    expected = [(r.seq, r.update) for r in anyio.run(_records, FileYStore(str(original)))]

    def run(path: Path, kill_after: float | None) -> float:
        with subprocess.Popen(
            [sys.executable, "-c", _PACKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            started = time.perf_counter()
            child.stdin.write("go\n")
            child.stdin.flush()
            if kill_after is None:
                assert child.stdout.readline() == "done\n"
            else:
                time.sleep(kill_after)
                child.send_signal(signal.SIGKILL)
            child.wait()
            return time.perf_counter() - started

    def copy(name: str) -> Path:
        path = tmp_path / name
        path.write_bytes(old)
        # the index names the original's inode: stale for the copy, which is scanned
        hint_path(path).write_bytes(index)
        return path

    whole = run(copy("calibration.y"), None)
    assert (tmp_path / "calibration.y").read_bytes().startswith(b"VERSION:5\n")
    outcomes: set[str] = set()
    for round_ in range(8):
        path = copy(f"doc{round_}.y")
        run(path, rng.uniform(0.3, 1.2) * whole)
        data = path.read_bytes()
        if data.startswith(b"VERSION:4\n"):
            assert data == old
            outcomes.add("old")
        else:
            assert data.startswith(b"VERSION:5\n")
            outcomes.add("new")
        reader = FileYStore(str(path))
        got = [(r.seq, r.update) for r in anyio.run(_records, reader)]
        assert got == expected
        assert anyio.run(_restore, FileYStore(str(path))) == text
    # which outcomes a loaded machine shows varies from run to run; each is checked above


async def test_a_packed_file_copies_inspects_and_repairs_like_any_other(tmp_path: Path) -> None:
    """Copy to SQLite gives the same records; inspect counts the packed records; a torn
    tail after the blocks is cut at the next write and the blocks stay whole."""
    from ystores.filestore.inspection import inspect_file
    from ystores.operations.copying import copy_store
    from ystores.sql import SQLiteYStore

    directory = tmp_path / "files"
    directory.mkdir()
    path = directory / "doc.y"
    store = await _history(path, TEXT, 40)
    assert await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=100), block_records=30)
    records = await _records(store, checkpoints=True)
    await store.aclose()
    report = inspect_file(path)
    assert report.version == 5
    assert report.records == len(records)
    assert report.checkpoints == sum(r.kind == RecordKind.CHECKPOINT for r in records)

    database = tmp_path / "copy.db"
    await copy_store(str(directory), str(database))
    async with SQLiteYStore("doc.y", db_path=database) as copy:
        copied = [r async for r in copy.read_records()]
    updates = [r for r in records if r.kind != RecordKind.CHECKPOINT]
    assert [(r.update, r.metadata, r.timestamp) for r in copied] == [
        (r.update, r.metadata, r.timestamp) for r in updates
    ]

    whole = path.read_bytes()
    extra = typing_updates(TEXT + "?", client_id=7)[-1]
    torn = encode_frames([Record(records[-1].seq + 1, extra, b"", 2e9)])[:-4]
    path.write_bytes(whole + torn)  # a write cut short after the blocks
    writer = FileYStore(str(path))
    await writer.write(extra)
    assert path.read_bytes().startswith(whole)
    assert [r.update for r in await _records(writer)] == [r.update for r in updates] + [extra]
    assert await _restore(FileYStore(str(path))) == TEXT + "?"
    await writer.aclose()


async def test_repair_leaves_a_healthy_packed_file_alone_and_cuts_a_damaged_block(
    tmp_path: Path,
) -> None:
    from ystores.operations.repairing import cut_damaged_records

    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 50)  # 8 checkpoints, then 20 records
    assert await store.pack(thinning=ThinningPolicy(keep_recent=1, spacing=10_000))
    before = await _records(store)
    await store.aclose()
    healthy = path.read_bytes()
    assert cut_damaged_records(path) is None
    assert path.read_bytes() == healthy
    # a damaged block (payload changed, frame CRC recomputed): its records are cut, the rest kept
    with path.open("rb") as file:
        fmt = detect_format(file, len(healthy), str(path))
        assert fmt is not None
        scanner = V3Scanner(file, fmt.data_offset, len(healthy), kinds=fmt.kinds)
        scanner.expand_blocks = False
        offsets: list[int] = []
        scanner.offsets = offsets
        frames = [r for batch in scanner for r in batch]
    block_at = next(o for o, r in zip(offsets, frames, strict=True) if r.kind == RecordKind.BLOCK)
    from ystores.filestore.frames import FRAME_HEAD, frame_checksum

    data = bytearray(healthy)
    length = FRAME_HEAD.unpack_from(data, block_at)[0]
    data[block_at + 8 + length - 3] ^= 0x20
    body = bytes(data[block_at + 8 : block_at + 8 + length])
    crc = frame_checksum(bytes(data[block_at : block_at + 4]), body)
    data[block_at + 4 : block_at + 8] = crc.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    cut = cut_damaged_records(path)
    assert cut is not None
    assert cut.offset == block_at
    assert cut.backup.read_bytes() == bytes(data)
    # the block's records are gone from the file (they are in the backup); the rest is kept
    block = next(r for r in frames if r.kind == RecordKind.BLOCK)
    last = decode_block_header(block.metadata).last_seq
    after = await _records(FileYStore(str(path)))
    assert after
    assert [r.update for r in after] == [r.update for r in before if not block.seq <= r.seq <= last]


async def test_default_thinning_keeps_one_recent_and_a_damaged_latest_falls_back(
    tmp_path: Path,
) -> None:
    from ystores.history import decode_header

    path = tmp_path / "doc.y"
    store = await _history(path, TEXT, 50)  # 420 records, a checkpoint every 50
    assert await store.pack(thinning=ThinningPolicy(spacing=150), block_records=1000)
    with path.open("rb") as file:
        size = path.stat().st_size
        fmt = detect_format(file, size, str(path))
        assert fmt is not None
        scanner = V3Scanner(file, fmt.data_offset, size, kinds=fmt.kinds)
        scanner.expand_blocks = False
        frames = [r for batch in scanner for r in batch]
    checkpoints = [r for r in frames if r.kind == RecordKind.CHECKPOINT]
    covers = []
    for checkpoint in checkpoints:
        header = decode_header(checkpoint.metadata)
        assert header is not None
        covers.append(header.covers)
    # the latest only (the one before it, covering 356, is dropped), then no stretch
    # longer than 150 records further back
    assert covers == [101, 203, 305, 407]
    # the latest damaged under a valid frame: the restore starts from the kept one
    # before it (102 records more to replay) and gives the same text
    wrong = typing_updates("something else", client_id=8)[0]
    path.write_bytes(
        b"VERSION:5\n"
        + encode_frames(
            Record(r.seq, wrong, r.metadata, r.timestamp, r.kind) if r is checkpoints[-1] else r
            for r in frames
        )
    )
    hint_path(path).unlink(missing_ok=True)
    assert await _restore(FileYStore(str(path))) == TEXT
    await store.aclose()
