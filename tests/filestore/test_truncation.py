"""Round trips, torn tails, corruption, bad updates, bad names and OS errors, on real files.

A file cut anywhere (a crash mid-append) keeps every complete record before the
cut; the rest is reported as a torn tail, never raised, and cut off (saved aside)
by the next write. Damage in the middle of a file is `CorruptStoreError`, on read
and on write, and the file is left as it is. Telling the two apart stays fast on
a large torn tail.
"""

# Small blocking file operations in async tests are the point here (set up and check files).
# ruff: noqa: ASYNC230, ASYNC240

from __future__ import annotations

import hashlib
import itertools
import os
import random
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ydocs import typing_updates
from ystores import (
    CorruptStoreError,
    FileYStore,
    InvalidDocumentNameError,
    InvalidUpdateError,
    LegacyFormatError,
    Record,
    RecordKind,
    StoreFormatError,
    StoreIOError,
    TornTail,
    YDocNotFound,
)
from ystores.filestore.frames import encode_frame
from ystores.filestore.scanning import _frame_start_candidates, frame_checksum
from ystores.records import decode_varuint, encode_varuint

pytestmark = pytest.mark.anyio

UPDATES = [*typing_updates("Grüße 🚀 ok", client_id=7), b"\x00\x00"]
HEADER = b"VERSION:4\n"  # what a new file starts with (version 3 files read the same)
EXTRA = typing_updates("!", client_id=99)[0]  # the update written after a cut


def _v3_boundaries(data: bytes) -> list[int]:
    """End offsets of the complete v3 frames in `data` (independent of the scanner)."""
    assert data.startswith(HEADER)
    ends, i = [], len(HEADER)
    while i + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, i)
        if i + 8 + length > len(data):
            break
        i += 8 + length
        ends.append(i)
    return ends


def _legacy_boundaries(data: bytes) -> tuple[int, list[int]]:
    """(data offset, end offsets of each record) of a legacy file (v0, v1 or v2)."""
    fields = 3 if data.startswith(b"VERSION:2\n") else 2
    start = 10 if data.startswith(b"VERSION:") else 0
    ends, i = [], start
    while i < len(data):
        for _ in range(fields):
            length, i = decode_varuint(data, i)
            i += length
        ends.append(i)
    assert i == len(data)
    return start, ends


async def _records(store: FileYStore) -> list[Record]:
    return [record async for record in store.read_records()]


async def _records_or_none(store: FileYStore) -> list[Record]:
    """The records, or [] when the store reports YDocNotFound."""
    try:
        return await _records(store)
    except YDocNotFound:
        return []


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clock(start: float = 1_700_000_000.0) -> Iterator[float]:
    return (start + i / 8 for i in itertools.count())


async def _write_all(
    path: Path, entries: list[tuple[bytes, bytes]], timestamps: list[float]
) -> None:
    metadata = iter([m for _u, m in entries])
    clock = iter(timestamps)
    store = FileYStore(
        str(path), fsync=False, metadata_callback=lambda: next(metadata), clock=lambda: next(clock)
    )
    for update, _m in entries:
        await store.write(update)
    await store.aclose()


async def _small_v3_file(path: Path, count: int = 6) -> list[Record]:
    entries = [(UPDATES[i % len(UPDATES)], b"m" * (i % 3)) for i in range(count)]
    await _write_all(path, entries, [1000.0 + i for i in range(count)])
    return await _records(FileYStore(str(path)))


# -- round trips --------------------------------------------------------------------------

