"""Checkpoints in a document file: writing one, and starting a restore or time travel from one.

A restore needs the latest valid checkpoint (or snapshot) and the records after
what it covers. With a usable index (`hints`) that costs reading two frames and
the tail; without one, the whole file is scanned once (`Replay` picks the base
as it goes). A checkpoint is trusted only when its header decodes and its digest
matches its update; a damaged one is skipped with a warning (an earlier one, or
the records themselves, are used instead): never a wrong document.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from logging import Logger
from pathlib import Path
from typing import Any, BinaryIO

import pycrdt

from .. import crdt
from ..clock import Clock
from ..errors import CorruptStoreError, HistoryNotKeptError, YDocNotFound
from ..history.checkpoints import CheckpointHeader, CheckpointReport, decode_header, encode_header
from ..history.compression import decompress
from ..history.stats import HistoryStats
from ..records import Record, RecordKind, decode_varuint
from ..yupdate import CoverageCheck, decode_state_vector, parse_update
from .formats import FileFormat, open_scanner
from .frames import FRAME_HEAD, MAX_BODY, MIN_BODY, frame_checksum
from .hints import (
    CheckpointHint,
    Hints,
    IndexView,
    PrefixStats,
    read_hints,
    read_index,
    update_hints,
)
from .log import FileLog
from .scanning import Scanner, TornTail

__all__ = [
    "FLUSH_BYTES",
    "FrameRecord",
    "Replay",
    "frame_record_at",
    "history_stats_file",
    "restore_batches",
    "state_at_file",
    "write_checkpoint",
]

FLUSH_BYTES = 16 << 20
"""Updates a restore holds in memory before applying them (when no checkpoint comes)."""
_F64 = struct.Struct("<d")
_CHECKPOINT = RecordKind.CHECKPOINT
_INDEX_WAIT = 1.0  # seconds a checkpoint waits for the file's lock to index itself
_SNAPSHOT = RecordKind.SNAPSHOT


@dataclass(frozen=True)
class FrameRecord:
    """A record read from a frame at a known offset.

    Attributes:
        record: The record (its update decompressed).
        offset: Where its frame starts.
        length: The frame's size (head included).
        checksum: The frame's CRC32C field.
    """

    record: Record
    offset: int
    length: int
    checksum: int


def frame_record_at(fd: int, offset: int, size: int, fmt: FileFormat) -> FrameRecord | None:
    """The record whose whole, checksummed frame starts at `offset`, or None if none does."""
    if offset < fmt.data_offset or offset + FRAME_HEAD.size > size:
        return None
    head = os.pread(fd, FRAME_HEAD.size, offset)
    if len(head) < FRAME_HEAD.size:
        return None
    length, check = FRAME_HEAD.unpack(head)
    if not MIN_BODY <= length <= MAX_BODY or offset + FRAME_HEAD.size + length > size:
        return None
    body = os.pread(fd, length, offset + FRAME_HEAD.size)
    if len(body) != length or frame_checksum(head[:4], body) != check:
        return None
    try:
        seq, j = decode_varuint(body)
        kind_byte = body[j]
        (timestamp,) = _F64.unpack_from(body, j + 1)
        meta_len, j = decode_varuint(body, j + 9)
        if kind_byte not in fmt.kinds or j + meta_len > length:
            return None
        stored = body[j + meta_len :]
        update = decompress(kind_byte >> 4, stored) if kind_byte >= 0x10 else stored
    except (IndexError, ValueError, struct.error, CorruptStoreError):
        return None
    kind = RecordKind(kind_byte & 0x0F)
    record = Record(seq, update, body[j : j + meta_len], timestamp, kind)
    return FrameRecord(record, offset, FRAME_HEAD.size + length, check)


def trusted_header(record: Record, path: str, log: Logger) -> CheckpointHeader | None:
    """A checkpoint record's header if the checkpoint can be trusted; else warn, None."""
    header = decode_header(record.metadata)
    if header is not None and header.matches(record.update):
        return header
    log.warning(
        "%s: the checkpoint with seq %d is damaged (%s); it is skipped and the "
        "document is built from an earlier checkpoint or its records.",
        path,
        record.seq,
        "its header does not decode" if header is None else "its digest does not match",
    )
    return None


