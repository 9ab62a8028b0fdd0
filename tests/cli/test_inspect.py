"""`ystore inspect` and `ystore ls` on every backend and every legacy fixture; never writing."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from .helpers import copy_fixture, doc_name, hashes, manifest, ok_json, one_line_error, ystore

LEGACY_VERSIONS = {"ypy-file-v2": 2, "ypy-file-v1": 1, "ypy-file-v0": 0}


def test_every_legacy_fixture_is_inspected_listed_and_left_alone(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    for entry in manifest(fixtures_dir):
        path = copy_fixture(fixtures_dir, entry["file"], tmp_path / entry["file"].split("/")[0])
        before = hashes(tmp_path)
        report = ok_json("inspect", str(path))
        assert report["healthy"] is True, entry["file"]
        expected = {doc_name(entry, d): d for d in entry["docs"]}
        assert [d["name"] for d in report["documents"]] == sorted(expected)
        for doc in report["documents"]:
            wanted = expected[doc["name"]]
            assert doc["records"] == wanted["updates"], (entry["file"], doc["name"])
            assert doc["healthy"] is True
            assert doc["metadata"]["distinct"] == len({json.dumps(m) for m in wanted["metadata"]})
            assert (doc["first_timestamp"] is not None) == wanted["timestamps"]
        if entry["format"] in LEGACY_VERSIONS:
            assert report["kind"] == "file"
            assert report["version"] == LEGACY_VERSIONS[entry["format"]]
        else:
            assert report["kind"] == "legacy-sqlite"
            assert report["version"] == entry["sqlite"]["user_version"]
            assert ("pycrdt-store" in report["format"]) == entry["format"].startswith("pycrdt")
        listed = ok_json("ls", str(path))
        assert [(d["name"], d["records"]) for d in listed] == [
            (d["name"], d["records"]) for d in report["documents"]
        ]
        assert hashes(tmp_path) == before, f"{entry['file']} was changed by a read"


def test_content_of_every_fixture_document_matches_the_manifest(fixtures_dir: Path) -> None:
    for entry in manifest(fixtures_dir):
        path = fixtures_dir / entry["file"]  # read-only commands may read the originals
        for doc in entry["docs"]:
            content = ok_json("inspect", str(path), "--doc", doc_name(entry, doc), "--content")
            if entry["file"].startswith("pycrdt-store-0.1.5/sqlite-squash"):
                # pycrdt-store's squash bug left only pending updates: what can be placed is empty
                for name, root in content.items():
                    assert root == doc["expected"][name]
                continue
            assert content == doc["expected"], (entry["file"], doc["path"])


def test_content_as_text_shows_each_root_with_its_type(fixtures_dir: Path) -> None:
    path = fixtures_dir / "ypy-websocket-0.12.4" / "file-v2" / "basic.y"
    result = ystore("inspect", str(path), "--content")
    assert result.exit_code == 0, result.output
    assert "text (Y.Text)" in result.stdout
    assert "Hello, new world! [fixture file-v2]" in result.stdout
    assert "meta (Y.Map)" in result.stdout
    assert "items (Y.Array)" in result.stdout


def test_content_needs_a_document_when_there_are_several(legacy_db: Path) -> None:
    result = ystore("inspect", str(legacy_db), "--content")
    assert result.exit_code == 2
    assert "--doc" in result.stderr


def test_inspect_every_backend(store: str) -> None:
    report = ok_json("inspect", store)
    assert report["kind"] in ("directory", "sqlite", "postgres")
    assert report["version"] is not None
    assert report["healthy"] is True
    names = [d["name"] for d in report["documents"]]
    assert names == sorted(names)
    assert len(names) == 4
    assert sum(d["records"] for d in report["documents"]) == 8 + 8 + 5 + 30
    one = ok_json("inspect", store, "--doc", "unicode/café-文档")
    (doc,) = one["documents"]
    assert doc["records"] == 30
    assert doc["last_seq"] == 30
    assert doc["first_timestamp"] <= doc["last_timestamp"]
    table = ystore("inspect", store)
    assert table.exit_code == 0, table.output
    assert "doc-a" in table.stdout
    assert "\N{NOTEBOOK}" not in table.stdout  # ':notebook:' in a name stays text


def test_records_show_clients_and_clock_ranges(store: str) -> None:
    report = ok_json("inspect", store, "--doc", "doc-a", "--records")
    (doc,) = report["documents"]
    records: list[dict[str, Any]] = doc["record_list"]
    assert [r["seq"] for r in records] == list(range(1, 9))
    clocks: dict[str, int] = {}
    for record in records:
        assert record["error"] is None
        assert record["structs"] or record["deletes"]
        assert json.loads(record["metadata"])["doc"] == "doc-a"
        for client, spans in record["structs"].items():
            for start, end in spans:  # one client typing: each update continues the last
                assert start == clocks.get(client, 0)
                assert end > start
                clocks[client] = end
    table = ystore("inspect", store, "--doc", "doc-a", "--records")
    assert table.exit_code == 0, table.output
    assert "client:clocks" in table.stdout


def test_ls_every_backend(store: str) -> None:
    listed = ok_json("ls", store)
    assert [(d["name"], d["records"]) for d in listed] == [
        ("doc-a", 8),
        ("folder/doc-b", 8),
        ("json:notebook:0b2c7f0e-6f1a-4d3b-9a57-3f0f2f6c9e11", 5),
        ("unicode/café-文档", 30),
    ]
    assert all(d["bytes"] > 0 and d["last_activity"] > 1.7e9 and d["healthy"] for d in listed)
    table = ystore("ls", store)
    assert table.exit_code == 0, table.output
    assert "doc-a" in table.stdout


READING_COMMANDS = (
    ("inspect", "--json"),
    ("inspect", "--doc", "doc-a", "--records", "--json"),
    ("inspect", "--doc", "doc-a", "--content"),
    ("ls",),
    ("verify",),
    ("export", "--doc", "doc-a", "-o", "{out}"),
)


def _run_reading_commands(db: Path, out: Path) -> None:
    for command, *rest in READING_COMMANDS:
        args = [command, str(db), *(a.format(out=out) for a in rest)]
        result = ystore(*args)
        assert result.exit_code == 0, (args, result.output)


def test_reading_commands_leave_a_sqlite_store_byte_for_byte(
    legacy_db: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "db"
    directory.mkdir()
    db = directory / "store.db"
    assert ystore("copy", str(legacy_db), str(db)).exit_code == 0
    before = hashes(directory)
    assert list(before) == ["store.db"]
    _run_reading_commands(db, tmp_path / "out.bin")
    assert hashes(directory) == before  # not even a -wal or -shm file appeared
    # a server stopped uncleanly leaves an empty -wal and a -shm: they must not change either
    (directory / "store.db-wal").write_bytes(b"")
    (directory / "store.db-shm").write_bytes(b"\x01" * 32768)
    before = hashes(directory)
    _run_reading_commands(db, tmp_path / "out.bin")
    assert hashes(directory) == before


def test_reading_commands_see_a_live_wal_and_leave_the_database_and_wal_alone(
    legacy_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    assert ystore("copy", str(legacy_db), str(db)).exit_code == 0
    with closing(sqlite3.connect(db)) as writer:  # a live server: its last commit is in the WAL
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute(
            'INSERT INTO ystore_records (doc, seq, kind, "update", metadata, timestamp) '
            "VALUES ('doc-a', 9, 0, x'0000', x'', 1.8e9)"
        )
        writer.commit()
        files = [db, db.with_name("store.db-wal")]
        assert files[1].stat().st_size > 0
        before = {p.name: p.read_bytes() for p in files}
        _run_reading_commands(db, tmp_path / "out.bin")
        (doc,) = ok_json("inspect", str(db), "--doc", "doc-a")["documents"]
        assert doc["records"] == 9  # the committed record still in the WAL is read
        assert {p.name: p.read_bytes() for p in files} == before


def test_torn_tail_is_reported_without_touching_the_file(tmp_path: Path) -> None:
    assert ystore("demo", "--store", str(tmp_path), "--text", "abc").exit_code == 0
    path = tmp_path / "demo"
    with path.open("ab") as file:
        file.write(b"\x30\x00\x00\x00partial")
    before = hashes(tmp_path)
    report = ok_json("inspect", str(path))
    (doc,) = report["documents"]
    assert doc["records"] == 3
    assert doc["torn_tail"] == {"offset": path.stat().st_size - 11, "size": 11}
    assert doc["healthy"] is False
    assert report["healthy"] is False
    assert hashes(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"VERSION:9\n\x01\x02", "version 9"),
        (b"just some text that is not a store\n", "not a store file"),
    ],
)
def test_unknown_format_fails_with_the_reason(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "odd.y"
    path.write_bytes(content)
    result = ystore("inspect", str(path), "--json")
    assert result.exit_code == 1
    assert expected in json.loads(result.stdout)["problem"]
    assert path.read_bytes() == content


def test_unknown_document_is_one_line(store: str) -> None:
    one_line_error(ystore("inspect", store, "--doc", "nope"), "'nope'")
