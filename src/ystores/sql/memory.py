"""`db_path=":memory:"`: one ephemeral SQLite database per event loop.

A SQLite `:memory:` database belongs to one connection, but a ystores database is
shared by many connections (readers, the group committer, the compactor). So
`":memory:"` names a database file in a private temporary directory, in the
memory file system (`/dev/shm`) where the system has one: every `:memory:` store
of one event loop shares it, stores of other loops (and processes) never see it,
and it is deleted when its loop shuts down (`asyncio.run` cancels what is left),
at the latest when the process exits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import weakref
from pathlib import Path

from sqlalchemy.engine import URL

from .engines import running_loop
from .urls import sqlite_url

__all__ = ["MEMORY", "is_memory", "memory_url"]

MEMORY = ":memory:"
"""The `db_path` that asks for an ephemeral database."""

_databases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Path] = weakref.WeakKeyDictionary()


_keepers: set[asyncio.Task[None]] = set()


async def _remove_at_shutdown(directory: str) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        _keepers.discard(asyncio.current_task())


def is_memory(path: str | os.PathLike[str]) -> bool:
    """Whether `path` asks for an ephemeral database (`":memory:"`)."""
    return os.fspath(path) == MEMORY


def _memory_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def memory_url(*, synchronous: str) -> URL:
    """The URL of the running loop's ephemeral database (made on first use).

    Raises:
        StoreStateError: Not called from asyncio.
    """
    loop = running_loop()
    file = _databases.get(loop)
    if file is None:
        directory = tempfile.mkdtemp(prefix="ystores-memory-", dir=_memory_dir())
        weakref.finalize(loop, shutil.rmtree, directory, True)  # also runs at exit
        _keepers.add(loop.create_task(_remove_at_shutdown(directory), name="ystores :memory:"))
        file = _databases[loop] = Path(directory) / "memory.db"
    return sqlite_url(file, synchronous=synchronous)
