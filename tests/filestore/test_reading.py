"""`read()` over real files whose records cross read chunks and the small-body size.

The scan reads a file a chunk at a time and checks a small body as a copy of its
own, a large one in place (`scanning._SMALL_BODY`). Every record comes back
whichever way it was read; a damaged one is never yielded (the records before it
are, then `CorruptStoreError`); a file cut inside a record gives the records
before the cut and a torn tail.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest

from ydocs import typing_updates
from ystores import CorruptStoreError, FileYStore, TornTail
from ystores.filestore.frames import CHUNK
from ystores.filestore.scanning import _SMALL_BODY

pytestmark = pytest.mark.anyio

HEADER_SIZE = len(b"VERSION:4\n")
UPDATES = typing_updates("chunk boundaries and body sizes", client_id=11)
Triple = tuple[bytes, bytes, float]


def _meta_for_body(body: int, update: bytes) -> bytes:
    """Metadata that makes a record's body exactly `body` bytes (seq < 128)."""
    # seq (1) + kind (1) + float64 (8) + a 3-byte var-uint metadata length
    size = body - 13 - len(update)
    assert 1 << 14 <= size < 1 << 21
    return b"m" * size


def _plan() -> list[tuple[bytes, bytes]]:
    """(update, metadata) pairs: tiny, exactly around the small-body size, large."""
    pairs = [(UPDATES[0], b""), (UPDATES[1], b"tiny")]
    pairs += [
        (u, _meta_for_body(_SMALL_BODY + d, u))
        for u, d in zip(UPDATES[2:5], (-1, 0, 1), strict=True)
    ]
    sizes = itertools.cycle([0, 300_000, 1_000, 90_000, 0, 200_000, 7])
    pairs += [(u, b"x" * next(sizes)) for u in UPDATES[5:]]
    return pairs


async def _write(path: Path) -> list[Triple]:
    pairs = _plan()
    metadata = iter(meta for _, meta in pairs)
    clock = itertools.count(1.0)
    store = FileYStore(
        str(path), fsync=False, metadata_callback=lambda: next(metadata), clock=lambda: next(clock)
    )
    for update, _ in pairs:
        await store.write(update)
    await store.aclose()
    return [(update, meta, float(i)) for i, (update, meta) in enumerate(pairs, 1)]


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame."""
    spans, i = [], HEADER_SIZE
    while i < len(data):
        end = i + 8 + struct.unpack_from("<I", data, i)[0]
        spans.append((i, end))
        i = end
    return spans


def _across(spans: list[tuple[int, int]], k: int) -> int:
    """The index of the frame that the `k`-th chunk boundary of the scan falls inside."""
    boundary = HEADER_SIZE + k * CHUNK
    return next(n for n, (start, end) in enumerate(spans) if start < boundary < end)


def _index(which: str, spans: list[tuple[int, int]]) -> int:
    """The index of the record a test case is about (see `_plan`)."""
    if which.startswith("across-chunk-"):
        return _across(spans, int(which.rsplit("-", 1)[1]))
    return {"small": 1, "small-body-size": 3, "one-byte-more": 4, "large": 6}[which]


async def _read(path: Path, into: list[Triple]) -> FileYStore:
    store = FileYStore(str(path))
    async for triple in store.read():
        into.append(triple)
    return store


async def test_every_record_is_read_across_chunks_and_body_sizes(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    written = await _write(path)
    spans = _frames(path.read_bytes())
    lengths = [end - start - 8 for start, end in spans]
    assert {_SMALL_BODY - 1, _SMALL_BODY, _SMALL_BODY + 1} <= set(lengths)
    assert max(lengths) > _SMALL_BODY + 1
    assert min(lengths) < 100
    assert 6 < _across(spans, 1) < _across(spans, 2) < len(spans) - 1

    seen: list[Triple] = []
    store = await _read(path, seen)
    assert seen == written
    assert all(type(update) is bytes and type(meta) is bytes for update, meta, _ in seen)
    assert store.torn_tail is None


@pytest.mark.parametrize(
    "which",
    ["small", "small-body-size", "one-byte-more", "large", "across-chunk-1", "across-chunk-2"],
)
async def test_a_damaged_record_is_never_yielded(which: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    written = await _write(path)
    data = bytearray(path.read_bytes())
    spans = _frames(bytes(data))
    index = _index(which, spans)
    start, end = spans[index]
    assert index < len(spans) - 1  # damage before the last record is never a torn tail
    data[(start + 8 + end) // 2] ^= 0x10  # a bit in the middle of its body
    path.write_bytes(data)

    seen: list[Triple] = []
    with pytest.raises(CorruptStoreError) as info:
        await _read(path, seen)
    assert info.value.offset == start
    assert seen == written[:index]


@pytest.mark.parametrize("which", ["small-body-size", "large", "across-chunk-1"])
async def test_a_file_cut_inside_a_record_gives_the_records_before_it(
    which: str, tmp_path: Path
) -> None:
    path = tmp_path / "doc.y"
    written = await _write(path)
    data = path.read_bytes()
    spans = _frames(data)
    index = _index(which, spans)
    start, end = spans[index]
    for cut in (start + 5, (start + end) // 2, end - 1):
        path.write_bytes(data[:cut])
        seen: list[Triple] = []
        store = await _read(path, seen)
        assert seen == written[:index]
        assert store.torn_tail == TornTail(start, cut - start)