class Replay:
    """Builds a document's state from its log, from the latest valid checkpoint or snapshot.

    Feed it the records in file order; it keeps the latest base (a snapshot, or a
    checkpoint whose digest matches) and the updates after what that base covers.
    With `seq` or `at` it stops at that point of history (time travel).

    Args:
        path: The file (for warnings).
        log: Where warnings about damaged checkpoints go.
        seq: Stop after this record.
        at: Stop before the first update or snapshot written after this time.
    """

    def __init__(
        self, path: str, log: Logger, *, seq: int | None = None, at: float | None = None
    ) -> None:
        self.path = path
        self.log = log
        self.seq = seq
        self.at = at
        self.base: bytes | None = None
        self.covers = 0
        """The highest seq merged into the base (0: no base yet)."""
        self.covers_timestamp: float | None = None
        self.pending: list[tuple[int, bytes]] = []
        self.pending_bytes = 0
        self.since: list[tuple[int, int]] = []
        """`(seq, update size)` of every update after the base (for statistics)."""
        self.last: Record | None = None
        """The last update or snapshot taken."""
        self.tail_start: int | None = None
        """The offset of the first record after `last` (None: none read yet)."""
        self.done = False
        self.checkpoints = 0
        self._want_tail_start = False

    def start_from(self, update: bytes, covers: int, covers_timestamp: float) -> None:
        """Begin from a checkpoint found elsewhere (the index), covering `covers`."""
        self.base, self.covers, self.covers_timestamp = update, covers, covers_timestamp

    def feed(self, records: Sequence[Record], offsets: Sequence[int] | None = None) -> bool:
        """Take the next records; return False once past the point asked for."""
        for index, record in enumerate(records):
            if self._want_tail_start and offsets is not None:
                self.tail_start = offsets[index]
                self._want_tail_start = False
            if record.kind is _CHECKPOINT:
                if self.seq is not None and record.seq > self.seq:
                    self.done = True
                    return False
                self.checkpoints += 1
                self._take_checkpoint(record)
                continue
            if (self.seq is not None and record.seq > self.seq) or (
                self.at is not None and record.timestamp > self.at
            ):
                self.done = True
                return False
            if record.kind is _SNAPSHOT:
                self.base, self.covers, self.covers_timestamp = (
                    record.update,
                    record.seq,
                    record.timestamp,
                )
                self.pending, self.pending_bytes, self.since = [], 0, []
            else:
                self.pending.append((record.seq, record.update))
                self.pending_bytes += len(record.update)
                self.since.append((record.seq, len(record.update)))
            self.last = record
            self.tail_start, self._want_tail_start = None, True
        return True

    def _take_checkpoint(self, record: Record) -> None:
        header = trusted_header(record, self.path, self.log)
        if header is None or header.covers <= self.covers:
            return
        if self.last is not None and header.covers > self.last.seq:
            return  # it claims records this log does not hold before it: not this log's
        self.base, self.covers, self.covers_timestamp = (
            record.update,
            header.covers,
            header.covers_timestamp,
        )
        self.pending = [(seq, update) for seq, update in self.pending if seq > header.covers]
        self.pending_bytes = sum(len(update) for _, update in self.pending)
        self.since = [(seq, size) for seq, size in self.since if seq > header.covers]

    def updates(self) -> list[bytes]:
        """The base (if any) then the updates after it."""
        head = [] if self.base is None else [self.base]
        return head + [update for _, update in self.pending]

    def take(self) -> list[bytes]:
        """`updates()`, handed over: the replay holds none afterwards (a restore's flush)."""
        updates = self.updates()
        self.base, self.pending, self.pending_bytes = None, [], 0
        return updates


@dataclass
class _Base:
    record: Record
    header: CheckpointHeader
    tail_start: int
    hints: Hints | IndexView


