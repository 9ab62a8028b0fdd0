"""`FileLog`: one document's file on disk, with locking, appends and atomic rewrites.

Everything here is synchronous and meant to run in a worker thread. Writers take
an exclusive `flock` for each batch, so processes appending to one file never
interleave; readers take a shared lock just long enough to learn the file's size.
A file is only ever replaced by rename, under the exclusive lock of the file it
replaces; a writer that finds the path pointing at another inode reopens it.
With a root, every open, rename and side file is checked to stay under it (see
`paths`), and the directories a first write creates are fsynced with it.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from logging import Logger
from pathlib import Path
from typing import BinaryIO

from ..errors import LegacyFormatError, StoreIOError
from ..history.compression import DEFAULT_THRESHOLD
from ..records import Record, RecordKind
from .damage import all_zero
from .formats import CURRENT_VERSION, HEADER, FileFormat, detect_format, open_scanner
from .frames import encode_frame, encode_frames, needs_v4
from .paths import fsync_directory, inside_root, make_directories, open_inside
from .scanning import Scanner, TornTail

__all__ = ["FileLog", "fsync_directory", "replace_file"]


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files that a replace of `path` killed midway left behind.

    Only the holder of the file's exclusive lock writes one, so under the lock any
    that exists is stale. The exact name pattern never matches another document's.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.tmp")
    for entry in os.scandir(path.parent):
        if pattern.fullmatch(entry.name):
            Path(entry.path).unlink(missing_ok=True)


def replace_file(
    path: Path, frames: Iterable[bytes], *, root: Path | None = None, header: bytes = HEADER
) -> int:
    """Atomically replace `path` by a file holding `header` then `frames` (encoded records).

    Writes a temporary file beside it, fsyncs it, renames it over `path` and
    fsyncs the directory: a crash at any point leaves the old file or the new one.
    The caller holds the exclusive lock of the file being replaced.

    Args:
        path: The file to replace.
        frames: The encoded records.
        root: The store's root (resolved), which `path` must still be under.
        header: The version header (default: version 4's; a file holding a
            block is written with version 5's).

    Returns:
        The size of the new file.

    Raises:
        StoreIOError: `path` now leads outside `root`.
    """
    path = inside_root(path, root)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    size = 0
    try:
        fd, _ = open_inside(tmp, root, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            size += len(header)
            for frame in frames:
                size += out.write(frame)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, inside_root(path, root))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return size


class FileLog:
    """The file of one document.

    Args:
        path: The file.
        fsync: Whether each batch is fdatasync'ed before `append` returns.
        upgrade: Whether an older-format file may be rewritten in the current format.
        log: Where torn-tail warnings go.
        root: The store's root (resolved): every open is checked to stay under it.

    Attributes:
        compress: Whether appended updates go through `history.compression.compress`
            (a version-3 file is upgraded to version 4 before the first such append).
        last_offset: Where the frame of the last record appended starts.
    """

    def __init__(
        self, path: Path, *, fsync: bool, upgrade: bool, log: Logger, root: Path | None = None
    ) -> None:
        self.path = path
        self.root = root
        self._unsynced_directories: list[Path] = []  # made for the file, not yet fsynced
        self.fsync = fsync
        self.upgrade = upgrade
        self.log = log
        self._file: BinaryIO | None = None
        self._finalizer = weakref.finalize(self, lambda: None)
        self._end: int | None = None  # end of verified records in the open file
        self._last_seq = 0
        self._version = CURRENT_VERSION  # of the open file, once known
        self.compress = False
        self.last_offset = 0
        self.last_length = 0
        self._seed: tuple[int, int, int, int] | None = None
        self.last_torn_tail: TornTail | None = None

    def close(self) -> None:
        """Close the file (a later append reopens it)."""
        if self._file is not None:
            self._finalizer.detach()
            self._file.close()
            self._file = None
            self._end = None

    # -- writing -------------------------------------------------------------

    def append(
        self, entries: Sequence[tuple[bytes, bytes, float]], kind: RecordKind = RecordKind.UPDATE
    ) -> list[int]:
        """Append `(update, metadata, timestamp)` entries as one write; return their seqs.

        Args:
            entries: The records' contents.
            kind: Their kind (a checkpoint is appended with `RecordKind.CHECKPOINT`).
        """
        try:
            while True:
                with self._exclusive() as file:
                    size = os.fstat(file.fileno()).st_size
                    if not (self._end == size or self._catch_up(file, size)):
                        continue
                    if (
                        self._version < 4
                        and self._end
                        and needs_v4(kind, compressing=self.compress)
                    ):
                        self._upgrade_to_v4(file)
                        continue
                    return self._append_locked(file, entries, sync=self.fsync, kind=kind)
        except StoreIOError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise StoreIOError(f"Could not append to {self.path}: {exc.strerror or exc}.") from exc

    def try_append_now(
        self, entries: Sequence[tuple[bytes, bytes, float]]
    ) -> tuple[list[int], int | None] | None:
        """Append without ever waiting, or return None when that cannot be done.

        It can be done when the file is open and holds records, its lock is free,
        and nobody has appended since our last write: then the append is one
        `pwrite` into the page cache, cheap enough to run on the event loop.
        Otherwise (first write, another writer's records to verify, a file
        replaced by compaction) the caller runs `append` in a worker thread.

        Returns:
            The records' seqs and, when `fsync` is on, a duplicate of the file's
            descriptor that the caller must hand to `sync_descriptor` (in a worker
            thread) before the append counts as stored.
        """
        file = self._file
        if file is None or not self._end:
            return None
        if self.compress and (
            self._version < 4 or any(len(entry[0]) >= DEFAULT_THRESHOLD for entry in entries)
        ):
            return None  # an upgrade first, or compression: in a worker thread
        fd = file.fileno()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            opened = os.fstat(fd)
            if opened.st_size != self._end or os.stat(self.path).st_ino != opened.st_ino:
                return None
            seqs = self._append_locked(file, entries, sync=False)
            return seqs, (os.dup(fd) if self.fsync else None)
        except FileNotFoundError:
            return None
        except StoreIOError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise StoreIOError(f"Could not append to {self.path}: {exc.strerror or exc}.") from exc
        finally:
            if self._file is file:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def sync_descriptor(self, fd: int) -> None:
        """`fdatasync` a descriptor from `try_append_now`, then close it."""
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise StoreIOError(f"Could not append to {self.path}: {exc.strerror or exc}.") from exc
        finally:
            os.close(fd)

    def _append_locked(
        self,
        file: BinaryIO,
        entries: Sequence[tuple[bytes, bytes, float]],
        *,
        sync: bool,
        kind: RecordKind = RecordKind.UPDATE,
    ) -> list[int]:
        fd = file.fileno()
        end = self._end
        assert end is not None
        records = [
            Record(seq, update, metadata, timestamp, kind)
            for seq, (update, metadata, timestamp) in enumerate(entries, self._last_seq + 1)
        ]
        data = encode_frames(records, compressing=self.compress)
        self.last_offset = end
        if end == 0:
            data = HEADER + data
            self.last_offset = len(HEADER)
            self._version = CURRENT_VERSION
        self._write_at(fd, data, end)
        self.last_length = end + len(data) - self.last_offset
        if sync:
            os.fdatasync(fd)
            if end == 0:
                self._sync_new_entries()
        self._end = end + len(data)
        if records:
            self._last_seq = records[-1].seq
        return [record.seq for record in records]

    def _sync_new_entries(self) -> None:
        """Make the file's entry durable, and those of the directories made for it."""
        pending = [self.path.parent, *self._unsynced_directories]
        for directory in dict.fromkeys(pending):  # innermost first, up to the root
            fsync_directory(directory)
        self._unsynced_directories = []

    def _write_at(self, fd: int, data: bytes, offset: int) -> None:
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.pwrite(fd, view[written:], offset + written)
        except BaseException:
            os.ftruncate(fd, offset)  # never leave a partial batch behind
            raise

    @contextmanager
    def locked(self) -> Iterator[BinaryIO]:
        """The open file under the exclusive lock, reopened if it was replaced meanwhile.

        For rewriting the file (compaction): other writers, in this process or
        another, wait until the block ends; rename a new file over the path inside it.
        """
        with self._exclusive() as file:
            yield file

    @contextmanager
    def _exclusive(self) -> Iterator[BinaryIO]:
        """The open file, locked exclusively, reopened if it was replaced meanwhile."""
        while True:
            if self._file is None:
                self._file = os.fdopen(self._open_for_writing(), "r+b", buffering=0)
                # A store that is never closed still releases its file when collected.
                self._finalizer = weakref.finalize(self, self._file.close)
                self._end = None
                self._take_seed(self._file)
            file = self._file
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(file.fileno()).st_ino:
                break
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            self.close()
        try:
            yield file
        finally:
            if self._file is file:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)

    def seed(self, inode: int, end: int, last_seq: int, version: int) -> None:
        """Tell the next open that the file `inode` was verified up to `end` (in `version`).

        A writer that scanned the file itself (a checkpoint's build) so spares the
        first append a scan from the start; a file replaced meanwhile is scanned.
        """
        self._seed = (inode, end, last_seq, version)

    def _take_seed(self, file: BinaryIO) -> None:
        seed, self._seed = self._seed, None
        if seed is not None and os.fstat(file.fileno()).st_ino == seed[0]:
            self._end, self._last_seq, self._version = seed[1], seed[2], seed[3]

    def inode(self) -> int | None:
        """The inode of the open file (None when closed)."""
        return None if self._file is None else os.fstat(self._file.fileno()).st_ino

    def pread(self, size: int, offset: int) -> bytes:
        """Bytes of the open file."""
        assert self._file is not None
        return os.pread(self._file.fileno(), size, offset)

    def _open_for_writing(self) -> int:
        """Open (or create) the file, making its directories; each step checked under the root."""
        created = make_directories(self.path.parent, self.root)
        # the entry of each new directory lives in its parent: fsync those, up to the root
        self._unsynced_directories += [d.parent for d in reversed(created)]
        fd, _ = open_inside(self.path, self.root, os.O_RDWR | os.O_CREAT)
        return fd

    def _catch_up(self, file: BinaryIO, size: int) -> bool:
        """Verify what other writers (or a crash) left since our last append; cut a torn tail.

        Returns:
            False when the file was replaced (upgraded) and must be reopened.
        """
        path = str(self.path)
        fmt = detect_format(file, size, path)
        if fmt is None:
            os.ftruncate(file.fileno(), 0)
            self._end, self._last_seq = 0, 0
            return True
        if fmt.legacy:
            if not self.upgrade:
                raise LegacyFormatError(
                    f"{path} is in {fmt.description}: ystores reads it but does not append "
                    f"to it. Run `ystore migrate {path}` to upgrade it in place (an atomic "
                    "rewrite), or open the store with upgrade=True.",
                    path=path,
                )
            self._upgrade(file, fmt, size)
            return False
        self._version = fmt.version
        resume = self._end is not None and self._end <= size
        scanner = open_scanner(
            file,
            fmt,
            size,
            path=path,
            start=self._end if resume and self._end else 0,
            last_seq=self._last_seq if resume else 0,
        )
        for _batch in scanner:
            pass
        if scanner.tail is not None:
            self._cut_tail(file, scanner.tail)
        self._end, self._last_seq = scanner.good_end, scanner.last_seq
        return True

    def _save_tail(self, file: BinaryIO, tail: TornTail) -> str:
        """Copy a torn tail's bytes to `<file>.torn-<offset>` before they are dropped.

        Returns:
            Where they went, in words ("to PATH"; zeros, which hold nothing, are not copied).
        """
        fd = file.fileno()
        end = tail.offset + tail.size
        if all_zero(fd, tail.offset, end):
            return "nowhere (they were all zeros)"
        saved = self.path.with_name(f"{self.path.name}.torn-{tail.offset}")
        out, _ = open_inside(saved, self.root, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(out, "wb") as copy:
            offset = tail.offset
            while offset < end:  # a chunk at a time: a torn tail may be large
                chunk = os.pread(fd, min(1 << 20, end - offset), offset)
                if not chunk:
                    break
                copy.write(chunk)
                offset += len(chunk)
        return f"to {saved}"

    def _cut_tail(self, file: BinaryIO, tail: TornTail) -> None:
        fd = file.fileno()
        saved = self._save_tail(file, tail)
        os.ftruncate(fd, tail.offset)
        os.fsync(fd)
        self.last_torn_tail = tail
        self.log.warning(
            "%s ended in %d bytes that are not a complete record (a write cut short); "
            "they were moved %s and the file was cut back to its last complete record.",
            self.path,
            tail.size,
            saved,
        )

    def _upgrade(self, file: BinaryIO, fmt: FileFormat, size: int) -> None:
        scanner = open_scanner(file, fmt, size, path=str(self.path))
        replace_file(
            self.path, (encode_frame(r) for batch in scanner for r in batch), root=self.root
        )
        if scanner.tail is not None:
            # the old file is still open: keep its torn bytes, as a cut in place does
            saved = self._save_tail(file, scanner.tail)
            self.last_torn_tail = scanner.tail
            self.log.warning(
                "%s ended in %d bytes that are not a complete record; they were copied "
                "%s and left out of the upgraded file.",
                self.path,
                scanner.tail.size,
                saved,
            )
        self.log.warning("%s was upgraded from %s to version 4.", self.path, fmt.description)
        self.close()  # the path now names the new file; the caller's lock is on the old one

    def _upgrade_to_v4(self, file: BinaryIO) -> None:
        """Rewrite a version-3 file (verified up to `_end`) with a version-4 header.

        The frames are copied byte for byte (every v3 frame is a valid v4 frame)
        into a new file renamed over the old one: a crash leaves either. The caller
        holds the exclusive lock and reopens the file afterwards.
        """
        assert self._end is not None
        fd = file.fileno()
        start = detect_format(file, self._end, str(self.path))
        assert start is not None
        end = self._end

        def chunks() -> Iterator[bytes]:
            offset = start.data_offset
            while offset < end:
                chunk = os.pread(fd, min(1 << 20, end - offset), offset)
                if not chunk:
                    break
                yield chunk
                offset += len(chunk)

        replace_file(self.path, chunks(), root=self.root)
        self.log.info("%s was upgraded from file format version 3 to 4.", self.path)
        self.close()  # the path now names the new file; the caller's lock is on the old one

    def ensure_current(self) -> FileFormat | None:
        """Rewrite an older-format file in the current format (atomically).

        Returns:
            The format the file was in before, or None if there is no file or it
            holds nothing yet.
        """
        if not self.path.exists():
            return None
        try:
            with self._exclusive() as file:
                size = os.fstat(file.fileno()).st_size
                before = detect_format(file, size, str(self.path))
                if before is not None and before.legacy:
                    self._upgrade(file, before, size)
                return before
        except StoreIOError:
            raise
        except OSError as exc:
            self.close()
            raise StoreIOError(f"Could not upgrade {self.path}: {exc.strerror or exc}.") from exc
        finally:
            self.close()

    # -- reading ---------------------------------------------------------------

    def open_reader(self) -> tuple[BinaryIO, FileFormat | None, int]:
        """Open the file for reading and learn its format and committed size.

        Returns:
            The open file (the caller closes it), its format (None when it holds no
            record yet) and the size to read up to.

        Raises:
            FileNotFoundError: There is no file.
        """
        fd, _ = open_inside(self.path, self.root, os.O_RDONLY)
        file = os.fdopen(fd, "rb")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_SH)
            try:
                size = os.fstat(file.fileno()).st_size
                fmt = detect_format(file, size, str(self.path))
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        except BaseException:
            file.close()
            raise
        return file, fmt, size

    def open_current(self, action: str) -> tuple[BinaryIO, FileFormat, int] | None:
        """Open the file for a whole-file job (squash, retention, checkpoint, pack).

        Args:
            action: What the job does, for the error message ("packing it").

        Returns:
            As `open_reader`, or None when there is no file or it holds no record.

        Raises:
            LegacyFormatError: The file is in one of ypy-websocket's formats: it is
                migrated first (`ystore migrate`), never rewritten by such a job.
        """
        try:
            file, fmt, size = self.open_reader()
        except FileNotFoundError:
            return None
        if fmt is None:
            file.close()
            return None
        if fmt.legacy:
            file.close()
            raise LegacyFormatError(
                f"{self.path} is in {fmt.description}; run `ystore migrate {self.path}` "
                f"before {action}.",
                path=str(self.path),
            )
        return file, fmt, size

    def scanner(self, file: BinaryIO, fmt: FileFormat, size: int) -> Scanner:
        """A scanner over every record of an open file."""
        return open_scanner(file, fmt, size, path=str(self.path))
