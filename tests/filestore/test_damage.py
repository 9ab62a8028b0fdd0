"""Damaged files are never "no document": corruption, header damage, bounded reads, repair.

Each case is one of the faults found by mutating real files: a flipped bit in a
one-record file, a flipped header bit (`VERSION:3` -> `VERSION:2`), a damaged last
record, `verify --repair` on damage, and large damage (zeros, garbage lengths)
read in bounded time and memory.
"""

# Small blocking file operations in async tests are the point here (set up and check files).
# ruff: noqa: ASYNC240

from __future__ import annotations

import os
import random
import struct
import tracemalloc
from pathlib import Path

import pytest

from ydocs import typing_updates
from ystores import (
    CorruptStoreError,
    FileYStore,
    Record,
    TornTail,
    UnknownFormatError,
    YDocNotFound,
)
from ystores.filestore.damage import BODY_PEEK, body_start_fits
from ystores.filestore.frames import KINDS
from ystores.operations.verifying import verify_store

pytestmark = pytest.mark.anyio

HEADER = b"VERSION:3\n"
UPDATES = typing_updates("damage", client_id=5)
EXTRA = typing_updates("!", client_id=99)[0]


async def _write(path: Path, updates: list[bytes]) -> list[Record]:
    store = FileYStore(str(path), fsync=False, clock=lambda: 7.0)
    for update in updates:
        await store.write(update)
    await store.aclose()
    return await _records(path)


async def _records(path: Path) -> list[Record]:
    return [record async for record in FileYStore(str(path)).read_records()]


def _side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _frame_ends(data: bytes) -> list[int]:
    ends, i = [], len(HEADER)
    while i + 8 <= len(data):
        i += 8 + struct.unpack_from("<I", data, i)[0]
        ends.append(i)
    return ends