def _bound(
    file: BinaryIO,
    fmt: FileFormat,
    size: int,
    hints: Hints | IndexView,
    *,
    seq: int | None,
    at: float | None,
) -> int:
    """Where a replay up to `seq`/`at` may stop reading: at a checkpoint past that point.

    Every record up to that point lies before such a checkpoint's frame (seqs grow
    with offsets, and the checkpoint covers a record past the point). The frame
    is checked like any the index names; without one that checks out, `size`.
    """
    fd = file.fileno()
    checkpoints = hints.checkpoints if isinstance(hints, Hints) else hints.hints().checkpoints
    after = [
        hint
        for hint in checkpoints
        if (seq is not None and hint.covers > seq)
        or (at is not None and hint.covers_timestamp > at)
    ]
    for hint in sorted(after, key=lambda hint: hint.offset):
        found = frame_record_at(fd, hint.offset, size, fmt)
        if found is None or (found.length, found.checksum) != (hint.length, hint.checksum):
            continue
        header = decode_header(found.record.metadata)
        if found.record.kind is not _CHECKPOINT or found.record.seq != hint.seq or header is None:
            continue
        if (header.covers, header.covers_timestamp) != (hint.covers, hint.covers_timestamp):
            continue
        return hint.offset
    return size


def hinted_base(
    file: BinaryIO,
    fmt: FileFormat,
    size: int,
    hints: Hints | IndexView | None,
    log: Logger,
    path: str,
    *,
    seq: int | None = None,
    at: float | None = None,
) -> _Base | None:
    """The latest checkpoint the index names that checks out (up to `seq`/`at`), or None.

    An `IndexView` decodes its rows as they are tried (a restore decodes one).
    """
    if hints is None or fmt.version < 4:
        return None
    opened = os.fstat(file.fileno())
    if (hints.inode, hints.device) != (opened.st_ino, opened.st_dev):
        return None
    fd = file.fileno()
    for hint in hints.latest_first():
        if (seq is not None and hint.covers > seq) or (
            at is not None and hint.covers_timestamp > at
        ):
            continue
        found = frame_record_at(fd, hint.offset, size, fmt)
        if found is None or (found.length, found.checksum) != (hint.length, hint.checksum):
            continue
        record = found.record
        if record.kind is not _CHECKPOINT or record.seq != hint.seq:
            continue
        header = trusted_header(record, path, log)
        # the time too: a hint's time chose this checkpoint for `at`, the header's must agree
        if header is None or (header.covers, header.covers_timestamp) != (
            hint.covers,
            hint.covers_timestamp,
        ):
            continue
        tail = frame_record_at(fd, hint.tail_start, size, fmt)
        if tail is None or tail.record.seq != header.covers + 1 or tail.offset > hint.offset:
            continue
        return _Base(record, header, hint.tail_start, hints)
    return None


def _open(file_log: FileLog) -> tuple[BinaryIO, FileFormat, int]:
    try:
        file, fmt, size = file_log.open_reader()
    except FileNotFoundError:
        raise YDocNotFound(f"There is no document at {file_log.path}.") from None
    if fmt is None:
        file.close()
        raise YDocNotFound(f"The document at {file_log.path} holds no update yet.")
    return file, fmt, size


class RestoreResult:
    """What a restore found besides the updates (filled in as it goes)."""

    def __init__(self) -> None:
        self.tail: TornTail | None = None
        self.from_checkpoint: int | None = None
        """The seq of the checkpoint the restore started from, if any."""
        self.last: bool = False
        """Set before the last batch is handed over: no need to ask for another."""


def restore_batches(file_log: FileLog, result: RestoreResult) -> Generator[list[bytes], None, None]:
    """The updates that rebuild a document, in batches to apply in order (in a worker thread).

    From the index's latest valid checkpoint and the tail after it when the index
    checks out (one batch, the file closed before it is handed over and
    `result.last` set, so a reader needs one hop); else one scan of the file
    keeping the latest valid base.

    Raises:
        YDocNotFound: There is no file, or it holds no record.
        CorruptStoreError: A frame is damaged before the end of the file.
    """
    file, fmt, size = _open(file_log)
    path = str(file_log.path)
    try:
        found = hinted_base(
            file, fmt, size, read_index(file_log.path, file_log.root), file_log.log, path
        )
        batches = None
        if found is not None:
            try:
                batches = list(_hinted_restore(file, fmt, size, found, path, result))
            except CorruptStoreError:
                batches = None  # whatever is wrong, the full scan below reports it
        if batches is None:
            yield from _scanned_restore(file, fmt, size, path, file_log.log, result)
            return
    finally:
        file.close()
    assert found is not None
    result.from_checkpoint = found.record.seq
    result.last = True
    # read whole already: one batch, one transaction, one hop to the reader
    yield [update for batch in batches for update in batch]


