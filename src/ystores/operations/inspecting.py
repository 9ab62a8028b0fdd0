"""`inspect_store`: what a store holds and whether it is healthy, read without changing it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..crdt import Replay, validate_update
from ..errors import InvalidUpdateError, StoreFormatError, YDocNotFound
from ..filestore.scanning import TornTail
from ..history.checkpoints import decode_header
from ..records import Record, RecordKind
from ..yupdate import parse_update
from .sources import DirectorySource, FileSource, ScanState, Source, open_source

__all__ = [
    "DocumentReport",
    "Progress",
    "RecordInfo",
    "StoreReport",
    "inspect_store",
    "scan_document",
]

Progress = Callable[[str, int, int], None]
"""Called after each document with its name, how many are done and how many there are."""


@dataclass
class RecordInfo:
    """One record, described.

    Attributes:
        seq: Its position in the document's log.
        kind: `update` or `snapshot`.
        timestamp: When it was written (0.0 when the format kept no time).
        size: The update's size in bytes.
        metadata: The metadata bytes stored with it.
        structs: Per client id, the clock ranges `(start, end)` the update writes.
        deletes: Per client id, the clock ranges it deletes.
        error: Why the update does not decode, if it does not.
    """

    seq: int
    kind: str
    timestamp: float
    size: int
    metadata: bytes
    structs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    deletes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class DocumentReport:
    """A summary of one document's records.

    Attributes:
        name: The document's name.
        records: Records stored (snapshots included).
        snapshots: Snapshot records among them.
        update_bytes: Total size of the stored updates.
        first_timestamp: Time of the first record (None without records or times).
        last_timestamp: Time of the last record.
        last_seq: The highest seq.
        metadata: Distinct metadata values and how many records carry each.
        undecodable: Seqs of records whose update is not a valid Yjs update.
        unappliable: Seqs of records whose update decodes but makes the CRDT
            engine fail when replayed after the records before it (checked
            when decoding).
        out_of_order: Seqs that do not follow the previous record's seq.
        torn_tail: Incomplete bytes at the end of a store file, if any.
        checkpoint: Size of a pycrdt-store checkpoint of this document, if any.
        checkpoints: Checkpoint records (ystores history; not counted in `records`).
        checkpoint_bytes: Bytes of their updates (uncompressed).
        damaged_checkpoints: `(seq, why)` of checkpoint records whose header does
            not decode or does not match its digest (restores skip them).
        stored_bytes: Bytes the document takes where it is stored: its file's size,
            or the sum of its stored (compressed) updates in a database; None when
            the backend cannot tell cheaply.
        problem: Why (part of) the document cannot be read, if so.
        record_list: Every record, described (only when asked for).
    """

    name: str
    records: int = 0
    snapshots: int = 0
    update_bytes: int = 0
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    last_seq: int = 0
    metadata: Counter[bytes] = field(default_factory=Counter)
    undecodable: list[int] = field(default_factory=list)
    unappliable: list[int] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)
    torn_tail: TornTail | None = None
    checkpoint: int | None = None
    checkpoints: int = 0
    checkpoint_bytes: int = 0
    damaged_checkpoints: list[tuple[int, str]] = field(default_factory=list)
    stored_bytes: int | None = None
    problem: str | None = None
    record_list: list[RecordInfo] | None = None
    _replay: Replay = field(default_factory=Replay, repr=False, compare=False)

    @property
    def raw_bytes(self) -> int:
        """Bytes of every update kept, checkpoints included, uncompressed."""
        return self.update_bytes + self.checkpoint_bytes

    @property
    def healthy(self) -> bool:
        """No damage, no torn tail, every update decodes, seqs in order, checkpoints intact."""
        return (
            self.problem is None
            and not self.damaged_checkpoints
            and self.torn_tail is None
            and not self.undecodable
            and not self.unappliable
            and not self.out_of_order
        )

    def account(self, record: Record, *, decode: bool, describe: bool) -> None:
        """Add one record to the summary."""
        if record.kind == RecordKind.CHECKPOINT:
            # Beside the log, not part of it: counted apart, never replayed.
            self.checkpoints += 1
            self.checkpoint_bytes += len(record.update)
            self.last_seq = max(self.last_seq, record.seq)
            damage = checkpoint_damage(record)
            if damage is not None:
                self.damaged_checkpoints.append((record.seq, damage))
            if describe:
                assert self.record_list is not None
                size = len(record.update)
                info = RecordInfo(record.seq, "checkpoint", record.timestamp, size, record.metadata)
                self.record_list.append(info)
            return
        if record.seq <= self.last_seq:
            self.out_of_order.append(record.seq)
        self.records += 1
        self.snapshots += record.kind == RecordKind.SNAPSHOT
        self.update_bytes += len(record.update)
        self.last_seq = max(self.last_seq, record.seq)
        self.metadata[record.metadata] += 1
        if record.timestamp:
            if self.first_timestamp is None:
                self.first_timestamp = record.timestamp
            self.last_timestamp = record.timestamp
        error = None
        if decode or describe:
            try:
                validate_update(record.update)
            except InvalidUpdateError as exc:
                error = str(exc)
                self.undecodable.append(record.seq)
            else:
                error = self._replay.apply(record.update)
                if error is not None:
                    self.unappliable.append(record.seq)
        if describe:
            info = RecordInfo(
                record.seq,
                "snapshot" if record.kind == RecordKind.SNAPSHOT else "update",
                record.timestamp,
                len(record.update),
                record.metadata,
                error=error,
            )
            if error is None:
                try:
                    structure = parse_update(record.update)
                except ValueError as exc:
                    info.error = str(exc)
                else:
                    info.structs, info.deletes = structure.structs, structure.deletes
            assert self.record_list is not None
            self.record_list.append(info)


def checkpoint_damage(record: Record) -> str | None:
    """Why a checkpoint record is damaged (its header or its digest), or None if intact."""
    header = decode_header(record.metadata)
    if header is None:
        return "its header does not decode"
    if not header.matches(record.update):
        return "its header and update do not match their digest"
    if header.covers >= record.seq:
        return f"it claims to cover seq {header.covers}, not before its own"
    return None


@dataclass
class StoreReport:
    """A summary of a store.

    Attributes:
        target: The store as named.
        kind: `file`, `directory`, `sqlite`, `legacy-sqlite` or `postgres`.
        format: The format or schema, in words.
        version: The file format version, the schema revision, or the legacy
            database's `user_version`.
        size: Bytes on disk (None for Postgres).
        documents: One report per document.
        problem: Why the store as a whole cannot be read (a store file in no known
            format), if so.
    """

    target: str
    kind: str
    format: str
    version: int | str | None
    size: int | None
    documents: list[DocumentReport] = field(default_factory=list)
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        """Whether every document is healthy."""
        return self.problem is None and all(d.healthy for d in self.documents)


async def scan_document(
    source: Source, name: str, *, decode: bool = True, describe: bool = False
) -> DocumentReport:
    """Read one document of an open source from end to end and summarize it."""
    report = DocumentReport(name, record_list=[] if describe else None)
    state = ScanState(checkpoints=True)
    try:
        async for batch in source.batches(name, state):
            for record in batch:
                report.account(record, decode=decode, describe=describe)
    except StoreFormatError as exc:
        report.problem = str(exc)
    report.torn_tail = state.tail
    report.checkpoint = state.checkpoint
    return report


async def _stored_sizes(source: Source, names: list[str]) -> dict[str, int]:
    """Bytes each document takes where it is stored (see `DocumentReport.stored_bytes`)."""
    if isinstance(source, FileSource):
        return {name: source.path.stat().st_size for name in names}
    if isinstance(source, DirectorySource):
        return {name: (source.root / name).stat().st_size for name in names}
    totals = await source.totals()
    return {} if totals is None else {name: size for name, _count, size, _last in totals}


async def inspect_store(
    target: str,
    *,
    doc: str | None = None,
    records: bool = False,
    decode: bool = True,
    progress: Progress | None = None,
) -> StoreReport:
    """Summarize a store, or one of its documents; never writes.

    Args:
        target: A store file (any format version), a file store directory (or
            `file:///dir/`), a SQLite file or URL (ystores, ypy-websocket or
            pycrdt-store), or a Postgres URL.
        doc: Only this document.
        records: Describe every record (`DocumentReport.record_list`).
        decode: Check that every update decodes (the slow part of a large store).
        progress: Called after each document with its name, how many documents are
            done and how many there are.

    Raises:
        YDocNotFound: `doc` is not in the store.
        YStoreError: The store cannot be opened (see `open_source`).
    """
    source = open_source(target)
    try:
        report = StoreReport(target, source.kind, source.format, source.version, source.size)
        if isinstance(source, FileSource) and source.problem is not None:
            report.problem = source.problem
            return report
        names = await source.names()
        report.version = source.version
        if doc is not None:
            if doc not in names:
                raise YDocNotFound(f"{target} holds no document named {doc!r}.")
            names = [doc]
        stored = await _stored_sizes(source, names)
        for done, name in enumerate(names, 1):
            scanned = await scan_document(source, name, decode=decode, describe=records)
            scanned.stored_bytes = stored.get(name)
            report.documents.append(scanned)
            if progress is not None:
                progress(name, done, len(names))
        return report
    finally:
        await source.aclose()
