"""`ystore copy` between every pair of backends: records, metadata, timestamps and content kept."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from backends import new_postgres_database
from ystores.operations.sources import ScanState, open_source

from .helpers import copy_fixture, manifest, ok_json, one_line_error, ystore, ystore_process


def records_of(target: str) -> dict[str, list[tuple[bytes, bytes, float]]]:
    """Every document's records as (update, metadata, timestamp), read with the library."""

    async def read() -> dict[str, list[tuple[bytes, bytes, float]]]:
        source = open_source(target)
        out: dict[str, list[tuple[bytes, bytes, float]]] = {}
        for name in await source.names():
            out[name] = [
                r.as_tuple() async for batch in source.batches(name, ScanState()) for r in batch
            ]
        if "postgres" in target:
            from ystores.sql import dispose_databases

            await dispose_databases()
        return out

    return anyio.run(read)


def contents(target: str) -> dict[str, Any]:
    return {
        d["name"]: ok_json("inspect", target, "--doc", d["name"], "--content")
        for d in ok_json("ls", target)
    }


def test_round_trip_directory_sqlite_postgres_and_back(legacy_db: Path, tmp_path: Path) -> None:
    original = records_of(str(legacy_db))
    expected_content = contents(str(legacy_db))
    hops = [
        str(tmp_path / "files"),
        f"sqlite:///{tmp_path / 'copy.db'}",
        new_postgres_database(),
        str(tmp_path / "back"),
    ]
    previous = str(legacy_db)
    for target in hops:
        result = ystore("copy", previous, target)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()  # one line per document, then a summary
        assert len(lines) == 5, lines
        assert lines[-1].startswith("Copied 4 of 4 documents"), lines
        assert records_of(target) == original, target
        previous = target
    assert contents(previous) == expected_content


