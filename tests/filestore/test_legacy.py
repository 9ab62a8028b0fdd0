"""FileYStore over the files ypy-websocket and pycrdt-store wrote (file versions 0, 1, 2).

Every legacy file fixture is read and checked against `manifest.json`: record
count, per-record metadata, timestamps and the document the updates replay to,
with pycrdt and with y-py. Writing to a legacy file is refused unless the store
was opened with `upgrade=True`, which rewrites the file to version 3 atomically.
Files in no known format are refused on read and on write and never touched.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import pycrdt
import pytest
import y_py as Y

from legacy_fixtures import LEGACY_FIXTURES
from ystores import FileYStore, LegacyFormatError, Record, UnknownFormatError, YDocNotFound
from ystores.records import decode_varuint, encode_varuint

pytestmark = pytest.mark.anyio

MANIFEST = LEGACY_FIXTURES / "manifest.json"


def _manifest_entries() -> dict[str, dict[str, Any]]:
    """The manifest's legacy file entries, by path relative to the fixtures directory."""
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["entries"]
    return {entry["file"]: entry for entry in entries if entry["file"].endswith(".y")}


FILE_ENTRIES = _manifest_entries()
HEADERS = {b"VERSION:2\n": 2, b"VERSION:1\n": 1}


def _version(data: bytes) -> int:
    return next((v for header, v in HEADERS.items() if data.startswith(header)), 0)


def _parse_legacy(data: bytes) -> list[tuple[bytes, bytes, float]]:
    """An independent parser of the legacy layouts: (update, metadata, timestamp) per record."""
    version = _version(data)
    i = 10 if version else 0
    out: list[tuple[bytes, bytes, float]] = []
    while i < len(data):
        fields: list[bytes] = []
        for _ in range(3 if version == 2 else 2):
            length, i = decode_varuint(data, i)
            fields.append(data[i : i + length])
            i += length
        timestamp = struct.unpack("<d", fields[2])[0] if version == 2 else 0.0
        out.append((fields[0], fields[1], timestamp))
    assert i == len(data)
    return out


def _metadata(item: dict[str, str]) -> bytes:
    return item["utf8"].encode() if "utf8" in item else bytes.fromhex(item["hex"])


def _numbers_as_floats(value: Any) -> Any:
    """JSON-like data with every number as a float (pycrdt stores numbers as floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    raise TypeError(type(value))


def _roots(doc: pycrdt.Doc[Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The content of the roots named in `expected`, in the manifest's shape."""
    types = {"Y.Text": pycrdt.Text, "Y.Map": pycrdt.Map, "Y.Array": pycrdt.Array}
    out: dict[str, Any] = {}
    for name, spec in expected.items():
        root = doc.get(name, type=types[spec["type"]])
        value = str(root) if spec["type"] == "Y.Text" else root.to_py()
        out[name] = {"type": spec["type"], "value": _numbers_as_floats(value)}
    return out


def _y_py_roots(ydoc: Any, expected: dict[str, Any]) -> dict[str, Any]:
    """Like `_roots`, for a y-py document (whose maps and arrays give JSON strings)."""
    out: dict[str, Any] = {}
    for name, spec in expected.items():
        if spec["type"] == "Y.Text":
            value: Any = str(ydoc.get_text(name))
        elif spec["type"] == "Y.Map":
            value = json.loads(ydoc.get_map(name).to_json())
        else:
            value = json.loads(ydoc.get_array(name).to_json())
        out[name] = {"type": spec["type"], "value": _numbers_as_floats(value)}
    return out


def _expected_roots(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"type": spec["type"], "value": _numbers_as_floats(spec["value"])}
        for name, spec in expected.items()
    }


async def _records(store: FileYStore) -> list[Record]:
    return [record async for record in store.read_records()]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(params=sorted(FILE_ENTRIES))
def legacy_file(request: pytest.FixtureRequest, fixtures_dir: Path) -> tuple[Path, dict[str, Any]]:
    """(path of a legacy fixture file in tests/fixtures/legacy, its manifest entry). Read-only."""
    name: str = request.param
    return fixtures_dir / name, FILE_ENTRIES[name]


def test_every_legacy_file_fixture_is_in_the_manifest(fixtures_dir: Path) -> None:
    assert fixtures_dir / "manifest.json" == MANIFEST
    on_disk = sorted(str(p.relative_to(fixtures_dir)) for p in fixtures_dir.glob("*/file-v*/*.y"))
    assert on_disk == sorted(FILE_ENTRIES)
    assert {_version(p.read_bytes()) for p in fixtures_dir.glob("*/file-v*/*.y")} == {0, 1, 2}


