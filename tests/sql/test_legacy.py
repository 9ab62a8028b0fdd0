"""Converting the ypy-websocket and pycrdt-store SQLite fixtures, checked against the manifest."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from legacy_fixtures import LEGACY_FIXTURES
from ystores import SchemaOutdatedError, SQLiteYStore, StoreFormatError
from ystores.sql import schema
from ystores.sql.legacy import detect
from ystores.sql.migrate import migrate_database, schema_status

pytestmark = pytest.mark.anyio

FIXTURES = LEGACY_FIXTURES
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SQLITE_ENTRIES = [e for e in MANIFEST["entries"] if e["file"].endswith(".db")]


def numeric(value: Any) -> Any:
    """Numbers as floats (pycrdt stores every number as a float), recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [numeric(v) for v in value]
    if isinstance(value, dict):
        return {k: numeric(v) for k, v in value.items()}
    raise TypeError(value)


def roots(updates: list[bytes], expected: dict[str, Any]) -> dict[str, Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    out: dict[str, Any] = {}
    for name, spec in expected.items():
        if spec["type"] == "Y.Text":
            out[name] = str(doc.get(name, type=pycrdt.Text))
        elif spec["type"] == "Y.Map":
            out[name] = numeric(doc.get(name, type=pycrdt.Map).to_py())
        else:
            out[name] = numeric(doc.get(name, type=pycrdt.Array).to_py())
    return out


def metadata_bytes(item: dict[str, str]) -> bytes:
    return item["utf8"].encode() if "utf8" in item else bytes.fromhex(item["hex"])


def original_rows(path: Path) -> list[tuple[str, bytes, bytes, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        return list(
            conn.execute("SELECT path, yupdate, metadata, timestamp FROM yupdates ORDER BY rowid")
        )


@pytest.fixture(params=SQLITE_ENTRIES, ids=[e["file"].rsplit("/", 1)[0] for e in SQLITE_ENTRIES])
def legacy_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    entry: dict[str, Any] = request.param
    target = tmp_path / "ystore.db"
    shutil.copyfile(FIXTURES / entry["file"], target)
    return target, entry


async def test_every_fixture_converts_with_its_content(
    legacy_db: tuple[Path, dict[str, Any]],
) -> None:
    path, entry = legacy_db
    before = original_rows(path)
    status = await schema_status(path)
    assert status.status == "legacy"
    assert status.legacy is not None
    assert status.legacy.rows == entry["sqlite"]["rows"]
    assert status.legacy.documents == len(entry["docs"])
    report = await migrate_database(path)
    assert report.action == "converted"
    assert report.to_revision == schema.head_revision()
    assert report.conversion is not None
    assert report.conversion.documents == len(entry["docs"])
    assert report.conversion.checkpoints_kept == []  # every fixture checkpoint is redundant
    assert report.backup is not None
    assert original_rows(report.backup) == before  # the backup keeps the original
    assert detect(path) is None
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "yupdates" not in tables
    assert "ycheckpoints" not in tables
    assert (await schema_status(path)).status == "current"
    assert (await migrate_database(path)).action == "unchanged"

    for doc in entry["docs"]:
        store = SQLiteYStore(doc["path"], db_path=path)
        got = [r async for r in store.read_records()]
        assert [r.seq for r in got] == list(range(1, doc["updates"] + 1))
        assert [r.metadata for r in got] == [metadata_bytes(m) for m in doc["metadata"]]
        assert sum(r.update == b"\x00\x00" for r in got) == doc["empty_updates"]
        mine = [row for row in before if row[0] == doc["path"]]
        assert [r.update for r in got] == [row[1] for row in mine]
        for record, row in zip(got, mine, strict=True):
            if isinstance(row[3], float):
                assert record.timestamp == row[3]
            else:  # ypy-websocket 0.6: str(datetime.utcnow())
                assert abs(record.timestamp - other_fixture_epoch(row[3])) < 1e-6
        expected = doc["expected"]
        if "pycrdt_reads" in doc:  # the pycrdt-store squash bug: what pycrdt shows
            expected_values = numeric(doc["pycrdt_reads"])
        else:
            expected_values = {k: numeric(v["value"]) for k, v in expected.items()}
        assert roots([r.update for r in got], expected) == expected_values


def other_fixture_epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


async def test_v0_text_timestamps_are_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "v0.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE yupdates (path TEXT, yupdate BLOB, metadata BLOB, timestamp TEXT)"
        )
        conn.execute(
            "INSERT INTO yupdates VALUES ('d', x'0000', x'', '2024-01-01 12:00:00.500000')"
        )
        conn.commit()
    await migrate_database(path, backup=False)
    got = [r async for r in SQLiteYStore("d", db_path=path).read_records()]
    assert got[0].timestamp == 1704110400.5
    assert not [p for p in tmp_path.iterdir() if ".bak-" in p.name]  # noqa: ASYNC240


async def test_a_bad_row_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE yupdates (path TEXT NOT NULL, yupdate BLOB, metadata BLOB, "
            "timestamp REAL NOT NULL)"
        )
        conn.execute("INSERT INTO yupdates VALUES ('d', x'0000', x'', 1.0)")
        conn.execute("INSERT INTO yupdates VALUES ('d', NULL, x'', 2.0)")
        conn.commit()
    with pytest.raises(StoreFormatError, match="Row 2"):
        await migrate_database(path, backup=False)
    assert detect(path) is not None  # the transaction was rolled back: still legacy
    assert len(original_rows(path)) == 2
    with pytest.raises(SchemaOutdatedError):
        await SQLiteYStore("d", db_path=path).write(b"\x00\x00")


async def test_a_checkpoint_that_adds_content_is_kept(tmp_path: Path) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text += "lost history"
    checkpoint = doc.get_update()
    path = tmp_path / "pycrdt.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE yupdates (path TEXT NOT NULL, yupdate BLOB, metadata BLOB, "
            "timestamp REAL NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE ycheckpoints (path TEXT NOT NULL, checkpoint BLOB NOT NULL, "
            "timestamp REAL NOT NULL, PRIMARY KEY(path))"
        )
        conn.execute("INSERT INTO yupdates VALUES ('d', x'0000', x'6d', 1.0)")
        conn.execute("INSERT INTO ycheckpoints VALUES ('d', ?, 2.0)", (checkpoint,))
        conn.commit()
    report = await migrate_database(path)
    assert report.conversion is not None
    assert report.conversion.checkpoints_kept == ["d"]
    got = [r async for r in SQLiteYStore("d", db_path=path).read_records()]
    assert [(r.seq, r.metadata, r.timestamp) for r in got] == [(1, b"m", 1.0), (2, b"", 2.0)]
    assert roots([r.update for r in got], {"t": {"type": "Y.Text"}}) == {"t": "lost history"}


async def test_migrate_reports_and_is_idempotent(tmp_path: Path, db_url: str) -> None:
    status = await schema_status(db_url)
    assert status.status == "empty"
    assert [r.revision for r in status.pending] == [r.revision for r in schema.history()]
    first = await migrate_database(db_url, to="0001_initial")
    assert (first.action, first.to_revision) == ("created", "0001_initial")
    second = await migrate_database(db_url)
    assert (second.action, second.from_revision) == ("upgraded", "0001_initial")
    assert second.to_revision == schema.head_revision()
    assert "0001_initial" in second.summary()
    again = await migrate_database(db_url)
    assert again.action == "unchanged"
    status = await schema_status(db_url)
    assert (status.status, status.pending) == ("current", [])
    down = await migrate_database(db_url, downgrade="base")
    assert (down.action, down.to_revision) == ("downgraded", None)
    if db_url.startswith("sqlite"):
        assert down.backup is not None


def test_migrate_sql_runs_nothing(tmp_path: Path) -> None:
    import asyncio

    report = asyncio.run(migrate_database(tmp_path / "never.db", sql=True))
    assert report.action == "sql"
    assert report.sql is not None
    assert "CREATE TABLE ystore_records" in report.sql
    assert not (tmp_path / "never.db").exists()
