"""The compiled frame loop reads exactly what the Python loop reads.

`_framescan.scan_raw` (C, compiled at install by `hatch_build.py`) takes the
frames of raw updates and snapshots and hands every other frame back to the
Python loop. Over random logs (every kind and codec, blocks, metadata and seqs
of every var-uint width up to 64 bits, small and large bodies, read in chunks
of random sizes) and the same logs damaged, both loops give the same records,
the same seqs, the same torn tail and the same error, in both shapes that use
the compiled loop (`read()`'s triples, a replay's updates).

Examples: `YSTORES_FUZZ_EXAMPLES` (default 150, for CI).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ydocs import typing_updates
from ystores import CorruptStoreError, FileYStore, Record, RecordKind
from ystores.filestore import scanning
from ystores.filestore.formats import HEADER_V5
from ystores.filestore.frames import V5_KINDS, encode_block_frame, encode_frame

EXAMPLES = int(os.environ.get("YSTORES_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _compiled() -> ModuleType | None:
    try:
        from ystores.filestore import _framescan
    except ImportError:
        return None
    return _framescan


COMPILED = _compiled()
needs_compiled = pytest.mark.skipif(
    COMPILED is None and os.environ.get("YSTORES_PURE_PYTHON") == "1",
    reason="installed with YSTORES_PURE_PYTHON=1: there is no compiled loop to compare",
)


def test_the_compiled_loop_is_built_and_used_unless_pure_python_is_asked_for() -> None:
    if os.environ.get("YSTORES_PURE_PYTHON") == "1":
        assert not scanning.accelerated()
        return
    assert COMPILED is not None, "the C frame scanner was not compiled at install"
    assert scanning.accelerated()


def _payload(seq: int, size: int) -> bytes:
    return (seq.to_bytes(9, "little") * (size // 9 + 1))[:size]


@st.composite
def logs(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A version-5 file (random frames of every kind, seqs from near a width boundary)
    and whether its seqs increase throughout (a buggy writer's may repeat one)."""
    seq = draw(st.sampled_from([0, 120, 16_370, 2_097_140, 2**56 - 3, 2**63 - 6, 2**64 - 4]))
    frames = [HEADER_V5]
    increasing = True
    for _ in range(draw(st.integers(1, 30))):
        step = draw(st.sampled_from([1, 1, 1, 2, 3, 0 if len(frames) > 1 else 1]))  # 0: a repeat
        increasing = increasing and step > 0
        seq += step
        what = draw(st.sampled_from(["update"] * 8 + ["snapshot", "checkpoint", "zlib", "block"]))
        size = draw(st.sampled_from([2, 2, 31, 300, 70_000]))
        metadata = draw(st.sampled_from([b"", b"", b"m", b"who" * 60]))
        timestamp = draw(st.floats(allow_nan=False))
        if what == "block":
            records = [
                Record(seq + k, _payload(seq + k, size), metadata, timestamp) for k in range(3)
            ]
            frames.append(encode_block_frame(records))
            seq += 2
            continue
        kind = {"snapshot": RecordKind.SNAPSHOT, "checkpoint": RecordKind.CHECKPOINT}.get(
            what, RecordKind.UPDATE
        )
        record = Record(seq, _payload(seq, size), metadata, timestamp, kind)
        frames.append(encode_frame(record, compressing=what == "zlib"))
    return b"".join(frames), increasing


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` as written, or with a flipped bit, a cut, inserted bytes or a zeroed range."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(len(HEADER_V5), max(len(HEADER_V5), len(out) - 1)))
        how = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        if how == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del out[at:]
        elif how == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=12))
        else:
            out[at : at + 16] = bytes(len(out[at : at + 16]))
    return bytes(out)


def _scan(path: Path, shape: str, chunk: int, compiled: Any) -> tuple[object, ...]:
    """Everything a scan of `path` gives (records, seqs, tail, error), with or without C."""
    saved = scanning._scan_raw, scanning.CHUNK
    scanning._scan_raw, scanning.CHUNK = compiled, chunk
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            scanner = scanning.V3Scanner(file, len(HEADER_V5), size, path=str(path), kinds=V5_KINDS)
            seqs: list[int] | None = [] if shape == "updates" else None
            scanner.seqs = seqs
            batches = scanner.triples() if shape == "triples" else scanner.updates()
            items: list[object] = []
            error = None
            try:
                for batch in batches:
                    items.extend(batch)
            except CorruptStoreError as exc:
                error = (str(exc), exc.offset)
            return items, seqs, error, scanner.tail, scanner.last_seq, scanner.count
    finally:
        scanning._scan_raw, scanning.CHUNK = saved


@needs_compiled
@FUZZ
@given(data=st.data())
def test_the_compiled_and_the_python_loop_read_every_log_alike(data: st.DataObject) -> None:
    log, increasing = data.draw(logs(), label="log")
    stored = data.draw(damaged(log), label="stored")
    shape = data.draw(st.sampled_from(["triples", "updates"]), label="shape")
    chunk = data.draw(st.sampled_from([64, 1000, 1 << 20]), label="chunk")
    assert COMPILED is not None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.y"
        path.write_bytes(stored)
        in_c = _scan(path, shape, chunk, COMPILED.scan_raw)
        in_python = _scan(path, shape, chunk, None)
    assert in_c == in_python
    if stored == log:  # read whole (no torn tail), or refused for its seqs alone
        assert in_c[3] is None
        assert (in_c[2] is None) == increasing


@needs_compiled
def test_the_compiled_loop_takes_raw_frames_and_stops_at_anything_else() -> None:
    assert COMPILED is not None
    scan_raw = COMPILED.scan_raw
    raw = [encode_frame(Record(seq, b"\x00\x00" + bytes([seq]), b"m", 1.5)) for seq in (1, 2)]
    zipped = encode_frame(Record(3, bytes(500), b"", 2.0), compressing=True)
    buf = raw[0] + raw[1] + zipped + raw[0]
    out: list[Any] = []
    seqs: list[int] = []
    assert scan_raw(buf, 0, 0, out, None, True) == (len(raw[0]) + len(raw[1]), 2)
    assert out == [(b"\x00\x00\x01", b"m", 1.5), (b"\x00\x00\x02", b"m", 1.5)]
    # a seq that does not increase, a seq past 64 bits, a cut frame: nothing taken
    for buf, last_seq in [(raw[0], 1), (raw[0], 2**64), (raw[0][:-1], 0)]:
        out, seqs = [], []
        assert scan_raw(buf, 0, last_seq, out, seqs, False) == (0, last_seq)
        assert out == seqs == []
    out, seqs = [], []
    assert scan_raw(raw[1], 0, 0, out, seqs, False) == (len(raw[1]), 2)
    assert (out, seqs) == ([b"\x00\x00\x02"], [2])
    with pytest.raises(TypeError):
        scan_raw(bytearray(raw[0]), 0, 0, [], None, True)


@pytest.mark.anyio
async def test_a_store_reads_the_same_with_and_without_the_compiled_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates = typing_updates("compiled or not, " * 18, client_id=3)[:300]
    store = FileYStore(str(tmp_path / "doc.y"), metadata_callback=lambda: b"who")
    for k, update in enumerate(updates):
        await store.write(update)
        if k == 150:
            await store.squash()
    compiled = [triple async for triple in store.read()]
    monkeypatch.setattr(scanning, "_scan_raw", None)
    python = [triple async for triple in store.read()]
    await store.aclose()
    assert compiled == python
    assert [update for update, _m, _t in compiled[1:]] == updates[151:]
    assert {metadata for _u, metadata, _t in compiled[1:]} == {b"who"}
