"""Shared helpers for the operator CLI tests: running `ystore`, fixtures, file hashes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from ystores.cli import app

runner = CliRunner()


def ystore(*args: str) -> Result:
    """Run `ystore ARGS` in-process."""
    return runner.invoke(app, list(args))


def ystore_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m ystores ARGS` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "ystores", *args], capture_output=True, text=True, check=False
    )


def ok_json(*args: str) -> Any:
    """Run `ystore ARGS --json`, check it succeeded, and parse its output."""
    result = ystore(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def manifest(fixtures_dir: Path) -> list[dict[str, Any]]:
    """The fixture entries of the manifest."""
    entries: list[dict[str, Any]] = json.loads((fixtures_dir / "manifest.json").read_text())[
        "entries"
    ]
    return entries


def copy_fixture(fixtures_dir: Path, relative: str, tmp_path: Path) -> Path:
    """Copy one fixture file into `tmp_path` (keeping its parent folder's name) and return it."""
    source = fixtures_dir / relative
    target = tmp_path / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    target.chmod(0o644)
    return target


def doc_name(entry: dict[str, Any], doc: dict[str, Any]) -> str:
    """The document's name as ystore shows it (a file's name for one-file stores)."""
    return str(doc["path"]) if doc["path"] is not None else Path(entry["file"]).name


def hashes(directory: Path) -> dict[str, str]:
    """Every file under `directory` (databases' -wal and -shm included) and its SHA-256."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def one_line_error(result: Result, *expected: str) -> None:
    """The command failed with exit 1 and one line on stderr naming `expected`."""
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.stderr, result.stderr
