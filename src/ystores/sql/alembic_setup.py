"""Alembic for the ystores schema: its `Config` built in code, its revisions, one run at a time.

The script directory ships inside the package (`ystores/sql/migrations`) and is
found with `importlib.resources`, never relative to the working directory.
"""

from __future__ import annotations

import asyncio
import functools
import io
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from .engines import running_loop

__all__ = [
    "RevisionInfo",
    "alembic_config",
    "alembic_lock",
    "alembic_thread_lock",
    "head_revision",
    "history",
    "script_location",
]


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of the ystores schema.

    Attributes:
        revision: Its Alembic revision id.
        down_revision: The revision it follows (None for the first).
        message: What it changes.
    """

    revision: str
    down_revision: str | None
    message: str


# -- Alembic configuration -------------------------------------------------------


def script_location() -> str:
    """The Alembic script directory shipped in the package."""
    return str(resources.files("ystores.sql") / "migrations")


def alembic_config(
    url: URL | str | None = None,
    *,
    connection: Connection | None = None,
    output: io.StringIO | None = None,
) -> Config:
    """An Alembic `Config` for the ystores migrations, built in code (no alembic.ini).

    Args:
        url: The database URL (needed for offline `--sql` output only).
        connection: A connection for online commands, handed to env.py.
        output: Where offline SQL goes.
    """
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", script_location())
    if url is not None:
        text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of the ystores schema."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def history() -> list[RevisionInfo]:
    """Every revision of the ystores schema, oldest first."""
    revisions = [
        RevisionInfo(
            revision=rev.revision,
            down_revision=rev.down_revision if isinstance(rev.down_revision, str) else None,
            message=(rev.doc or "").strip(),
        )
        for rev in _scripts().walk_revisions()
    ]
    return list(reversed(revisions))


# -- one Alembic run at a time ---------------------------------------------------

alembic_thread_lock = threading.Lock()
"""Held by every Alembic run in the process (Alembic's `context` is a module global)."""
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def alembic_lock() -> AsyncIterator[None]:
    """Hold the Alembic lock from async code without freezing the loop for its own tasks."""
    # Alembic's `context` is a module global: one run at a time per process. The
    # loop lock keeps two tasks of one loop from blocking each other on the thread
    # lock (which would freeze the loop); the thread lock covers other loops.
    loop = running_loop()
    lock = _loop_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        with alembic_thread_lock:
            yield
