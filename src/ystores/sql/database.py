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
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy.engine import URL

from ..errors import StoreConnectionError, StoreStateError
from ..groupcommit import GroupCommitter
from ..records import RecordKind
from ..threads import run_in_worker
from . import pg_errors as asyncpg
from .engines import create_engine
from .errors import translate_errors
from .schema import ensure_schema
from .sqlite_writer import SQLiteReaders, SQLiteWriter
from .statements import statements_for
from .urls import safe_url, sqlite_synchronous

__all__ = ["Database", "Entry"]

Entry = tuple[str, int, bytes, bytes, float]
"""A record to write: `(doc, kind, update, metadata, timestamp)`."""

Row = tuple[int, int, bytes, bytes, float]
"""A record read back: `(seq, kind, update, metadata, timestamp)`."""

_BROKEN = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def _closed_while_idle(exc: StoreConnectionError) -> bool:
    """Whether a pooled or held connection turned out closed by the server before
    anything was sent on it (asyncpg then fails to start the operation): safe to
    retry on a new connection."""
    return isinstance(exc.__cause__, asyncpg.InternalClientError)


def _known_closed(driver_connection: Any) -> bool:
    """Whether asyncpg already knows the server closed this connection."""
    is_closed = getattr(driver_connection, "is_closed", None)  # aiosqlite has none
    return bool(is_closed()) if is_closed is not None else False


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
        self.loop = asyncio.get_running_loop()
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._disposed = False
        self._write_conn: tuple[Any, Any] | None = None  # Postgres: (pooled, driver) held
        self._writer: SQLiteWriter | None = None
        self._readers: SQLiteReaders | None = None
        if self.backend == "sqlite":
            self._writer = SQLiteWriter(
                url.database or "", self.statements, self.safe_url, sqlite_synchronous(url)
            )
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
            if _known_closed(raw.driver_connection):  # the server ended it while pooled
                await conn.invalidate()
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

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[Any]:
        """The asyncpg connection flushes write through, checked out once and held.

        Flushes never overlap (the group committer runs one at a time), so one
        connection serves them all, without a pool checkout per flush. A
        connection that breaks is discarded and the next flush opens another.
        """
        if self.closed.is_set():
            raise StoreStateError(f"The connection pool of {self.safe_url} is closed.")
        if self._write_conn is not None and _known_closed(self._write_conn[1]):
            await self._drop_write_connection(invalidate=True)
        if self._write_conn is None:
            with translate_errors(self.safe_url, connecting=True):
                conn = await self.engine.connect()
                raw = await conn.get_raw_connection()
            self._write_conn = (conn, raw.driver_connection)
        try:
            with translate_errors(self.safe_url):
                yield self._write_conn[1]
        except Exception as exc:
            if isinstance(exc, _BROKEN) or isinstance(exc.__cause__, _BROKEN):
                await self._drop_write_connection(invalidate=True)
            raise
        except BaseException:  # interrupted mid-statement: the connection's state is unknown
            await self._drop_write_connection(invalidate=True)
            raise

    async def _drop_write_connection(self, *, invalidate: bool) -> None:
        held, self._write_conn = self._write_conn, None
        if held is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                if invalidate:
                    await held[0].invalidate()
                await held[0].close()

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
        for attempt in (1, 2):
            try:
                async with self._write_connection() as conn:
                    if len(plan) == 1:  # one document: its own statement, one round trip
                        await self._append(conn, entries, *plan[0], seqs)
                    else:  # several: one statement for all, one round trip
                        await self._append_many(conn, entries, plan, seqs)
                return seqs
            except StoreConnectionError as exc:
                # after a server restart or failover: retry once on a new connection
                if attempt == 2 or not _closed_while_idle(exc):
                    raise
        raise AssertionError("unreachable")

    async def _append_many(
        self,
        conn: Any,
        entries: Sequence[Entry],
        plan: list[tuple[str, list[int]]],
        seqs: list[int],
    ) -> None:
        append = self.statements.append_many
        assert append is not None
        ordered = [entries[i] for _doc, indexes in plan for i in indexes]
        args = append.args(
            docs=[e[0] for e in ordered],
            kinds=[e[1] for e in ordered],
            updates=[e[2] for e in ordered],
            metas=[e[3] for e in ordered],
            stamps=[e[4] for e in ordered],
        )
        last = {row[0]: int(row[1]) for row in await conn.fetch(append.sql, *args)}
        for doc, indexes in plan:
            first = last[doc] - len(indexes) + 1
            for offset, index in enumerate(indexes):
                seqs[index] = first + offset

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
        """Run one read-only query (driver SQL and positional arguments); return its rows.

        A query cut off by a lost connection (a server restart) is run once more
        on a new connection: reading twice is harmless.
        """
        if self._readers is not None:
            readers = self._readers
            return await run_in_worker(lambda: readers.fetch(sql, args))
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    return [tuple(row) for row in await conn.fetch(sql, *args)]
            except StoreConnectionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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

    async def update_page(self, doc: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """As `page`, only the seqs and updates (restoring a document)."""
        stmt = self.statements.update_page
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc, after=after, limit=limit))
        return [(r[0], bytes(r[1])) for r in rows]

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
            await self._drop_write_connection(invalidate=False)
            await self.engine.dispose()
