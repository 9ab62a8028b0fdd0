"""Compaction leases in a database (see `ystores.compaction.leases`).

Postgres: a session-level advisory lock keyed by (`LEASE_CLASS`, `hashtext(doc)`)
on a pooled connection held while the block runs, released after it, and by
the server when the session ends (the holder died). SQLite: an OFD lock on a
byte of the database file chosen by the document name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..compaction.leases import file_lease

if TYPE_CHECKING:
    from .database import Database

__all__ = ["LEASE_CLASS", "database_lease"]

LEASE_CLASS = 0x7973  # "ys": the first key of ystores' advisory locks
_TRY = "SELECT pg_try_advisory_lock($1, hashtext($2))"
_RELEASE = "SELECT pg_advisory_unlock($1, hashtext($2))"


@asynccontextmanager
async def database_lease(db: Database, doc: str) -> AsyncIterator[bool]:
    """Hold the compaction lease of `doc` while the block runs; yields whether it is held.

    Raises:
        StoreConnectionError: The database cannot be reached.
    """
    if db.backend == "sqlite":
        async with file_lease(Path(db.url.database or ""), doc) as held:
            yield held
        return
    async with db.connection() as conn:
        held = bool(await conn.fetchval(_TRY, LEASE_CLASS, doc))
        try:
            yield held
        finally:
            if held:
                with contextlib.suppress(Exception):  # a dead session released it already
                    await conn.fetchval(_RELEASE, LEASE_CLASS, doc)
