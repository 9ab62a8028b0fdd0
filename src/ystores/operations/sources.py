"""Reading any store read-only: a store file, a directory of them, or a database.

Nothing here writes. Store files are read with a shared lock and never cut; SQLite
files are opened with `mode=ro` (or `immutable=1` when no `-wal` file exists, so
that not even a `-wal` or `-shm` file is created) and read with plain `sqlite3`,
never through the store classes (which switch a database to WAL). Databases
written by ypy-websocket or pycrdt-store are read from their `yupdates` table in
rowid order. Postgres is read through the SQL store without creating anything.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from logging import getLogger
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from ..errors import (
    SchemaError,
    StoreConnectionError,
    StoreFormatError,
    StoreIOError,
    UnknownFormatError,
    YDocNotFound,
)
from ..filestore.formats import FileFormat, detect_format
from ..filestore.log import FileLog
from ..filestore.scanning import TornTail
from ..records import Record, RecordKind
from ..targets import resolve_target

__all__ = ["ScanState", "Source", "Totals", "open_source"]

_BATCH = 512
_TOTALS = (
    'SELECT doc, count(*), sum(length("update")), max(timestamp) FROM ystore_records '
    "GROUP BY doc ORDER BY doc"
)

Totals = tuple[str, int, int, float]
_SIDE_FILE = re.compile(r".*\.(torn-\d+|bak-[0-9TZ-]+|[0-9a-f]{8}\.tmp)$")


@dataclass
class ScanState:
    """What reading one document found besides its records.

    Attributes:
        tail: Incomplete bytes at the end of a store file.
        checkpoint: A pycrdt-store checkpoint's size, for its legacy databases.
    """

    tail: TornTail | None = None
    checkpoint: int | None = None


class Source(ABC):
    """A store opened for reading.

    Attributes:
        kind: `file`, `directory`, `sqlite`, `legacy-sqlite` or `postgres`.
        location: The path or URL as given.
        format: A human name for the format or schema.
        version: The file format version, schema revision or `user_version`.
        size: Bytes on disk (files, directories, SQLite), None for Postgres.
    """

    kind: str
    format: str = ""
    version: int | str | None = None
    size: int | None = None

    def __init__(self, location: str) -> None:
        self.location = location

    @abstractmethod
    async def names(self) -> list[str]:
        """The documents, by name."""

    @abstractmethod
    def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        """The document's records in order, in batches.

        Raises:
            StoreFormatError: The document's data is damaged or in no known format.
        """

    async def trailing(self, name: str, last: Record | None) -> Record | None:
        """A record to add after the document's own ones when copying or merging it.

        Only pycrdt-store databases have one: a checkpoint that holds what the
        document's history does not (see `SQLiteSource.trailing`).
        """
        return None

    async def totals(self) -> list[Totals] | None:
        """Per document `(name, records, update bytes, last write)` from an index, if the
        backend can tell without reading every record (None: it cannot)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the source holds."""


async def _in_thread(iterator: Iterator[list[Record]]) -> AsyncIterator[list[Record]]:
    try:
        while True:
            batch = await anyio.to_thread.run_sync(next, iterator, None)
            if batch is None:
                return
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


# -- files ---------------------------------------------------------------------


def _file_batches(path: Path, state: ScanState) -> Iterator[list[Record]]:
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            fmt = detect_format(file, size, str(path))
            if fmt is None:
                return
            scanner = FileLog(path, fsync=False, upgrade=False, log=getLogger("ystores")).scanner(
                file, fmt, size
            )
            yield from scanner
            state.tail = scanner.tail
    except FileNotFoundError:
        raise StoreIOError(f"The store file {path} disappeared while it was read.") from None


def _file_format(path: Path) -> FileFormat | None:
    with open(path, "rb") as file:
        return detect_format(file, os.fstat(file.fileno()).st_size, str(path))


class FileSource(Source):
    """One store file (any format version): one document named after the file."""

    kind = "file"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.path = Path(location)
        if not self.path.exists():
            raise StoreIOError(
                f"There is no file or directory at {location}; check the path, or name a "
                "database as sqlite:///file.db or postgresql://user@host/dbname."
            )
        self.size = self.path.stat().st_size
        self.problem: str | None = None
        try:
            fmt = _file_format(self.path)
        except StoreFormatError as exc:
            self.problem, self.format = str(exc), "unknown"
        else:
            self.format = fmt.description if fmt else "empty"
            self.version = fmt.version if fmt else None

    async def names(self) -> list[str]:
        return [self.path.name]

    def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        return _in_thread(_file_batches(self.path, state))


class DirectorySource(Source):
    """A file store's root: every store file under it is a document (its relative path)."""

    kind = "directory"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.root = Path(location)
        if not self.root.is_dir():
            raise StoreIOError(
                f"There is no directory at {location}; check the path of the file store."
            )
        self.files = sorted(
            p
            for p in self.root.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
            and not _SIDE_FILE.fullmatch(p.name)
        )
        self.size = sum(p.stat().st_size for p in self.files)
        versions = set()
        for path in self.files:
            try:
                fmt = _file_format(path)
            except StoreFormatError:
                continue
            versions.add(fmt.version if fmt else None)
        known = {v for v in versions if v is not None}
        if self.files and not versions:
            raise UnknownFormatError(
                f"{location} is not a file store: none of its {len(self.files)} files is a "
                "store file. Name a store directory, a store file or a database URL.",
                path=location,
            )
        self.format = "file store directory"
        self.version = max(known) if len(known) == 1 else (None if not known else "mixed")

    async def names(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.files]

    def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        return _in_thread(_file_batches(self.root / name, state))


