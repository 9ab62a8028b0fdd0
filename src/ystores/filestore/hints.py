"""The checkpoint index beside a document file (`NAME.ckpt-index`): a cache, never the truth.

A restore starts from the latest checkpoint, but finding it in the file means
reading every frame. After each checkpoint (and each rewrite) the store writes a
small JSON file beside the document telling where its checkpoints are:

    {"format": "ystores-checkpoint-index", "version": 1,
     "inode": N, "device": N,
     "checkpoints": [[offset, length, checksum, seq, covers, covers_timestamp,
                      tail_start], ...],
     "packed": N,
     "prefix": [offset, last_seq, records, checkpoints, oldest, newest, stored, raw]}

- `offset`, `length`, `checksum`: where the checkpoint's frame is, its size and
  its CRC32C (the frame's own checksum field);
- `seq`, `covers`, `covers_timestamp`: the record's seq and its header's fields;
- `tail_start`: the offset of the frame of record `covers + 1` (the first one
  a restore from this checkpoint replays);
- `packed` (optional): the seq up to which the file's covered history was
  packed (`packing`); it only decides whether a `pack()` is worth a scan;
- `prefix` (optional): what `history_stats()` counted in the file before
  `offset` (a frame start, after seq `last_seq`), so that it reads only what
  follows; a wrong one can only make the statistics wrong, never a document.

Nothing in it is believed as such: the document file must be the inode it
names, and a reader checks the frames it points at (checksum, seq, kind, the
checkpoint's header and digest; the frame at `tail_start` must hold seq
`covers + 1`). Seqs grow with offsets, so a whole frame of seq `covers + 1` at
`tail_start` means every later record follows it. A missing, stale, damaged or
lying index only costs a scan of the file. It is written by rename without fsync
(a crash leaves an old one, a new one or a damaged one: all harmless), opened
without following a symbolic link, and ignored past 1 MiB.

Several processes update one index (a checkpoint adds an entry, `history_stats()`
its counts): `update_hints` reads it again and writes the change under the
document file's exclusive lock, so that an update made from an index read
earlier never drops another process's newer entries.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .paths import inside_root, open_inside

__all__ = [
    "HINT_SUFFIX",
    "CheckpointHint",
    "Hints",
    "IndexView",
    "PrefixStats",
    "hint_path",
    "read_hints",
    "read_index",
    "remove_hints",
    "update_hints",
    "write_hints",
]

HINT_SUFFIX = ".ckpt-index"
MAX_HINT_BYTES = 1 << 20
MAX_ENTRIES = 1024
"""Checkpoints an index remembers (the newest ones)."""
_FORMAT = "ystores-checkpoint-index"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class CheckpointHint:
    """Where one checkpoint's frame is said to be (see the module docstring)."""

    offset: int
    length: int
    checksum: int
    seq: int
    covers: int
    covers_timestamp: float
    tail_start: int

    def as_list(self) -> list[int | float]:
        """The JSON row."""
        return [
            self.offset,
            self.length,
            self.checksum,
            self.seq,
            self.covers,
            self.covers_timestamp,
            self.tail_start,
        ]


@dataclass(frozen=True)
class Hints:
    """A document file's checkpoint index.

    Attributes:
        inode: The document file's inode when the index was written.
        device: Its device.
        checkpoints: The checkpoints, in file order.
        packed_through: The seq up to which history was packed (0: unknown).
        prefix: `history_stats()`'s counts of the file before an offset.
    """

    inode: int
    device: int
    checkpoints: tuple[CheckpointHint, ...]
    packed_through: int = 0
    prefix: PrefixStats | None = None

    def but(self, **changes: object) -> Hints:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def latest_first(self) -> list[CheckpointHint]:
        """The checkpoints, the one covering most first."""
        return sorted(self.checkpoints, key=lambda hint: hint.covers, reverse=True)


