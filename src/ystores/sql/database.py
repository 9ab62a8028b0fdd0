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
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import anyio
from sqlalchemy.engine import URL

from ..errors import StoreConnectionError, StoreStateError
from ..groupcommit import GroupCommitter
from ..history.compression import decompress
from ..records import RecordKind
from ..threads import run_in_worker
from .blocks import BLOCK, block_records, expand_rows, straddling_block
from .engines import create_engine
from .errors import translate_errors
from .following import ChangeHub, new_hub
from .outcomes import (
    Fence,
    Identity,
    InDoubt,
    fence_postgres,
    identity,
    lookup_postgres,
    lookup_sqlite,
)
from .postgres_writer import BROKEN, PostgresWriter, connect_deadline, known_closed
from .schema import ensure_schema
from .sqlite_writer import SQLiteReaders, SQLiteWriter
from .statements import MAX_SEQ, pack_kind, statements_for
from .timeouts import Timeouts
from .urls import safe_url, sqlite_synchronous

log = logging.getLogger("ystores.sql")

__all__ = ["Database", "Entry", "Meanwhile", "Query", "Reads", "update_rows"]

Entry = tuple[str, int, bytes, bytes, float]
"""A record to write: `(doc, kind, update, metadata, timestamp)`."""

Row = tuple[int, int, bytes, bytes, float]
"""A record read back: `(seq, kind, update, metadata, timestamp)`."""

T = TypeVar("T")
Query = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Meanwhile:
    """A query for `Database.chain` with work to do on the caller's thread while it runs.

    Postgres: `work()` runs once the query is sent, while the server runs it
    (a restore applies its checkpoint while the tail after it is fetched).
    SQLite: the chain's queries run in one worker-thread hop, then each `work()`
    in turn. Either way every `work()` has run, in order, when `chain` returns,
    and a chain run again after a lost connection runs its `work()` again.
    """

    sql: str
    args: tuple[Any, ...]
    work: Callable[[], None]


Reads = Generator[Query | Meanwhile, list[Any], T]
"""Dependent reads for `Database.chain`: yields queries (`Meanwhile`: with work to do
while it runs), is sent their rows, returns a `T`."""


def _raw(codec: int, stored: Any, doc: str, seq: int) -> bytes:
    """A stored update as raw bytes (most are stored raw: one comparison)."""
    if not codec:
        return bytes(stored)
    return decompress(codec, bytes(stored), where=f"record {seq} of {doc!r}")


def update_rows(rows: Sequence[tuple[Any, ...]], doc: str, after: int) -> list[tuple[int, bytes]]:
    """`(seq, update)` of the rows of `statements.update_page` fetched after seq `after`,
    blocks expanded (see `Database.update_page`); columns after the fourth are ignored.

    Raises:
        CorruptStoreError: A compressed update does not decode, or a block is damaged.
    """
    out = [(r[0], _raw(r[2], r[1], doc, r[0])) for r in rows if r[3] is None]
    if len(out) == len(rows):
        return out
    out = []
    for seq, stored, codec, header, *_ in rows:
        if header is None:
            out.append((seq, _raw(codec, stored, doc, seq)))
        else:
            out.extend((r.seq, r.update) for r in block_records(header, stored, after))
    return out


def _run_blocking(
    steps: Reads[T], fetch: Callable[[str, tuple[Any, ...]], list[Any]]
) -> tuple[T, list[Callable[[], None]]]:
    """Run `Database.chain`'s reads with a blocking `fetch`; also return the work of
    its `Meanwhile` steps, in order, for the caller's thread."""
    works: list[Callable[[], None]] = []
    try:
        step = next(steps)
        while True:
            if isinstance(step, Meanwhile):
                works.append(step.work)
                step = steps.send(fetch(step.sql, step.args))
            else:
                step = steps.send(fetch(*step))
    except StopIteration as done:
        return cast(T, done.value), works


