"""Squashing a document file: its history merged into one snapshot record.

Two phases, so writers are held up only for the second:

1. Without the exclusive lock, read every record up to the current end (the cut
   point) and merge their updates into one (`crdt.merge_updates`).
2. Under the exclusive lock, write a new file beside the old one: the snapshot
   (seq = the cut's seq, kind SNAPSHOT) followed, byte for byte, by the records
   appended since phase 1; fsync it, rename it over the old file, fsync the
   directory. Writers then find the path on a new inode and reopen it.

A crash at any point leaves the old file or the new one. If another squash
replaced the file between the phases, this one gives up (it would be redundant).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from logging import Logger
from pathlib import Path
from typing import BinaryIO

from ..compaction.policy import LogStats, SquashReport
from ..crdt import merge_updates
from ..records import Record, RecordKind
from .formats import FileFormat, open_scanner
from .frames import encode_frame
from .hints import remove_hints
from .log import FileLog, replace_file
from .paths import open_inside
from .scanning import TornTail

__all__ = ["add_range", "copy_ranges", "file_stats", "squash_file"]

COPY_CHUNK = 1 << 20


@dataclass
class _Scan:
    updates: list[bytes]
    stats: LogStats
    records: int
    update_bytes: int
    end: int
    inode: int
    fmt: FileFormat
    checkpoints: int = 0


def _scan(path: Path, log: Logger, *, keep_updates: bool, root: Path | None) -> _Scan | None:
    reader = FileLog(path, fsync=False, upgrade=False, log=log, root=root)
    current = reader.open_current("squashing it")
    if current is None:
        return None
    file, fmt, size = current
    with file:
        scanner = reader.scanner(file, fmt, size)
        updates: list[bytes] = []
        records = total = tail_records = tail_bytes = 0
        has_snapshot = False
        last_write: float | None = None
        checkpoints = 0
        for batch in scanner.kinds_updates_times():
            for kind, update, timestamp in batch:
                if kind is RecordKind.CHECKPOINT:
                    checkpoints += 1  # beside the log, replaced by a snapshot: not its tail
                    continue
                length = len(update)
                total += length
                if kind is RecordKind.SNAPSHOT:
                    has_snapshot, tail_records, tail_bytes = True, 0, 0
                else:
                    tail_records += 1
                    tail_bytes += length
                last_write = timestamp
            records += len(batch)
            if keep_updates:
                updates.extend(u for k, u, _ in batch if k is not RecordKind.CHECKPOINT)
        stats = LogStats(tail_records, tail_bytes, has_snapshot, last_write, scanner.last_seq)
        return _Scan(
            updates,
            stats,
            records,
            total,
            scanner.good_end,
            os.fstat(file.fileno()).st_ino,
            fmt,
            checkpoints,
        )


def file_stats(path: Path, log: Logger, *, root: Path | None = None) -> LogStats | None:
    """The shape of a document file's log (None if there is no file or no record)."""
    scan = _scan(path, log, keep_updates=False, root=root)
    return None if scan is None else scan.stats


def squash_file(
    path: Path, doc: str, log: Logger, *, root: Path | None = None
) -> SquashReport | None:
    """Replace a document file's history by one snapshot with the same content.

    The snapshot's metadata is empty and its timestamp is that of the last
    record it replaces. Records appended meanwhile are kept after it, unchanged.
    Checkpoints before it go with the records they cover (and the checkpoint
    index with them).

    Returns:
        What was done, or None when there was nothing to squash (no file, a
        single record, or another squash replaced the file meanwhile).

    Raises:
        LegacyFormatError: The file is in an older format (migrate it first).
        CorruptStoreError: The file is damaged before its end.
    """
    # Held open from before the scan until the lock is taken: an inode number is
    # reused once its file is gone (renamed over by another process's squash or
    # retention), so only while it is held does "the same inode" mean the same file.
    try:
        pinned, _ = open_inside(path, root, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _squash(path, doc, log, root, os.fstat(pinned).st_ino)
    finally:
        os.close(pinned)


def _squash(
    path: Path, doc: str, log: Logger, root: Path | None, pinned: int
) -> SquashReport | None:
    started = time.perf_counter()
    scan = _scan(path, log, keep_updates=True, root=root)
    if scan is None or scan.inode != pinned:
        return None
    if not (scan.stats.squashable or scan.checkpoints):
        return None
    snapshot = Record(
        scan.stats.last_seq,
        merge_updates(scan.updates),
        b"",
        scan.stats.last_write or 0.0,
        RecordKind.SNAPSHOT,
    )
    scan.updates.clear()
    writer = FileLog(path, fsync=True, upgrade=False, log=log, root=root)
    try:
        with writer.locked() as file:
            fd = file.fileno()
            if os.fstat(fd).st_ino != scan.inode:
                return None
            size = os.fstat(fd).st_size
            tail = _records_since(writer, file, scan, size)
            frame = encode_frame(snapshot)
            replace_file(path, _chunks(fd, frame, scan.end, tail.good_end), root=root)
            remove_hints(path, root)
            if tail.tail is not None:
                writer._save_tail(file, tail.tail)
    finally:
        writer.close()
    return SquashReport(
        doc=doc,
        records_before=scan.records + tail.count,
        records_after=1 + tail.count,
        bytes_before=scan.update_bytes + tail.update_bytes,
        bytes_after=len(snapshot.update) + tail.update_bytes,
        cut_seq=snapshot.seq,
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Tail:
    count: int
    update_bytes: int
    good_end: int
    tail: TornTail | None


def _records_since(writer: FileLog, file: BinaryIO, scan: _Scan, size: int) -> _Tail:
    """Verify the records appended since the scan (they are copied as they are)."""
    scanner = open_scanner(
        file,
        scan.fmt,
        size,
        path=str(writer.path),
        start=scan.end,
        last_seq=scan.stats.last_seq,
    )
    count = update_bytes = 0
    for batch in scanner:
        count += len(batch)
        update_bytes += sum(len(record.update) for record in batch)
    return _Tail(count, update_bytes, scanner.good_end, scanner.tail)


def _chunks(fd: int, first: bytes, start: int, end: int) -> Iterator[bytes]:
    yield first
    yield from copy_ranges(fd, [(start, end)])


def add_range(ranges: list[tuple[int, int]], offset: int, length: int) -> None:
    """Add the bytes `[offset, offset + length)` to `ranges`, joining the last when adjacent."""
    if ranges and ranges[-1][1] == offset:
        ranges[-1] = (ranges[-1][0], offset + length)
    else:
        ranges.append((offset, offset + length))


def copy_ranges(fd: int, ranges: list[tuple[int, int]]) -> Iterator[bytes]:
    """The bytes of `fd` in each `(start, stop)` range, in chunks of at most `COPY_CHUNK`
    (a range is cut short where the file ends)."""
    for start, stop in ranges:
        offset = start
        while offset < stop:
            chunk = os.pread(fd, min(COPY_CHUNK, stop - offset), offset)
            if not chunk:
                break
            yield chunk
            offset += len(chunk)