@dataclass(frozen=True, slots=True)
class PrefixStats:
    """What `history_stats()` counted in a file before `offset` (see the module docstring)."""

    offset: int
    last_seq: int
    records: int
    checkpoints: int
    oldest: float | None
    newest: float | None
    stored: int
    raw: int

    def as_list(self) -> list[int | float | None]:
        """The JSON row."""
        return [
            self.offset,
            self.last_seq,
            self.records,
            self.checkpoints,
            self.oldest,
            self.newest,
            self.stored,
            self.raw,
        ]


def _prefix(value: object) -> PrefixStats | None:
    if not isinstance(value, list) or len(value) != 8:
        return None
    offset, last_seq, records, checkpoints, oldest, newest, stored, raw = value
    integers = (offset, last_seq, records, checkpoints, stored, raw)
    if not all(type(v) is int and 0 <= v < 1 << 63 for v in integers):
        return None
    times = (oldest, newest)
    if not all(t is None or (type(t) in (int, float) and math.isfinite(t)) for t in times):
        return None
    return PrefixStats(
        offset,
        last_seq,
        records,
        checkpoints,
        None if oldest is None else float(oldest),
        None if newest is None else float(newest),
        stored,
        raw,
    )


def hint_path(path: Path) -> Path:
    """The index file of the document file `path`."""
    return path.with_name(path.name + HINT_SUFFIX)


_LIMIT = 1 << 63


def _row(value: object) -> CheckpointHint | None:
    # Spelled out (no generator, no all()): a restore decodes every row of the index.
    if type(value) is not list or len(value) != 7:
        return None
    offset, length, checksum, seq, covers, covers_timestamp, tail = value
    if not (
        type(offset) is int
        and type(length) is int
        and type(checksum) is int
        and type(seq) is int
        and type(covers) is int
        and type(tail) is int
        and 0 <= tail <= offset < _LIMIT
        and 0 <= length < _LIMIT
        and 0 <= checksum < 1 << 32
        and 1 <= covers < seq < _LIMIT
    ):
        return None
    if type(covers_timestamp) is not float:
        if type(covers_timestamp) is not int or not -_LIMIT < covers_timestamp < _LIMIT:
            return None
        covers_timestamp = float(covers_timestamp)
    if not math.isfinite(covers_timestamp):
        return None
    return CheckpointHint(offset, length, checksum, seq, covers, covers_timestamp, tail)


@dataclass(frozen=True)
class IndexView:
    """A document file's index as read, its checkpoint rows decoded only when taken.

    A restore needs the row covering most (and the next only if that one fails
    its checks): it takes them from `latest_first` instead of decoding every row
    (up to `MAX_ENTRIES`) as `hints()` does.

    Attributes:
        inode: The document file's inode when the index was written.
        device: Its device.
        rows: The checkpoint rows as parsed from the JSON, undecoded.
        fields: The whole parsed index.
    """

    inode: int
    device: int
    rows: list[object]
    fields: dict[str, object]

    def latest_first(self) -> Iterator[CheckpointHint]:
        """The checkpoints that decode, the one covering most first (as `Hints.latest_first`)."""
        # `covers` is sorted on as stored; a row that does not decode is dropped when taken
        keyed = [row for row in self.rows if type(row) is list and len(row) == 7]
        keyed = [row for row in keyed if type(row[4]) is int]
        keyed.sort(key=_covers, reverse=True)
        for row in keyed:
            hint = _row(row)
            if hint is not None:
                yield hint

    def hints(self) -> Hints:
        """Every row decoded (rows that do not decode are left out)."""
        checkpoints = tuple(hint for hint in map(_row, self.rows) if hint is not None)
        packed = self.fields.get("packed", 0)
        if type(packed) is not int or not 0 <= packed < 1 << 63:
            packed = 0
        return Hints(
            self.inode, self.device, checkpoints, packed, _prefix(self.fields.get("prefix"))
        )


def _covers(row: list[int]) -> int:
    return row[4]


