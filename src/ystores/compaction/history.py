"""Checkpoints and retention in the background of a running store, off the write path.

A store started with `checkpoints=CheckpointPolicy(...)` counts its writes (a
counter, nothing more); once the count crosses the policy, or every `interval`
seconds, its background task asks the store how much log follows the latest
checkpoint (`history_stats()`, which sees other processes' writes too; the
store's own count where a backend does not tell) and writes a checkpoint when
the policy calls for one. A store with `retention=RetentionPolicy(...)` applies
it every `retention_interval` seconds. Both run only under the document's
compaction lease, so two servers never do the same work at once.

A failure (disk full, database gone, anything) is logged and tried again after
a backoff that doubles from `RETRY_FIRST` to `RETRY_MAX` seconds; it never ends
the store's task group, and writes never wait on this work.

With `store.packing` (the default), a new checkpoint is followed, under the
same lease, by `store.pack()`: the history it covers is packed into blocks and
old checkpoints are thinned (backends without `pack()` skip this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio

from ..errors import YDocNotFound, YStoreError
from ..history.packing import PackReport
from ..history.policy import CheckpointPolicy, RetentionPolicy
from .background import RETRY_FIRST, RETRY_MAX

if TYPE_CHECKING:
    from ..base import BaseYStore

__all__ = ["HistoryCounts", "HistoryNotes", "HistoryOutcome", "history_round", "run_history"]


class HistoryCounts(Protocol):
    """What the background work needs of a backend's `history_stats()`."""

    @property
    def records_since(self) -> int:
        """Records after the latest valid checkpoint or snapshot."""

    @property
    def bytes_since(self) -> int:
        """Bytes of updates in those records."""


class HistoryNotes:
    """What a store has written since its latest checkpoint, as far as it knows."""

    def __init__(self, policy: CheckpointPolicy | None) -> None:
        self.policy = policy
        self.records = 0
        self.bytes = 0
        self.dirty = True  # unknown at start: ask the store once
        self.wake = anyio.Event()

    def note(self, size: int, records: int = 1) -> None:
        """Account for a write; wake the background task when a checkpoint may be due."""
        self.records += records
        self.bytes += size
        self.dirty = True
        if self.policy is not None and self.policy.due(self.records, self.bytes):
            self.wake.set()

    def reset(self) -> None:
        """Count afresh (after a checkpoint, or after the store said how much follows one)."""
        self.records = self.bytes = 0
        self.dirty = False
        self.wake = anyio.Event()


@dataclass(frozen=True)
class HistoryOutcome:
    """What one round of background history work did.

    Attributes:
        checkpointed: The checkpoint record's seq, None when none was written.
        retained: Whether retention removed records.
        packed: What packing after the checkpoint did (None: it did not run,
            or found nothing to do).
    """

    checkpointed: int | None = None
    retained: bool = False
    packed: PackReport | None = None


async def run_history(
    store: BaseYStore,
    notes: HistoryNotes,
    *,
    interval: float,
    retention_interval: float,
) -> None:
    """Write checkpoints and apply retention for `store` by its policies until cancelled.

    Never raises but for cancellation: failures are logged and retried with backoff.
    """
    backoff = 0.0
    clock = anyio.current_time
    next_retention = clock() if store.retention is not None else math.inf
    while True:
        if backoff:
            await anyio.sleep(backoff)
        else:
            wait = min(interval, max(0.0, next_retention - clock()))
            with anyio.move_on_after(wait):
                await notes.wake.wait()
        retain_now = clock() >= next_retention
        try:
            outcome = await history_round(store, notes, retain=retain_now)
        except Exception as exc:  # whatever failed, the store and its users carry on
            notes.dirty = True
            backoff = min(RETRY_MAX, backoff * 2 or RETRY_FIRST)
            kind = "" if isinstance(exc, YStoreError) else f" ({type(exc).__name__})"
            store.log.warning(
                "History upkeep of %s failed%s, retrying in %.0f s: %s",
                store.path,
                kind,
                backoff,
                exc,
            )
            continue
        backoff = 0.0
        if retain_now:
            next_retention = clock() + retention_interval
        if outcome.checkpointed is not None:
            store.log.info("Checkpoint of %s written (seq %d).", store.path, outcome.checkpointed)
        if outcome.packed is not None:
            store.log.info(
                "History of %s packed: %d records into %d blocks, %d checkpoints dropped.",
                store.path,
                outcome.packed.records_packed,
                outcome.packed.blocks,
                outcome.packed.checkpoints_dropped,
            )


async def history_round(store: BaseYStore, notes: HistoryNotes, *, retain: bool) -> HistoryOutcome:
    """One round: a checkpoint if due, then retention if asked, under the compaction lease."""
    checkpoint = await _checkpoint_due(store, notes)
    policy = store.retention
    retain = retain and policy is not None and not _keeps_all(policy)
    if not checkpoint and not retain:
        return HistoryOutcome()
    try:
        async with store.compaction_lease() as held:
            if not held:  # another process or server does this document's upkeep now
                return HistoryOutcome()
            checkpointed = None
            packed = None
            if checkpoint:
                report = await store.checkpoint()
                notes.reset()
                checkpointed = None if report is None else report.seq
                if report is not None and store.packing:
                    packed = await _pack(store)
            retained = retain and await store.retain(policy) is not None
            return HistoryOutcome(checkpointed, retained, packed)
    except YDocNotFound:
        return HistoryOutcome()


async def _pack(store: BaseYStore) -> PackReport | None:
    """Pack what the new checkpoint covers and thin old checkpoints (backends that can)."""
    try:
        return await store.pack()
    except NotImplementedError:
        return None


def _keeps_all(policy: RetentionPolicy) -> bool:
    return policy.keep_all or (policy.window is None and policy.budget is None)


async def _checkpoint_due(store: BaseYStore, notes: HistoryNotes) -> bool:
    policy = notes.policy
    if policy is None or not notes.dirty:
        return False
    try:
        stats = await store.history_stats()
    except (NotImplementedError, YDocNotFound):
        stats = None
    if stats is None:
        return policy.due(notes.records, notes.bytes)
    # The store's own view counts every writer's records, not only this store's.
    notes.reset()
    return policy.due(stats.records_since, stats.bytes_since)
