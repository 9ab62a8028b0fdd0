"""The SQL stores: `SQLiteYStore` and `PostgresYStore`, over one schema.

One database holds many documents. Every store of one database (in one event
loop) shares one engine and connection pool and one group committer: concurrent
`write()` calls, to any document, share one transaction.

The SQL stores run on asyncio only (aiosqlite, asyncpg and SQLAlchemy's async
layer do not support trio).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, suppress
from logging import Logger
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy.engine import URL

from .. import crdt
from ..base import MetadataCallback
from ..clock import Clock
from ..compaction.policy import CompactionPolicy, LogStats, SquashReport
from ..errors import InvalidDocumentNameError, YDocNotFound, YStoreError
from ..extras import require
from ..history import CheckpointPolicy, CheckpointReport, Codec, RetentionPolicy, compress
from ..history.compression import decompress
from ..history.packing import PackReport
from ..history.stats import HistoryStats
from ..history.thinning import ThinningPolicy
from ..records import Record, RecordKind
from .blocks import BLOCK, expand_rows
from .database import Database, Row, update_rows
from .engines import running_loop, shared
from .following import FollowedSQLStore
from .history import latest_base, restore_start
from .history_stats import history_stats
from .history_write import retention_cut, state_at, write_checkpoint
from .memory import is_memory, memory_url
from .packing import pack_document
from .squashing import document_stats, fold_document, squash_document
from .statements import CODEC_SHIFT
from .timeouts import with_timeouts
from .urls import database_url, sqlite_url

__all__ = ["PostgresYStore", "SQLYStore", "SQLiteYStore"]

PAGE_SIZE = 512
"""The most records fetched per query while reading: reads stream, page by page."""

APPLY_PAGE_SIZE = 4096
"""The most updates fetched per query by `apply_updates` (bare updates: larger pages)."""

PAGE_BYTES = 4 << 20
"""About how many bytes a page holds: pages start small and grow to this size."""

FIRST_PAGE = 64
"""Records in the first page, before the size of the document's records is known."""

TAIL_PAGE = 1024
"""Updates in a restore's first page after a checkpoint: the tail a checkpoint
policy lets build up (the default's, whole), in one query. Sized by records, not
bytes: those updates are applied to the document being restored, which holds
their content anyway."""


_UPDATE = itemgetter(2)  # a page row's stored update
_PACKED = itemgetter(1)  # a `read_page` row's kind and codec (0: a raw update)
_KIND_MASK = (1 << CODEC_SHIFT) - 1
_TRIPLE = itemgetter(2, 3, 4)  # a `read_page` row's `(update, metadata, timestamp)`
_FIRST = itemgetter(0)  # a `read_window` row's update

R = TypeVar("R", bound=tuple[Any, ...])


def _record_size(row: tuple[int, int, bytes, bytes, float]) -> int:
    return len(row[2]) + len(row[3])


def _update_size(row: tuple[int, bytes]) -> int:
    return len(row[1])


