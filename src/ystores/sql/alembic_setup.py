"""Alembic for the ystores schema: its `Config` built in code, its revisions, one run at a time.

The script directory ships inside the package (`ystores/sql/migrations`) and is
found with `importlib.resources`, never relative to the working directory.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib import resources

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection

from ..errors import SchemaError
from .engines import running_loop

__all__ = [
    "RevisionInfo",
    "alembic_config",
    "alembic_errors",
    "alembic_lock",
    "alembic_thread_lock",
    "check_revision",
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


_RELATIVE = re.compile(r"(head|base)?[+-][0-9]+")

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


def check_revision(revision: str) -> None:
    """Check that `revision` names a revision of the ystores schema (before connecting).

    A full revision id, `head`, `base`, or a relative step (`-1`, `head-1`,
    `+1`) is accepted; Alembic's own shortcut of an id prefix is not (a typo
    could then name another revision).

    Raises:
        SchemaError: It names no revision ystores knows.
    """
    known = [r.revision for r in history()]
    if revision in known or revision in ("head", "base") or _RELATIVE.fullmatch(revision):
        return
    raise SchemaError(
        f"{revision!r} is not a revision of the ystores schema; use one of "
        f"{', '.join([*known, 'head', 'base'])} (`ystore migrate --history` lists them)."
    )


@contextmanager
def alembic_errors(url: str | None = None) -> Iterator[None]:
    """Re-raise Alembic's own errors (`CommandError`) as `SchemaError`, message kept."""
    try:
        yield
    except (CommandError, ResolutionError) as exc:
        where = f" on {url}" if url else ""
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise SchemaError(f"Alembic refused the migration{where}: {reason}.", url=url) from exc


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
