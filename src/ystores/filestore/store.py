"""`FileYStore` and `TempFileYStore`: one file per document."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from logging import Logger
from pathlib import Path
from typing import Any, TypeVar

import anyio

from .. import crdt
from ..base import BaseYStore, MetadataCallback
from ..clock import Clock
from ..compaction.leases import file_lease
from ..compaction.policy import CompactionPolicy, LogStats, SquashReport
from ..crdt import validate_update
from ..errors import InvalidDocumentNameError, StoreIOError
from ..following import ChangeSignal
from ..groupcommit import GroupCommitter
from ..history import CheckpointPolicy, CheckpointReport, RetentionPolicy
from ..history.packing import PackReport
from ..history.stats import HistoryStats
from ..history.thinning import ThinningPolicy
from ..names import resolve_under
from ..records import Record
from ..threads import run_in_worker
from .checkpointing import (
    RestoreResult,
    history_stats_file,
    restore_batches,
    state_at_file,
    write_checkpoint,
)
from .compaction import file_stats, squash_file
from .following import file_signal
from .log import FileLog
from .packing import PACK_AFTER, pack_file
from .reading import RecordReader
from .retention import retain_file
from .scanning import Scanner, TornTail

__all__ = ["FileYStore", "TempFileYStore"]

T = TypeVar("T")


class FileYStore(BaseYStore):
    """A store that keeps one document in one file.

    The file is an append-only log of checksummed records (format version 4;
    see the file format page). Version-3 files are read and appended to as they
    are, and rewritten as version 4 (atomically) before the first checkpoint or
    compressed record. Files written by ypy-websocket (versions 0, 1 and 2) are
    read as they are; writing to one raises `LegacyFormatError` until it is
    migrated with `ystore migrate PATH`, or unless the store is opened with
    `upgrade=True`.

    History is kept record by record; checkpoints (`checkpoint()`) let a restore
    start from the latest one, found through a small index beside the file
    (`NAME.ckpt-index`, a cache checked before use). `pack()` packs the covered
    history into blocks and thins old checkpoints (the file is then version 5).

    Concurrent `write()` calls are group-committed: one write and one fsync per
    batch. Processes sharing a file take turns through an exclusive file lock.

    Args:
        path: The file, or with `root` the document's name relative to `root`.
        metadata_callback: Returns the metadata stored with each update.
        log: Logger for warnings (torn tails, upgrades).
        root: A directory holding many documents; `path` may then not escape it,
            and every open checks again that no symbolic link leads it outside.
        fsync: Whether `write()` returns only once the update is on disk (the
            default). False leaves flushing to the operating system: much faster,
            but a power loss may drop the last writes (a process crash does not).
        upgrade: Allow rewriting an older-format file in the current format on
            the first write (atomically: new file, fsync, rename, fsync directory).
        validate: Check that each update decodes as a Yjs update before writing it.
        clock: The time source for timestamps.
        compaction: When a running store squashes the file in the background.
        checkpoints: When a running store writes checkpoints (see `BaseYStore`).
        retention: How much history a running store keeps (see `BaseYStore`).
        compress: Store updates (and checkpoints, snapshots) zlib-compressed.
    """

    version = 4

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        root: str | Path | None = None,
        fsync: bool = True,
        upgrade: bool = False,
        validate: bool = True,
        clock: Clock | None = None,
        compaction: CompactionPolicy | None = None,
        checkpoints: CheckpointPolicy | None = None,
        retention: RetentionPolicy | None = None,
        compress: bool | None = None,
    ) -> None:
        self._root = Path(root).resolve() if root is not None else None
        if root is not None:
            file = resolve_under(root, path)
        else:
            if not path or "\x00" in str(path):
                raise InvalidDocumentNameError(f"{path!r} is not a usable file path.")
            file = Path(path)
        super().__init__(
            str(file),
            metadata_callback,
            log,
            clock=clock,
            compaction=compaction,
            checkpoints=checkpoints,
            retention=retention,
            compress=compress,
        )
        self.name = str(path)
        self.file_path = file
        self.validate = validate
        self._file_log = FileLog(file, fsync=fsync, upgrade=upgrade, log=self.log, root=self._root)
        self._committer: GroupCommitter[tuple[bytes, bytes, float], int] = GroupCommitter(
            self._flush
        )
        self.torn_tail: TornTail | None = None
        """The incomplete bytes found at the end of the file by the last read, if any."""
        self.pack_after = PACK_AFTER
        """Covered, unpacked records that make `pack()` rewrite the file (see `packing`)."""

    async def write(self, data: bytes) -> None:
        """Append one update; return once it is on disk (see `fsync`).

        Raises:
            InvalidUpdateError: `data` is not a Yjs v1 update (nothing is written).
            LegacyFormatError: The file is in an older format; migrate it first.
            CorruptStoreError: The file is damaged before its end.
            StoreIOError: The operating system refused the write.
        """
        if self.validate:
            validate_update(data)
        metadata = await self.get_metadata()
        await self._committer.submit((bytes(data), metadata, self.clock()))
        self._note_write(len(data))

    async def _flush(self, entries: Sequence[tuple[bytes, bytes, float]]) -> list[int]:
        file_log = self._file_log
        file_log.compress = self.compress
        appended = file_log.try_append_now(entries)  # a pwrite, on the loop
        if appended is None:
            return await run_in_worker(lambda: file_log.append(entries))
        seqs, fd = appended
        if fd is not None:  # only the fdatasync waits, in a worker thread
            await run_in_worker(lambda: file_log.sync_descriptor(fd))
        return seqs

    async def log_stats(self) -> LogStats | None:
        """The shape of the file's log (reads it through, streaming; None without records)."""
        return await run_in_worker(lambda: file_stats(self.file_path, self.log, root=self._root))

    async def squash(self) -> SquashReport | None:
        """Merge the file's history into one snapshot record, atomically (see `BaseYStore`).

        Writes a new file (the snapshot, then the records appended meanwhile),
        fsyncs it, renames it over the old one and fsyncs the directory.

        Raises:
            LegacyFormatError: The file is in an older format (migrate it first).
            CorruptStoreError: The file is damaged before its end.
            StoreIOError: The operating system refused a read or a write (disk
                full...); the old file is left as it was.
        """
        try:
            return await run_in_worker(
                lambda: squash_file(self.file_path, self.name, self.log, root=self._root)
            )
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(
                f"Could not squash {self.file_path}: {exc.strerror or exc}; the file is unchanged."
            ) from exc

    async def checkpoint(self) -> CheckpointReport | None:
        """Append a checkpoint of everything stored so far (see `BaseYStore.checkpoint`).

        The merge is built from the latest valid checkpoint or snapshot and the
        records after it, and verified, without the write lock; only the append
        takes it (after writes already queued). A version-3 file is upgraded first.

        Raises:
            LegacyFormatError: The file is in an older format (migrate it first).
            CorruptStoreError: The file is damaged before its end.
            StoreIOError: The operating system refused a read or a write.
        """
        try:
            return await run_in_worker(
                lambda: write_checkpoint(
                    self.file_path,
                    self.name,
                    self.log,
                    root=self._root,
                    compress=self.compress,
                    clock=self.clock,
                )
            )
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(
                f"Could not write a checkpoint to {self.file_path}: {exc.strerror or exc}."
            ) from exc

    async def retain(self, policy: RetentionPolicy | None = None) -> SquashReport | None:
        """Drop the history `policy` (default: the store's) does not keep (see `BaseYStore`).

        The records before the cut are folded into a snapshot at the head of a
        rewritten file (crash-safe, like `squash`; records appended meanwhile are
        kept); `RetentionPolicy.none()` is `squash()`.
        """
        policy = policy or self.retention
        if policy is None:
            return None
        if policy.keeps_nothing:
            return await self.squash()
        try:
            return await run_in_worker(
                lambda: retain_file(
                    self.file_path,
                    self.name,
                    self.log,
                    policy,
                    root=self._root,
                    compress=self.compress,
                    clock=self.clock,
                )
            )
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(
                f"Could not apply retention to {self.file_path}: {exc.strerror or exc}; "
                "the file is unchanged."
            ) from exc

    async def pack(
        self, *, thinning: ThinningPolicy | None = None, block_records: int = 1000
    ) -> PackReport | None:
        """Pack covered history into blocks and thin old checkpoints (see `BaseYStore.pack`).

        A crash-safe rewrite of the file (like `retain`), done only once at least
        `pack_after` (default `filestore.packing.PACK_AFTER`) covered records are unpacked or a
        checkpoint is to be dropped; otherwise a cheap look at the index. The
        first pack rewrites the file in format version 5.

        Raises:
            LegacyFormatError: The file is in an older format (migrate it first).
            CorruptStoreError: The file is damaged before its end.
            StoreIOError: The operating system refused a read or a write; the
                file is unchanged.
        """
        policy = thinning or ThinningPolicy()
        try:
            return await run_in_worker(
                lambda: pack_file(
                    self.file_path,
                    self.name,
                    self.log,
                    root=self._root,
                    thinning=policy,
                    block_records=block_records,
                    pack_after=self.pack_after,
                )
            )
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(
                f"Could not pack {self.file_path}: {exc.strerror or exc}; the file is unchanged."
            ) from exc

    async def state_at(self, at: float | None = None, *, seq: int | None = None) -> bytes:
        """The document at time `at` or record `seq` (see `BaseYStore.state_at`).

        Starts from the nearest valid checkpoint at or before that point.
        """
        if (at is None) == (seq is None):
            raise ValueError("state_at() takes a time or a seq, exactly one of them.")
        return await self._in_worker(lambda: state_at_file(self._reader_log(), seq=seq, at=at))

    async def history_stats(self) -> HistoryStats | None:
        """How much history the file keeps (one streaming pass; None without records)."""
        return await self._in_worker(lambda: history_stats_file(self._reader_log()))

    def _reader_log(self) -> FileLog:
        return FileLog(self.file_path, fsync=False, upgrade=False, log=self.log, root=self._root)

    async def _in_worker(self, work: Callable[[], T]) -> T:
        try:
            return await run_in_worker(work)
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(f"Could not read {self.file_path}: {exc.strerror or exc}.") from exc

    def read_records(self, *, checkpoints: bool = False) -> AsyncIterator[Record]:
        """Iterate over the stored records (with seq and kind), streaming from disk.

        Checkpoint records are left out unless `checkpoints` is true.

        The iterator may be abandoned at any point (on trio too); it closes the
        file when the records run out, on `aclose()`, or when it is dropped.

        Raises:
            YDocNotFound: There is no file, or it holds no record.
            UnknownFormatError: The file is in no known format.
            CorruptStoreError: A record fails its checksum before the end of the file.
            StoreIOError: The operating system refused the read.
        """
        shape = Scanner.__iter__ if checkpoints else Scanner.records
        return RecordReader(self._file_log, shape, self._end_of_records)

    def read(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """Iterate over `(update, metadata, timestamp)` in write order, streaming from disk.

        Raises:
            YDocNotFound: There is no file, or it holds no record.
            UnknownFormatError: The file is in no known format.
            CorruptStoreError: A record fails its checksum before the end of the file.
            StoreIOError: The operating system refused the read.
        """
        return RecordReader(self._file_log, Scanner.triples, self._end_of_records)

    async def apply_updates(self, ydoc: Any) -> None:
        """Apply every stored update to `ydoc` (a `y_py.YDoc` or a `pycrdt.Doc`).

        Starts from the latest valid checkpoint (or snapshot) and applies the
        records after it, each batch in one transaction (see `crdt.apply_updates`).
        The checkpoint is found through the file's index when that checks out,
        else by one pass over the file.

        Raises:
            YDocNotFound: There is no file, or it holds no record.
            InvalidUpdateError: A stored update could not be applied.
            CorruptStoreError: A record fails its checksum before the end of the file.
        """
        result = RestoreResult()
        batches = restore_batches(self._file_log, result)
        try:
            while (batch := await self._in_worker(lambda: next(batches, None))) is not None:
                crdt.apply_updates(ydoc, batch)
                if result.last:  # the index's path: all of it in one batch, one hop
                    break
        finally:
            batches.close()
        self.torn_tail = result.tail
        if result.tail is not None:
            self.log.warning(
                "%s ends in %d bytes that are not a complete record (a write cut "
                "short); they are ignored and will be cut off before the next write.",
                self.path,
                result.tail.size,
            )

    def change_signal(self) -> AbstractAsyncContextManager[ChangeSignal]:
        """A follower's signal: the file polled with `stat` (see `filestore.following`)."""
        return file_signal(self.file_path, self.follow_interval)

    def compaction_lease(self) -> AbstractAsyncContextManager[bool]:
        """The file's compaction lease: an OFD lock on a byte far past its end."""
        return file_lease(self.file_path, "")

    def _end_of_records(self, scanner: Scanner) -> None:
        self.torn_tail = scanner.tail
        if scanner.tail is not None:
            self.log.warning(
                "%s ends in %d bytes that are not a complete record (a write cut "
                "short); they are ignored and will be cut off before the next write.",
                self.path,
                scanner.tail.size,
            )

    async def _close(self) -> None:
        await anyio.to_thread.run_sync(self._file_log.close)


class TempFileYStore(FileYStore):
    """A `FileYStore` whose documents live under a temporary directory.

    As in ypy-websocket, every instance of a class shares one directory, made on
    first use with the class attribute `prefix_dir` as prefix and remembered in
    the class attribute `base_dir`. The constructor arguments take precedence and
    apply to that instance only.

    Args:
        path: The document's name, relative to the directory.
        metadata_callback: Returns the metadata stored with each update.
        log: Logger for warnings.
        prefix_dir: Prefix for a new temporary directory for this instance.
        base_dir: An existing directory to use for this instance.
        fsync: See `FileYStore`.
        upgrade: See `FileYStore`.
        validate: See `FileYStore`.
        clock: See `FileYStore`.
        compaction: See `FileYStore`.
        checkpoints: See `FileYStore`.
        retention: See `FileYStore`.
        compress: See `FileYStore`.
    """

    prefix_dir: str | None = None
    base_dir: str | None = None

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        prefix_dir: str | None = None,
        base_dir: str | Path | None = None,
        fsync: bool = True,
        upgrade: bool = False,
        validate: bool = True,
        clock: Clock | None = None,
        compaction: CompactionPolicy | None = None,
        checkpoints: CheckpointPolicy | None = None,
        retention: RetentionPolicy | None = None,
        compress: bool | None = None,
    ) -> None:
        if base_dir is not None:
            self.base_dir = str(base_dir)
        elif prefix_dir is not None:
            self.prefix_dir = prefix_dir
            self.base_dir = tempfile.mkdtemp(prefix=prefix_dir)
        super().__init__(
            path,
            metadata_callback,
            log,
            root=self.get_base_dir(),
            fsync=fsync,
            upgrade=upgrade,
            validate=validate,
            clock=clock,
            compaction=compaction,
            checkpoints=checkpoints,
            retention=retention,
            compress=compress,
        )

    def get_base_dir(self) -> str:
        """The directory holding this store's files (made on first use)."""
        if self.base_dir is None:
            self.make_directory()
        assert self.base_dir is not None
        return self.base_dir

    def make_directory(self) -> None:
        """Make the class's shared temporary directory."""
        type(self).base_dir = tempfile.mkdtemp(prefix=self.prefix_dir)