def test_copy_is_idempotent_and_resumes_an_interrupted_copy(
    legacy_db: Path, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    first = ok_json("copy", str(legacy_db), target)
    assert {d["action"] for d in first["documents"]} == {"copied"}
    again = ok_json("copy", str(legacy_db), target)
    assert [(d["action"], d["written"]) for d in again["documents"]] == [("skipped", 0)] * 4
    # an interrupted copy into a directory: the first 3 records of one document only
    directory = tmp_path / "files"
    ystore("copy", str(legacy_db), str(directory))
    doc = directory / "unicode" / "café-文档"
    cut = _end_of_record(doc, 3)
    doc.write_bytes(doc.read_bytes()[:cut])
    resumed = ok_json("copy", str(legacy_db), str(directory))
    by_name = {d["name"]: d for d in resumed["documents"]}
    assert by_name["unicode/café-文档"] == {
        "name": "unicode/café-文档",
        "action": "resumed",
        "written": 27,
    }
    assert by_name["doc-a"]["action"] == "skipped"
    assert records_of(str(directory)) == records_of(str(legacy_db))


def _end_of_record(path: Path, count: int) -> int:
    """The byte offset just past the first `count` v3 frames of a store file."""
    data = path.read_bytes()
    offset = len(b"VERSION:3\n")
    for _ in range(count):
        offset += 8 + int.from_bytes(data[offset : offset + 4], "little")
    return offset


def test_copy_refuses_to_mix_histories(legacy_db: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    directory = tmp_path / "files"
    other = copy_fixture(fixtures_dir, "ypy-websocket-0.12.4/file-v2/basic.y", tmp_path / "other")
    exported = tmp_path / "basic.update"
    assert ystore("export", str(other), "--doc", "basic.y", "-o", str(exported)).exit_code == 0
    assert ystore("import", str(exported), str(directory), "--doc", "doc-a").exit_code == 0
    before = (directory / "doc-a").read_bytes()
    result = ystore("copy", str(legacy_db), str(directory))
    one_line_error(result, "'doc-a'", "were not copied")
    assert (directory / "doc-a").read_bytes() == before
    assert (directory / "folder" / "doc-b").is_file()  # the other documents were copied


def test_squash_copies_one_update_per_document_with_the_same_content(
    legacy_db: Path, tmp_path: Path
) -> None:
    target = str(tmp_path / "squashed")
    result = ystore("copy", str(legacy_db), target, "--squash")
    assert result.exit_code == 0, result.output
    assert [d["records"] for d in ok_json("ls", target)] == [1, 1, 1, 1]
    assert contents(target) == contents(str(legacy_db))


def test_every_legacy_fixture_copies_into_sqlite(fixtures_dir: Path, tmp_path: Path) -> None:
    for index, entry in enumerate(manifest(fixtures_dir)):
        source = copy_fixture(fixtures_dir, entry["file"], tmp_path / f"in{index}")
        target = f"sqlite:///{tmp_path / f'out{index}.db'}"
        result = ystore("copy", str(source), target)
        assert result.exit_code == 0, (entry["file"], result.output)
        assert records_of(target) == records_of(str(source)), entry["file"]


def test_copy_as_a_subprocess_with_json(legacy_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "files"
    result = ystore_process("copy", str(legacy_db), str(target), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [d["written"] for d in report["documents"]] == [8, 8, 5, 30]
    listed = ystore_process("ls", str(target), "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 4


def test_a_long_document_streams_through_every_backend_and_resumes(tmp_path: Path) -> None:
    from logging import getLogger

    from ydocs import typing_updates
    from ystores.filestore.log import FileLog

    updates = typing_updates("x" * 1300)  # more records than one read batch
    source = tmp_path / "src"
    log = FileLog(source / "long", fsync=False, upgrade=False, log=getLogger("test"))
    log.append([(u, f"m{i}".encode(), 1.7e9 + i) for i, u in enumerate(updates)])
    log.close()
    expected = records_of(str(source))
    db = f"sqlite:///{tmp_path / 'long.db'}"
    pg = new_postgres_database()
    back = tmp_path / "back"
    for origin, target in ((str(source), db), (db, pg), (pg, str(back))):
        assert ystore("copy", origin, target).exit_code == 0
        assert records_of(target) == expected, target
    # cut the copy after 700 records: copying again appends the other 600
    doc = back / "long"
    doc.write_bytes(doc.read_bytes()[: _end_of_record(doc, 700)])
    (entry,) = ok_json("copy", pg, str(back))["documents"]
    assert entry == {"name": "long", "action": "resumed", "written": 600}
    assert records_of(str(back)) == expected


def test_a_pycrdt_checkpoint_that_adds_to_the_history_is_kept(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    db = copy_fixture(fixtures_dir, "pycrdt-store-0.1.5/sqlite/ystore.db", tmp_path)
    # complete history: the checkpoint is redundant and left out
    assert ok_json("copy", str(db), str(tmp_path / "whole"))["documents"][1]["written"] == 120
    with closing(sqlite3.connect(db)) as conn:  # lose the history's last 60 rows
        conn.execute(
            "DELETE FROM yupdates WHERE rowid IN (SELECT rowid FROM yupdates "
            "WHERE path = 'doc-many' ORDER BY rowid DESC LIMIT 60)"
        )
        conn.commit()
        rows = conn.execute("SELECT yupdate FROM yupdates WHERE path = 'doc-many' ORDER BY rowid")
        history: pycrdt.Doc[Any] = pycrdt.Doc()
        for (update,) in rows:
            history.apply_update(update)
        (checkpoint,) = conn.execute("SELECT checkpoint FROM ycheckpoints WHERE path = 'doc-many'")
        history.apply_update(checkpoint[0])
    expected = {
        "meta": {"type": "Y.Map", "value": history.get("meta", type=pycrdt.Map).to_py()},
        "text": {"type": "Y.Text", "value": str(history.get("text", type=pycrdt.Text))},
    }
    assert len(expected["text"]["value"]) > 60 * len("fixture pc line 000\n")  # it adds lines
    assert ok_json("inspect", str(db), "--doc", "doc-many", "--content") == expected
    exported = ystore("export", str(db), "--doc", "doc-many", "--format", "json")
    assert json.loads(exported.stdout) == expected
    copied = ok_json("copy", str(db), str(tmp_path / "partial"))["documents"][1]
    assert copied == {"name": "doc-many", "action": "copied", "written": 61}
    target = str(tmp_path / "partial")
    assert ok_json("inspect", target, "--doc", "doc-many", "--content") == expected
    assert ok_json("copy", str(db), target)["documents"][1]["action"] == "skipped"
