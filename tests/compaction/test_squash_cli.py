"""`ystore squash` on a directory, a SQLite file and Postgres."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest
from typer.testing import CliRunner

from backends import new_postgres_database
from ystores import RecordKind, open_store
from ystores.cli import app

runner = CliRunner()


def typed(text: str) -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    root = doc.get("t", type=pycrdt.Text)
    for char in text:
        root += char
    return updates


async def fill(url: str, docs: dict[str, str], clock: float) -> None:
    for name, text in docs.items():
        store = open_store(url, name, clock=lambda: clock)
        for update in typed(text):
            await store.write(update)
        await store.aclose()


async def read(url: str, name: str) -> tuple[str, list[RecordKind]]:
    store = open_store(url, name)
    records = [r async for r in store.read_records()]
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for record in records:
        doc.apply_update(record.update)
    await store.aclose()
    return str(doc.get("t", type=pycrdt.Text)), [r.kind for r in records]


@pytest.fixture(params=["directory", "sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(URL for open_store, TARGET for the command line)."""
    if request.param == "directory":
        return f"file://{tmp_path}/docs/", str(tmp_path / "docs")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/s.db", str(tmp_path / "s.db")
    url = new_postgres_database()
    return url, url


def test_squash_by_ttl_only_touches_idle_documents(target: tuple[str, str]) -> None:
    url, cli_target = target
    anyio.run(fill, url, {"old": "idle text", "notes/ünï": "more idle"}, 1_000.0)
    anyio.run(fill, url, {"fresh": "busy"}, 9e9)  # written "in the future": never idle
    dry = runner.invoke(app, ["squash", cli_target, "--ttl", "3600", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert sorted(r["doc"] for r in json.loads(dry.stdout)["squashed"]) == ["notes/ünï", "old"]
    assert anyio.run(read, url, "old")[1] == [RecordKind.UPDATE] * 9  # dry run: unchanged
    result = runner.invoke(app, ["squash", cli_target, "--ttl", "3600", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 3
    assert summary["skipped"] == ["fresh"]
    for name, text in (("old", "idle text"), ("notes/ünï", "more idle"), ("fresh", "busy")):
        content, kinds = anyio.run(read, url, name)
        assert content == text
        expected = [RecordKind.UPDATE] * 4 if name == "fresh" else [RecordKind.SNAPSHOT]
        assert kinds == expected


def test_squash_one_document_by_count_with_a_table(target: tuple[str, str]) -> None:
    url, cli_target = target
    anyio.run(fill, url, {"a": "abcdef", "b": "xyz"}, 1_000.0)
    result = runner.invoke(app, ["squash", cli_target, "--doc", "a", "--max-updates", "3"])
    assert result.exit_code == 0, result.output
    assert "Squashed" in result.stdout
    assert anyio.run(read, url, "a") == ("abcdef", [RecordKind.SNAPSHOT])
    assert anyio.run(read, url, "b")[1] == [RecordKind.UPDATE] * 3


def test_squash_shrinks_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/big.db"
    anyio.run(fill, url, {f"doc{i}": "x" * 300 for i in range(10)}, 1_000.0)
    before = (tmp_path / "big.db").stat().st_size
    result = runner.invoke(app, ["squash", str(tmp_path / "big.db"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["vacuumed"] is True
    assert (tmp_path / "big.db").stat().st_size < before
    assert anyio.run(read, url, "doc3") == ("x" * 300, [RecordKind.SNAPSHOT])


def test_squash_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["squash", str(tmp_path / "missing.y")])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    legacy = tmp_path / "old.y"
    legacy.write_bytes(b"VERSION:2\n\x02\x00\x00\x00\x08" + b"\x00" * 8)
    result = runner.invoke(app, ["squash", str(legacy)])
    assert result.exit_code == 1
    assert "ystore migrate" in result.stderr
