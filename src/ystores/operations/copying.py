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

A document whose name the target cannot hold (a file store refuses hidden names
and names that look like its side files, see `ystores.names`) is `refused`.
Nothing is created at the target before the first record is written to it.

From a pycrdt-store database, a document's checkpoint is copied as a last update
when it holds what the history does not (as `ystore migrate` does).

ystores checkpoint records are not copied (their `covers` names the source's
seqs; the target writes its own), except the one a retention policy left as
the base of the history: its update is copied first, as a snapshot (see
`_without_checkpoints`).

Both sides are read in batches, side by side, so memory holds a batch, not a
document. The target is compared in full before anything is written to it. A
source that fails half-way through a document (damage) leaves the records
before the failure at the target: run the copy again once the source is
repaired, and it resumes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from logging import getLogger
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..errors import InvalidDocumentNameError, InvalidStoreURLError
from ..filestore.log import FileLog
from ..history.checkpoints import decode_header
from ..names import resolve_under
from ..records import Record, RecordKind
from ..targets import resolve_target
from ..urls import open_store
from .content import merged_state
from .sources import ScanState, Source, _file_batches, _in_thread, open_source, record_batches

if TYPE_CHECKING:
    from ..sql.store import SQLYStore

__all__ = ["CopyReport", "DocumentCopy", "copy_store"]

_CHUNK = 512


@dataclass(frozen=True)
class DocumentCopy:
    """What happened to one document.

    Attributes:
        name: The document's name.
        action: `copied`, `resumed`, `skipped` (already identical), `conflict`
            (the target holds other records for it; nothing was written) or
            `refused` (the target cannot hold a document of that name).
        written: Records written.
        reason: Why it was refused.
    """

    name: str
    action: str
    written: int
    reason: str | None = None


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

    @property
    def refused(self) -> list[DocumentCopy]:
        """Documents the target cannot hold (their names)."""
        return [d for d in self.documents if d.action == "refused"]

    def count(self, action: str) -> int:
        """How many documents had this action."""
        return sum(d.action == action for d in self.documents)


Batches = AsyncIterator[list[Record]]


class _Cursor:
    """Records one at a time from an async iterator of batches."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.pending: deque[Record] = deque()

    async def next(self) -> Record | None:
        while not self.pending:
            batch = await anext(self.batches, None)
            if batch is None:
                return None
            self.pending.extend(batch)
        return self.pending.popleft()

    async def rest(self, first: Record) -> Batches:
        yield [first, *self.pending]
        self.pending.clear()
        async for batch in self.batches:
            yield batch

    async def aclose(self) -> None:
        close = getattr(self.batches, "aclose", None)
        if close is not None:
            await close()


async def _one(record: Record) -> Batches:
    yield [record]


async def _with_trailing(reader: Source, name: str) -> Batches:
    last: Record | None = None
    async for batch in reader.batches(name, ScanState()):
        if batch:
            last = batch[-1]
        yield batch
    extra = await reader.trailing(name, last)
    if extra is not None:
        yield [extra]


async def _without_checkpoints(batches: Batches) -> Batches:
    """The records to copy: the source's checkpoints left out, or turned into the base.

    A log that starts with a snapshot or with seq 1 holds its whole history; its
    checkpoints only speed reads up, and they name the source's seqs, so they are
    dropped. A log that starts later was cut by retention: the checkpoint that
    covers what was cut (it may come after records it does not cover, even last)
    is the base, copied first as a snapshot with the time of the last record it
    covers; records it covers are left out. Until that checkpoint is found, the
    records are held back (a retained history is bounded by its policy).
    """
    held: list[Record] = []
    base_needed: bool | None = None
    first_seq: int | None = None
    async for batch in batches:
        out: list[Record] = []
        for record in batch:
            if base_needed is None:
                base_needed = not (
                    record.kind == RecordKind.SNAPSHOT
                    or (record.kind == RecordKind.UPDATE and record.seq <= 1)
                )
            if not base_needed:
                if record.kind != RecordKind.CHECKPOINT:
                    out.append(record)
                continue
            held.append(record)
            if record.kind != RecordKind.CHECKPOINT:
                first_seq = record.seq if first_seq is None else first_seq
                continue
            header = decode_header(record.metadata)
            if header is None or not header.matches(record.update):
                continue
            if first_seq is not None and header.covers < first_seq - 1:
                continue  # an older checkpoint: the records between are missing from it
            base = Record(header.covers, record.update, b"", header.covers_timestamp,
                          RecordKind.SNAPSHOT)  # fmt: skip
            out.append(base)
            out += [r for r in held if r.kind != RecordKind.CHECKPOINT and r.seq > header.covers]
            held, base_needed = [], False
        if out:
            yield out
    if held:  # no checkpoint covers the cut: copy what there is
        yield [r for r in held if r.kind != RecordKind.CHECKPOINT]


class _Sink:
    def check(self, name: str) -> None:
        """Raise `InvalidDocumentNameError` when the target cannot hold this name."""

    def existing(self, name: str) -> Batches:
        raise NotImplementedError

    async def append(self, name: str, batches: Batches) -> int:
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

    def check(self, name: str) -> None:
        self._path(name)

    async def existing(self, name: str) -> Batches:
        path = self._path(name)
        if await anyio.Path(path).exists():
            async for batch in _in_thread(_file_batches(path, ScanState())):
                yield batch

    async def append(self, name: str, batches: Batches) -> int:
        log = FileLog(self._path(name), fsync=True, upgrade=False, log=getLogger("ystores"))
        written = 0
        try:
            async for batch in batches:
                entries = [(r.update, r.metadata, r.timestamp) for r in batch]
                await anyio.to_thread.run_sync(log.append, entries)
                written += len(entries)
        finally:
            log.close()
        return written


class _DatabaseSink(_Sink):
    """A SQLite or Postgres database (its schema is created when it is empty)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _store(self, name: str) -> SQLYStore:
        store = open_store(self.url, name)
        from ..sql.store import SQLYStore  # imported here: file copies need no SQL extra

        assert isinstance(store, SQLYStore)  # resolve_target named a database
        return store

    async def existing(self, name: str) -> Batches:
        async for batch in record_batches(self._store(name).read_records(), _CHUNK):
            yield batch

    async def append(self, name: str, batches: Batches) -> int:
        db = await self._store(name).database()
        written = 0
        async for batch in batches:
            # Submitted in order to one group committer: one transaction per batch.
            await asyncio.gather(
                *(db.write(name, r.kind, r.update, r.metadata, r.timestamp) for r in batch)
            )
            written += len(batch)
        return written


