"""Fixtures for the SQL backends: a fresh SQLite file or Postgres database per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import new_postgres_database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """The URL of a SQLite database file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'ystore.db'}"


@pytest.fixture
def postgres_db() -> str:
    """The URL of a new, empty Postgres database (dropped when the tests end)."""
    return new_postgres_database()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A new, empty database of each SQL backend."""
    name = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]
