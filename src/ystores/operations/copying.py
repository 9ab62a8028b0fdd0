"""`copy_store`: copy every document between two stores of any backends.

Records keep their update, metadata and timestamp, in order (a snapshot record
stays a snapshot in a database; a store file has no snapshot records, so there
it becomes an update with the same content). With `squash`, each document is
copied as one merged update (empty metadata, the time of its last record).

Copying is idempotent and resumable. Per document, what the target already holds
is compared with what would be written:

- nothing: everything is written (`copied`);
- the same records: nothing is written (`skipped`);
- the first records only (a copy that was interrupted): the rest is appended (`resumed`);
- anything else: the document is left alone (`conflict`), never overwritten or mixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from logging import getLogger
from pathlib import Path

import anyio

from ..crdt import merge_updates
from ..errors import InvalidStoreURLError, YDocNotFound
from ..filestore.log import FileLog
from ..names import resolve_under
from ..records import Record, RecordKind
from ..targets import resolve_target
from ..urls import open_store
from .content import read_records
from .sources import ScanState, Source, _file_batches, open_source

__all__ = ["CopyReport", "DocumentCopy", "copy_store"]

_CHUNK = 512


@dataclass(frozen=True)
class DocumentCopy:
    """What happened to one document.

    Attributes:
        name: The document's name.
        action: `copied`, `resumed`, `skipped` (already identical) or `conflict`
            (the target holds other records for it; nothing was written).
        written: Records written.
    """

    name: str
    action: str
    written: int


@dataclass
class CopyReport:
    """What `copy_store` did.

    Attributes:
        source: The source as named.
        target: The target as named.
        documents: One entry per document of the source, in order.
    """

    source: str
    target: str
    documents: list[DocumentCopy] = field(default_factory=list)

    @property
    def conflicts(self) -> list[str]:
        """Documents left alone because the target holds other records for them."""
        return [d.name for d in self.documents if d.action == "conflict"]

    def count(self, action: str) -> int:
        """How many documents had this action."""
        return sum(d.action == action for d in self.documents)


class _Sink:
    async def existing(self, name: str) -> list[Record]:
        raise NotImplementedError

    async def append(self, name: str, records: list[Record]) -> None:
        raise NotImplementedError


class _FileSink(_Sink):
    """A file store directory, or one store file (for a source of one document)."""

    def __init__(self, root: Path | None, file: Path | None = None) -> None:
        self.root = root
        self.file = file

    def _path(self, name: str) -> Path:
        if self.file is not None:
            return self.file
        assert self.root is not None
        return resolve_under(self.root, name)

    async def existing(self, name: str) -> list[Record]:
        path = self._path(name)
        if not path.exists():
            return []
        records: list[Record] = []
        iterator = _file_batches(path, ScanState())
        while (batch := await anyio.to_thread.run_sync(next, iterator, None)) is not None:
            records.extend(batch)
        return records

    async def append(self, name: str, records: list[Record]) -> None:
        log = FileLog(self._path(name), fsync=True, upgrade=False, log=getLogger("ystores"))
        try:
            for start in range(0, len(records), _CHUNK):
                entries = [
                    (r.update, r.metadata, r.timestamp) for r in records[start : start + _CHUNK]
                ]
                await anyio.to_thread.run_sync(log.append, entries)
        finally:
            log.close()


class _DatabaseSink(_Sink):
    """A SQLite or Postgres database (its schema is created when it is empty)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def existing(self, name: str) -> list[Record]:
        store = open_store(self.url, name)
        try:
            return [record async for record in store.read_records()]  # type: ignore[attr-defined]
        except YDocNotFound:
            return []

    async def append(self, name: str, records: list[Record]) -> None:
        store = open_store(self.url, name)
        db = await store.database()  # type: ignore[attr-defined]
        for start in range(0, len(records), _CHUNK):
            # Submitted in order to one group committer: one transaction per chunk.
            await asyncio.gather(
                *(
                    db.write(name, r.kind, r.update, r.metadata, r.timestamp)
                    for r in records[start : start + _CHUNK]
                )
            )


def _sink(target: str, source: Source, names: list[str]) -> _Sink:
    resolved = resolve_target(target)
    if resolved.kind == "database":
        return _DatabaseSink(resolved.location)
    path = Path(resolved.location)
    if resolved.kind == "file" and path.exists():
        if len(names) != 1:
            raise InvalidStoreURLError(
                f"{target} is a single store file, but {source.location} holds {len(names)} "
                "documents; copy to a directory or a database instead."
            )
        return _FileSink(None, path)
    path.mkdir(parents=True, exist_ok=True)
    return _FileSink(path)


def _same(a: Record, b: Record) -> bool:
    return (a.update, a.metadata, a.timestamp) == (b.update, b.metadata, b.timestamp)


def _plan(wanted: list[Record], present: list[Record]) -> tuple[str, list[Record]]:
    if not present:
        return "copied", wanted
    if len(present) <= len(wanted) and all(map(_same, wanted, present)):
        rest = wanted[len(present) :]
        return ("resumed", rest) if rest else ("skipped", [])
    return "conflict", []


async def copy_store(
    source: str,
    target: str,
    *,
    squash: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> CopyReport:
    """Copy every document of `source` to `target` (see the module docstring).

    Args:
        source: A store file, a file store directory, a SQLite file or a database URL.
        target: A file store directory (made if missing), a SQLite file or URL, or a
            Postgres URL (its schema is created when the database is empty); an
            existing store file for a source of one document.
        squash: Copy each document as one merged update.
        progress: Called after each document with its name, how many documents are
            done and how many there are.

    Raises:
        YStoreError: A store cannot be opened or written (nothing is written to a
            document whose source cannot be read).
    """
    reader = open_source(source)
    report = CopyReport(source, target)
    try:
        names = await reader.names()
        sink = _sink(target, reader, names)
        for done, name in enumerate(names, 1):
            wanted = await read_records(reader, name)
            if squash:
                merged = merge_updates(r.update for r in wanted)
                wanted = [Record(1, merged, b"", wanted[-1].timestamp, RecordKind.UPDATE)]
            action, missing = _plan(wanted, await sink.existing(name))
            if missing:
                await sink.append(name, missing)
            report.documents.append(DocumentCopy(name, action, len(missing)))
            if progress is not None:
                progress(name, done, len(names))
    finally:
        await reader.aclose()
    return report