def _scanned_restore(
    file: BinaryIO, fmt: FileFormat, size: int, path: str, log: Logger, result: RestoreResult
) -> Iterator[list[bytes]]:
    """A restore reading the whole file: the replay's fast path, checkpoints set aside.

    Updates are held from the latest valid checkpoint on (those it covers are
    dropped when it comes); past `FLUSH_BYTES` they are handed over to be applied
    (a later checkpoint applied over them changes nothing).
    """
    scanner = open_scanner(file, fmt, size, path=path)
    sink: list[tuple[int, Record]] = []
    seqs: list[int] = []
    scanner.checkpoint_sink, scanner.seqs = sink, seqs
    base: bytes | None = None
    covers = 0
    held: list[bytes] = []
    held_seqs: list[int] = []
    held_bytes = 0
    for batch in scanner.updates():
        start = scanner.count - len(batch)  # records yielded before this batch
        done = 0
        for index, checkpoint in sink:
            at = index - start
            held.extend(batch[done:at])
            held_seqs.extend(seqs[done:at])
            done = at
            header = trusted_header(checkpoint, path, log)
            if header is None or header.covers <= covers:
                continue
            if not held_seqs or header.covers > held_seqs[-1]:
                continue  # it claims records not before it: not this log's
            cut = bisect.bisect_right(held_seqs, header.covers)
            base, covers = checkpoint.update, header.covers
            del held[:cut], held_seqs[:cut]
            held_bytes = sum(map(len, held))
        held.extend(batch[done:])
        held_seqs.extend(seqs[done:])
        held_bytes += sum(map(len, batch[done:]))
        sink.clear()
        seqs.clear()
        if held_bytes > FLUSH_BYTES:
            yield ([] if base is None else [base]) + held
            base, held, held_seqs, held_bytes = None, [], [], 0
    for _index, checkpoint in sink:  # after the last update: nothing follows them
        header = trusted_header(checkpoint, path, log)
        if header is not None and covers < header.covers <= (held_seqs or [0])[-1]:
            cut = bisect.bisect_right(held_seqs, header.covers)
            base, covers = checkpoint.update, header.covers
            del held[:cut], held_seqs[:cut]
    result.tail = scanner.tail
    if scanner.count == 0 and base is None:
        raise YDocNotFound(f"The document at {path} holds no update yet.")
    yield ([] if base is None else [base]) + held


def _hinted_restore(
    file: BinaryIO, fmt: FileFormat, size: int, found: _Base, path: str, result: RestoreResult
) -> Iterator[list[bytes]]:
    yield [found.record.update]
    scanner = open_scanner(
        file, fmt, size, path=path, start=found.tail_start, last_seq=found.header.covers
    )
    yield from scanner.updates()
    result.tail = scanner.tail


def state_at_file(file_log: FileLog, *, seq: int | None = None, at: float | None = None) -> bytes:
    """The document at record `seq` or time `at`, as one update (see `BaseYStore.state_at`).

    Raises:
        YDocNotFound: There is no file, or it holds no record.
        HistoryNotKeptError: That point is older than the history the file keeps.
    """
    file, fmt, size = _open(file_log)
    path = str(file_log.path)
    log = file_log.log
    with file:
        if fmt.checksummed:
            first = frame_record_at(file.fileno(), fmt.data_offset, size, fmt)
            if first is not None:
                _check_kept(first.record, seq, at)
        replay = Replay(path, log, seq=seq, at=at)
        start, last_seq = fmt.data_offset, 0
        found = hinted_base(
            file, fmt, size, read_hints(file_log.path, file_log.root), log, path, seq=seq, at=at
        )
        end = size
        if found is not None:
            header = found.header
            replay.start_from(found.record.update, header.covers, header.covers_timestamp)
            start, last_seq = found.tail_start, header.covers
            end = _bound(file, fmt, size, found.hints, seq=seq, at=at)
        scanner = open_scanner(file, fmt, end, path=path, start=start, last_seq=last_seq)
        scanner.until_seq, scanner.until_time = seq, at  # blocks past the point stay packed
        seen = found is not None
        for batch in scanner:
            if batch and not seen:
                seen = True
                _check_kept(batch[0], seq, at)
            if not replay.feed(batch):
                break
        if not seen and not scanner.stopped:  # (stopped: records after the point)
            raise YDocNotFound(f"The document at {path} holds no update yet.")
        if replay.base is not None:
            return merge_onto_base(replay.base, [update for _, update in replay.pending])
        return crdt.merge_updates(replay.updates())