async def test_reads_legacy_file(legacy_file: tuple[Path, dict[str, Any]]) -> None:
    path, entry = legacy_file
    (doc_entry,) = entry["docs"]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    stored = _parse_legacy(data)

    records = await _records(FileYStore(str(path)))

    assert len(records) == doc_entry["updates"] == len(stored)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert [r.metadata for r in records] == [_metadata(m) for m in doc_entry["metadata"]]
    assert sum(r.update == b"\x00\x00" for r in records) == doc_entry["empty_updates"]
    assert [r.as_tuple() for r in records] == stored
    if _version(data) == 2:
        assert doc_entry["timestamps"] is True
        assert all(1.5e9 < r.timestamp < 2.5e9 for r in records)
    else:
        assert [r.timestamp for r in records] == [0.0] * len(records)

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for record in records:
        doc.apply_update(record.update)
    assert _roots(doc, doc_entry["expected"]) == _expected_roots(doc_entry["expected"])
    assert _digest(path) == entry["sha256"]  # reading never changes a file


async def test_reads_legacy_file_into_y_py_and_pycrdt_docs(
    legacy_file: tuple[Path, dict[str, Any]],
) -> None:
    path, entry = legacy_file
    (doc_entry,) = entry["docs"]
    expected = doc_entry["expected"]
    store = FileYStore(str(path))

    ydoc = Y.YDoc()
    await store.apply_updates(ydoc)
    assert _y_py_roots(ydoc, expected) == _expected_roots(expected)

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    assert _roots(doc, expected) == _expected_roots(expected)


