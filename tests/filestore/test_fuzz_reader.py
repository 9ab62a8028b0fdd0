"""Property-based fuzzing of the file reader over mutated v3 and legacy files.

Real files (v3 written by `FileYStore`, squashed or not; v2, v1 and v0 written by
ypy-websocket and pycrdt-store) get up to four mutations each: flipped bits, bytes
set, cuts, inserted or deleted bytes, ranges zeroed or copied, garbage or zeros
appended. Reading the result may only give:

- every record, or the records before a torn tail (a cut file is a shorter file);
- `CorruptStoreError` or `UnknownFormatError`;

never a record that was not written (v3: each record is checksummed), never another
exception. (Whole records cut out of the middle to the byte, an edit rather than a
fault, leave the others: seqs may have gaps, as after `verify --repair`.) On a v3
file the next write then keeps what was read, or refuses and changes nothing.
Legacy records carry no checksum, so a flipped bit inside an
update cannot be seen: there, records are checked against the originals only when
the mutations cannot have touched them (cuts and appended zeros).

Examples per test: `YSTORES_FUZZ_EXAMPLES` (default 150, for CI). A longer run:
`YSTORES_FUZZ_EXAMPLES=20000 pytest tests/filestore/test_fuzz_reader.py` (about
7 minutes here).
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legacy_fixtures import LEGACY_FIXTURES
from ydocs import typing_updates
from ystores import (
    CorruptStoreError,
    FileYStore,
    LegacyFormatError,
    Record,
    StoreFormatError,
    UnknownFormatError,
    YDocNotFound,
)

EXAMPLES = int(os.environ.get("YSTORES_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXTRA = typing_updates("+", client_id=77)[0]


@dataclass(frozen=True)
class Source:
    name: str
    data: bytes
    records: tuple[Record, ...]


async def _read(path: Path) -> tuple[list[Record] | StoreFormatError, FileYStore]:
    store = FileYStore(str(path), fsync=False, clock=lambda: 5.0)
    try:
        return [record async for record in store.read_records()], store
    except YDocNotFound:
        return [], store
    except (CorruptStoreError, UnknownFormatError) as exc:
        return exc, store


async def _read_bytes(
    directory: str, data: bytes
) -> tuple[Path, list[Record] | StoreFormatError, FileYStore]:
    """`data` written to a file in `directory`, and what reading it gives."""
    path = Path(directory) / "doc.y"
    path.write_bytes(data)
    outcome, store = await _read(path)
    return path, outcome, store


async def _v3_file(path: Path, texts: list[str], squash: bool) -> None:
    store = FileYStore(str(path), fsync=False, metadata_callback=lambda: b"meta")
    for i, text in enumerate(texts):
        for update in typing_updates(text, client_id=i + 1):
            await store.write(update)
        if squash and i == 0:
            await store.squash()
    await store.aclose()


@functools.cache
def v3_sources() -> tuple[Source, ...]:
    """Real v3 files: short, long, squashed, with large metadata."""

    async def make() -> tuple[Source, ...]:
        sources = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, texts, squash in [
                ("one-record", ["a"], False),
                ("typing", ["hello", "wörld 🚀"], False),
                ("squashed", ["first part", "then more"], True),
            ]:
                path = Path(tmp) / f"{name}.y"
                await _v3_file(path, texts, squash)
                records, _store = await _read(path)
                assert isinstance(records, list)
                sources.append(Source(name, path.read_bytes(), tuple(records)))
        return tuple(sources)

    return anyio.run(make)


@functools.cache
def legacy_sources() -> tuple[Source, ...]:
    """The legacy fixtures: v2 (ypy-websocket, pycrdt-store), v1, v0."""

    async def make() -> tuple[Source, ...]:
        sources = []
        for path in sorted(LEGACY_FIXTURES.glob("*/file-v*/*.y")):
            records, _store = await _read(path)
            assert isinstance(records, list)
            name = str(path.relative_to(LEGACY_FIXTURES))
            sources.append(Source(name, path.read_bytes(), tuple(records)))
        return tuple(sources)

    return anyio.run(make)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> tuple[bytes, bool]:
    """`data` with 1 to 4 mutations, and whether only cuts and appended zeros were made."""
    out = bytearray(data)
    structural_only = True
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["flip", "set", "cut", "insert", "delete", "zero", "copy", "append", "zeros"]
            )
        )
        at = draw(st.integers(0, max(0, len(out) - 1)))
        span = draw(st.integers(1, 64))
        if kind == "cut":
            del out[at:]
        elif kind == "append":
            structural_only = False  # (appended bytes may form a legacy record)
            out += draw(st.binary(min_size=1, max_size=80))
        elif kind == "zeros":
            out += bytes(draw(st.integers(1, 5000)))
        else:
            structural_only = False
            if not out:
                continue
            if kind == "flip":
                out[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                out[at] = draw(st.integers(0, 255))
            elif kind == "insert":
                out[at:at] = draw(st.binary(min_size=1, max_size=16))
            elif kind == "delete":
                del out[at : at + span]
            elif kind == "zero":
                out[at : at + span] = bytes(len(out[at : at + span]))
            else:
                source = draw(st.integers(0, len(out) - 1))
                out[at:at] = out[source : source + span]
    return bytes(out), structural_only


def _check_read(
    source: Source, damaged: bytes, outcome: list[Record] | StoreFormatError, store: FileYStore
) -> None:
    if isinstance(outcome, StoreFormatError):
        return
    written = {record.seq: record for record in source.records}
    for record in outcome:
        assert written.get(record.seq) == record, f"a record that was never written: {record}"
    seqs = [record.seq for record in outcome]
    assert seqs == sorted(set(seqs))
    if seqs != [record.seq for record in source.records[: len(outcome)]]:
        # whole frames cut out of the middle, to the byte (a deliberate edit, not a
        # fault a disk or a crash makes): what is left is still only written records
        return
    if len(outcome) < len(source.records):
        # fewer records: a torn tail, a file cut at a record's end (a shorter file), or
        # at most a header (a file cut while it was being created holds nothing)
        assert (
            store.torn_tail is not None
            or source.data.startswith(damaged)
            or (not outcome and len(damaged) <= len(b"VERSION:3\n"))
        ), source.name


@FUZZ
@given(data=st.data())
def test_mutated_v3_files_read_whole_torn_or_refused(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(v3_sources()), label="source")
    damaged, _structural = data.draw(mutated(source.data), label="damaged")

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path, outcome, store = await _read_bytes(tmp, damaged)
            _check_read(source, damaged, outcome, store)
            try:
                await store.write(EXTRA)
            except LegacyFormatError:  # it now reads as a legacy file: empty, or damaged
                assert not isinstance(outcome, list) or outcome == []
                return
            except StoreFormatError:
                assert isinstance(outcome, StoreFormatError)
                assert path.read_bytes() == damaged  # a refused write changes nothing
                return
            finally:
                await store.aclose()
            assert isinstance(outcome, list)
            after, _ = await _read(path)
            seq = (outcome[-1].seq if outcome else 0) + 1
            assert after == [*outcome, Record(seq, EXTRA, b"", 5.0)]

    anyio.run(main)


@FUZZ
@given(data=st.data())
def test_mutated_legacy_files_read_whole_torn_or_refused(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(legacy_sources()), label="source")
    damaged, structural_only = data.draw(mutated(source.data), label="damaged")

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path, outcome, store = await _read_bytes(tmp, damaged)  # other errors fail
            await store.aclose()
            if structural_only and source.data.startswith(damaged[: len(source.data)]):
                # cut and/or zeros appended: what was read is what was written
                _check_read(source, damaged[: len(source.data)], outcome, store)
            assert path.read_bytes() == damaged  # reading never changes a file

    anyio.run(main)


@pytest.mark.parametrize("bit", range(80))
def test_a_flipped_header_bit_never_yields_a_record(bit: int) -> None:
    """The fuzzer's find: `VERSION:3` -> `VERSION:1` read v3 frames as a record never written."""
    source = v3_sources()[1]
    damaged = bytearray(source.data)
    damaged[bit // 8] ^= 1 << (bit % 8)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            _path, outcome, store = await _read_bytes(tmp, bytes(damaged))
            if damaged.startswith(b"VERSION:5\n") and source.data.startswith(b"VERSION:4\n"):
                # version 5 reads every version-4 frame alike: the records written, no other
                assert outcome == list(source.records), outcome
            else:
                assert isinstance(outcome, CorruptStoreError), (bytes(damaged[:10]), outcome)
                assert outcome.offset == 0
            await store.aclose()

    anyio.run(main)
