"""Reading databases read-only: SQLite files (ystores, ypy-websocket, pycrdt-store) and Postgres.

SQLite files are read with plain `sqlite3`, never through the store classes
(which switch a database to WAL): see `connect_read_only`. Databases written by
ypy-websocket or pycrdt-store are read from their `yupdates` table in rowid order.
Postgres is read through the SQL store without creating anything.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from ..errors import SchemaError, StoreConnectionError
from ..history.compression import decompress
from ..history.packing import decode_block_header, unpack_block
from ..records import Record, RecordKind
from ..sqlite_uris import sqlite_uri
from .sources import ScanState, Source, Totals, _in_thread, record_batches

__all__ = ["PostgresSource", "SQLiteSource", "connect_read_only", "legacy_timestamp"]

_BATCH = 512
_TOTALS = (
    'SELECT doc, count(*), sum(length("update")), max(timestamp) FROM ystore_records '
    "GROUP BY doc ORDER BY doc"
)
_BLOCKS = f"SELECT doc, metadata FROM ystore_records WHERE kind = {int(RecordKind.BLOCK)}"


def _with_blocks(totals: list[Totals], blocks: list[tuple[Any, Any]]) -> list[Totals]:
    """Totals counting the records each block row holds (schema 0004_blocks)."""
    extra: dict[str, int] = {}
    for doc, metadata in blocks:
        extra[str(doc)] = extra.get(str(doc), 0) + decode_block_header(bytes(metadata)).count - 1
    return [(doc, count + extra.get(doc, 0), size, last) for doc, count, size, last in totals]


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that changes nothing in the database or its `-wal` file.

    Without a `-wal` file, or with an empty one, the database file holds every
    committed transaction: it is opened `immutable`, and SQLite then creates no
    `-wal` or `-shm` file and takes no lock. When the `-wal` file holds
    transactions (a live database, or one not checkpointed yet) it is opened
    `mode=ro`, which reads them: the database and the `-wal` file are left
    unchanged, but SQLite's shared-memory index (`-shm`) may be created or updated.
    """
    wal = path.with_name(path.name + "-wal")
    live = wal.exists() and wal.stat().st_size > 0
    uri = sqlite_uri(path, **({"mode": "ro"} if live else {"immutable": "1"}))
    # Used from one worker thread at a time, but not always the same one.
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def legacy_timestamp(value: Any) -> float:
    """ypy-websocket's timestamps: REAL seconds, or `str(datetime.utcnow())` (version 0)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return 0.0
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    return 0.0


class SQLiteSource(Source):
    """A SQLite file: the ystores schema, or a ypy-websocket / pycrdt-store layout."""

    def __init__(self, location: str, path: Path) -> None:
        super().__init__(location)
        self.path = path
        if not path.is_file():
            raise StoreConnectionError(
                f"There is no SQLite database at {path}; check the path.", url=location
            )
        self.size = sum(
            p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
        try:
            with closing(connect_read_only(path)) as conn:
                tables = {
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                revision = None
                if "ystore_alembic_version" in tables:
                    row = conn.execute("SELECT version_num FROM ystore_alembic_version").fetchone()
                    revision = row[0] if row else None
        except sqlite3.DatabaseError as exc:
            raise SchemaError(
                f"{path} cannot be read as a SQLite database ({exc}).", url=location
            ) from exc
        if "ystore_records" in tables:
            self.kind, self.format, self.version = "sqlite", "ystores SQLite schema", revision
            self.legacy = False
        elif "yupdates" in tables:
            self.legacy = True
            self.kind = "legacy-sqlite"
            producer = "pycrdt-store" if "ycheckpoints" in tables else "ypy-websocket"
            self.checkpoints = "ycheckpoints" in tables
            self.format = f"{producer} SQLite database (user_version {user_version})"
            self.version = user_version
        else:
            raise SchemaError(
                f"{path} is a SQLite database without ystores tables (nor ypy-websocket's "
                "yupdates table): it holds no documents. Name a store database, or create "
                f"the schema with `ystore migrate {location}`.",
                url=location,
            )

    async def names(self) -> list[str]:
        sql = (
            "SELECT DISTINCT path FROM yupdates ORDER BY path"
            if self.legacy
            else "SELECT DISTINCT doc FROM ystore_records ORDER BY doc"
        )

        def query() -> list[str]:
            with closing(connect_read_only(self.path)) as conn:
                return [str(row[0]) for row in conn.execute(sql)]

        return await anyio.to_thread.run_sync(query)

    def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        return _in_thread(self._rows(name, state))

    async def trailing(self, name: str, last: Record | None) -> Record | None:
        """A pycrdt-store checkpoint that adds to the document's history, as a last update.

        The history in `yupdates` is the truth; a checkpoint is left out when applying
        it on top of the whole history changes nothing, and kept otherwise (its
        history was lost), as `ystore migrate` does. Applying it twice is harmless.
        """
        if not self.legacy or not self.checkpoints:
            return None
        return await anyio.to_thread.run_sync(self._checkpoint, name, last)

    def _checkpoint(self, name: str, last: Record | None) -> Record | None:
        with closing(connect_read_only(self.path)) as conn:
            row = conn.execute(
                "SELECT checkpoint, timestamp FROM ycheckpoints WHERE path = ?", (name,)
            ).fetchone()
        if row is None or not row[0]:
            return None
        checkpoint = bytes(row[0])
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for batch in self._rows(name, ScanState()):
            for record in batch:
                doc.apply_update(record.update)
        before = doc.get_update()
        doc.apply_update(checkpoint)
        if doc.get_update() == before:
            return None
        seq = last.seq + 1 if last is not None else 1
        return Record(seq, checkpoint, b"", legacy_timestamp(row[1]))

    async def totals(self) -> list[Totals] | None:
        if self.legacy:
            return None

        def query() -> list[Totals]:
            with closing(connect_read_only(self.path)) as conn:
                totals = [
                    (str(d), int(n), int(b or 0), float(t)) for d, n, b, t in conn.execute(_TOTALS)
                ]
                blocks = [] if self.legacy else conn.execute(_BLOCKS).fetchall()
                return _with_blocks(totals, blocks)

        return await anyio.to_thread.run_sync(query)

    def _rows(self, name: str, state: ScanState) -> Iterator[list[Record]]:
        with closing(connect_read_only(self.path)) as conn:
            if self.legacy:
                if self.checkpoints:
                    row = conn.execute(
                        "SELECT length(checkpoint) FROM ycheckpoints WHERE path = ?", (name,)
                    ).fetchone()
                    state.checkpoint = None if row is None else int(row[0] or 0)
                cursor = conn.execute(
                    "SELECT yupdate, metadata, timestamp FROM yupdates WHERE path = ? "
                    "ORDER BY rowid",
                    (name,),
                )
                seq = 0
                while rows := cursor.fetchmany(_BATCH):
                    batch = []
                    for update, meta, stamp in rows:
                        seq += 1
                        batch.append(
                            Record(seq, bytes(update or b""), bytes(meta or b""),
                                   legacy_timestamp(stamp))
                        )  # fmt: skip
                    yield batch
            else:
                columns = {row[1] for row in conn.execute("PRAGMA table_info(ystore_records)")}
                codec = "codec" if "codec" in columns else "0"  # before schema 0003_history
                kinds = "" if state.checkpoints else f" AND kind <> {int(RecordKind.CHECKPOINT)}"
                cursor = conn.execute(
                    f'SELECT seq, kind, "update", metadata, timestamp, {codec} '
                    f"FROM ystore_records WHERE doc = ?{kinds} ORDER BY seq",
                    (name,),
                )
                while rows := cursor.fetchmany(_BATCH):
                    batch = []
                    for s, k, u, m, t, c in rows:
                        if int(k) == RecordKind.BLOCK:  # packed older records (schema 0004_blocks)
                            batch.extend(unpack_block(bytes(m), bytes(u)))
                        else:
                            batch.append(
                                Record(int(s), _raw(c, u, name, s), bytes(m), float(t),
                                       RecordKind(int(k)))
                            )  # fmt: skip
                    yield batch


def _raw(codec: int, stored: bytes, name: str, seq: int) -> bytes:
    """A record's update as written, decompressed when it is stored compressed."""
    if not codec:
        return bytes(stored)
    return decompress(int(codec), bytes(stored), where=f"record {seq} of {name!r}")


# -- Postgres --------------------------------------------------------------------


class PostgresSource(Source):
    """A Postgres database with the ystores schema (nothing is created)."""

    kind = "postgres"
    format = "ystores Postgres schema"

    async def names(self) -> list[str]:
        from ..sql import list_documents, schema_status

        report = await schema_status(self.location)
        self.version = report.current
        return [info.name for info in await list_documents(self.location)]

    async def totals(self) -> list[Totals] | None:
        from ..sql import PostgresYStore

        db = await PostgresYStore("-", url=self.location, create_schema=False).database()
        rows = await db.fetch(_TOTALS.replace("length(", "octet_length("), ())
        totals = [(str(d), int(n), int(b or 0), float(t)) for d, n, b, t in rows]
        return _with_blocks(totals, await db.fetch(_BLOCKS, ()))

    async def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        from ..history.reading import records_with_checkpoints
        from ..sql import PostgresYStore

        store = PostgresYStore(name, url=self.location, create_schema=False)
        reader = records_with_checkpoints(store) if state.checkpoints else store.read_records()
        async for batch in record_batches(reader, _BATCH):
            yield batch