async def test_write_to_legacy_file_is_refused(
    legacy_file: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    source, entry = legacy_file
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    before = _listing(tmp_path)
    store = FileYStore(str(path))

    with pytest.raises(LegacyFormatError, match="ystore migrate") as info:
        await store.write(b"\x00\x00")
    assert str(path) in str(info.value)
    with pytest.raises(LegacyFormatError, match="ystore migrate"):
        await store.write(b"\x00\x00")  # and again: nothing was half done the first time
    await store.aclose()

    assert _digest(path) == entry["sha256"]
    assert _listing(tmp_path) == before
    assert len(await _records(FileYStore(str(path)))) == entry["docs"][0]["updates"]


def _append_text(updates: list[bytes], suffix: str) -> bytes:
    """An update that appends `suffix` to root text "text" of the doc `updates` make."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    state = doc.get_state()
    text = doc.get("text", type=pycrdt.Text)
    text += suffix
    return doc.get_update(state)


async def test_upgrade_rewrites_legacy_file_to_v3(
    legacy_file: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    source, entry = legacy_file
    (doc_entry,) = entry["docs"]
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    old = _parse_legacy(path.read_bytes())
    store = FileYStore(
        str(path), upgrade=True, clock=lambda: 1_700_000_000.25, metadata_callback=lambda: b"new"
    )

    assert len(await _records(store)) == len(old)
    assert _digest(path) == entry["sha256"]  # reading does not upgrade
    update = _append_text([u for u, _m, _t in old], " (upgraded)")
    await store.write(update)
    await store.aclose()

    assert path.read_bytes().startswith(b"VERSION:4\n")
    assert _listing(tmp_path) == [path.name]  # no temp file, no torn file
    records = await _records(FileYStore(str(path)))
    assert [r.as_tuple() for r in records] == [*old, (update, b"new", 1_700_000_000.25)]
    assert [r.seq for r in records] == list(range(1, len(old) + 2))

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await FileYStore(str(path)).apply_updates(doc)
    expected = _expected_roots(doc_entry["expected"])
    expected["text"]["value"] += " (upgraded)"
    assert _roots(doc, doc_entry["expected"]) == expected

    # the upgraded file is an ordinary v3 file: a plain store appends to it
    await FileYStore(str(path), clock=lambda: 5.0).write(b"\x00\x00")
    records = await _records(FileYStore(str(path)))
    assert records[-1].as_tuple() == (b"\x00\x00", b"", 5.0)
    assert records[-1].seq == len(old) + 2


UNKNOWN_FILES = {
    "random-bytes": random.Random(0).randbytes(2000),
    "version-9": b"VERSION:9\n" + bytes(range(40)),
    "version-not-a-number": b"VERSION:x\n\x00\x00\x00",
    "text": "Grüße, ceci est un fichier texte.\nIt is not a store.\n".encode(),
    "json": b'{"a": 1, "b": [1, 2, 3]}\n',
}


@pytest.mark.parametrize("name", sorted(UNKNOWN_FILES))
async def test_unknown_format_is_refused_and_untouched(name: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    path.write_bytes(UNKNOWN_FILES[name])
    store = FileYStore(str(path), upgrade=True)

    with pytest.raises(UnknownFormatError) as info:
        await _records(store)
    assert not isinstance(info.value, YDocNotFound)
    assert info.value.path == str(path)
    with pytest.raises(UnknownFormatError):
        await store.write(b"\x00\x00")
    with pytest.raises(UnknownFormatError):
        await FileYStore(str(path)).write(b"\x00\x00")
    await store.aclose()

    assert path.read_bytes() == UNKNOWN_FILES[name]
    assert _listing(tmp_path) == ["doc.y"]


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_legacy_file_with_a_record_larger_than_a_read_chunk(
    version: int, tmp_path: Path
) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += "0123456789" * 150_000  # a first update of 1.5 MB (an initial full state)
    first = doc.get_update()
    state = doc.get_state()
    text += "!"
    second = doc.get_update(state)
    body = b""
    for update, metadata in ((first, b"big"), (second, b"m" * 1_200_000)):
        body += encode_varuint(len(update)) + update + encode_varuint(len(metadata)) + metadata
        if version == 2:
            body += b"\x08" + struct.pack("<d", 1_600_000_000.5)
    path = tmp_path / "doc.y"
    path.write_bytes({0: b"", 1: b"VERSION:1\n", 2: b"VERSION:2\n"}[version] + body)

    records = await _records(FileYStore(str(path)))

    timestamp = 1_600_000_000.5 if version == 2 else 0.0
    assert [r.as_tuple() for r in records] == [
        (first, b"big", timestamp),
        (second, b"m" * 1_200_000, timestamp),
    ]
    replayed: pycrdt.Doc[Any] = pycrdt.Doc()
    await FileYStore(str(path)).apply_updates(replayed)
    assert str(replayed.get("text", type=pycrdt.Text)) == "0123456789" * 150_000 + "!"


async def test_upgrade_removes_temporaries_of_a_killed_upgrade(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "doc.y"
    shutil.copyfile(fixtures_dir / "ypy-websocket-0.7.2" / "file-v1" / "basic.y", path)
    stale = tmp_path / ".doc.y.0123abcd.tmp"  # what a replace killed before its rename leaves
    stale.write_bytes(b"VERSION:3\n\x00\x01")
    others = [".doc.y.x.0123abcd.tmp", ".doc.y.0123abcd.tmp.y", ".other.y.0123abcd.tmp"]
    for name in others:  # other documents' (or nobody's) files: kept
        (tmp_path / name).write_bytes(b"")

    await FileYStore(str(path), upgrade=True).write(b"\x00\x00")

    assert _listing(tmp_path) == sorted(["doc.y", *others])
    assert len(await _records(FileYStore(str(path)))) == 9


def _legacy_record_file(path: Path, size: int) -> None:
    """A v2 file holding one record whose metadata is `size` bytes."""
    with path.open("wb") as file:
        file.write(b"VERSION:2\n" + encode_varuint(2) + b"\x00\x00" + encode_varuint(size))
        for _ in range(size // 10_000_000):
            file.write(b"x" * 10_000_000)
        file.write(b"x" * (size % 10_000_000))
        file.write(b"\x08" + struct.pack("<d", 1.0))


async def _read_cpu_seconds(path: Path, size: int) -> float:
    """The CPU time of this process (every thread) to read the file's one record."""
    started = time.process_time()
    sizes = [len(r.metadata) async for r in FileYStore(str(path)).read_records()]
    elapsed = time.process_time() - started
    assert sizes == [size]
    return elapsed


async def test_a_huge_legacy_record_is_read_in_linear_time(tmp_path: Path) -> None:
    # The time to read one record must grow with its size, not with its square: the old
    # reader re-read the record per 1 MiB chunk (a 200 MB record took ~15 s). Compared with
    # a record 8 times smaller in the same run. Linear reading costs about 8x; re-reading
    # per chunk reads 1 + 2 + ... + n MiB, 24 * 25 / 2 = 300 MiB for the small record and
    # 191 * 192 / 2 = 18,336 MiB for the big one: 61x. Measured in CPU time (the reading
    # threads' own work, not time spent waiting for a busy machine or for the disk
    # writing back the 200 MB just written), best of 3 on both sides; wall time had
    # drifted to 21-23x under load.
    small, big = tmp_path / "small.y", tmp_path / "big.y"
    _legacy_record_file(small, 25_000_000)
    _legacy_record_file(big, 200_000_000)
    small_seconds = min([await _read_cpu_seconds(small, 25_000_000) for _ in range(3)])
    big_seconds = min([await _read_cpu_seconds(big, 200_000_000) for _ in range(3)])
    ratio = big_seconds / small_seconds
    assert ratio < 24, f"8x the record took {ratio:.0f}x the CPU time ({big_seconds:.1f} s)"
