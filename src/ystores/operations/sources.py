"""Reading any store read-only: a store file, a directory of them, or a database.

Nothing here writes. Store files are read and never cut (a torn tail is only
reported). Databases are read by `databases`: SQLite with plain `sqlite3`
opened read-only, never through the store classes (which switch a database to
WAL), Postgres without creating anything.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from logging import getLogger
from pathlib import Path

import anyio

from ..errors import (
    CorruptStoreError,
    StoreFormatError,
    StoreIOError,
    UnknownFormatError,
    YDocNotFound,
)
from ..filestore.formats import CURRENT_VERSION, FileFormat, detect_format
from ..filestore.log import FileLog
from ..filestore.scanning import TornTail
from ..records import Record
from ..rootdir import walk_root
from ..targets import resolve_target

__all__ = ["ScanState", "Source", "Totals", "open_source"]

Totals = tuple[str, int, int, float]


@dataclass
class ScanState:
    """What reading one document found besides its records.

    Attributes:
        tail: Incomplete bytes at the end of a store file.
        checkpoint: A pycrdt-store checkpoint's size, for its legacy databases.
        checkpoints: Set by the reader: yield ystores checkpoint records too
            (`inspect` counts them; every other reader leaves them to the store).
    """

    tail: TornTail | None = None
    checkpoint: int | None = None
    checkpoints: bool = False


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


async def record_batches(records: AsyncIterator[Record], size: int) -> AsyncIterator[list[Record]]:
    """`records` in lists of `size` (the last one shorter); nothing for a missing document."""
    batch: list[Record] = []
    try:
        async for record in records:
            batch.append(record)
            if len(batch) >= size:
                yield batch
                batch = []
    except YDocNotFound:
        return
    if batch:
        yield batch


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
            # Checkpoints are the store's, not the history's: only inspect asks for them.
            yield from (iter(scanner) if state.checkpoints else scanner.records())
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
        self.listing = walk_root(self.root)
        self.files = [self.root / name for name in self.listing.documents]
        if not self.files and self.listing.strays:
            raise UnknownFormatError(
                f"{location} is not a file store: none of its {len(self.listing.strays)} "
                "files is a store file. Name a store directory, a store file or a database URL.",
                path=location,
            )
        self.size = sum(p.stat().st_size for p in self.files)
        versions: set[int | None] = set()
        for path in self.files:
            try:
                fmt = _file_format(path)
            except CorruptStoreError:
                versions.add(CURRENT_VERSION)  # a store file with a damaged header
                continue
            except StoreFormatError:
                continue
            versions.add(fmt.version if fmt else None)
        known = {v for v in versions if v is not None}
        self.format = "file store directory"
        self.version = max(known) if len(known) == 1 else (None if not known else "mixed")

    async def names(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.files]

    def batches(self, name: str, state: ScanState) -> AsyncIterator[list[Record]]:
        return _in_thread(_file_batches(self.root / name, state))


def open_source(target: str) -> Source:
    """Open TARGET (a store file, a directory, a SQLite file or a database URL) for reading.

    Raises:
        InvalidStoreURLError: An unknown URL scheme.
        StoreIOError: No such file or directory.
        StoreConnectionError: No such SQLite database.
        SchemaError: A SQLite file that holds no store.
        UnknownFormatError: A directory that holds no store file.
    """
    from .databases import PostgresSource, SQLiteSource  # they build on this module

    resolved = resolve_target(str(target), existing=True)
    if resolved.kind == "file":
        return FileSource(resolved.location)
    if resolved.kind == "directory":
        return DirectorySource(resolved.location)
    scheme = resolved.location.split("://", 1)[0].lower() if "://" in resolved.location else ""
    if scheme.startswith("postgres"):
        from ..sql.urls import database_url

        database_url(resolved.location)  # refuse a malformed URL up front
        return PostgresSource(resolved.location)
    assert resolved.sqlite_path is not None
    return SQLiteSource(resolved.location, resolved.sqlite_path)
