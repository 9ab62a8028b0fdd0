"""What a store file holds and whether it is healthy, read without changing it."""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from dataclasses import dataclass, field
from logging import getLogger
from pathlib import Path

from ..crdt import validate_update
from ..errors import InvalidUpdateError, StoreFormatError
from ..records import RecordKind
from .formats import detect_format
from .log import FileLog
from .scanning import TornTail

__all__ = ["FileReport", "inspect_file", "upgrade_file"]


@dataclass
class FileReport:
    """A summary of one store file.

    Attributes:
        path: The file.
        size: Its size in bytes.
        version: Its format version (0 to 4), None if empty or unreadable.
        format: A human name for the format.
        records: Records read (snapshots and checkpoints included).
        snapshots: Snapshot records among them.
        checkpoints: Checkpoint records among them.
        update_bytes: Total raw size of the updates (decompressed).
        stored_bytes: Bytes those updates take in the file (compressed ones as stored).
        first_timestamp: Time of the first record (None without records or times).
        last_timestamp: Time of the last record.
        last_seq: The highest seq.
        metadata: Distinct metadata values and how many records carry each.
        undecodable: Seqs of records whose update is not a valid Yjs update.
        torn_tail: Incomplete bytes at the end of the file, if any.
        problem: Why the file cannot be read (corruption, unknown format), if so.
    """

    path: str
    size: int
    version: int | None = None
    format: str = "empty"
    records: int = 0
    snapshots: int = 0
    checkpoints: int = 0
    update_bytes: int = 0
    stored_bytes: int = 0
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    last_seq: int = 0
    metadata: Counter[bytes] = field(default_factory=Counter)
    undecodable: list[int] = field(default_factory=list)
    torn_tail: TornTail | None = None
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        """No torn tail, no damage, every update decodes."""
        return self.problem is None and self.torn_tail is None and not self.undecodable


def inspect_file(path: str | Path) -> FileReport:
    """Read a store file from end to end (streaming) and summarize it; never writes.

    Raises:
        FileNotFoundError: There is no such file.
    """
    target = Path(path)
    with open(target, "rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)
        try:
            size = os.fstat(file.fileno()).st_size
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        report = FileReport(str(target), size)
        try:
            fmt = detect_format(file, size, str(target))
            if fmt is None:
                return report
            report.version, report.format = fmt.version, fmt.description
            reader = FileLog(target, fsync=False, upgrade=False, log=getLogger("ystores"))
            scanner = reader.scanner(file, fmt, size)
            for batch in scanner:
                for record in batch:
                    _account(report, record.seq, record.update, record.metadata)
                    report.snapshots += record.kind == RecordKind.SNAPSHOT
                    report.checkpoints += record.kind == RecordKind.CHECKPOINT
                    if fmt.version >= 2:
                        if report.first_timestamp is None:
                            report.first_timestamp = record.timestamp
                        report.last_timestamp = record.timestamp
            report.torn_tail = scanner.tail
            report.stored_bytes = (
                report.update_bytes - scanner.decompressed_bytes + scanner.compressed_bytes
            )
        except StoreFormatError as exc:
            report.problem = str(exc)
    return report


def _account(report: FileReport, seq: int, update: bytes, metadata: bytes) -> None:
    report.records += 1
    report.update_bytes += len(update)
    report.last_seq = seq
    report.metadata[metadata] += 1
    try:
        validate_update(update)
    except InvalidUpdateError:
        report.undecodable.append(seq)


def upgrade_file(path: str | Path) -> int | None:
    """Rewrite a file in an older format in the current one, atomically, in place.

    Every record keeps its update, metadata and timestamp, in order. A file that is
    already current is left untouched.

    Returns:
        The version the file was in (3 or 4 for a checksummed file, which is left
        as it is), or None for an empty file.

    Raises:
        FileNotFoundError: There is no such file.
        UnknownFormatError: The file is in no known format (it is left untouched).
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"There is no file at {target}.")
    before = FileLog(target, fsync=True, upgrade=True, log=getLogger("ystores")).ensure_current()
    return None if before is None else before.version
