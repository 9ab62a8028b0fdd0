"""Listing the documents of a database, and those idle since a time (for compaction).

Reads `ystore_documents`, one row per document, through its index on
`last_write`: no scan of the records. asyncio only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .database import Database
from .engines import shared
from .statements import Compiled, compile_for
from .tables import documents
from .urls import database_url

__all__ = ["DocumentInfo", "list_documents"]


@dataclass(frozen=True)
class DocumentInfo:
    """One document of a database.

    Attributes:
        name: The document's name.
        last_seq: The highest seq given out (records may have been squashed since).
        last_write: When it was last written, in seconds since the epoch.
    """

    name: str
    last_seq: int
    last_write: float


@functools.cache
def _statement(backend: str, idle: bool) -> Compiled:
    stmt = sa.select(documents.c.doc, documents.c.last_seq, documents.c.last_write)
    if idle:
        stmt = stmt.where(documents.c.last_write < sa.bindparam("before", type_=sa.Double()))
    return compile_for(stmt.order_by(documents.c.doc), backend)


async def list_documents(url: str | URL, *, idle_since: float | None = None) -> list[DocumentInfo]:
    """The documents of the database at `url`, by name.

    Args:
        url: A SQLite or Postgres URL.
        idle_since: Only documents whose last write is older than this time
            (seconds since the epoch).

    Raises:
        SchemaOutdatedError: The database has no ystores schema, or an old one.
        StoreConnectionError: The database cannot be reached.
    """
    db: Database = shared(database_url(url), Database)
    await db.ensure_schema(create=False)
    stmt = _statement(db.backend, idle_since is not None)
    args = stmt.args(before=idle_since) if idle_since is not None else stmt.args()
    rows = await db.fetch(stmt.sql, args)
    return [DocumentInfo(str(r[0]), int(r[1]), float(r[2])) for r in rows]
