"""Packing a document file: covered history moved into blocks, old checkpoints thinned.

A keystroke record costs its frame's 8-byte head, seq, kind, timestamp and
metadata length on top of its ~30 bytes of update, and does not compress on its
own. Once a trusted checkpoint covers a run of update records, only time
travel, `read()` and `ystore log` read them, so `pack_file` rewrites the file
with those runs as block frames (`history.packing`; file format version 5).

Like retention (`retention`), in two phases so writers wait only for the second:

1. Without the write lock, scan the file's frames (blocks are not expanded),
   find the latest trusted checkpoint (header decodes, digest matches) and the
   checkpoints `checkpoints_to_drop` lets go, and build the new blocks: every
   update record covered by that checkpoint and not yet in a block, in runs of
   at most `block_records` that never span a kept checkpoint (a block starts
   at each kept checkpoint's record `covers + 1`, where a restore from it starts).
2. Under the exclusive lock, write a new file: the frames in order, kept ones
   copied byte for byte, runs replaced by their blocks, dropped checkpoints
   left out, then the records appended since phase 1; fsync, rename over the
   old file, fsync the directory. The checkpoint index is rewritten.

A crash at any point leaves the old file or the new one (`replace_file`); a
version-4 (or 3) file becomes version 5 through that same rename. The records
a reader sees do not change.

A rewrite costs the whole file, so a pack runs only when at least
`PACK_AFTER` covered records are not packed yet, or a checkpoint is to be
dropped; whether one is due is read from the index (`hints`) and two frames,
so a call with nothing due costs about a millisecond.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from logging import Logger
from pathlib import Path
from typing import BinaryIO

from ..history.packing import PackReport, decode_block_header
from ..history.thinning import CheckpointMark, ThinningPolicy, checkpoints_to_drop
from ..records import Record, RecordKind
from .checkpointing import frame_record_at, hinted_base, trusted_header
from .compaction import add_range, copy_ranges
from .formats import HEADER, HEADER_V5, FileFormat, open_scanner
from .frames import FRAME_HEAD, encode_block_frame
from .hints import CheckpointHint, Hints, read_hints, remove_hints, write_hints
from .log import FileLog, replace_file
from .paths import inside_root, open_inside

__all__ = ["PACK_AFTER", "pack_file"]

PACK_AFTER = 1000
"""Covered, unpacked update records that make a pack worth its rewrite of the file."""


@dataclass
class _Frame:
    """One frame of the old file, or a block to write in place of a run of them."""

    offset: int
    length: int
    kind: RecordKind
    first: int  # the seq of its first record
    last: int  # the seq of its last record (a block's last; else `first`)
    covers: int = 0  # a checkpoint's, when it is trusted
    covers_timestamp: float = 0.0
    encoded: bytes = b""  # a new block's frame
    records: int = 1
    checksum: int = 0  # a trusted checkpoint's CRC32C field


@dataclass
class _Plan:
    frames: list[_Frame]
    end: int
    last_seq: int
    inode: int
    version: int
    packed: int  # update records moved into new blocks
    blocks: int
    dropped: int
    packed_through: int


def pack_file(
    path: Path,
    doc: str,
    log: Logger,
    *,
    root: Path | None,
    thinning: ThinningPolicy,
    block_records: int,
    pack_after: int = PACK_AFTER,
) -> PackReport | None:
    """Pack the file's covered history and thin its checkpoints (see the module docstring).

    Returns:
        What was done, or None when nothing was due.

    Raises:
        LegacyFormatError: The file is in one of ypy-websocket's formats.
        CorruptStoreError: The file is damaged before its end.
    """
    if block_records < 1:
        raise ValueError(f"A block holds at least one record, not {block_records}.")
    try:
        pinned, _ = open_inside(path, root, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        started = time.perf_counter()
        reader = FileLog(path, fsync=False, upgrade=False, log=log, root=root)
        if not _due(reader, thinning, pack_after):
            return None
        plan = _plan(reader, thinning, block_records, pack_after, os.fstat(pinned).st_ino)
        if plan is None:
            return None
        return _rewrite(path, doc, log, root, plan, started)
    finally:
        os.close(pinned)


def _due(reader: FileLog, thinning: ThinningPolicy, pack_after: int) -> bool:
    """Whether a pack may be due, from the index and two frames (True when unsure)."""
    current = reader.open_current("packing it")
    if current is None:
        return False
    file, fmt, size = current
    with file:
        hints = read_hints(reader.path, reader.root)
        found = hinted_base(file, fmt, size, hints, reader.log, str(reader.path))
        first = frame_record_at(file.fileno(), fmt.data_offset, size, fmt)
        if found is None or hints is None or first is None:
            return True  # no index to go by: the scan decides
        record = first.record
        packed = hints.packed_through
        if not packed:
            packed = (
                decode_block_header(record.metadata).last_seq
                if record.kind is RecordKind.BLOCK
                else record.seq - 1
            )
        if found.header.covers - packed >= pack_after:
            return True
        marks = [CheckpointMark(hint.seq, hint.covers) for hint in hints.checkpoints]
        return bool(checkpoints_to_drop(marks, history_start=record.seq, policy=thinning))


def _plan(
    reader: FileLog, thinning: ThinningPolicy, block_records: int, pack_after: int, pinned: int
) -> _Plan | None:
    """Phase 1: the new file's frames, new blocks encoded (None: nothing worth a rewrite)."""
    file, fmt, size = reader.open_reader()
    with file:
        if fmt is None or fmt.legacy:
            return None
        inode = os.fstat(file.fileno()).st_ino
        if inode != pinned:
            return None  # replaced between the pin and the scan: the next call packs
        frames, raw, end, last_seq = _scan(reader, file, fmt, size)
    trusted = [f for f in frames if f.kind is RecordKind.CHECKPOINT and f.covers]
    if not trusted:
        return None
    covered = max(f.covers for f in trusted)
    history = [f for f in frames if f.kind is not RecordKind.CHECKPOINT]
    if not history:
        return None
    marks = [CheckpointMark(f.first, f.covers) for f in trusted]
    drop = set(checkpoints_to_drop(marks, history_start=history[0].first, policy=thinning))
    unpacked = [f for f in frames if f.kind is RecordKind.UPDATE and f.first <= covered]
    if len(unpacked) < pack_after and not drop:
        _note_packed(reader, inode, frames, covered)
        return None
    boundaries = sorted(f.covers for f in trusted if f.first not in drop)
    out: list[_Frame] = []
    run: list[_Frame] = []
    packed = blocks = 0

    def flush() -> None:
        nonlocal packed, blocks
        if run:
            encoded = encode_block_frame([raw[f.first] for f in run])
            out.append(
                _Frame(
                    -1,
                    len(encoded),
                    RecordKind.BLOCK,
                    run[0].first,
                    run[-1].last,
                    encoded=encoded,
                    records=len(run),
                )
            )
            packed += len(run)
            blocks += 1
            run.clear()

    for frame in frames:
        if frame.kind is RecordKind.UPDATE and frame.first <= covered:
            if run and (
                len(run) >= block_records or _crosses(boundaries, run[-1].first, frame.first)
            ):
                flush()
            run.append(frame)
        elif frame.kind is RecordKind.CHECKPOINT and frame.first in drop:
            continue  # dropped: a run may go on past it (no kept checkpoint between)
        else:
            flush()
            out.append(frame)
    flush()
    through = max([0, *(f.last for f in out if f.kind is RecordKind.BLOCK)])
    return _Plan(out, end, last_seq, inode, fmt.version, packed, blocks, len(drop), through)