async def test_every_flipped_bit_of_a_one_record_file_is_corruption(tmp_path: Path) -> None:
    source = tmp_path / "source" / "doc.y"
    source.parent.mkdir()
    await _write(source, UPDATES[:1])
    data = source.read_bytes()
    path = tmp_path / "doc.y"
    for bit in range(len(HEADER) * 8, len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(damaged)
        with pytest.raises(CorruptStoreError) as info:
            await _records(path)
        assert not isinstance(info.value, YDocNotFound)
        assert info.value.offset == len(HEADER), bit
        store = FileYStore(str(path))
        with pytest.raises(CorruptStoreError):
            await store.write(EXTRA)  # never moves the record aside to write after it
        await store.aclose()
        assert path.read_bytes() == damaged
        assert _side_files(path) == ["source"], bit


async def test_every_flipped_header_bit_is_corruption_at_byte_0(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    await _write(path, UPDATES[:3])
    data = path.read_bytes()
    records = await _records(path)
    for bit in range(len(HEADER) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(damaged)
        if damaged.startswith(b"VERSION:5\n"):
            # the one flip that names version 5, whose frames are a superset of 4's:
            # the same records read back (an older ystores refuses it as a newer format)
            assert await _records(path) == records
            continue
        with pytest.raises(CorruptStoreError) as info:
            await _records(path)
        assert info.value.offset == 0, (bit, bytes(damaged[:10]))
    assert _side_files(path) == []


async def test_version_2_header_over_v3_records_is_repaired_by_rewriting_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    records = await _write(path, UPDATES)
    data = path.read_bytes()
    path.write_bytes(b"VERSION:2\n" + data[len(HEADER) :])

    report = await verify_store(str(tmp_path))
    (problem,) = report.problems
    assert problem.kind == "damaged"
    assert "header" in problem.message
    assert not any(p.kind == "torn-tail" for p in report.problems)

    repaired = await verify_store(str(tmp_path), repair=True)
    assert repaired.healthy
    (repair,) = repaired.repairs
    assert repair.removed == 0
    assert path.read_bytes() == data  # every record kept, the header written anew
    assert await _records(path) == records
    assert Path(repair.backup).read_bytes()[:10] == b"VERSION:2\n"


async def test_a_damaged_last_record_is_corruption_and_repair_cuts_only_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    records = await _write(path, UPDATES)
    data = path.read_bytes()
    ends = _frame_ends(data)
    damaged = bytearray(data)
    damaged[ends[-2] + 14] ^= 0x04  # inside the last record's body
    path.write_bytes(damaged)

    with pytest.raises(CorruptStoreError) as info:
        await _records(path)
    assert info.value.offset == ends[-2]
    report = await verify_store(str(tmp_path))
    assert [p.kind for p in report.problems] == ["damaged"]

    repaired = await verify_store(str(tmp_path), repair=True)
    assert repaired.healthy
    assert repaired.repairs[0].removed == ends[-1] - ends[-2]
    assert await _records(path) == records[:-1]
    assert path.read_bytes() == data[: ends[-2]]


async def test_repair_keeps_every_intact_record_after_middle_damage(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    records = await _write(path, UPDATES)
    data = path.read_bytes()
    ends = _frame_ends(data)
    damaged = bytearray(data)
    damaged[ends[1] + 1] ^= 0x80  # the third record's length, now past the end of the file
    path.write_bytes(damaged)
    with pytest.raises(CorruptStoreError) as info:
        await _records(path)
    assert info.value.offset == ends[1]

    repaired = await verify_store(str(tmp_path), repair=True)
    assert repaired.healthy
    assert await _records(path) == records[:2] + records[3:]
    assert repaired.repairs[0].removed == ends[2] - ends[1]


async def test_a_damaged_length_on_the_last_record_is_not_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    await _write(path, UPDATES[:3])
    data = path.read_bytes()
    ends = _frame_ends(data)
    damaged = bytearray(data)
    damaged[ends[1] + 2] ^= 0x01  # the last record claims 64 kB more than it has
    path.write_bytes(damaged)
    with pytest.raises(CorruptStoreError, match="length field is damaged"):
        await _records(path)


async def test_a_real_torn_append_is_still_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    records = await _write(path, UPDATES[:4])
    data = path.read_bytes()
    ends = _frame_ends(data)
    for cut in range(ends[2] + 1, ends[3]):
        path.write_bytes(data[:cut])
        store = FileYStore(str(path))
        assert [r async for r in store.read_records()] == records[:3]
        assert store.torn_tail == TornTail(ends[2], cut - ends[2])


async def test_zeros_after_the_last_record_are_a_torn_tail_read_quickly(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    records = await _write(path, UPDATES[:2])
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(size + (100 << 20))  # 100 MB of zeros (sparse)
    tracemalloc.start()
    try:
        store = FileYStore(str(path), clock=lambda: 8.0)
        assert [r async for r in store.read_records()] == records
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert store.torn_tail == TornTail(size, 100 << 20)
    assert peak < 32 << 20, f"reading past 100 MB of zeros held {peak >> 20} MiB"
    await store.write(EXTRA)
    await store.aclose()
    assert path.stat().st_size > size
    assert (await _records(path))[-1].seq == 3
    assert _side_files(path) == []  # zeros are not worth a side file


def _garbage(size: int) -> bytes:
    """`size` bytes of garbage after a frame length that no record can start with.

    Fixed, not `os.urandom`: random bytes start like a record written next (a seq
    above the last, a kind byte the version allows) about one time in 50, and a
    frame that claims more than the file holds then reads as a torn write. Here the checksum field
    is followed by seq 3 and kind byte 0xff, which no file version allows.
    """
    rest = random.Random(20261130).randbytes(size - 6)
    return b"\xde\xad\xbe\xef" + bytes((3, 0xFF)) + rest


def test_the_garbage_cannot_start_a_record() -> None:
    body = _garbage(BODY_PEEK + 4)[4:]
    assert 0xFF not in KINDS
    assert body_start_fits(body, 200 << 20, 2) is False


@pytest.mark.parametrize("claimed", [90 << 20, 200 << 20], ids=["fits", "past-the-end"])
async def test_garbage_with_a_plausible_length_is_never_allocated(
    claimed: int, tmp_path: Path
) -> None:
    path = tmp_path / "doc.y"
    await _write(path, UPDATES[:2])
    with path.open("ab") as file:
        file.write(struct.pack("<I", claimed) + _garbage(4 << 20))
        file.truncate(file.tell() + (96 << 20))  # 100 MB of damage in all
    tracemalloc.start()
    try:
        with pytest.raises(CorruptStoreError):
            await _records(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"a frame claiming {claimed} bytes made a read hold {peak >> 20} MiB"


async def test_a_large_real_record_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    big = os.urandom(3 << 20)
    store = FileYStore(str(path), fsync=False, metadata_callback=lambda: big)
    await store.write(UPDATES[0])
    await store.write(UPDATES[1])
    await store.aclose()
    assert [r.metadata for r in await _records(path)] == [big, big]


# The fuzzer's find, byte for byte: a one-record v3 file whose header became
# `VERSION:1` and whose frame head lost three bytes (no valid frame is left); it was
# read as a v1 record never written.
FUZZ_FIND = (
    b"VERSION:1\n\x1a*\x17q\x01\x00\xa9\x08r/\x1e\xc3\xdaA\x04meta"
    b"\x01\x01\x01\x00\x04\x01\x01t\x01a\x00"
)


@pytest.mark.parametrize(
    "damaged",
    [FUZZ_FIND, b"VERSION:2\n" + FUZZ_FIND[10:], FUZZ_FIND[10:]],
    ids=["as-v1", "as-v2", "headerless"],
)
async def test_a_damaged_header_over_a_damaged_only_record_is_not_a_legacy_record(
    damaged: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "doc.y"
    path.write_bytes(damaged)
    with pytest.raises((CorruptStoreError, UnknownFormatError)):
        await _records(path)