def merge_onto_base(base: bytes, updates: Sequence[bytes]) -> bytes:
    """`crdt.merge_updates([base, *updates])`, faster for a base that is an engine's state.

    The merge checks that the engine integrated every update, which for a large
    base means parsing it in Python (most of a time travel's cost). A checkpoint
    or snapshot is an engine's encoded state: when re-encoding it after applying
    it gives the same bytes, the engine integrated all of it, so only `updates`
    are checked.
    Anything else (a base holding records the engine holds back, an update that
    does not apply) takes `crdt.merge_updates`, which handles and reports it.
    """
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    check = CoverageCheck()
    try:
        doc.apply_update(base)
        if doc.get_update() != base:
            return crdt.merge_updates([base, *updates])
        with doc.transaction():
            for update in updates:
                check.add(update)
                doc.apply_update(update)
        if check.missing(decode_state_vector(doc.get_state())):
            return crdt.merge_updates([base, *updates])
        return doc.get_update()
    except BaseException as exc:
        if not crdt.engine_failure(exc) and not isinstance(exc, ValueError):
            raise
        return crdt.merge_updates([base, *updates])


def _check_kept(first: Record, seq: int | None, at: float | None) -> None:
    if first.kind is not _SNAPSHOT:
        return
    if (seq is not None and seq < first.seq) or (at is not None and at < first.timestamp):
        raise HistoryNotKeptError(
            f"The history before seq {first.seq} (time {first.timestamp:.3f}) is no longer "
            "kept record by record; the earliest state kept is that of seq "
            f"{first.seq}.",
            oldest=first.timestamp,
        )


def same_state(replayed: Sequence[bytes], merged: bytes) -> bool:
    """Whether `merged` builds the document that replaying `replayed` builds.

    Compares the state vectors and the structure (struct and delete ranges,
    adjacent ranges joined) of both documents' encoded states, in pycrdt (the
    engine that merged them).
    """
    one, other = crdt.new_doc("pycrdt"), crdt.new_doc("pycrdt")
    crdt.apply_updates(one, replayed)
    crdt.apply_update(other, merged)
    vectors = (decode_state_vector(crdt.encode_state_vector(doc)) for doc in (one, other))
    if next(vectors) != next(vectors):  # compared decoded: clients come in any order
        return False
    return _shape(crdt.encode_state_as_update(one)) == _shape(crdt.encode_state_as_update(other))


def _shape(update: bytes) -> tuple[dict[int, list[tuple[int, int]]], ...]:
    structure = parse_update(update)
    return tuple(_joined(ranges) for ranges in (structure.structs, structure.deletes))


def _joined(ranges: dict[int, list[tuple[int, int]]]) -> dict[int, list[tuple[int, int]]]:
    joined: dict[int, list[tuple[int, int]]] = {}
    for client, spans in ranges.items():
        out: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if end <= start:
                continue
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        if out:
            joined[client] = out
    return joined