def _crosses(boundaries: list[int], before: int, after: int) -> bool:
    """Whether a kept checkpoint covers `before` but not `after` (a block may not span it)."""
    return any(before <= covers < after for covers in boundaries)


def _scan(
    reader: FileLog, file: BinaryIO, fmt: FileFormat, size: int
) -> tuple[list[_Frame], dict[int, Record], int, int]:
    """Every frame of the file (blocks not expanded) and the raw update records by seq."""
    fd = file.fileno()
    scanner = open_scanner(file, fmt, size, path=str(reader.path))
    scanner.expand_blocks = False
    offsets: list[int] = []
    scanner.offsets = offsets
    found: list[tuple[int, Record]] = []
    for batch in scanner:
        found.extend(zip(offsets, batch, strict=True))
        offsets.clear()
    ends = [offset for offset, _ in found[1:]] + [scanner.good_end]
    frames: list[_Frame] = []
    raw: dict[int, Record] = {}
    for (offset, record), stop in zip(found, ends, strict=True):
        frame = _Frame(offset, stop - offset, record.kind, record.seq, record.seq)
        if record.kind is RecordKind.BLOCK:
            header = decode_block_header(record.metadata)
            frame.last, frame.records = header.last_seq, header.count
        elif record.kind is RecordKind.UPDATE:
            raw[record.seq] = record
        elif record.kind is RecordKind.CHECKPOINT:
            header_ = trusted_header(record, str(reader.path), reader.log)
            if header_ is not None and header_.covers < record.seq:
                frame.covers, frame.covers_timestamp = header_.covers, header_.covers_timestamp
                head = os.pread(fd, FRAME_HEAD.size, offset)
                frame.checksum = FRAME_HEAD.unpack(head)[1]
        frames.append(frame)
    return frames, raw, scanner.good_end, scanner.last_seq


