"""Fixtures for the operator CLI tests: one store of each backend, filled from a fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import new_postgres_database

from .helpers import copy_fixture, ystore

SOURCE_DB = "ypy-websocket-0.12.4/sqlite-v2/ystore.db"
"""A legacy database of 4 documents (names with folders, colons, non-ASCII)."""


@pytest.fixture
def legacy_db(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A copy of a ypy-websocket SQLite database with 4 documents."""
    return copy_fixture(fixtures_dir, SOURCE_DB, tmp_path / "fixture")


@pytest.fixture(params=["directory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, legacy_db: Path, tmp_path: Path) -> str:
    """A store of each backend holding the legacy database's documents (copied by the CLI)."""
    if request.param == "directory":
        target = str(tmp_path / "files")
    elif request.param == "sqlite":
        target = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        target = new_postgres_database()
    result = ystore("copy", str(legacy_db), target)
    assert result.exit_code == 0, result.output
    return target
