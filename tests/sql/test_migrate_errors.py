"""`ystore migrate` turns every Alembic error into one readable line and exit code 1.

Regression: `migrate --to nonexistent-revision` printed Alembic's traceback (and
created the database file on the way).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from ystores.cli import app
from ystores.errors import SchemaError
from ystores.sql import migrate_database, schema_status

runner = CliRunner()


def one_line_error(*args: str) -> str:
    result = runner.invoke(app, ["migrate", *args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--to", "nonexistent-revision"],
        ["--downgrade", "nonexistent-revision"],
        ["--to", "nonexistent-revision", "--sql"],
        ["--downgrade", "0002_snap"],  # a prefix of a real revision is not one
    ],
)
def test_an_unknown_revision_is_refused_before_anything_is_created(
    args: list[str], db_url: str
) -> None:
    if db_url.startswith("sqlite"):  # an empty file: a SQLite database without tables
        Path(db_url.split(":///", 1)[1]).touch()
    line = one_line_error(*args, db_url)
    assert "is not a revision of the ystores schema" in line
    assert "0001_initial" in line
    assert "--history" in line
    if db_url.startswith("sqlite"):  # untouched
        assert Path(db_url.split(":///", 1)[1]).stat().st_size == 0
    report = anyio.run(schema_status, db_url)
    assert report.status == "empty"


def test_an_upgrade_never_goes_back(db_url: str) -> None:
    anyio.run(lambda: migrate_database(db_url))
    for revision in ("base", "0001_initial"):
        line = one_line_error("--to", revision, db_url)
        assert "cannot go back" in line
        assert f"--downgrade {revision}" in line
    assert anyio.run(schema_status, db_url).status == "current"


def test_an_alembic_refusal_is_one_line(db_url: str) -> None:
    anyio.run(lambda: migrate_database(db_url, to="0001_initial"))
    # Alembic itself refuses: a downgrade "to" a revision above the current one.
    line = one_line_error("--downgrade", "0002_snapshot_index", db_url)
    assert "Alembic refused the migration" in line
    assert "downgrade target" in line
    report = anyio.run(schema_status, db_url)
    assert report.current == "0001_initial"


@pytest.mark.anyio
async def test_the_library_raises_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(SchemaError, match="not a revision"):
        await migrate_database(path, to="nope")
    with pytest.raises(SchemaError, match="not a revision"):
        await migrate_database(path, downgrade="nope")
    assert not path.exists()


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ystores", "migrate", "--to", "nonexistent-revision",
         str(tmp_path / "x.db")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Error: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "x.db").exists()