def next_page_size(rows: int, size: int, most: int) -> int:
    """How many rows the next page asks for, so that it holds about `PAGE_BYTES`.

    Args:
        rows: Rows in the page just read.
        size: Their bytes.
        most: The most rows a page may hold.
    """
    return max(1, min(most, rows * PAGE_BYTES // max(size, 1)))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidDocumentNameError("A document name must be a non-empty string.")
    if "\x00" in name:
        raise InvalidDocumentNameError(f"The document name {name!r} contains a NUL byte.")
    return name


class SQLYStore(FollowedSQLStore):
    """A document stored in a SQL database (the base of the SQLite and Postgres stores).

    Opening a store on an empty database creates the ystores schema (unless
    `create_schema` is False); a database whose schema is behind this version
    raises `SchemaOutdatedError`, which names `ystore migrate URL`. Nothing is
    ever migrated behind the user's back.

    asyncio only.

    Args:
        path: The document's name (any non-empty string without NUL).
        metadata_callback: Returns the metadata stored with each update.
        log: Logger for warnings.
        url: The database URL (`sqlite:///file.db`, `postgresql://user@host/db`).
        document_ttl: Seconds of inactivity after which the document's history is
            squashed into one snapshot, in the background of a started store
            (never inside `write()`); None never squashes. Shorthand for
            `compaction=CompactionPolicy(ttl=document_ttl)`.
        create_schema: Create the schema in an empty database on first use.
        validate: Check that each update decodes as a Yjs update before writing it.
        clock: The time source for timestamps.
        compaction: When a running store squashes the document in the background.
        checkpoints: When a running store writes checkpoints in the background.
        retention: How much history a running store keeps.
        compress: Store updates zlib-compressed (those long enough to shrink).
        packing: Pack the history each background checkpoint covers into blocks
            and thin old checkpoints (`pack()`; default True).
        connect_timeout: Seconds to open a database connection (default 10, or
            the URL's `connect_timeout`).
        statement_timeout: Seconds for one statement's round trip; on SQLite,
            how long to wait for another process's lock (default 10, or the
            URL's `statement_timeout`).
        write_timeout: Seconds a `write()` may take in all, after which it raises
            `StoreConnectionError` (default 15, or the URL's `write_timeout`).
            See `ystores.sql.outcomes` for a write whose commit is then unknown.
    """

    document_ttl: int | float | None = None
    create_schema: bool = True

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        url: str | URL,
        document_ttl: float | None = None,
        create_schema: bool | None = None,
        validate: bool = True,
        clock: Clock | None = None,
        compaction: CompactionPolicy | None = None,
        checkpoints: CheckpointPolicy | None = None,
        retention: RetentionPolicy | None = None,
        compress: bool | None = None,
        packing: bool | None = None,
        connect_timeout: float | None = None,
        statement_timeout: float | None = None,
        write_timeout: float | None = None,
    ) -> None:
        super().__init__(
            _check_name(path),
            metadata_callback,
            log,
            clock=clock,
            compaction=compaction,
            checkpoints=checkpoints,
            retention=retention,
            compress=compress,
            packing=packing,
        )
        self.database_url = with_timeouts(
            database_url(url),
            {
                "connect_timeout": connect_timeout,
                "statement_timeout": statement_timeout,
                "write_timeout": write_timeout,
            },
        )
        if document_ttl is not None:
            self.document_ttl = document_ttl
        if self.compaction is None and self.document_ttl is not None:
            self.compaction = CompactionPolicy(ttl=self.document_ttl)
        if create_schema is not None:
            self.create_schema = create_schema
        self.validate = validate
        self._database: Database | None = None  # the last one `database()` returned

    async def _open(self) -> None:
        # A configuration framework may set document_ttl after __init__ (traitlets loads
        # a Configurable's config once the base classes' __init__ has run).
        if self.compaction is None and self.document_ttl is not None:
            self.compaction = CompactionPolicy(ttl=self.document_ttl)
        await super()._open()

    async def database(self) -> Database:
        """The shared `Database` of this store's URL in the running loop, schema checked.

        Raises:
            SchemaOutdatedError: The database's schema is behind this ystores.
            ForeignSchemaError: It holds tables with ystores' names that ystores did not make.
            StoreConnectionError: It cannot be reached.
            StoreStateError: Not running on asyncio.
        """
        db = self._database
        if db is None or db.closed.is_set() or db.loop is not running_loop():
            db = self._database = shared(self.database_url, Database)
        await db.ensure_schema(create=self.create_schema)
        return db

    async def write(self, data: bytes) -> None:
        """Append one update; return once its transaction has committed.

        Raises:
            InvalidUpdateError: `data` is not a Yjs v1 update (nothing is written).
            SchemaOutdatedError: The database's schema is behind; run `ystore migrate URL`.
            StoreConnectionError: The database cannot be reached, or did not
                commit within `write_timeout`; its `commit_unknown` says whether the
                update may have been stored (the store then resolves it: it ends up
                stored exactly once).
            StoreDatabaseError: The database refused the write.
        """
        if self.validate:
            crdt.validate_update(data)
        metadata = await self.get_metadata()
        db = await self.database()
        codec, stored = compress(bytes(data)) if self.compress else (Codec.RAW, bytes(data))
        await db.write(self.path, RecordKind.UPDATE, stored, metadata, self.clock(), codec)
        self._note_write(len(data))

    async def log_stats(self) -> LogStats | None:
        """The shape of the document's log: one aggregate query (None without records)."""
        return await document_stats(await self.database(), self.path)

    async def squash(self) -> SquashReport | None:
        """Merge the document's history into one snapshot row (see `BaseYStore.squash`).

        The merge runs outside any transaction; the swap (delete the merged rows,
        insert the snapshot with the last merged seq) is one short transaction.
        """
        return await squash_document(await self.database(), self.path, compressed=self.compress)

    # -- history ---------------------------------------------------------------

    async def checkpoint(self) -> CheckpointReport | None:
        """Append a checkpoint of everything stored now (see `BaseYStore.checkpoint`).

        Merged from the latest trusted checkpoint (or snapshot) and the records
        after it, verified, and appended with its own seq like any record: no
        lock is held while merging, writers of any process keep writing.
        """
        db = await self.database()
        return await write_checkpoint(db, self.path, compressed=self.compress, now=self.clock())

    async def retain(self, policy: RetentionPolicy | None = None) -> SquashReport | None:
        """Fold the history `policy` (default: the store's) drops into a snapshot row.

        The records up to the last one dropped are replaced by one snapshot with
        that record's seq and timestamp, in one transaction (see
        `ystores.sql.squashing`); checkpoints it supersedes go too. Writers keep
        writing meanwhile. `RetentionPolicy.none()` is `squash()`.

        Returns:
            What was removed, or None when the policy drops nothing.
        """
        policy = policy or self.retention
        if policy is None or policy.keep_all or (policy.window is None and policy.budget is None):
            return None
        if policy.keeps_nothing:
            return await self.squash()
        db = await self.database()
        cut = await retention_cut(db, self.path, policy, self.clock())
        if cut is None:
            return None
        return await fold_document(db, self.path, cut, compressed=self.compress)

    async def pack(
        self, *, thinning: ThinningPolicy | None = None, block_records: int = 1000
    ) -> PackReport | None:
        """Pack the history the latest trusted checkpoint covers into block rows and thin
        old checkpoints (see `BaseYStore.pack` and `ystores.sql.packing`).

        Each block replaces up to `block_records` rows in a short transaction;
        writers keep writing meanwhile, and every reader still sees the records.

        Returns:
            What was done, or None when there was nothing to pack or drop.
        """
        db = await self.database()
        return await pack_document(
            db, self.path, thinning=thinning or ThinningPolicy(), block_records=block_records
        )

    async def state_at(self, at: float | None = None, *, seq: int | None = None) -> bytes:
        """The document at time `at`, or just after record `seq`, as one update
        (see `BaseYStore.state_at`): the nearest trusted checkpoint, then a range replay.

        Raises:
            YDocNotFound: The database holds no record for this document.
            HistoryNotKeptError: That point is older than the history kept.
        """
        if (at is None) == (seq is None):
            raise ValueError("state_at() takes a time or a seq, exactly one of them.")
        return await state_at(await self.database(), self.path, at, seq)

    async def history_stats(self) -> HistoryStats | None:
        """What the document's history holds and costs (None when it has no record)."""
        return await history_stats(await self.database(), self.path)

    # -- reading ---------------------------------------------------------------

    async def read_records(self, *, checkpoints: bool = False) -> AsyncIterator[Record]:
        """Iterate over the records from the latest snapshot on, in seq order, page by page.

        Args:
            checkpoints: Yield checkpoint records too (their metadata is their header).

        Raises:
            YDocNotFound: The database holds no record for this document.
            StoreConnectionError: The database cannot be reached.
            CorruptStoreError: A compressed update does not decompress.
        """
        db = await self.database()

        async def fetch(doc: str, after: int, limit: int) -> list[Row]:
            return await db.page(doc, after, limit, checkpoints=checkpoints)

        async with aclosing(self._pages(fetch, _record_size, PAGE_SIZE)) as pages:
            async for rows in pages:
                for seq, kind, update, metadata, timestamp in rows:
                    yield Record(seq, update, metadata, timestamp, RecordKind(kind))

    async def apply_updates(self, ydoc: Any) -> None:
        """Apply the document to `ydoc` (y-py or pycrdt): the latest trusted checkpoint
        (or snapshot), then the updates after it.

        Fetches the updates alone, page by page, and applies each page in one
        transaction (see `crdt.apply_updates`). A damaged checkpoint is skipped
        with a warning (an earlier one, or the whole log, is replayed instead).

        Raises:
            YDocNotFound: The database holds no record for this document.
            InvalidUpdateError: A stored update could not be applied.
            StoreConnectionError: The database cannot be reached.
        """
        db = await self.database()
        # The newest checkpoint, checked, and the first page after it: one statement
        # in the common case (one round trip), applied together in one transaction.
        # After a checkpoint built while many records were written, the page takes
        # a second query, and Postgres applies the checkpoint while it runs.
        apply = None if db.backend == "sqlite" else lambda u: crdt.apply_updates(ydoc, [u])
        start = await db.chain(
            lambda: restore_start(
                db.backend, db.statements, self.path, FIRST_PAGE, TAIL_PAGE, apply
            )
        )
        base = start.base if start is not None else await latest_base(db, self.path)
        applied = start is not None and start.applied
        first = [base.update] if base is not None and not applied else []
        after = base.covers if base is not None else 0
        # After a checkpoint the tail is as short as the checkpoint policy keeps
        # it: one page of `TAIL_PAGE` holds the default policy's whole tail.
        pages = self._pages(
            db.update_page,
            _update_size,
            APPLY_PAGE_SIZE,
            after,
            base is not None,
            TAIL_PAGE if base is not None else FIRST_PAGE,
            None if start is None else update_rows(start.rows, self.path, after),
        )
        async with aclosing(pages):
            async for rows in pages:
                crdt.apply_updates(ydoc, [*first, *(update for _seq, update in rows)])
                first = []
        if first:
            crdt.apply_updates(ydoc, first)

    async def _pages(
        self,
        fetch: Callable[[str, int, int], Awaitable[list[R]]],
        size_of: Callable[[R], int],
        most: int,
        after: int = 0,
        found: bool = False,
        first: int = FIRST_PAGE,
        fetched: list[R] | None = None,
    ) -> AsyncGenerator[list[R], None]:
        """The document's rows after seq `after` (each starting with its seq), a
        page of about `PAGE_BYTES` (at most `most` rows) at a time, `first` rows
        in the first (`fetched`, when it was fetched already).

        Raises:
            YDocNotFound: No row, and `found` does not say the document exists.
        """
        limit = first
        while True:
            rows = await fetch(self.path, after, limit) if fetched is None else fetched
            fetched = None
            if rows:
                found = True
                yield rows
            if len(rows) < limit:
                break
            after = rows[-1][0]
            limit = next_page_size(len(rows), sum(map(size_of, rows)), most)
            del rows
        if not found:
            raise YDocNotFound(f"The database holds no record for the document {self.path!r}.")

    def read(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """Iterate over `(update, metadata, timestamp)`: the latest snapshot, then what follows.

        Yields at least every record stored when the read began, in seq order;
        records written meanwhile may follow (on Postgres) or not (on SQLite).

        Raises:
            YDocNotFound: The database holds no record for this document.
            StoreConnectionError: The database cannot be reached.
        """
        # The peers' restore loop, so kept lean: each engine's loop is the one
        # generator the caller steps (no layer between), rows taken as the drivers
        # give them (bytes, float), pages as large as a restore's.
        if self.database_url.get_backend_name() == "sqlite":
            return self._read_windows()
        return self._read_pages()

    async def _read_pages(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """`read()` on Postgres: pages of `read_page` rows."""
        db = await self.database()
        stmts, doc = db.statements, self.path
        # A page of raw updates alone (`packed` 0 throughout) is yielded through
        # one C-level map.
        stmt, after, limit = stmts.read_page, 0, FIRST_PAGE
        while True:
            rows = await db.fetch_rows(stmt.sql, stmt.args(doc=doc, after=after, limit=limit))
            if not rows:
                if not after:
                    raise YDocNotFound(f"The database holds no record for the document {doc!r}.")
                return
            size = sum(map(len, map(_UPDATE, rows)))
            fetched = len(rows)
            if any(map(_PACKED, rows)):
                for triple in self._decoded(self._unpacked(rows, after)):
                    yield triple
            else:
                for triple in map(_TRIPLE, rows):
                    yield triple
            after = rows[-1][0]
            if fetched < limit:
                return
            limit = next_page_size(fetched, size, APPLY_PAGE_SIZE)
            del rows

    async def _read_windows(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """`read()` on SQLite: windows of seqs whose rows carry no seq."""
        db = await self.database()
        stmts, doc = db.statements, self.path
        window, full, probe = stmts.read_window, stmts.read_window_all, stmts.next_seq
        highest = stmts.stored_seq
        if window is None or full is None or probe is None or highest is None:
            raise AssertionError("SQLite statements without the read windows")
        # Windows of seqs `after < seq <= until` (`read_window`) of raw updates,
        # whose rows carry no seq (the sqlite3 module spends about 1,000
        # instructions a row on each column) and are yielded as they come. The
        # trailer row gives the window's highest seq (the next window starts after
        # it, as a page starts after the last row of the one before) and how many
        # raw updates it holds if it holds nothing else; fewer (a snapshot, a
        # block, a compressed row, a gap) and the window is read again in full. A
        # window short of `until` (a gap left by packing or retention) is followed
        # by the next stored seq. The read ends at the highest seq stored when it
        # began (a reader that writes what it reads must not chase its own writes),
        # unless a squash meanwhile cut past it: then its snapshot, which holds
        # what was stored, is read too.
        end = (await db.fetch_rows(highest.sql, highest.args(doc=doc)))[0][0]
        after, limit, found = 0, FIRST_PAGE, False
        until = min(limit, end)
        while end:
            rows = await db.fetch_rows(window.sql, window.args(doc=doc, after=after, until=until))
            _, expected, last = rows.pop()
            if last is not None:
                if len(rows) == expected:
                    fetched, size = len(rows), sum(map(len, map(_FIRST, rows)))
                    for row in rows:
                        yield row
                else:
                    args = full.args(doc=doc, after=after, until=until)
                    page = await db.fetch_rows(full.sql, args)
                    fetched, size = len(page), sum(map(len, map(_UPDATE, page)))
                    for triple in self._decoded(self._unpacked(page, after)):
                        yield triple
                    # The next window starts after this read's rows, never after the
                    # first query's: a pack in between may have moved rows of this
                    # window into a block whose seq lies past `until`.
                    last = page[-1][0] if page else None
                if fetched:
                    found = True
                    limit = next_page_size(fetched, size, APPLY_PAGE_SIZE)
                del rows
            if last == until and until < end:
                after, until = until, min(until + limit, end)
                continue
            if last is not None:
                after = last
            following = await db.fetch_rows(probe.sql, probe.args(doc=doc, after=after))
            if not following:
                break
            nxt, kind = following[0]
            if nxt > end:
                if kind != RecordKind.SNAPSHOT.value:
                    break  # written since the read began
                end = nxt
            until = min(nxt - 1 + limit, end)
        if not found:
            raise YDocNotFound(f"The database holds no record for the document {doc!r}.")

    def _decoded(self, full: list[tuple[Any, ...]]) -> Iterator[tuple[bytes, bytes, float]]:
        """`(update, metadata, timestamp)` of `_unpacked` rows, compressed updates decompressed."""
        for seq, update, metadata, timestamp, codec in full:
            if codec:
                update = decompress(codec, bytes(update), where=f"record {seq} of {self.path!r}")
            yield update, metadata, timestamp

    @staticmethod
    def _unpacked(rows: list[Any], after: int) -> list[tuple[Any, ...]]:
        """A `read_page` page as `(seq, update, metadata, timestamp, codec)`, blocks expanded."""
        full = [
            (seq, packed & _KIND_MASK, update, metadata, timestamp, packed >> CODEC_SHIFT)
            for seq, packed, update, metadata, timestamp in rows
        ]
        if any(row[1] == BLOCK for row in full):  # older history packed (`sql.blocks`)
            full = expand_rows(full, after)
        return [(seq, update, meta, ts, codec) for seq, _kind, update, meta, ts, codec in full]


class SQLiteYStore(SQLYStore):
    """A document in a SQLite database file shared by many documents (and processes).

    As in ypy-websocket, a subclass may name its database with class attributes:

    ```python
    class MySQLiteYStore(SQLiteYStore):
        db_path = "path/to/my_ystore.db"
        document_ttl = 3600
    ```

    Constructor arguments take precedence. Connections use WAL, a busy timeout and
    `BEGIN IMMEDIATE`, so several processes can write one file without "database
    is locked" errors. A database written by ypy-websocket or pycrdt-store raises
    `SchemaOutdatedError` until it is converted with `ystore migrate PATH`.

    asyncio only (aiosqlite).

    Args:
        path: The document's name.
        metadata_callback: Returns the metadata stored with each update.
        log: Logger for warnings.
        db_path: The database file (default: the class attribute, `ystore.db`).
            `":memory:"` is an ephemeral database shared by the `":memory:"` stores of
            the running event loop and deleted with it (see `ystores.sql.memory`).
        document_ttl: See `SQLYStore`.
        clock: The time source for timestamps.
        create_schema: Create the schema in an empty database on first use.
        validate: Check that each update decodes before writing it.
        compaction: When a running store squashes the document in the background.
        checkpoints: When a running store writes checkpoints in the background.
        retention: How much history a running store keeps.
        compress: Store updates zlib-compressed (those long enough to shrink).
        packing: See `SQLYStore`.
        fsync: Whether a commit returns only once it is on disk (`synchronous =
            FULL`, the default). False is the fast setting (`synchronous = NORMAL`
            in WAL mode): a process crash loses nothing, a power loss may drop the
            last commits. The same as `sqlite:///file.db?synchronous=normal`.
        connect_timeout: See `SQLYStore`.
        statement_timeout: How long a statement waits for another process's
            lock (SQLite's busy timeout; default 10 s).
        write_timeout: See `SQLYStore`.
    """

    db_path: str | os.PathLike[str] = "ystore.db"

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        db_path: str | os.PathLike[str] | None = None,
        document_ttl: float | None = None,
        clock: Clock | None = None,
        create_schema: bool | None = None,
        validate: bool = True,
        compaction: CompactionPolicy | None = None,
        checkpoints: CheckpointPolicy | None = None,
        retention: RetentionPolicy | None = None,
        compress: bool | None = None,
        packing: bool | None = None,
        fsync: bool = True,
        connect_timeout: float | None = None,
        statement_timeout: float | None = None,
        write_timeout: float | None = None,
    ) -> None:
        require("sqlite", "SQLite stores")
        # The instance attribute, not the class's: a configuration framework's descriptor
        # (a traitlets trait) answers the configured value on the instance.
        file = db_path if db_path is not None else self.db_path
        self._synchronous = "full" if fsync else "normal"
        url = (
            sqlite_url(os.devnull)  # a stand-in: `database()` names the loop's database
            if is_memory(file)
            else sqlite_url(file, synchronous=self._synchronous)
        )
        super().__init__(
            path,
            metadata_callback,
            log,
            url=url,
            document_ttl=document_ttl,
            create_schema=create_schema,
            validate=validate,
            clock=clock,
            compaction=compaction,
            checkpoints=checkpoints,
            retention=retention,
            compress=compress,
            packing=packing,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            write_timeout=write_timeout,
        )
        self.db_path = self._url_path = os.fspath(file)

    async def _open(self) -> None:
        await super()._open()
        # As ypy-websocket's SQLiteYStore does when it starts: the database file is
        # opened and its schema checked (or created) now, not on the first read or
        # write. A failure does not fail the start: the first read or write raises
        # it, as it would have anyway, so a room reports it as the document's load
        # error and refuses clients instead of failing to start.
        with suppress(YStoreError):
            await self.database()

    async def database(self) -> Database:
        """The shared `Database` (see `SQLYStore.database`); for `":memory:"` the running
        loop's ephemeral database."""
        # db_path is read again: a configuration framework may set it after __init__.
        if is_memory(self.db_path):
            self.database_url = memory_url(synchronous=self._synchronous)
        elif os.fspath(self.db_path) != self._url_path:
            self.database_url = sqlite_url(self.db_path, synchronous=self._synchronous)
        self._url_path = os.fspath(self.db_path)
        return await super().database()


class PostgresYStore(SQLYStore):
    """A document in a Postgres database shared by many documents and servers.

    `postgresql://user:password@host:5432/dbname` URLs are served by asyncpg
    (`postgresql+asyncpg://` is accepted too). A subclass may set the URL with the
    class attribute `db_url`.

    asyncio only (asyncpg).

    Args:
        path: The document's name.
        metadata_callback: Returns the metadata stored with each update.
        log: Logger for warnings.
        url: The database URL (default: the class attribute `db_url`).
        **kwargs: `document_ttl`, `create_schema`, `validate`, `clock`, `compaction`,
            `checkpoints`, `retention`, `compress`, `packing`, `connect_timeout`,
            `statement_timeout`, `write_timeout` (see `SQLYStore`).
    """

    db_url: str | None = None

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        url: str | URL | None = None,
        **kwargs: Any,
    ) -> None:
        require("postgres", "Postgres stores")
        chosen = url if url is not None else self.db_url  # the instance's: see SQLiteYStore
        if chosen is None:
            from ..errors import InvalidStoreURLError

            raise InvalidStoreURLError(
                "PostgresYStore needs a database URL: pass url= or set the class attribute db_url."
            )
        super().__init__(path, metadata_callback, log, url=chosen, **kwargs)