entry_lists = st.lists(
    st.tuples(st.sampled_from(UPDATES), st.binary(max_size=300)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=entry_lists, timestamps=st.lists(st.floats(allow_nan=False), min_size=25))
def test_round_trip(entries: list[tuple[bytes, bytes]], timestamps: list[float]) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "doc.y"
            await _write_all(path, entries, timestamps)
            records = await _records(FileYStore(str(path)))
            assert [(r.update, r.metadata) for r in records] == entries
            assert [r.timestamp for r in records] == timestamps[: len(entries)]
            assert [r.seq for r in records] == list(range(1, len(entries) + 1))
            assert _v3_boundaries(path.read_bytes())[-1] == path.stat().st_size

    anyio.run(main)


# -- torn tails ---------------------------------------------------------------------------


async def _check_cut(
    source: bytes, cut: int, ends: list[int], records: list[Record], path: Path
) -> None:
    """Cut `source` at `cut` into `path`, then check the read, the torn tail and a write."""
    for leftover in path.parent.glob(f"{path.name}.torn-*"):
        leftover.unlink()
    path.write_bytes(source[:cut])
    complete = [r for r, end in zip(records, ends, strict=True) if end <= cut]
    good_end = max([e for e in ends if e <= cut], default=len(HEADER))
    store = FileYStore(str(path), fsync=False, clock=lambda: 42.0)

    assert await _records_or_none(store) == complete, cut
    if cut > good_end:
        assert store.torn_tail == TornTail(good_end, cut - good_end), cut
    else:
        assert store.torn_tail is None, cut
    assert path.read_bytes() == source[:cut]  # reading never changes the file

    await store.write(EXTRA)
    await store.aclose()
    after = await _records(FileYStore(str(path)))
    assert after == [*complete, Record(len(complete) + 1, EXTRA, b"", 42.0)], cut
    torn = sorted(path.parent.glob(f"{path.name}.torn-*"))
    if cut > good_end:
        assert [p.name for p in torn] == [f"{path.name}.torn-{good_end}"]
        assert torn[0].read_bytes() == source[good_end:cut]
    else:
        assert torn == []


async def test_v3_cut_at_every_byte_keeps_complete_records(tmp_path: Path) -> None:
    source_path = tmp_path / "source.y"
    records = await _small_v3_file(source_path)
    source = source_path.read_bytes()
    ends = _v3_boundaries(source)
    assert len(ends) == len(records)
    assert ends[-1] == len(source)

    for cut in range(len(source) + 1):
        await _check_cut(source, cut, ends, records, tmp_path / "doc.y")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=entry_lists, data=st.data())
