"""SQLite databases at paths with `#`, `?` or `%` (regression: URIs built unescaped).

`file:{path}?mode=ro` made `#` start a fragment, `?` the parameters and `%xx` an
escape: legacy detection opened (and created) another file, migrate failed with
a raw `sqlite3.OperationalError`, and the read-only tools could not open a
`%20` path. Every command that opens a SQLite file is run on such paths here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ystores.cli import app
from ystores.sql.legacy import detect
from ystores.sqlite_uris import sqlite_uri

runner = CliRunner()

AWKWARD = ["a#b", "a?b", "a%20b", "a%b", "50%off#1?x=y"]
LEGACY = Path("ypy-websocket-0.12.4") / "sqlite-v2" / "ystore.db"


@pytest.fixture(params=AWKWARD)
def awkward(request: pytest.FixtureRequest, fixtures_dir: Path, tmp_path: Path) -> Path:
    """A legacy ypy-websocket database in a directory and file with an awkward name."""
    name: str = request.param
    folder = tmp_path / f"dir{name}"
    folder.mkdir()
    path = folder / f"{name}.db"
    shutil.copy(fixtures_dir / LEGACY, path)
    return path


def listing(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_sqlite_uri_names_the_file_itself(tmp_path: Path) -> None:
    for name in AWKWARD:
        uri = sqlite_uri(tmp_path / f"{name}.db", mode="ro")
        assert uri.startswith("file:///")
        assert uri.endswith("?mode=ro")
        assert "#" not in uri
        assert uri.count("?") == 1


def test_detect_opens_the_file_and_creates_nothing(awkward: Path) -> None:
    parent_before = set(awkward.parent.parent.iterdir())
    found = detect(awkward)
    assert found is not None
    assert found.producer == "ypy-websocket"
    assert found.documents == 4
    assert set(awkward.parent.parent.iterdir()) == parent_before
    assert listing(awkward) == {awkward.name}


def test_every_command_works_on_awkward_paths(awkward: Path, tmp_path: Path) -> None:
    target = str(awkward)
    before = json.loads(ok("ls", target, "--json"))
    assert len(before) == 4
    ok("inspect", target)
    ok("verify", target)
    assert listing(awkward) == {awkward.name}  # the read-only commands made no file

    converted = ok("migrate", target)
    assert "Converted" in converted
    assert "4 documents" in converted
    names = listing(awkward)
    assert awkward.name in names
    assert any(n.startswith(f"{awkward.name}.bak-") for n in names)
    assert {n for n in names if not n.startswith(awkward.name)} == set()
    assert not (awkward.parent.parent / "dira").exists()  # nothing made at a cut-off path

    after = json.loads(ok("ls", target, "--json"))
    assert [d["name"] for d in after] == [d["name"] for d in before]
    ok("verify", target)
    ok("inspect", target)
    copy = awkward.parent / f"copy-{awkward.name}"
    ok("copy", target, str(copy))
    assert [d["name"] for d in json.loads(ok("ls", str(copy), "--json"))] == [
        d["name"] for d in before
    ]
    ok("squash", target)
    assert [d["name"] for d in json.loads(ok("ls", target, "--json"))] == [
        d["name"] for d in before
    ]
    assert "already" in ok("migrate", target)
