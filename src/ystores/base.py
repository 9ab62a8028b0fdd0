"""`BaseYStore`: the contract every backend follows, and the lifecycle they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from inspect import isawaitable
from logging import Logger, getLogger
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from . import crdt
from .clock import Clock, system_clock
from .compaction.background import WriteNotes, run_compaction
from .compaction.history import HistoryCounts, HistoryNotes, run_history
from .compaction.policy import CompactionPolicy, LogStats, SquashReport
from .errors import HistoryNotKeptError, YDocNotFound
from .following import ChangeSignal, PollingSignal, followable
from .history import CheckpointPolicy, CheckpointReport, RetentionPolicy
from .history.packing import PackReport
from .history.thinning import ThinningPolicy
from .lifecycle import Lifecycle
from .records import Record, RecordKind

__all__ = ["BaseYStore", "MetadataCallback"]

APPLY_BATCH = 1024
"""Updates applied to a document per transaction by the default `apply_updates`."""

MetadataCallback = Callable[[], Awaitable[bytes] | bytes]
"""Returns the metadata bytes stored beside each update; may be sync or async."""


class BaseYStore(Lifecycle, ABC):
    """A log of Yjs updates for one document.

    Backends implement `write` and `read`. Everything else (metadata, applying
    the log to a document, the lifecycle) lives here.

    A store is used either as an async context manager (`async with store:`) or
    with `await task_group.start(store.start)` and `store.stop()`. Backends work
    without being started too (reads and writes open what they need lazily);
    starting gives them a task group for background work and a clean shutdown
    that flushes pending writes.

    Attributes:
        path: The document this store holds (a file path or a document name).
        metadata_callback: Called for each write; its bytes are stored with the update.
        log: Where warnings go (torn tails, lifecycle).
        clock: The time source for timestamps.
        compaction: When a running store squashes its log in the background
            (None: never; `ystore squash` and `squash()` still work).
        version: The storage format version this class writes.
        checkpoints: When a running store writes checkpoints in the background
            (None: never; `checkpoint()` still writes one).
        retention: How much history a running store keeps (None: all of it;
            `retain()` applies a policy once).
        compress: Whether updates are stored zlib-compressed (those long
            enough to shrink); old and new records mix freely.
        packing: Whether a running store that writes checkpoints packs the
            history each new checkpoint covers into blocks and thins old
            checkpoints (`pack()`), right after writing it; readers see no
            difference. Only backends that implement `pack()` do.
    """

    metadata_callback: MetadataCallback | None = None
    version: int = 3
    compaction: CompactionPolicy | None = None
    checkpoints: CheckpointPolicy | None = None
    retention: RetentionPolicy | None = None
    compress: bool = False
    packing: bool = True
    compaction_interval: float = 10.0
    """Seconds between the background compactor's idle-TTL checks."""
    history_interval: float = 10.0
    """Seconds between the background checks of whether a checkpoint is due."""
    retention_interval: float = 300.0
    """Seconds between the background applications of the retention policy."""
    follow_interval: float = 0.05
    """Seconds between change checks of a follower on a backend that polls."""

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        clock: Clock | None = None,
        compaction: CompactionPolicy | None = None,
        checkpoints: CheckpointPolicy | None = None,
        retention: RetentionPolicy | None = None,
        compress: bool | None = None,
        packing: bool | None = None,
    ) -> None:
        self.path = path
        if metadata_callback is not None:
            self.metadata_callback = metadata_callback
        if compaction is not None:
            self.compaction = compaction
        if checkpoints is not None:
            self.checkpoints = checkpoints
        if retention is not None:
            self.retention = retention
        if compress is not None:
            self.compress = compress
        if packing is not None:
            self.packing = packing
        self._write_notes: WriteNotes | None = None
        self._history_notes: HistoryNotes | None = None
        self.log = log or getLogger("ystores")
        self.clock: Clock = clock or system_clock
        self._task_group: TaskGroup | None = None

    # -- the contract -------------------------------------------------------

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Append one update; return once it is stored (durably, for durable stores).

        Args:
            data: A Yjs v1 update.
        """

    @abstractmethod
    def read(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """Iterate over `(update, metadata, timestamp)` in write order.

        Raises:
            YDocNotFound: The store holds no record for this document.
        """

    def read_records(self) -> AsyncIterator[Record]:
        """Iterate over the stored records (with seq and kind), the latest snapshot on.

        Backends with seqs implement this (following needs it); those that keep
        checkpoints take `checkpoints=True` to yield them too (copy, inspect, log).

        Raises:
            YDocNotFound: The store holds no record for this document.
        """
        raise NotImplementedError(f"{type(self).__name__} does not keep record seqs.")

    # -- following -------------------------------------------------------------

    def follow(self, after: int = 0, *, limit: int = 512) -> AsyncGenerator[list[Record], None]:
        """Yield the records appended to the document after seq `after`, as they arrive.

        Every record with a seq above `after` is yielded exactly once, in seq
        order, in lists of up to `limit`, whoever wrote it (this store, another
        store or process or server over the same document, `ystore import`).
        The iterator never ends by itself; close it (`aclose()`, or leave the
        `async for`) to stop following. Should it fail (the database is
        unreachable), follow again from the last seq seen: nothing is missed.

        A snapshot record (kind `RecordKind.SNAPSHOT`, written by compaction)
        replaces the records up to its seq: a follower behind it receives the
        snapshot instead of them; applying it to a document that holds some of
        them already is idempotent. See `ystores.following`.

        Args:
            after: The last seq the caller holds (0: from the beginning; see `last_seq`).
            limit: The most records per yielded list.

        Raises:
            NotImplementedError: The backend keeps no seqs (custom stores).
        """
        return self._follow(after, limit)

    async def _follow(self, after: int, limit: int) -> AsyncGenerator[list[Record], None]:
        async with self.change_signal() as signal:
            while True:
                records = signal.take(after, limit)  # what this process stored: no read
                if not records:
                    if not signal.pending(after):
                        await signal.wait()
                        continue
                    await signal.ready()
                    signal.fetching(after)
                    fetched = [r for r in await self.records_after(after, limit) if r.seq > after]
                    if len(fetched) >= limit:
                        signal.notify()  # cut short by the limit: more may be stored
                    records = [r for r in fetched if followable(r)]
                    if not records:
                        after = fetched[-1].seq if fetched else after
                        continue
                yield records
                after = records[-1].seq

    async def last_seq(self) -> int:
        """The highest seq stored for the document (0 without records).

        Follow from it after loading the document to hear only of later records.
        """
        last = 0
        records = self.read_records()
        try:
            async for record in records:
                last = record.seq
        except YDocNotFound:
            return 0
        finally:
            await _close(records)
        return last

    async def records_after(self, after: int, limit: int) -> list[Record]:
        """Up to `limit` records with seqs above `after`, from the latest snapshot on.

        Backends override this with a range query; this one scans `read_records`.
        """
        found: list[Record] = []
        records = self.read_records()
        # Shielded: a read cancelled while a worker thread opens the file would
        # leave that file open; one bounded scan is let finish instead.
        with anyio.CancelScope(shield=True):
            try:
                async for record in records:
                    if record.seq > after:
                        found.append(record)
                        if len(found) == limit:
                            break
            except YDocNotFound:
                return []
            finally:
                await _close(records)
        return found

    def change_signal(self) -> AbstractAsyncContextManager[ChangeSignal]:
        """A signal telling one follower that the document may have changed.

        Backends override this with their own notification path; this one polls
        every `follow_interval` seconds.
        """
        return self._polling_signal()

    @asynccontextmanager
    async def _polling_signal(self) -> AsyncIterator[ChangeSignal]:
        yield PollingSignal(self.path, self.follow_interval)

    # -- compaction ------------------------------------------------------------

    def compaction_lease(self) -> AbstractAsyncContextManager[bool]:
        """Hold the document's compaction lease while the block runs; yields whether it is held.

        Background compaction squashes only while holding it, so two processes or
        servers never squash one document at once; a holder that dies releases it.
        Backends shared between processes override this (see
        `ystores.compaction.leases`); this one is always held.
        """
        return self._always_held()

    @asynccontextmanager
    async def _always_held(self) -> AsyncIterator[bool]:
        yield True

    async def log_stats(self) -> LogStats | None:
        """The shape of the document's log (None when it has no record).

        Backends that support compaction implement this.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support compaction.")

    async def squash(self) -> SquashReport | None:
        """Merge the document's history into one snapshot with exactly the same content.

        Safe while writers keep writing: records written meanwhile stay after the
        snapshot. The snapshot's metadata is empty and its timestamp is that of
        the last record it replaces. Backends that support compaction implement this.

        Returns:
            What was done, or None when there was nothing to squash.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support compaction.")

    async def compact(self, policy: CompactionPolicy | None = None) -> SquashReport | None:
        """Squash the document if `policy` (default: the store's) says it is due.

        Returns:
            What was done, or None when the policy did not call for a squash.
        """
        policy = policy or self.compaction
        if policy is None:
            return None
        stats = await self.log_stats()
        if stats is None or policy.due(stats, self.clock()) is None:
            return None
        return await self.squash()

    # -- history ---------------------------------------------------------------

    async def checkpoint(self) -> CheckpointReport | None:
        """Write a checkpoint of everything stored so far (nothing is deleted).

        Built and verified outside the write path: writers keep writing; their
        records land after the checkpoint's `covers` and are replayed after it.
        Backends that keep history implement this.

        Returns:
            What was written, or None when the latest checkpoint (or snapshot)
            already covers the whole log.
        """
        raise NotImplementedError(f"{type(self).__name__} does not write checkpoints.")

    async def retain(self, policy: RetentionPolicy | None = None) -> SquashReport | None:
        """Drop the history that `policy` (default: the store's) does not keep.

        The records older than what is kept are merged into a checkpoint first,
        so the document's content never changes; `RetentionPolicy.none()` is a
        squash. Backends that keep history implement this.

        Returns:
            What was removed, or None when nothing was due.
        """
        raise NotImplementedError(f"{type(self).__name__} does not apply retention.")

    async def pack(
        self, *, thinning: ThinningPolicy | None = None, block_records: int = 1000
    ) -> PackReport | None:
        """Pack the history the latest checkpoint covers into blocks; thin old checkpoints.

        Nothing a reader sees changes: `read()`, `state_at()`, `ystore log` give
        the same records; a restore still starts from the latest checkpoint.
        Only update records covered by the latest trusted checkpoint are packed
        (never the tail a restore replays), at most `block_records` to a block,
        and a block never spans a checkpoint that thinning keeps. Checkpoints
        that `thinning` (default `ThinningPolicy()`) lets go are removed in the
        same step. Backends that keep history implement this.

        Returns:
            What was done, or None when there was nothing to pack or drop.
        """
        raise NotImplementedError(f"{type(self).__name__} does not pack history.")

    async def history_stats(self) -> HistoryCounts | None:
        """How much log follows the latest checkpoint, and the history's sizes (None: no record).

        Backends that keep history implement this (see `ystores.history.stats`);
        the background checkpointing counts the store's own writes without it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not report its history.")

    async def state_at(self, at: float | None = None, *, seq: int | None = None) -> bytes:
        """The document as it was at time `at`, or just after record `seq`, as one Yjs update.

        "At time `at`" means every record whose timestamp is at most `at` (in
        seq order, up to the last such record). Give exactly one of `at` and `seq`.
        The update applies to an empty y-py or pycrdt document (`crdt.apply_update`).
        Backends with checkpoints override this to start from the nearest one;
        this one replays the log from its start.

        Raises:
            YDocNotFound: The store holds no record for this document.
            HistoryNotKeptError: That point is older than the history kept.
        """
        if (at is None) == (seq is None):
            raise ValueError("state_at() takes a time or a seq, exactly one of them.")
        updates: list[bytes] = []
        first: Record | None = None
        records = self.read_records()
        try:
            async for record in records:
                if first is None:
                    first = record
                    _check_kept(record, at, seq)
                if _after(record, at, seq):
                    break
                updates.append(record.update)
        finally:
            await _close(records)
        if first is None:
            raise YDocNotFound(f"No document {self.path!r} in this store.")
        return crdt.merge_updates(updates)

    def _note_write(self, size: int) -> None:
        """Tell the background compactor about a write (backends call this)."""
        if self._write_notes is not None:
            self._write_notes.note(size)
        if self._history_notes is not None:
            self._history_notes.note(size)

    async def _open(self) -> None:
        """Acquire what the backend needs while started (hook for backends)."""

    async def _close(self) -> None:
        """Flush pending work and release resources (hook for backends)."""

    # -- metadata and documents --------------------------------------------

    async def get_metadata(self) -> bytes:
        """The metadata for the next write: the callback's bytes, or `b""` without one."""
        if self.metadata_callback is None:
            return b""
        metadata = self.metadata_callback()
        if isawaitable(metadata):
            metadata = await metadata
        if not isinstance(metadata, bytes):
            raise TypeError(f"metadata_callback must return bytes, not {type(metadata).__name__}.")
        return metadata

    async def apply_updates(self, ydoc: Any) -> None:
        """Apply every stored update to `ydoc` (a `y_py.YDoc` or a `pycrdt.Doc`).

        Updates are applied in batches, each in one transaction of `ydoc` (see
        `crdt.apply_updates`); backends override this to read their batches directly.

        Raises:
            YDocNotFound: The store holds no record for this document.
            InvalidUpdateError: A stored update could not be applied.
        """
        batch: list[bytes] = []
        async for update, _metadata, _timestamp in self.read():
            batch.append(update)
            if len(batch) == APPLY_BATCH:
                crdt.apply_updates(ydoc, batch)
                batch = []
        if batch:
            crdt.apply_updates(ydoc, batch)

    async def encode_state_as_update(self, ydoc: Any) -> None:
        """Store the whole state of `ydoc` (a `y_py.YDoc` or a `pycrdt.Doc`) as one update."""
        await self.write(crdt.encode_state_as_update(ydoc))

    # -- lifecycle -----------------------------------------------------------

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the store until `stop()`: open resources, then serve background work.

        Args:
            task_status: Signalled once the store is ready (for `TaskGroup.start`).

        Raises:
            StoreStateError: The store is already running.
        """
        stop_requested = self._begin()
        try:
            await self._open()
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                if self.compaction is not None and self.compaction.enabled:
                    self._write_notes = WriteNotes(self.compaction)
                    tg.start_soon(run_compaction, self, self._write_notes, self.compaction_interval)
                if self._keeps_history_in_background():
                    self._history_notes = HistoryNotes(self.checkpoints)
                    tg.start_soon(self._run_history, self._history_notes)
                self.started.set()
                task_status.started()
                await stop_requested.wait()
                tg.cancel_scope.cancel()
        finally:
            self._task_group = None
            self._write_notes = None
            self._history_notes = None
            with anyio.CancelScope(shield=True):
                await self._close()
            self._finish()

    def _keeps_history_in_background(self) -> bool:
        retention = self.retention
        keeps_all = (
            retention is None
            or retention.keep_all
            or (retention.window is None and retention.budget is None)
        )
        return self.checkpoints is not None or not keeps_all

    async def _run_history(self, notes: HistoryNotes) -> None:
        await run_history(
            self, notes, interval=self.history_interval, retention_interval=self.retention_interval
        )

    async def aclose(self) -> None:
        """Stop the store if it runs and wait until it has flushed and closed; else close it."""
        if self._stop_requested is None:
            await self._close()
        else:
            await super().aclose()


def _after(record: Record, at: float | None, seq: int | None) -> bool:
    if seq is not None:
        return record.seq > seq
    return at is not None and record.timestamp > at


def _check_kept(first: Record, at: float | None, seq: int | None) -> None:
    """Raise when a log starting with `first` no longer holds the point asked for."""
    if first.kind != RecordKind.SNAPSHOT:
        return
    if (seq is not None and seq < first.seq) or (at is not None and at < first.timestamp):
        raise HistoryNotKeptError(
            f"The history before seq {first.seq} (time {first.timestamp:.3f}) was squashed "
            "into a snapshot; the earliest state kept is the snapshot's.",
            oldest=first.timestamp,
        )


async def _close(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator left early (a reader holding a file open)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
