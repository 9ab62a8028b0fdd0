"""Retention on a document file: history older than a policy keeps folded into a snapshot.

Like a squash (`compaction`), in two phases so writers wait only for the second:

1. Without the write lock, read the file's records (where each frame is), pick
   the cut (the last record the policy does not keep) and build the state at
   the cut (`checkpointing.state_at_file`: from the nearest checkpoint).
2. Under the exclusive lock, write a new file: a snapshot of the state at the
   cut (seq = the cut, timestamp = the cut record's), then, byte for byte, every
   frame after the cut except checkpoints the snapshot supersedes (those
   covering no more than the cut), then the records appended since phase 1;
   fsync, rename over the old file, fsync the directory. The checkpoint index is
   rewritten for the new file.

A crash at any point leaves the old file or the new one; the content never
changes. The oldest state kept afterwards is the snapshot's (time travel before
it raises `HistoryNotKeptError`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from logging import Logger
from pathlib import Path
from typing import BinaryIO

from ..clock import Clock
from ..compaction.policy import SquashReport
from ..errors import HistoryNotKeptError
from ..history.checkpoints import decode_header
from ..history.policy import RetentionPolicy
from ..records import Record, RecordKind
from .checkpointing import state_at_file
from .compaction import add_range, copy_ranges
from .formats import HEADER, HEADER_V5, FileFormat, open_scanner
from .frames import FRAME_HEAD, encode_frame
from .hints import CheckpointHint, Hints, remove_hints, write_hints
from .log import FileLog, replace_file
from .paths import inside_root, open_inside
from .scanning import TornTail

__all__ = ["retain_file"]


@dataclass(frozen=True, slots=True)
class _Frame:
    offset: int
    length: int
    seq: int
    kind: RecordKind
    timestamp: float
    update_bytes: int
    covers: int | None  # a checkpoint's, when its header decodes
    covers_timestamp: float = 0.0
    frame_first: int = 0  # the seqs of the first and last record its frame holds
    frame_last: int = 0  # (a block holds several; other frames one)


def _frames(file_log: FileLog) -> tuple[list[_Frame], int, int, int, int] | None:
    """Every frame of the file: `(frames, end, last_seq, inode, version)`, None without records."""
    current = file_log.open_current("applying retention to it")
    if current is None:
        return None
    file, fmt, size = current
    with file:
        scanner = open_scanner(file, fmt, size, path=str(file_log.path))
        offsets: list[int] = []
        scanner.offsets = offsets
        records: list[Record] = []
        frames: list[_Frame] = []
        for batch in scanner:
            records.extend(batch)
            for record in batch:
                covers, covers_timestamp = None, 0.0
                if record.kind is RecordKind.CHECKPOINT:
                    header = decode_header(record.metadata)
                    if header is not None:
                        covers, covers_timestamp = header.covers, header.covers_timestamp
                frames.append(
                    _Frame(
                        0,
                        0,
                        record.seq,
                        record.kind,
                        record.timestamp,
                        len(record.update),
                        covers,
                        covers_timestamp,
                    )
                )
            records.clear()
        # the records of a block share its frame's offset
        starts = sorted(set(offsets))
        ends = dict(zip(starts, [*starts[1:], scanner.good_end], strict=True))
        firsts: dict[int, int] = {}
        lasts: dict[int, int] = {}
        for f, start in zip(frames, offsets, strict=True):
            firsts.setdefault(start, f.seq)
            lasts[start] = f.seq
        located = [
            _Frame(
                start,
                ends[start] - start,
                f.seq,
                f.kind,
                f.timestamp,
                f.update_bytes,
                f.covers,
                f.covers_timestamp,
                firsts[start],
                lasts[start],
            )
            for f, start in zip(frames, offsets, strict=True)
        ]
        inode = os.fstat(file.fileno()).st_ino
        return located, scanner.good_end, scanner.last_seq, inode, fmt.version


def _cut(frames: list[_Frame], policy: RetentionPolicy, now: float) -> _Frame | None:
    """The last update or snapshot the policy does not keep (None: it keeps them all)."""
    history = [f for f in frames if f.kind is not RecordKind.CHECKPOINT]
    if policy.window is not None:
        threshold = now - policy.window
        cut = None
        for frame in history:
            if frame.timestamp >= threshold:
                break
            cut = frame
        return cut
    if policy.budget is not None:
        kept = 0
        for frame in reversed(history):
            kept += frame.length
            if kept > policy.budget:
                return frame
    return None


def retain_file(
    path: Path,
    doc: str,
    log: Logger,
    policy: RetentionPolicy,
    *,
    root: Path | None,
    compress: bool,
    clock: Clock,
) -> SquashReport | None:
    """Fold the history `policy` does not keep into a snapshot (see the module docstring).

    `RetentionPolicy.none()` is handled by the caller (a squash); `all()` keeps
    everything.

    Returns:
        What was removed, or None when nothing was due.

    Raises:
        LegacyFormatError: The file is in one of ypy-websocket's formats.
        CorruptStoreError: The file is damaged before its end.
    """
    if policy.keep_all or (policy.window is None and policy.budget is None):
        return None
    # The file stays open from before the scan until the rewrite holds its lock: an
    # inode number is reused as soon as its file is gone (a rename over the path by
    # another process's retention or squash), so only while it is held does "the
    # same inode" mean "the file that was scanned".
    try:
        pinned, _ = open_inside(path, root, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _retain(path, doc, log, policy, root, compress, clock, os.fstat(pinned).st_ino)
    finally:
        os.close(pinned)


def _retain(
    path: Path,
    doc: str,
    log: Logger,
    policy: RetentionPolicy,
    root: Path | None,
    compress: bool,
    clock: Clock,
    pinned: int,
) -> SquashReport | None:
    started = time.perf_counter()
    reader = FileLog(path, fsync=False, upgrade=False, log=log, root=root)
    scanned = _frames(reader)
    if scanned is None:
        return None
    frames, end, last_seq, inode, version = scanned
    if inode != pinned:
        return None  # replaced between the pin and the scan: this retention is moot
    cut = _cut(frames, policy, clock())
    if cut is not None and cut.frame_last > cut.seq:
        # inside a block: keep all of it (at most a block's records more than asked)
        before = [
            f for f in frames if f.kind is not RecordKind.CHECKPOINT and f.seq < cut.frame_first
        ]
        cut = before[-1] if before else None
    if cut is None or (frames[0].kind is RecordKind.SNAPSHOT and cut.seq <= frames[0].seq):
        return None
    try:
        state = state_at_file(reader, seq=cut.seq)
    except HistoryNotKeptError:
        return None  # replaced meanwhile by a retention that went further: this one is moot
    snapshot = encode_frame(
        Record(cut.seq, state, b"", cut.timestamp, RecordKind.SNAPSHOT), compressing=compress
    )
    kept_records = [
        f
        for f in frames
        if f.seq > cut.seq
        and not (f.kind is RecordKind.CHECKPOINT and (f.covers is None or f.covers <= cut.seq))
    ]
    kept = [  # the frames: a block's records share one
        f for i, f in enumerate(kept_records) if i == 0 or kept_records[i - 1].offset != f.offset
    ]
    writer = FileLog(path, fsync=True, upgrade=False, log=log, root=root)
    try:
        with writer.locked() as file:
            fd = file.fileno()
            if os.fstat(fd).st_ino != inode:
                return None  # replaced meanwhile (a squash): this retention is moot
            size = os.fstat(fd).st_size
            good_end, torn, appended = _appended(file, path, end, last_seq, size, version)
            new_offsets: dict[int, int] = {}
            frames_out = _new_file(fd, snapshot, kept, end, good_end, new_offsets)
            header = HEADER_V5 if version >= 5 else HEADER
            replace_file(path, frames_out, root=root, header=header)
            if torn is not None:
                writer._save_tail(file, torn)
            packed = max([cut.seq, *(f.frame_last for f in kept if f.frame_last > f.seq)])
            _rewrite_hints(path, root, kept_records, new_offsets, fd, packed)
    finally:
        writer.close()
    return SquashReport(
        doc=doc,
        records_before=len(frames) + appended,
        records_after=1 + len(kept_records) + appended,
        bytes_before=sum(f.update_bytes for f in frames),
        bytes_after=len(state) + sum(f.update_bytes for f in kept_records),
        cut_seq=cut.seq,
        seconds=time.perf_counter() - started,
    )


def _appended(
    file: BinaryIO, path: Path, end: int, last_seq: int, size: int, version: int
) -> tuple[int, TornTail | None, int]:
    """Verify what writers appended since phase 1: `(good end, torn tail, records)`."""
    fmt = FileFormat(version, len(HEADER))
    scanner = open_scanner(file, fmt, size, path=str(path), start=end, last_seq=last_seq)
    count = sum(len(batch) for batch in scanner)
    return scanner.good_end, scanner.tail, count


def _new_file(
    fd: int,
    snapshot: bytes,
    kept: list[_Frame],
    end: int,
    appended_end: int,
    new_offsets: dict[int, int],
) -> Iterator[bytes]:
    """The new file's frames; fills `new_offsets` (old frame offset -> new) as it goes."""
    position = len(HEADER) + len(snapshot)
    yield snapshot
    ranges: list[tuple[int, int]] = []
    for frame in kept:
        new_offsets[frame.offset] = position
        position += frame.length
        add_range(ranges, frame.offset, frame.length)
    ranges.append((end, appended_end))
    yield from copy_ranges(fd, ranges)


def _rewrite_hints(
    path: Path,
    root: Path | None,
    kept: list[_Frame],
    new_offsets: dict[int, int],
    fd: int,
    packed_through: int,
) -> None:
    """Index the kept checkpoints at their new offsets (those that can be)."""
    try:
        stat = os.stat(inside_root(path, root))
    except OSError:
        remove_hints(path, root)
        return
    by_seq = {frame.seq: frame for frame in kept}
    hints: list[CheckpointHint] = []
    for frame in kept:
        if frame.kind is not RecordKind.CHECKPOINT or frame.covers is None:
            continue
        after = by_seq.get(frame.covers + 1)
        if after is None or after.frame_first != after.seq:
            continue  # (inside a block: no frame starts at that record)
        checksum = FRAME_HEAD.unpack(os.pread(fd, FRAME_HEAD.size, frame.offset))[1]
        hints.append(
            CheckpointHint(
                new_offsets[frame.offset],
                frame.length,
                checksum,
                frame.seq,
                frame.covers,
                frame.covers_timestamp,
                new_offsets[after.offset],
            )
        )
    index = Hints(stat.st_ino, stat.st_dev, tuple(hints), packed_through)
    if not hints or not write_hints(path, root, index):
        remove_hints(path, root)