def _sink(target: str, source: Source, names: list[str]) -> _Sink:
    resolved = resolve_target(target)
    if resolved.location == source.location or (
        resolved.kind != "database" and Path(resolved.location).absolute() == _source_path(source)
    ):
        raise InvalidStoreURLError(f"{target} is the store being copied; name another target.")
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
    return _FileSink(path)  # its directories are made by the first write


def _source_path(source: Source) -> Path | None:
    location = getattr(source, "root", None) or getattr(source, "path", None)
    return Path(location).absolute() if location is not None else None


def _same(a: Record, b: Record) -> bool:
    return (a.update, a.metadata, a.timestamp) == (b.update, b.metadata, b.timestamp)


async def _counted(batches: Batches, on_records: Callable[[int], None] | None) -> Batches:
    async for batch in batches:
        yield batch
        if on_records is not None:  # resumed for the next batch: this one is written
            on_records(len(batch))


async def _copy_document(
    reader: Source,
    sink: _Sink,
    name: str,
    squash: bool,
    on_records: Callable[[int], None] | None = None,
) -> DocumentCopy:
    try:
        sink.check(name)
    except InvalidDocumentNameError as exc:
        return DocumentCopy(name, "refused", 0, str(exc))
    if squash:
        merged, last = await merged_state(reader, name)
        wanted = _Cursor(_one(Record(1, merged, b"", last, RecordKind.UPDATE)))
    else:
        wanted = _Cursor(_without_checkpoints(_with_trailing(reader, name)))
    present = _Cursor(sink.existing(name))
    matched = 0
    try:
        # The target's records must be the source's first ones, checked before any write.
        while (have := await present.next()) is not None:
            want = await wanted.next()
            if want is None or not _same(want, have):
                return DocumentCopy(name, "conflict", 0)
            matched += 1
        first = await wanted.next()
        if first is None:
            return DocumentCopy(name, "skipped", 0)
        written = await sink.append(name, _counted(wanted.rest(first), on_records))
        return DocumentCopy(name, "resumed" if matched else "copied", written)
    finally:
        await present.aclose()
        await wanted.aclose()


async def copy_store(
    source: str,
    target: str,
    *,
    squash: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    on_records: Callable[[int], None] | None = None,
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
        on_records: Called with the number of records written, after each batch.

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
            report.documents.append(await _copy_document(reader, sink, name, squash, on_records))
            if progress is not None:
                progress(name, done, len(names))
    finally:
        await reader.aclose()
    return report
