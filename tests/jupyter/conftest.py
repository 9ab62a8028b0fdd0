"""Fixtures for the Jupyter tests: a store of each `ystores.jupyter` class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import new_postgres_database
from room.conftest import node_clients  # noqa: F401  (the Node clients' packages)
from ystores.jupyter import FileYStore, PostgresYStore, SQLiteYStore

JupyterStoreFactory = Callable[[str], Any]


@pytest.fixture(params=["sqlite", "postgres", "file"])
def jupyter_store(request: pytest.FixtureRequest, tmp_path: Path) -> JupyterStoreFactory:
    """Makes stores of one `ystores.jupyter` class, the way jupyter-collaboration does."""
    if request.param == "sqlite":
        return lambda path: SQLiteYStore(path=path, db_path=str(tmp_path / "ystore.db"))
    if request.param == "postgres":
        url = new_postgres_database()
        return lambda path: PostgresYStore(path=path, db_url=url)
    return lambda path: FileYStore(path=path, root_dir=str(tmp_path / "docs"))