def read_index(path: Path, root: Path | None) -> IndexView | None:
    """The index of the document file `path`, rows undecoded, or None if there is
    none usable (see `read_hints`)."""
    try:
        fd, _ = open_inside(hint_path(path), root, os.O_RDONLY)
    except Exception:  # missing, a link, or leading out of the root (StoreIOError)
        return None
    try:
        data = os.read(fd, MAX_HINT_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_HINT_BYTES:
        return None
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or parsed.get("format") != _FORMAT:
        return None
    inode, device, rows = parsed.get("inode"), parsed.get("device"), parsed.get("checkpoints")
    if parsed.get("version") != _VERSION or type(inode) is not int or type(device) is not int:
        return None
    if not isinstance(rows, list):
        return None
    return IndexView(inode, device, rows, parsed)


def read_hints(path: Path, root: Path | None) -> Hints | None:
    """The index of the document file `path`, or None if there is none usable.

    Never raises for the index's sake: a link, a huge file, bad JSON or bad
    rows make it None (rows that do not decode are left out).
    """
    view = read_index(path, root)
    return None if view is None else view.hints()


def write_hints(path: Path, root: Path | None, hints: Hints) -> bool:
    """Replace the index of `path` by `hints` (rename, no fsync: it is a cache).

    Returns:
        Whether it was written (a failure is not an error: restores scan instead).
    """
    target = hint_path(path)
    rows = sorted(hints.checkpoints, key=lambda hint: hint.offset)[-MAX_ENTRIES:]
    fields: dict[str, object] = {
        "format": _FORMAT,
        "version": _VERSION,
        "inode": hints.inode,
        "device": hints.device,
        "checkpoints": [hint.as_list() for hint in rows],
    }
    if hints.packed_through:
        fields["packed"] = hints.packed_through
    if hints.prefix is not None:
        fields["prefix"] = hints.prefix.as_list()
    body = json.dumps(fields, separators=(",", ":")).encode()
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        _remove_stale(target)
        fd, _ = open_inside(tmp, root, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp, inside_root(target, root))
    except Exception:
        tmp.unlink(missing_ok=True)
        return False
    return True


def update_hints(
    path: Path,
    root: Path | None,
    inode: int,
    device: int,
    change: Callable[[Hints | None], Hints | None],
    *,
    wait: float = 0.0,
) -> bool:
    """Replace the index of the document file `path` by `change(index)`, under its lock.

    `index` is the index as it is now if it is that of the file `(inode, device)`,
    else None; `change` returns the new index, or None to leave it as it is. The
    document file's exclusive lock is held from the read to the rename, so no
    other update (a checkpoint, a rewrite) comes in between.

    Returns:
        Whether `change` was applied: False when `path` is no longer that file
        or its lock stayed taken for `wait` seconds (nothing is written then).
    """
    try:
        fd, _ = open_inside(path, root, os.O_RDONLY)
    except Exception:  # gone, or a link: nothing to index
        return False
    try:
        if not _lock(fd, wait):
            return False
        try:
            now = os.stat(inside_root(path, root))
        except OSError:
            return False
        opened = os.fstat(fd)
        if {(now.st_ino, now.st_dev), (opened.st_ino, opened.st_dev)} != {(inode, device)}:
            return False  # replaced: the new file's index is its writer's
        current = read_hints(path, root)
        if current is not None and (current.inode, current.device) != (inode, device):
            current = None
        new = change(current)
        if new is not None and not write_hints(path, root, new):
            remove_hints(path, root)
        return True
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, wait: float) -> bool:
    """Take the exclusive lock of `fd`, trying for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def remove_hints(path: Path, root: Path | None) -> None:
    """Delete the index of `path` (after a rewrite made it stale); never raises."""
    try:
        inside_root(hint_path(path), root).unlink(missing_ok=True)
    except Exception:
        return


def _remove_stale(target: Path) -> None:
    """Delete index temporaries more than a minute old (a writer killed midway)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{8}}\.tmp")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry.name):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < time.time() - 60:
                    Path(entry.path).unlink(missing_ok=True)
            except OSError:
                continue