# -- SQLite ----------------------------------------------------------------------


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
    mode = "mode=ro" if live else "immutable=1"
    uri = "file:" + str(path.absolute()).replace("?", "%3f").replace("#", "%23") + "?" + mode
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
                return [
                    (str(d), int(n), int(b or 0), float(t)) for d, n, b, t in conn.execute(_TOTALS)
                ]

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
                cursor = conn.execute(
                    'SELECT seq, kind, "update", metadata, timestamp FROM ystore_records '
                    "WHERE doc = ? ORDER BY seq",
                    (name,),
                )
                while rows := cursor.fetchmany(_BATCH):
                    yield [
                        Record(int(s), bytes(u), bytes(m), float(t), RecordKind(int(k)))
                        for s, k, u, m, t in rows
                    ]


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
        return [(str(d), int(n), int(b or 0), float(t)) for d, n, b, t in rows]

    async def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        from ..sql import PostgresYStore

        store = PostgresYStore(name, url=self.location, create_schema=False)
        batch: list[Record] = []
        try:
            async for record in store.read_records():
                batch.append(record)
                if len(batch) >= _BATCH:
                    yield batch
                    batch = []
        except YDocNotFound:
            return
        if batch:
            yield batch


def _sqlite_path(location: str) -> Path:
    if "://" in location:
        from ..sql.urls import database_url

        return Path(database_url(location).database or "")
    return Path(location)


def open_source(target: str) -> Source:
    """Open TARGET (a store file, a directory, a SQLite file or a database URL) for reading.

    Raises:
        InvalidStoreURLError: An unknown URL scheme.
        StoreIOError: No such file or directory.
        StoreConnectionError: No such SQLite database.
        SchemaError: A SQLite file that holds no store.
        UnknownFormatError: A directory that holds no store file.
    """
    resolved = resolve_target(str(target))
    if resolved.kind == "file":
        return FileSource(resolved.location)
    if resolved.kind == "directory":
        return DirectorySource(resolved.location)
    scheme = resolved.location.split("://", 1)[0].lower() if "://" in resolved.location else ""
    if scheme.startswith("postgres"):
        from ..sql.urls import database_url

        database_url(resolved.location)  # refuse a malformed URL up front
        return PostgresSource(resolved.location)
    return SQLiteSource(resolved.location, _sqlite_path(resolved.location))