def test_v3_cut_at_random_offsets(entries: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            source_path = Path(tmp) / "source.y"
            await _write_all(source_path, entries, [float(i) for i in range(len(entries))])
            source = source_path.read_bytes()
            records = await _records(FileYStore(str(source_path)))
            cut = data.draw(st.integers(0, len(source)), label="cut")
            await _check_cut(source, cut, _v3_boundaries(source), records, Path(tmp) / "doc.y")

    anyio.run(main)


async def test_a_torn_tail_is_cut_once_and_writes_continue(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    records = await _small_v3_file(path)
    size = path.stat().st_size
    with open(path, "ab") as file:
        file.write(b"\x40\x00\x00\x00\x01\x02")  # a frame head promising 64 bytes, then a crash
    store = FileYStore(str(path), fsync=False, clock=lambda: 1.0)
    for i in range(3):
        await store.write(EXTRA)
        assert path.read_bytes()[size : size + 4] != b"\x40\x00\x00\x00"
        assert store.torn_tail is None
        assert (await _records(store))[-1].seq == len(records) + i + 1
    assert [p.name for p in tmp_path.iterdir() if ".torn-" in p.name] == [f"doc.y.torn-{size}"]


def _legacy_files(fixtures_dir: Path) -> list[Path]:
    """The small legacy fixtures (every one but the 7 kB many-updates.y)."""
    return sorted(p for p in fixtures_dir.glob("*/file-v*/*.y") if p.stat().st_size < 1000)


async def test_legacy_cut_at_every_byte_keeps_complete_records(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    sources = _legacy_files(fixtures_dir)
    assert len(sources) == 5  # v2 (ypy-websocket x2, pycrdt-store), v1, v0
    for source_path in sources:
        source = source_path.read_bytes()
        records = await _records(FileYStore(str(source_path)))
        start, ends = _legacy_boundaries(source)
        assert len(ends) == len(records) >= 8
        path = tmp_path / source_path.name
        first_cut = start or ends[0]  # v0 has no header: a cut first record is no format
        for cut in range(first_cut, len(source) + 1):
            path.write_bytes(source[:cut])
            complete = [r for r, end in zip(records, ends, strict=True) if end <= cut]
            good_end = max([e for e in ends if e <= cut], default=start)
            store = FileYStore(str(path))
            assert await _records_or_none(store) == complete, (source_path, cut)
            expected_tail = TornTail(good_end, cut - good_end) if cut > good_end else None
            assert store.torn_tail == expected_tail, (source_path, cut)
            if complete:
                with pytest.raises(LegacyFormatError):
                    await store.write(EXTRA)
            assert path.read_bytes() == source[:cut]


async def test_legacy_header_cut_short_holds_no_document(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "doc.y"
    sources = [p.read_bytes() for p in _legacy_files(fixtures_dir)]
    headed = [s for s in sources if s.startswith(b"VERSION:")]
    assert len(headed) == 4
    for source in headed:
        for cut in range(11):
            path.write_bytes(source[:cut])
            with pytest.raises(YDocNotFound):
                await _records(FileYStore(str(path)))


async def test_upgrading_a_torn_legacy_file_keeps_the_tail_aside(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    source_path = fixtures_dir / "ypy-websocket-0.12.4" / "file-v2" / "basic.y"
    source = source_path.read_bytes()
    records = await _records(FileYStore(str(source_path)))
    _start, ends = _legacy_boundaries(source)
    cut = ends[4] + 7
    path = tmp_path / "doc.y"
    path.write_bytes(source[:cut])

    store = FileYStore(str(path), upgrade=True, clock=lambda: 3.0)
    await store.write(EXTRA)
    await store.aclose()

    after = await _records(FileYStore(str(path)))
    assert after == [*records[:5], Record(6, EXTRA, b"", 3.0)]
    assert (tmp_path / f"doc.y.torn-{ends[4]}").read_bytes() == source[ends[4] : cut]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.y", f"doc.y.torn-{ends[4]}"]


# -- corruption ---------------------------------------------------------------------------


async def test_damage_inside_a_middle_record_is_corruption(tmp_path: Path) -> None:
    source_path = tmp_path / "source.y"
    records = await _small_v3_file(source_path, count=5)
    source = source_path.read_bytes()
    ends = _v3_boundaries(source)
    start, stop = ends[1], ends[2]  # the third record
    path = tmp_path / "doc.y"
    rng = random.Random(1)
    for offset in range(start, stop):
        for flip in (0xFF, 1 << rng.randrange(8)):
            damaged = bytearray(source)
            damaged[offset] ^= flip
            path.write_bytes(damaged)
            store = FileYStore(str(path), fsync=False)
            seen: list[Record] = []
            with pytest.raises(CorruptStoreError) as info:  # noqa: PT012 - records come first
                async for record in store.read_records():
                    seen.append(record)
            assert not isinstance(info.value, YDocNotFound)
            assert info.value.offset == start, offset
            assert seen == records[:2]
            with pytest.raises(CorruptStoreError):
                await store.write(EXTRA)
            await store.aclose()
            assert path.read_bytes() == damaged
            assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.y", "source.y"]


async def test_damage_in_the_first_record_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    await _small_v3_file(path, count=3)
    damaged = bytearray(path.read_bytes())
    damaged[len(HEADER) + 12] ^= 0x10
    path.write_bytes(damaged)
    with pytest.raises(CorruptStoreError):
        await _records(FileYStore(str(path)))


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"not an update", b"\xff" * 64])
async def test_garbage_update_is_refused_and_nothing_is_written(
    garbage: bytes, tmp_path: Path
) -> None:
    fresh = FileYStore(str(tmp_path / "fresh.y"))
    with pytest.raises(InvalidUpdateError):
        await fresh.write(garbage)
    assert not (tmp_path / "fresh.y").exists()

    path = tmp_path / "doc.y"
    records = await _small_v3_file(path, count=2)
    before = _digest(path)
    store = FileYStore(str(path))
    with pytest.raises(InvalidUpdateError):
        await store.write(garbage)
    await store.aclose()
    assert _digest(path) == before
    assert await _records(FileYStore(str(path))) == records


@pytest.mark.parametrize(
    "name", ["../x", "/etc/passwd", "a/../../b", "a\x00b", "", "..", "a/./b", "a//b"]
)
async def test_names_that_escape_the_root_are_refused(name: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(InvalidDocumentNameError):
        FileYStore(name, root=root)
    assert os.listdir(root) == []
    assert sorted(os.listdir(tmp_path)) == ["root"]


@pytest.mark.parametrize("path", ["", "a\x00b"])
def test_unusable_paths_without_a_root_are_refused(path: str) -> None:
    with pytest.raises(InvalidDocumentNameError):
        FileYStore(path)


async def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "dir-link").symlink_to(outside, target_is_directory=True)
    (outside / "victim.y").write_bytes(b"")
    (root / "file-link.y").symlink_to(outside / "victim.y")
    (root / "inside").mkdir()
    (root / "inner-link").symlink_to(root / "inside", target_is_directory=True)

    for name in ["dir-link/doc.y", "file-link.y", "dir-link/../outside/x.y"]:
        with pytest.raises(InvalidDocumentNameError):
            FileYStore(name, root=root)

    store = FileYStore("inner-link/doc.y", root=root)  # a link that stays inside is fine
    await store.write(EXTRA)
    assert (root / "inside" / "doc.y").is_file()
    assert os.listdir(outside) == ["victim.y"]
    assert (outside / "victim.y").read_bytes() == b""


# -- the operating system refuses --------------------------------------------------------


async def test_os_errors_are_store_io_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.y").mkdir()
    (tmp_path / "plain").write_bytes(b"")
    for path in (tmp_path / "dir.y", tmp_path / "plain" / "doc.y"):
        store = FileYStore(str(path))
        with pytest.raises(StoreIOError) as info:
            await _records(store)
        assert str(path) in str(info.value)
        with pytest.raises(StoreIOError):
            await store.write(EXTRA)
        await store.aclose()
    assert sorted(os.listdir(tmp_path)) == ["dir.y", "plain"]
    assert os.listdir(tmp_path / "dir.y") == []


def _frame(body: bytes) -> bytes:
    """A v3 frame with a correct checksum around any body."""
    length = struct.pack("<I", len(body))
    return length + struct.pack("<I", frame_checksum(length, body)) + body


CRAFTED_BODIES = {
    "unknown-kind": encode_varuint(2) + b"\x07" + struct.pack("<d", 1.0) + b"\x00\x00\x00",
    "seq-fills-the-body": encode_varuint(2**62) + b"\x00\x00\x00",
    "metadata-past-the-end": encode_varuint(2) + b"\x00" + struct.pack("<d", 1.0) + b"\x64ab",
    "seq-not-increasing": encode_varuint(1) + b"\x00" + struct.pack("<d", 1.0) + b"\x00\x00\x00",
    "varuint-too-long": b"\xff" * 11 + b"\x00" * 3,
}


@pytest.mark.parametrize("name", sorted(CRAFTED_BODIES))
async def test_checksummed_records_that_do_not_decode_are_corruption(
    name: str, tmp_path: Path
) -> None:
    first = encode_frame(Record(1, b"\x00\x00", b"", 1.0))
    third = encode_frame(Record(3, b"\x00\x00", b"", 1.0))
    data = HEADER + first + _frame(CRAFTED_BODIES[name]) + third
    path = tmp_path / "doc.y"
    path.write_bytes(data)
    with pytest.raises(CorruptStoreError) as info:
        await _records(FileYStore(str(path)))
    assert info.value.offset == len(HEADER) + len(first)
    with pytest.raises(CorruptStoreError):
        await FileYStore(str(path)).write(EXTRA)
    assert path.read_bytes() == data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=entry_lists, data=st.data())
def test_any_damage_is_reported_never_misread(
    entries: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    """Random flips past the header and a random cut: a prefix of the records, or an error."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "doc.y"
            await _write_all(path, entries, [float(i) for i in range(len(entries))])
            records = await _records(FileYStore(str(path)))
            damaged = bytearray(path.read_bytes())
            # (the header has no checksum: damage there is a different story)
            offsets = st.integers(len(HEADER), len(damaged) - 1)
            for offset in data.draw(st.lists(offsets, max_size=3)):
                damaged[offset] ^= data.draw(st.integers(1, 255))
            damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
            path.write_bytes(damaged)

            store = FileYStore(str(path), fsync=False, clock=lambda: 9.0)
            try:
                seen = await _records(store)
            except YDocNotFound:
                seen = []
            except StoreFormatError:
                seen = None
            if seen is not None:
                assert seen == records[: len(seen)]  # never a record that was not written
            try:
                await store.write(EXTRA)
            except StoreFormatError:
                assert seen is None
                assert path.read_bytes() == damaged
                return
            assert seen is not None
            after = await _records(FileYStore(str(path)))
            assert after == [*seen, Record(len(seen) + 1, EXTRA, b"", 9.0)]

    anyio.run(main)


@settings(max_examples=200, deadline=None)
@given(
    garbage=st.binary(max_size=40),
    seqs=st.lists(st.integers(1, 2**40), min_size=1, max_size=6, unique=True),
    metadata=st.binary(max_size=300),
    kind=st.sampled_from([RecordKind.UPDATE, RecordKind.SNAPSHOT, RecordKind.CHECKPOINT]),
    slack=st.integers(0, 2**33),
)
def test_every_frame_start_is_a_candidate(
    garbage: bytes, seqs: list[int], metadata: bytes, kind: RecordKind, slack: int
) -> None:
    """The fast pre-filter of the corruption search never drops a real frame."""
    frames = [
        encode_frame(Record(seq, b"\x00\x00", metadata[: seq % 300], float(seq), kind))
        for seq in sorted(seqs)
    ]
    window = garbage + b"".join(frames)
    starts = list(itertools.accumulate([len(garbage), *map(len, frames)]))[:-1]
    candidates = set(_frame_start_candidates(window, len(window) - 8 + slack))
    assert set(starts) <= candidates


async def test_a_large_torn_tail_is_scanned_quickly(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    payload = random.Random(2).randbytes(10_000_000)  # binary: any byte anywhere
    metadata = iter([b"", payload])
    store = FileYStore(str(path), fsync=False, metadata_callback=lambda: next(metadata))
    await store.write(b"\x00\x00")
    await store.write(b"\x00\x00")
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 10)  # the big record, torn
    started = time.perf_counter()
    store = FileYStore(str(path))
    assert [r.seq for r in await _records(store)] == [1]
    elapsed = time.perf_counter() - started
    assert store.torn_tail is not None
    # It took minutes when every offset with a fitting length was checksummed; a second or
    # two now, with a wide margin for a loaded machine.
    assert elapsed < 20, f"reading past a 10 MB torn tail took {elapsed:.1f} s"
