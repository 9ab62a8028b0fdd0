"""Repairing a store file, always after a backup copy: cut a torn tail, or damaged records.

Both work under the file's exclusive lock (writers of the store wait) and read
the file again first, so they act on what is there, not on an older report.
Given the store's root, they resolve the file again when they open it and
refuse one that a symbolic link leads outside the root.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptStoreError, StoreFormatError
from ..filestore.damage import next_valid_frame
from ..filestore.formats import (
    CURRENT_VERSION,
    HEADER,
    HEADER_V3,
    HEADER_V5,
    FileFormat,
    detect_format,
    open_scanner,
    v3_records_start,
)
from ..filestore.frames import encode_frame
from ..filestore.log import replace_file
from ..filestore.paths import open_inside
from ..filestore.scanning import TornTail
from ..records import Record

__all__ = ["Cut", "backup_path", "cut_damaged_records", "cut_torn_tail"]


@dataclass(frozen=True)
class Cut:
    """Bytes removed from a store file.

    Attributes:
        backup: The copy of the whole file made before.
        offset: Where the first removed bytes were.
        removed: How many bytes were removed in all.
    """

    backup: Path
    offset: int
    removed: int


def backup_path(path: Path, *, now: dt.datetime | None = None) -> Path:
    """A new name `<file>.bak-<UTC time>` beside `path` (with a counter if it exists)."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    counter = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{counter}")
        counter += 1
    return backup


def _backup(path: Path) -> Path:
    backup = backup_path(path)
    shutil.copyfile(path, backup)
    with open(backup, "rb+") as copy:
        os.fsync(copy.fileno())
    return backup


def _open(path: Path, root: Path | None) -> tuple[BinaryIO, Path]:
    fd, real = open_inside(path, root, os.O_RDWR)
    return os.fdopen(fd, "r+b"), real


def cut_torn_tail(path: str | Path, tail: TornTail, *, root: Path | None = None) -> Cut:
    """Copy a store file to `<file>.bak-<UTC time>`, then cut its torn tail off.

    Nothing is cut unless the file, read again under its lock, ends in the same tail.

    Args:
        path: The store file.
        tail: The torn tail a scan found.
        root: The store's root (resolved), which the file must be under.

    Raises:
        StoreFormatError: The file changed meanwhile (nothing was cut).
        StoreIOError: The file is outside `root` (nothing was cut).
    """
    file, path = _open(Path(path), root)
    with file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        fmt = detect_format(file, size, str(path))
        scanner = None if fmt is None else open_scanner(file, fmt, size, path=str(path))
        if scanner is not None:
            for _batch in scanner:
                pass
        if scanner is None or scanner.tail != tail:
            raise StoreFormatError(
                f"{path} changed while it was verified; nothing was cut. Run "
                "`ystore verify --repair` again.",
                path=str(path),
            )
        backup = _backup(path)
        os.ftruncate(file.fileno(), tail.offset)
        os.fsync(file.fileno())
    return Cut(backup, tail.offset, tail.size)


def _format_for_repair(file: BinaryIO, path: Path, size: int) -> FileFormat | None:
    """The file's format; a damaged header over version-3 records counts as version 3."""
    try:
        return detect_format(file, size, str(path))
    except CorruptStoreError as exc:
        start = v3_records_start(file, size) if exc.offset == 0 else None
        if start is None:
            raise
        return FileFormat(CURRENT_VERSION, start)  # the records vouch for the version


def _good_records(
    file: BinaryIO, path: Path, size: int
) -> tuple[list[Record], list[tuple[int, int]]]:
    """The records that pass their checks, and the byte ranges `(start, end)` that do not.

    A damaged header is a bad range at 0 (as long as the bytes it had beyond a
    header's 10): nothing of a record is cut for it.
    """
    try:
        fmt = _format_for_repair(file, path, size)
    except StoreFormatError:
        return [], []
    if fmt is None or not fmt.checksummed:
        return [], []
    bad: list[tuple[int, int]] = []
    header = os.pread(file.fileno(), fmt.data_offset, 0)
    if header not in (HEADER, HEADER_V3, HEADER_V5):  # damaged, cut, grown or missing: written anew
        bad.append((0, max(0, len(header) - len(HEADER))))
    records: list[Record] = []
    start, last_seq = fmt.data_offset, 0
    while True:
        scanner = open_scanner(file, fmt, size, path=str(path), start=start, last_seq=last_seq)
        try:
            for batch in scanner:
                records.extend(batch)
        except CorruptStoreError as exc:
            offset = exc.offset if exc.offset is not None else scanner.good_end
            last_seq = records[-1].seq if records else 0
            # intact records after the damage are kept: resume at the next one
            resume = next_valid_frame(file.fileno(), offset, size, last_seq)
            bad.append((offset, size if resume is None else resume))
            if resume is None:
                return records, bad
            start = resume
            continue
        if scanner.tail is not None:
            bad.append((scanner.tail.offset, size))
        return records, bad


def cut_damaged_records(path: str | Path, *, root: Path | None = None) -> Cut | None:
    """Rewrite a store file without its damaged records, after a backup copy.

    Records that fail their checksum or framing in a version 3 file, and a torn
    tail, are left out; every other record is kept as it is, and a damaged header
    is written anew. The new
    file replaces the old one atomically (new file, fsync, rename, fsync directory).
    The updates in the removed records are lost from the document (they are in
    the backup): later updates that depended on them may stay pending.

    Args:
        path: The store file.
        root: The store's root (resolved), which the file must be under.

    Returns:
        What was cut, or None when nothing is damaged (nothing is written then).

    Raises:
        StoreIOError: The file is outside `root` (nothing was cut).
    """
    file, path = _open(Path(path), root)
    with file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        records, bad = _good_records(file, path, size)
        if not bad:
            return None
        backup = _backup(path)
        replace_file(path, (encode_frame(record) for record in records), root=root)
    damaged = [(start, end) for start, end in bad if end > start] or bad
    return Cut(backup, damaged[0][0], sum(end - start for start, end in bad))
