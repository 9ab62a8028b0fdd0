"""The `ystore` command, through Typer's runner and as a real subprocess."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ystores.cli import app

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def manifest_entries(fixtures_dir: Path, prefix: str) -> list[dict[str, Any]]:
    manifest = json.loads((fixtures_dir / "manifest.json").read_text())
    return [e for e in manifest["entries"] if e["format"].startswith(prefix)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_writes_reads_back_and_inspects(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--store", str(tmp_path), "--text", "héllo"])
    assert result.exit_code == 0, result.output
    assert "'héllo'" in result.stdout
    assert "file store directory" in result.stdout
    assert (tmp_path / "demo").is_file()  # the document a room named "demo" uses


def test_missing_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(tmp_path / "nope.y")])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("Error: ")
    assert "nope.y" in result.stderr
    assert "Traceback" not in result.output


def test_migrate_upgrades_a_legacy_file_in_place(fixtures_dir: Path, tmp_path: Path) -> None:
    source = fixtures_dir / "ypy-websocket-0.12.4" / "file-v2" / "basic.y"
    path = tmp_path / "basic.y"
    shutil.copy(source, path)
    old = json.loads(runner.invoke(app, ["inspect", str(path), "--json"]).stdout)["documents"][0]
    result = runner.invoke(app, ["migrate", str(path)])
    assert result.exit_code == 0, result.output
    assert "upgraded from version 2 to version 4" in result.stdout
    report = json.loads(runner.invoke(app, ["inspect", str(path), "--json"]).stdout)
    assert report["version"] == 4
    new = report["documents"][0]
    for key in ("records", "update_bytes", "metadata", "first_timestamp", "last_timestamp"):
        assert new[key] == old[key]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic.y"]
    again = runner.invoke(app, ["migrate", str(path)])
    assert "already in the current format" in again.stdout


def test_migrate_refuses_an_unknown_file_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "garbage.y"
    path.write_bytes(b"\xff" * 64)
    result = runner.invoke(app, ["migrate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "not a store file" in result.stderr
    assert path.read_bytes() == b"\xff" * 64


def test_usage_errors_exit_2() -> None:
    result = runner.invoke(app, ["inspect"])
    assert result.exit_code == 2


def test_every_command_has_help_and_is_documented() -> None:
    import typer.main

    command = typer.main.get_command(app)
    docs = DOCS.read_text()
    names = sorted(command.commands)  # type: ignore[attr-defined]
    assert {"demo", "inspect", "migrate"} <= set(names)
    for name in names:
        assert command.commands[name].help, name  # type: ignore[attr-defined]
        assert re.search(rf"^## ystore {name}\b", docs, re.MULTILINE), f"{name} not in docs"


def test_console_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ystores", "inspect", str(tmp_path / "missing.y")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr


def test_migrate_converts_a_legacy_database_and_reports_status(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "ystore.db"
    shutil.copy(fixtures_dir / "ypy-websocket-0.12.4" / "sqlite-v2" / "ystore.db", db)
    status = runner.invoke(app, ["migrate", str(db), "--status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["status"] == "legacy"
    result = runner.invoke(app, ["migrate", str(db)])
    assert result.exit_code == 0, result.output
    assert "Converted" in result.stdout
    assert len(list(tmp_path.glob("ystore.db.bak-*"))) == 1
    after = json.loads(runner.invoke(app, ["migrate", str(db), "--status", "--json"]).stdout)
    assert after["status"] == "current"
    assert after["pending"] == []
    again = runner.invoke(app, ["migrate", f"sqlite:///{db}"])
    assert "nothing to do" in again.stdout


def test_migrate_sql_prints_the_schema_without_touching_the_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = runner.invoke(app, ["migrate", str(db), "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE ystore_records" in result.stdout
    assert not db.exists()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ftp://example.org/x", "URL scheme 'ftp'"),
        ("postgresql://postgres@127.0.0.1:1/nothing", "Could not connect"),
    ],
)
def test_migrate_bad_targets_are_one_line_errors(target: str, expected: str) -> None:
    result = runner.invoke(app, ["migrate", target])
    assert result.exit_code == 1
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


def test_migrate_database_options_are_refused_for_files(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    path.write_bytes(b"VERSION:2\n")
    result = runner.invoke(app, ["migrate", str(path), "--status"])
    assert result.exit_code == 2
