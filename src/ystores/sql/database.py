"""`Database`: one engine, one pool and one group committer per database (and loop).

Every store of one database shares its `Database` (see `engines.shared`), so
concurrent writes to any of its documents share one transaction. Statements are
compiled once by SQLAlchemy and run on the drivers' own connections: asyncpg
connections from SQLAlchemy's pool for Postgres; for SQLite, stdlib `sqlite3`
connections in worker threads (`sqlite_writer`), one hop per transaction or
query. The SQLAlchemy engine itself serves the schema check and Alembic.
asyncio only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from ..errors import StoreStateError
from ..groupcommit import GroupCommitter
from ..records import RecordKind
from ..threads import run_in_worker
from .engines import create_engine
from .errors import translate_errors
from .schema import ensure_schema
from .sqlite_writer import SQLiteReaders, SQLiteWriter
from .statements import statements_for
from .urls import safe_url

__all__ = ["Database", "Entry"]

Entry = tuple[str, int, bytes, bytes, float]
"""A record to write: `(doc, kind, update, metadata, timestamp)`."""

Row = tuple[int, int, bytes, bytes, float]
"""A record read back: `(seq, kind, update, metadata, timestamp)`."""

_BROKEN = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


class Database:
    """The shared state of one database in one event loop.

    Args:
        url: An async database URL (from `urls.database_url`).
    """

    def __init__(self, url: URL) -> None:
        self.url = url
        self.safe_url = safe_url(url)
        self.backend = url.get_backend_name()
        self.engine = create_engine(url)
        self.statements = statements_for(self.backend)
        self.committer: GroupCommitter[Entry, int] = GroupCommitter(self._flush)
        self.closed = asyncio.Event()
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._disposed = False
        self._writer: SQLiteWriter | None = None
        self._readers: SQLiteReaders | None = None
        if self.backend == "sqlite":
            self._writer = SQLiteWriter(url.database or "", self.statements, self.safe_url)
            self._readers = SQLiteReaders(url.database or "", self.safe_url)

    async def ensure_schema(self, *, create: bool) -> None:
        """Check the schema once per `Database` (see `schema.ensure_schema`)."""
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                await ensure_schema(self.engine, create=create, url=self.safe_url)
                self._schema_ready = True

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A driver connection (aiosqlite or asyncpg) from the pool, errors translated."""
        if self.closed.is_set():
            raise StoreStateError(f"The connection pool of {self.safe_url} is closed.")
        with translate_errors(self.safe_url, connecting=True):
            conn = await self.engine.connect()
            raw = await conn.get_raw_connection()
        try:
            with translate_errors(self.safe_url):
                yield raw.driver_connection
        except BaseException as exc:
            if isinstance(exc, _BROKEN) or isinstance(exc.__cause__, _BROKEN):
                await conn.invalidate()
            raise
        finally:
            with translate_errors(self.safe_url):
                await conn.close()

    # -- writing -------------------------------------------------------------

    async def write(self, doc: str, kind: RecordKind, update: bytes, meta: bytes, ts: float) -> int:
        """Write one record, group-committed with concurrent writes; return its seq."""
        return await self.committer.submit((doc, int(kind), update, meta, ts))

    async def _flush(self, entries: Sequence[Entry]) -> list[int]:
        by_doc: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            by_doc.setdefault(entry[0], []).append(index)
        # Sorted documents: every writer locks counter rows in one order (no deadlock).
        plan = sorted(by_doc.items())
        if self.backend == "sqlite":
            return await self._flush_sqlite(entries, plan)
        return await self._flush_postgres(entries, plan)

    async def _flush_sqlite(
        self, entries: Sequence[Entry], plan: list[tuple[str, list[int]]]
    ) -> list[int]:
        assert self._writer is not None
        writer = self._writer
        return await run_in_worker(lambda: writer.flush(entries, plan))

    async def _flush_postgres(
        self, entries: Sequence[Entry], plan: list[tuple[str, list[int]]]
    ) -> list[int]:
        seqs = [0] * len(entries)
        async with self.connection() as conn:
            if len(plan) == 1:  # one statement: its own transaction, one round trip
                await self._append(conn, entries, *plan[0], seqs)
            else:
                async with conn.transaction():
                    for doc, indexes in plan:
                        await self._append(conn, entries, doc, indexes, seqs)
        return seqs

    async def _append(
        self, conn: Any, entries: Sequence[Entry], doc: str, indexes: list[int], seqs: list[int]
    ) -> None:
        append = self.statements.append
        assert append is not None
        mine = [entries[i] for i in indexes]
        args = append.args(
            doc=doc,
            doc_=doc,
            n=len(mine),
            n_=len(mine),
            ts=mine[-1][4],
            kinds=[e[1] for e in mine],
            updates=[e[2] for e in mine],
            metas=[e[3] for e in mine],
            stamps=[e[4] for e in mine],
        )
        rows = await conn.fetch(append.sql, *args)
        first = min(int(row[0]) for row in rows)
        for offset, index in enumerate(indexes):
            seqs[index] = first + offset

    # -- reading -------------------------------------------------------------

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one query (driver SQL and positional arguments) and return its rows."""
        if self._readers is not None:
            readers = self._readers
            return await run_in_worker(lambda: readers.fetch(sql, args))
        async with self.connection() as conn:
            return [tuple(row) for row in await conn.fetch(sql, *args)]

    async def last_write(self, doc: str) -> float | None:
        """The time of the document's last write, or None for a new document."""
        stmt = self.statements.last_write
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc))
        return float(rows[0][0]) if rows else None

    async def page(self, doc: str, after: int, limit: int) -> list[Row]:
        """Up to `limit` records of `doc` after `after` from its latest snapshot, in seq order."""
        stmt = self.statements.page
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc, after=after, limit=limit))
        return [(int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), float(r[4])) for r in rows]

    @property
    def sqlite_writer(self) -> SQLiteWriter | None:
        """The SQLite write connection (None for Postgres); call it from worker threads."""
        return self._writer

    # -- closing -------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the pool; stores of this database open a new `Database` on next use."""
        self.closed.set()
        if not self._disposed:
            self._disposed = True
            if self._writer is not None:
                await run_in_worker(self._writer.close)
            if self._readers is not None:
                await run_in_worker(self._readers.close)
            await self.engine.dispose()