_sent_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""The `Meanwhile` statements each asyncpg connection has run (and so prepared)."""


async def _fetch_meanwhile(conn: Any, step: Meanwhile, seconds: float | None) -> list[Any]:
    """Send `step`'s query on an asyncpg connection (a statement timeout of `seconds`),
    run its work, then take its rows."""
    sent = _sent_on.setdefault(conn, set())
    if step.sql not in sent:
        # asyncpg prepares (and caches) a statement the first time a connection
        # runs it: a round trip before the query is sent, so no overlap this time
        rows = await conn.fetch(step.sql, *step.args, timeout=seconds)
        sent.add(step.sql)
        step.work()
        return cast(list[Any], rows)
    pending = asyncio.ensure_future(conn.fetch(step.sql, *step.args, timeout=seconds))
    try:
        await asyncio.sleep(0)  # the fetch runs up to its wait for the reply: sent
        step.work()
    except BaseException:
        # the query ends first, so that the connection goes back to the pool idle
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await pending
        raise
    return cast(list[Any], await pending)


def _one_read(sql: str, args: tuple[Any, ...]) -> Reads[list[Any]]:
    """One query as `Database.chain`'s reads: its rows."""
    return (yield sql, args)


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
        self.timeouts = Timeouts.from_url(url)
        self.committer: GroupCommitter[Entry, int] = GroupCommitter(self._flush)
        self.closed = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.in_doubt = InDoubt()
        self._flush_lock = asyncio.Lock()  # flushes and resolutions, one at a time
        self._resolver: asyncio.Task[None] | None = None
        self._detached: set[asyncio.Task[None]] = set()
        self._sent_on: Fence | None = None  # the connection the current flush sent on
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._disposed = False
        self._pg: PostgresWriter | None = None
        self._writer: SQLiteWriter | None = None
        self._readers: SQLiteReaders | None = None
        self._hub: ChangeHub | None = None
        if self.backend != "sqlite":
            self._pg = PostgresWriter(self.engine, self.statements, self.safe_url, self.timeouts)
        else:
            self._writer = SQLiteWriter(
                url.database or "",
                self.statements,
                self.safe_url,
                sqlite_synchronous(url),
                self.timeouts,
            )
            self._readers = SQLiteReaders(url.database or "", self.safe_url, timeouts=self.timeouts)

    async def ensure_schema(self, *, create: bool) -> None:
        """Check the schema once per `Database` (see `schema.ensure_schema`)."""
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                # Bounded too: Alembic's statements run without a statement timeout
                # (a migration may be long), the check itself is a few round trips.
                bound = self.timeouts.connect + 3 * self.timeouts.write
                with anyio.move_on_after(bound) as scope:
                    await ensure_schema(self.engine, create=create, url=self.safe_url)
                    self._schema_ready = True
                if scope.cancelled_caught:
                    raise StoreConnectionError(
                        f"The database {self.safe_url} did not answer the schema check "
                        f"within {bound:g} s; check the network and the server.",
                        url=self.safe_url,
                    )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A driver connection (aiosqlite or asyncpg) from the pool, errors translated."""
        if self.closed.is_set():
            raise StoreStateError(f"The connection pool of {self.safe_url} is closed.")
        connecting = connect_deadline(self.timeouts, self.safe_url)
        with translate_errors(self.safe_url, connecting=True), connecting:
            conn = await self.engine.connect()
            try:
                raw = await conn.get_raw_connection()
                if known_closed(raw.driver_connection):  # the server ended it while pooled
                    await conn.invalidate()
                    conn = await self.engine.connect()
                    raw = await conn.get_raw_connection()
            except BaseException:  # cancelled or failed between checkout and use
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await conn.invalidate()  # never left to the garbage collector
                raise
        try:
            with translate_errors(self.safe_url):
                yield raw.driver_connection
        except BaseException as exc:
            if isinstance(exc, BROKEN) or isinstance(exc.__cause__, BROKEN):
                await conn.invalidate()
            raise
        finally:
            with translate_errors(self.safe_url):
                await conn.close()

    # -- writing -------------------------------------------------------------

    async def write(
        self, doc: str, kind: RecordKind, update: bytes, meta: bytes, ts: float, codec: int = 0
    ) -> int:
        """Write one record, group-committed with concurrent writes; return its seq.

        `update` is stored as given, with `codec` saying how (see `ystores.history.Codec`).

        The flush runs in a task of its own: a caller cancelled meanwhile leaves at
        once, and its record is still stored exactly once (see `outcomes`). The
        same bytes for the same document as a record in doubt join that record.

        Raises:
            StoreConnectionError: The database did not answer within the timeouts
                (`commit_unknown` says whether the record may have been stored:
                the store then resolves it), or cannot be reached.
            StoreDatabaseError: The database refused the write.
        """
        entry = self.in_doubt.match(doc, update) or (doc, pack_kind(kind, codec), update, meta, ts)
        # The task sets `waiter` itself as its last step: the caller wakes one loop
        # turn after the flush, where awaiting a shielded task took two more.
        waiter: asyncio.Future[int] = self.loop.create_future()
        task = self.loop.create_task(self._submit(entry, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            if not task.done():
                self._detached.add(task)
                task.add_done_callback(self._detached.discard)
            raise

    async def _submit(self, entry: Entry, waiter: asyncio.Future[int]) -> None:
        """Group-commit `entry` and report to `waiter`; a caller gone meanwhile leaves
        a failed record in doubt (stored once, see `outcomes`)."""
        try:
            seq = await self.committer.submit(entry)
        except asyncio.CancelledError:
            waiter.cancel()
            raise
        except BaseException as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            elif isinstance(exc, Exception):
                self._left_behind(entry)
            else:
                raise
            return
        if not waiter.done():
            waiter.set_result(seq)

    def change_hub(self) -> ChangeHub:
        """The hub waking this process's followers of this database (made on first use)."""
        if self._hub is None:
            self._hub = new_hub(self)
        return self._hub

    def _left_behind(self, entry: Entry) -> None:
        """A cancelled caller's write failed: its record goes in doubt."""
        if identity(entry) not in {identity(e) for e in self.in_doubt.entries()}:
            self.in_doubt.add([entry], None)
        self._start_resolver()

    async def _flush(self, entries: Sequence[Entry]) -> list[int]:
        # Runs shielded (the group committer's flush); bounded here by write_timeout.
        async with self._flush_lock:
            self._sent_on = None
            with anyio.move_on_after(self.timeouts.write) as scope:
                try:
                    seqs = await self._flush_bounded(entries)
                    self._hand_over(entries, seqs)
                    return seqs
                except StoreConnectionError as exc:
                    if self._sent_on is None and not exc.commit_unknown:
                        raise
                    self.in_doubt.add(entries, self._sent_on)
                    self._start_resolver()
                    raise StoreConnectionError(
                        f"{exc} Whether the write committed is unknown: the store resolves "
                        "it once the database answers (see the docs' write outcomes).",
                        url=self.safe_url,
                        commit_unknown=True,
                    ) from exc
            assert scope.cancelled_caught
            if self._pg is not None:
                await self._pg.drop(invalidate=True)
            self.in_doubt.add(entries, self._sent_on)
            self._start_resolver()
            raise StoreConnectionError(
                f"The database {self.safe_url} did not commit the write within "
                f"{self.timeouts.write:g} s (write_timeout). Whether it committed is unknown: "
                "the store resolves it once the database answers (see the docs' write outcomes).",
                url=self.safe_url,
                commit_unknown=True,
            )

    def _hand_over(self, entries: Sequence[Entry], seqs: Sequence[int]) -> None:
        """Give this process's followers the records just committed, before the writers
        wake: a `NOTIFY` (or change check) of a record handed over wakes no read."""
        hub = self._hub
        if hub is None:
            return
        try:
            for entry, seq in zip(entries, seqs, strict=True):
                hub.written(seq, entry)
        except Exception:  # the records are stored whatever happens here: followers read them
            log.exception("Handing records written to %s to their followers failed.", self.safe_url)

    async def _flush_bounded(self, entries: Sequence[Entry]) -> list[int]:
        resolved = await self._resolve() if self.in_doubt else {}
        fresh = [e for e in entries if identity(e) not in resolved]
        written = iter(await self._store(fresh) if fresh else [])
        return [
            resolved[identity(e)] if identity(e) in resolved else next(written) for e in entries
        ]

    async def _store(self, entries: Sequence[Entry]) -> list[int]:
        by_doc: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            by_doc.setdefault(entry[0], []).append(index)
        # Sorted documents: every writer locks counter rows in one order (no deadlock).
        plan = sorted(by_doc.items())
        if self._pg is None:
            return await self._flush_sqlite(entries, plan)
        try:
            return await self._pg.flush(entries, plan)
        finally:
            self._sent_on = self._pg.sent_on

    async def _flush_sqlite(
        self, entries: Sequence[Entry], plan: list[tuple[str, list[int]]]
    ) -> list[int]:
        assert self._writer is not None
        writer = self._writer
        # Outcome unknown from here until the worker thread returns.
        self._sent_on = (0, None)
        try:
            seqs = await run_in_worker(lambda: writer.flush(entries, plan))
        except Exception:
            self._sent_on = None  # the thread returned: its transaction rolled back
            raise
        self._sent_on = None
        return seqs

    # -- resolving writes whose outcome is unknown ----------------------------

    async def _resolve(self) -> dict[Identity, int]:
        """Look up every record in doubt and write those not stored (see `outcomes`)."""
        entries = self.in_doubt.entries()
        if self._writer is not None:
            writer = self._writer
            found: dict[Identity, int] = await run_in_worker(
                lambda: writer.transaction(lambda conn: lookup_sqlite(conn, entries))
            )
        else:
            assert self._pg is not None
            async with self._pg.connection() as conn:
                fences = self.in_doubt.fences - {self._pg.who}
                try:
                    await fence_postgres(conn, fences, self.timeouts.statement)
                except TimeoutError:
                    raise StoreConnectionError(
                        f"A connection to {self.safe_url} that carried a write whose outcome "
                        "is unknown has not ended yet; the write stays in doubt.",
                        url=self.safe_url,
                    ) from None
                found = await lookup_postgres(conn, entries, self.timeouts.statement)
        missing = [e for e in entries if identity(e) not in found]
        if missing:
            found.update(zip(map(identity, missing), await self._store(missing), strict=True))
        self.in_doubt.settle(entries)
        log.info(
            "Resolved %d writes to %s whose outcome was unknown: %d had committed, %d written now.",
            len(entries),
            self.safe_url,
            len(entries) - len(missing),
            len(missing),
        )
        return found

    def _start_resolver(self) -> None:
        if (self._resolver is None or self._resolver.done()) and not self.closed.is_set():
            self._resolver = self.loop.create_task(self._resolve_in_background())

    async def _resolve_in_background(self) -> None:
        """Resolve the records in doubt when no write comes to do it, with backoff."""
        delay = 0.1
        while self.in_doubt and not self.closed.is_set():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            await self._resolve_once()

    async def _resolve_once(self) -> None:
        async with self._flush_lock:
            if not self.in_doubt:
                return
            self._sent_on = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeouts.write):
                try:
                    await self._resolve()
                except StoreConnectionError as exc:
                    log.debug("Writes to %s stay in doubt: %s", self.safe_url, exc)
                except Exception:
                    log.exception("Resolving writes to %s failed", self.safe_url)
            if self._sent_on is not None and self.in_doubt:
                # the records it was writing may have reached the server meanwhile
                self.in_doubt.fences.add(self._sent_on)
                if self._pg is not None:
                    await self._pg.drop(invalidate=True)

    # -- reading -------------------------------------------------------------

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one read-only query (driver SQL and positional arguments); return its rows.

        A query cut off by a lost connection (a server restart) is run once more
        on a new connection: reading twice is harmless.
        """
        rows = await self.fetch_rows(sql, args)
        return rows if self._readers is not None else [tuple(row) for row in rows]

    async def fetch_rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """`fetch`, with the rows as the driver gives them: tuples from SQLite, asyncpg
        `Record`s from Postgres (which index and unpack like tuples, without a copy
        of each row: for the loops that read a whole document).
        """
        if self._readers is not None:
            readers = self._readers
            return await run_in_worker(lambda: readers.fetch(sql, args))
        return await self.chain(lambda: _one_read(sql, args))

    async def chain(self, reads: Callable[[], Reads[T]]) -> T:
        """Run dependent read-only queries together; return what `reads` returns.

        `reads()` makes a generator that yields each query as `(sql, args)` (or as
        a `Meanwhile`, with work to do while it runs) and is sent its rows (as
        `fetch_rows` gives them), so each query can depend on the rows before it.
        SQLite: all in one worker-thread hop. Postgres: on one pooled connection,
        one checkout for all. No transaction spans them: each query sees what was
        committed when it ran. Reads cut off by a lost connection are run once
        more, from the start, on a new connection.
        """
        if self._readers is not None:
            readers = self._readers
            done, works = await run_in_worker(lambda: _run_blocking(reads(), readers.fetch))
            for work in works:
                work()
            return done
        timeout = self.timeouts.statement
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    steps = reads()
                    try:
                        step = next(steps)
                        while True:
                            if isinstance(step, Meanwhile):
                                rows = await _fetch_meanwhile(conn, step, timeout)
                            else:
                                rows = await conn.fetch(step[0], *step[1], timeout=timeout)
                            step = steps.send(list(rows))
                    except StopIteration as done:
                        return cast(T, done.value)
            except StoreConnectionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def fetch_each(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        """Run several read-only queries (each consistent on its own); return their rows.

        SQLite: all in one worker-thread hop. Postgres: one after the other.
        """
        if self._readers is not None:
            readers = self._readers
            return await run_in_worker(lambda: [readers.fetch(sql, args) for sql, args in queries])
        return [await self.fetch(sql, args) for sql, args in queries]

    async def last_write(self, doc: str) -> float | None:
        """The time of the document's last write, or None for a new document."""
        stmt = self.statements.last_write
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc))
        return float(rows[0][0]) if rows else None

    async def page(
        self, doc: str, after: int, limit: int, *, checkpoints: bool = False
    ) -> list[Row]:
        """Up to `limit` records of `doc` after `after` from its latest snapshot, in seq order,
        updates decompressed; checkpoints only when asked for.

        Raises:
            CorruptStoreError: A compressed update does not decode.
        """
        stmt = self.statements.page_all if checkpoints else self.statements.page
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc, after=after, limit=limit))
        if any(int(r[1]) == BLOCK for r in rows):
            rows = expand_rows(rows, after)
        return [
            (
                int(r[0]),
                int(r[1]),
                _raw(r[5], r[2], doc, r[0]),
                bytes(r[3]),
                float(r[4]),
            )
            for r in rows
        ]

    async def update_page(
        self, doc: str, after: int, limit: int, until: int = MAX_SEQ
    ) -> list[tuple[int, bytes]]:
        """As `page` (no checkpoints, seqs up to `until`), only the seqs and updates.

        Blocks are expanded (see `sql.blocks`): the page may hold more than
        `limit` records, and once the rows up to `until` run out, the block
        straddling `until` gives its records up to it.

        Raises:
            CorruptStoreError: A compressed update does not decode, or a block is damaged.
        """
        stmt = self.statements.update_page
        rows = await self.fetch(stmt.sql, stmt.args(doc=doc, after=after, limit=limit, until=until))
        out = update_rows(rows, doc, after)
        if len(rows) < limit and until != MAX_SEQ:
            block = await straddling_block(self, doc, until)
            if block is not None:
                start = out[-1][0] if out else after
                out.extend(
                    (r.seq, r.update) for r in block_records(block[1], block[2], start, until)
                )
        return out

    @property
    def sqlite_writer(self) -> SQLiteWriter | None:
        """The SQLite write connection (None for Postgres); call it from worker threads."""
        return self._writer

    # -- closing -------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the pool; stores of this database open a new `Database` on next use."""
        if not self._disposed and (self._detached or self.in_doubt):
            await self._settle_before_closing()
        self.closed.set()
        if not self._disposed:
            self._disposed = True
            if self._resolver is not None:
                self._resolver.cancel()
            if self._hub is not None:
                await self._hub.aclose()
            if self._writer is not None:
                await run_in_worker(self._writer.close)
            if self._readers is not None:
                await run_in_worker(self._readers.close)
            if self._pg is not None:
                await self._pg.drop(invalidate=False)
            await self.engine.dispose()

    async def _settle_before_closing(self) -> None:
        """Let cancelled callers' writes finish and resolve what is in doubt, bounded."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeouts.write):
            if self._detached:
                await asyncio.wait(set(self._detached))
            if self.in_doubt:
                await self._resolve_once()
        if self.in_doubt:
            log.warning(
                "Closing %s with %d writes whose outcome is unknown: each was stored once "
                "or not at all; look for them by document, timestamp and bytes.",
                self.safe_url,
                len(self.in_doubt),
            )