def write_checkpoint(
    path: Path,
    doc: str,
    log: Logger,
    *,
    root: Path | None,
    compress: bool,
    clock: Clock,
) -> CheckpointReport | None:
    """Append a checkpoint of everything the file holds now (see `FileYStore.checkpoint`).

    Builds and verifies it without the write lock (writers go on appending), then
    appends it through the file's exclusive lock and updates the index.

    Returns:
        What was written, or None when nothing follows the latest checkpoint or
        snapshot (or the file holds no record, or the merge failed its check).

    Raises:
        LegacyFormatError: The file is in one of ypy-websocket's formats.
        CorruptStoreError: The file is damaged before its end.
    """
    started = time.perf_counter()
    reader = FileLog(path, fsync=False, upgrade=False, log=log, root=root)
    current = reader.open_current("writing checkpoints to it")
    if current is None:
        return None
    file, fmt, size = current
    with file:
        opened = os.fstat(file.fileno())
        hints = read_hints(path, root)
        replay = Replay(str(path), log)
        start, last_seq = fmt.data_offset, 0
        found = hinted_base(file, fmt, size, hints, log, str(path))
        if found is not None:
            header = found.header
            replay.start_from(found.record.update, header.covers, header.covers_timestamp)
            start, last_seq = found.tail_start, header.covers
        scanner = open_scanner(file, fmt, size, path=str(path), start=start, last_seq=last_seq)
        offsets: list[int] = []
        scanner.offsets = offsets
        for batch in scanner:
            replay.feed(batch, offsets)
            offsets.clear()
        last = replay.last
        if last is None or last.seq <= replay.covers:
            return None
        if replay.base is None and len(replay.pending) < 2:
            return None  # one record: a checkpoint would only repeat it
        updates = replay.updates()
        merged = crdt.merge_updates(updates)
        if not same_state(updates, merged):
            log.error(
                "%s: the merge of records up to seq %d does not rebuild the document they "
                "build; no checkpoint was written.",
                path,
                last.seq,
            )
            return None
        tail_start = replay.tail_start if replay.tail_start is not None else scanner.good_end
        verified = (opened.st_ino, scanner.good_end, scanner.last_seq, fmt.version)
    covers = last.seq
    metadata = encode_header(covers, last.timestamp, merged)
    writer = FileLog(path, fsync=True, upgrade=False, log=log, root=root)
    writer.compress = compress
    writer.seed(*verified)
    try:
        seq = writer.append([(merged, metadata, clock())], kind=_CHECKPOINT)[0]
        offset, length, inode = writer.last_offset, writer.last_length, writer.inode() or 0
        device = opened.st_dev
        checksum = FRAME_HEAD.unpack(writer.pread(FRAME_HEAD.size, offset))[1]
    finally:
        writer.close()
    hint = CheckpointHint(offset, length, checksum, seq, covers, last.timestamp, tail_start)
    _remember(path, root, hint, inode, device)
    return CheckpointReport(
        doc=doc,
        seq=seq,
        covers=covers,
        raw_bytes=len(merged),
        stored_bytes=length,
        seconds=time.perf_counter() - started,
    )


def _remember(path: Path, root: Path | None, hint: CheckpointHint, inode: int, device: int) -> None:
    """Add a new checkpoint to the file's index (which keeps only this inode's entries).

    The index is read again under the file's lock: one read before the scan may
    have missed a checkpoint another process added since.
    """

    def add(current: Hints | None) -> Hints:
        if current is None:
            return Hints(inode, device, (hint,))
        kept = tuple(h for h in current.checkpoints if h.offset < hint.offset)
        return current.but(checkpoints=(*kept, hint))

    update_hints(path, root, inode, device, add, wait=_INDEX_WAIT)


def history_stats_file(file_log: FileLog) -> HistoryStats | None:
    """The file's `HistoryStats` (None without records).

    With an index that checks out, reads only the frames from the latest
    checkpoint's tail on, and what was appended before it since the counts
    the index keeps (`hints.PrefixStats`) were taken; else one streaming pass.
    Sizes since the base are raw update sizes (short updates are stored raw).
    """
    try:
        file, fmt, size = _open(file_log)
    except YDocNotFound:
        return None
    path = str(file_log.path)
    log = file_log.log
    with file:
        hints = read_hints(file_log.path, file_log.root) if fmt.checksummed else None
        found = hinted_base(file, fmt, size, hints, log, path)
        if found is not None and hints is not None:
            try:
                prefix = _prefix_stats(file, fmt, found.tail_start, hints.prefix, path)
            except CorruptStoreError:
                prefix = None  # a damaged frame, or a lying index: the full pass says which
            if prefix is not None:
                stats = _stats_after(file, fmt, size, found, prefix, path, log)
                if prefix != hints.prefix:
                    _remember_prefix(file_log, hints, prefix)
                return stats
        return _full_stats(file, fmt, size, path, log)


def _remember_prefix(file_log: FileLog, hints: Hints, prefix: PrefixStats) -> None:
    """Keep `prefix` in the file's index, as the index is now (never the copy read
    before the scan: a checkpoint written meanwhile stays in it). Skipped while
    a writer holds the file's lock: the counts are only a cache."""
    update_hints(
        file_log.path,
        file_log.root,
        hints.inode,
        hints.device,
        lambda current: None if current is None else current.but(prefix=prefix),
    )


