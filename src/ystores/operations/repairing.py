"""Repairing a store file, always after a backup copy: cut a torn tail, or damaged records.

Both work under the file's exclusive lock (writers of the store wait) and read
the file again first, so they act on what is there, not on an older report.
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
from ..filestore.formats import CURRENT_VERSION, detect_format, open_scanner
from ..filestore.frames import encode_frame
from ..filestore.log import replace_file
from ..filestore.scanning import TornTail, V3Scanner
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


def cut_torn_tail(path: str | Path, tail: TornTail) -> Cut:
    """Copy a store file to `<file>.bak-<UTC time>`, then cut its torn tail off.

    Nothing is cut unless the file, read again under its lock, ends in the same tail.

    Raises:
        StoreFormatError: The file changed meanwhile (nothing was cut).
    """
    path = Path(path)
    with open(path, "r+b") as file:
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


def _good_records(
    file: BinaryIO, path: Path, size: int
) -> tuple[list[Record], list[tuple[int, int]]]:
    """The records that pass their checks, and the byte ranges `(start, end)` that do not."""
    fmt = detect_format(file, size, str(path))
    if fmt is None or fmt.version != CURRENT_VERSION:
        return [], []
    records: list[Record] = []
    bad: list[tuple[int, int]] = []
    start, last_seq = fmt.data_offset, 0
    while True:
        scanner = open_scanner(file, fmt, size, path=str(path), start=start, last_seq=last_seq)
        try:
            for batch in scanner:
                records.extend(batch)
        except CorruptStoreError as exc:
            offset = exc.offset if exc.offset is not None else scanner.good_end
            probe = V3Scanner(file, offset, size, path=str(path))
            resume = probe._next_valid_record(offset)  # the scanner's own search for a frame
            if resume is None:  # cannot happen: the scanner raised because one follows
                resume = size
            bad.append((offset, resume))
            start, last_seq = resume, records[-1].seq if records else 0
            continue
        if scanner.tail is not None:
            bad.append((scanner.tail.offset, size))
        return records, bad


def cut_damaged_records(path: str | Path) -> Cut | None:
    """Rewrite a store file without its damaged records, after a backup copy.

    Records that fail their checksum or framing in the middle of a version 3 file,
    and a torn tail, are left out; every other record is kept as it is. The new
    file replaces the old one atomically (new file, fsync, rename, fsync directory).
    The updates in the removed records are lost from the document (they are in
    the backup): later updates that depended on them may stay pending.

    Returns:
        What was cut, or None when nothing is damaged (nothing is written then).
    """
    path = Path(path)
    with open(path, "r+b") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        records, bad = _good_records(file, path, size)
        if not bad:
            return None
        backup = _backup(path)
        replace_file(path, (encode_frame(record) for record in records))
    return Cut(backup, bad[0][0], sum(end - start for start, end in bad))