def _note_packed(reader: FileLog, inode: int, frames: list[_Frame], covered: int) -> None:
    """Remember in the index how far history is packed, so that the next call needs no scan."""
    hints = read_hints(reader.path, reader.root)
    if hints is None or hints.inode != inode:
        return
    unpacked = [f.first for f in frames if f.kind is RecordKind.UPDATE and f.first <= covered]
    through = (min(unpacked) - 1) if unpacked else covered
    if through != hints.packed_through:
        write_hints(reader.path, reader.root, hints.but(packed_through=through))


def _rewrite(
    path: Path, doc: str, log: Logger, root: Path | None, plan: _Plan, started: float
) -> PackReport | None:
    """Phase 2: the new file, under the lock, with what writers appended meanwhile."""
    writer = FileLog(path, fsync=True, upgrade=False, log=log, root=root)
    try:
        with writer.locked() as file:
            fd = file.fileno()
            if os.fstat(fd).st_ino != plan.inode:
                return None  # replaced meanwhile (retention, squash, another pack)
            size = os.fstat(fd).st_size
            fmt = FileFormat(plan.version, len(HEADER))
            scanner = open_scanner(
                file, fmt, size, path=str(path), start=plan.end, last_seq=plan.last_seq
            )
            for _batch in scanner:
                pass
            new_offsets: dict[int, int] = {}
            blocked = any(f.kind is RecordKind.BLOCK for f in plan.frames)
            header = HEADER_V5 if blocked or plan.version >= 5 else HEADER
            written = replace_file(
                path,
                _new_file(fd, plan.frames, plan.end, scanner.good_end, new_offsets),
                root=root,
                header=header,
            )
            if scanner.tail is not None:
                writer._save_tail(file, scanner.tail)
            _rewrite_hints(path, root, plan, new_offsets)
    finally:
        writer.close()
    if written >= size and not plan.dropped:
        log.info("%s: packing saved nothing (%d bytes before, %d after).", path, size, written)
    return PackReport(
        doc=doc,
        blocks=plan.blocks,
        records_packed=plan.packed,
        checkpoints_dropped=plan.dropped,
        bytes_before=size,
        bytes_after=written,
        seconds=time.perf_counter() - started,
    )


def _new_file(
    fd: int, frames: list[_Frame], end: int, appended_end: int, new_offsets: dict[int, int]
) -> Iterator[bytes]:
    """The new file's bytes after its header; fills `new_offsets` (frame index -> offset)."""
    position = len(HEADER)
    ranges: list[tuple[int, int]] = []  # old byte ranges to copy, merged while contiguous
    for index, frame in enumerate(frames):
        new_offsets[index] = position
        position += frame.length
        if frame.offset < 0:
            yield from copy_ranges(fd, ranges)
            ranges.clear()
            yield frame.encoded
        else:
            add_range(ranges, frame.offset, frame.length)
    ranges.append((end, appended_end))
    yield from copy_ranges(fd, ranges)


def _rewrite_hints(path: Path, root: Path | None, plan: _Plan, new_offsets: dict[int, int]) -> None:
    """Index the kept trusted checkpoints at their new offsets."""
    try:
        stat = os.stat(inside_root(path, root))
    except OSError:
        remove_hints(path, root)
        return
    starts = {frame.first: new_offsets[i] for i, frame in enumerate(plan.frames)}
    hints: list[CheckpointHint] = []
    for index, frame in enumerate(plan.frames):
        if frame.kind is not RecordKind.CHECKPOINT or not frame.covers:
            continue
        tail = starts.get(frame.covers + 1)
        offset = new_offsets[index]
        if tail is None or tail > offset:
            continue
        hints.append(
            CheckpointHint(
                offset,
                frame.length,
                frame.checksum,
                frame.first,
                frame.covers,
                frame.covers_timestamp,
                tail,
            )
        )
    index_ = Hints(stat.st_ino, stat.st_dev, tuple(hints), plan.packed_through)
    if not hints or not write_hints(path, root, index_):
        remove_hints(path, root)