@dataclass
class _Tally:
    """Counts of a history's records as their frames go by (checkpoints apart)."""

    raw: int = 0
    records: int = 0
    checkpoints: int = 0
    oldest: float | None = None
    newest: float | None = None

    def add(self, batch: Sequence[Record]) -> None:
        for record in batch:
            self.raw += len(record.update)
            if record.kind is _CHECKPOINT:
                self.checkpoints += 1
                continue
            self.records += 1
            self.newest = record.timestamp
            if self.oldest is None:
                self.oldest = record.timestamp


def _prefix_stats(
    file: BinaryIO, fmt: FileFormat, upto: int, cached: PrefixStats | None, path: str
) -> PrefixStats | None:
    """The counts of the file's records before `upto` (a verified frame start).

    Continues from `cached` when it ends at or before `upto`; None when the frames
    do not end exactly at `upto` (the index lied).
    """
    counts = PrefixStats(fmt.data_offset, 0, 0, 0, None, None, 0, 0)
    if cached is not None and fmt.data_offset <= cached.offset <= upto:
        counts = cached
    if counts.offset == upto:
        return counts
    scanner = open_scanner(
        file, fmt, upto, path=path, start=counts.offset, last_seq=counts.last_seq
    )
    tally = _Tally(counts.raw, counts.records, counts.checkpoints, counts.oldest, counts.newest)
    for batch in scanner:
        tally.add(batch)
    if scanner.tail is not None or scanner.good_end != upto:
        return None
    stored = counts.stored + (tally.raw - counts.raw) - scanner.decompressed_bytes
    stored += scanner.compressed_bytes
    return PrefixStats(
        upto,
        scanner.last_seq,
        tally.records,
        tally.checkpoints,
        tally.oldest,
        tally.newest,
        stored,
        tally.raw,
    )


def _replay_counts(scanner: Scanner, replay: Replay, tally: _Tally, *, keep_base: bool) -> int:
    """Feed every frame of `scanner` to `tally` and `replay`, keeping counts only.

    Returns:
        What the scan's records take stored less what they take raw (compression).
    """
    for batch in scanner:
        tally.add(batch)
        replay.feed(batch)
        replay.pending = []  # only the counts are wanted
        if not keep_base:
            replay.base = None
    return scanner.compressed_bytes - scanner.decompressed_bytes


def _history_stats(
    tally: _Tally, replay: Replay, last_seq: int, checkpoints: int, stored: int
) -> HistoryStats:
    return HistoryStats(
        records=tally.records,
        checkpoints=checkpoints,
        records_since=len(replay.since),
        bytes_since=sum(size for _, size in replay.since),
        base_covers=replay.covers,
        oldest=tally.oldest,
        newest=tally.newest,
        last_seq=last_seq,
        stored_bytes=stored,
        raw_bytes=tally.raw,
    )


def _stats_after(
    file: BinaryIO,
    fmt: FileFormat,
    size: int,
    found: _Base,
    prefix: PrefixStats,
    path: str,
    log: Logger,
) -> HistoryStats:
    """`prefix` plus the frames from the base's tail on, replayed from the base."""
    replay = Replay(path, log)
    header = found.header
    replay.start_from(found.record.update, header.covers, header.covers_timestamp)
    scanner = open_scanner(
        file, fmt, size, path=path, start=found.tail_start, last_seq=header.covers
    )
    tally = _Tally(prefix.raw, prefix.records, 0, prefix.oldest, prefix.newest)
    saved = _replay_counts(scanner, replay, tally, keep_base=True)
    stored = prefix.stored + (tally.raw - prefix.raw) + saved
    checkpoints = prefix.checkpoints + replay.checkpoints
    return _history_stats(tally, replay, scanner.last_seq, checkpoints, stored)


def _full_stats(
    file: BinaryIO, fmt: FileFormat, size: int, path: str, log: Logger
) -> HistoryStats | None:
    """`HistoryStats` from one streaming pass over the whole file."""
    replay = Replay(path, log)
    scanner = open_scanner(file, fmt, size, path=path)
    tally = _Tally()
    saved = _replay_counts(scanner, replay, tally, keep_base=False)
    if not tally.records and not replay.checkpoints:
        return None
    return _history_stats(tally, replay, scanner.last_seq, replay.checkpoints, tally.raw + saved)
