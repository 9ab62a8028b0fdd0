"""Fixtures for the following tests: one store URL per backend, fresh per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import new_postgres_database


def store_url(backend: str, tmp_path: Path) -> str:
    """A new, empty store of `backend` (file, sqlite or postgres) as a URL."""
    if backend == "file":
        root = tmp_path / "docs"
        root.mkdir()
        return f"file://{root}/"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ystore.db'}"
    return new_postgres_database()


@pytest.fixture(params=["file", "sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store of every backend."""
    return store_url(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database of each SQL backend."""
    return store_url(request.param, tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
