"""Compaction in the background of a running store, off the write path.

A store with a `CompactionPolicy` notes each of its writes (a counter, nothing
more). Its background task wakes when the notes cross the policy's count or
byte limit, or every `interval` seconds for the idle TTL, and only then reads
the log's real shape and squashes if the policy says so. Writes never wait on
it: the merge runs in a worker thread and the final swap holds writers back
only for a rename (files) or one short transaction (databases).

A failed compaction (disk full, database gone, anything) is logged and tried
again after a backoff that doubles from `RETRY_FIRST` to `RETRY_MAX` seconds;
it never ends the store's task group, so `async with store:` and the rooms
built on it carry on, and plain appends keep working while they fit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio

from ..errors import YDocNotFound, YStoreError
from .policy import CompactionPolicy, SquashReport

if TYPE_CHECKING:
    from ..base import BaseYStore

__all__ = ["RETRY_FIRST", "RETRY_MAX", "WriteNotes", "run_compaction"]

RETRY_FIRST = 1.0
"""Seconds before the first retry of a failed compaction."""
RETRY_MAX = 300.0
"""The longest wait between retries of a failing compaction."""


class WriteNotes:
    """What a store has written since its last compaction check."""

    def __init__(self, policy: CompactionPolicy) -> None:
        self.policy = policy
        self.records = 0
        self.bytes = 0
        self.dirty = True  # the log may need a squash (unknown at start)
        self.wake = anyio.Event()

    def note(self, size: int, records: int = 1) -> None:
        """Account for a write; wake the compactor if a limit is crossed."""
        self.records += records
        self.bytes += size
        self.dirty = True
        policy = self.policy
        if (policy.max_updates is not None and self.records > policy.max_updates) or (
            policy.max_bytes is not None and self.bytes > policy.max_bytes
        ):
            self.wake.set()

    def reset(self) -> None:
        """Start counting afresh after a check."""
        self.records = self.bytes = 0
        self.dirty = False
        self.wake = anyio.Event()


async def run_compaction(store: BaseYStore, notes: WriteNotes, interval: float) -> None:
    """Compact `store` by its policy until cancelled (run in the store's task group).

    Never raises but for cancellation: failures are logged and retried with backoff.
    """
    period = interval if notes.policy.ttl is None else min(interval, notes.policy.ttl)
    backoff = 0.0
    while True:
        if backoff:
            await anyio.sleep(backoff)
        else:
            with anyio.move_on_after(period if math.isfinite(period) else 3600):
                await notes.wake.wait()
        if not notes.dirty:
            continue
        notes.reset()
        try:
            report = await _compact_once(store, notes)
        except Exception as exc:  # whatever failed, the store and its users carry on
            backoff = min(RETRY_MAX, backoff * 2 or RETRY_FIRST)
            notes.dirty = True
            kind = "" if isinstance(exc, YStoreError) else f" ({type(exc).__name__})"
            store.log.warning(
                "Compaction of %s failed%s, retrying in %.0f s: %s", store.path, kind, backoff, exc
            )
            continue
        backoff = 0.0
        if report is not None:
            store.log.info(
                "Squashed %s: %d records into %d in %.3f s.",
                store.path,
                report.records_before,
                report.records_after,
                report.seconds,
            )


async def _compact_once(store: BaseYStore, notes: WriteNotes) -> SquashReport | None:
    try:
        stats = await store.log_stats()
    except YDocNotFound:
        return None
    if stats is None or not stats.squashable:
        return None
    if notes.policy.due(stats, store.clock()) is None:
        # Not due yet: count on from the real tail (writes noted since the reset may
        # be counted twice; that only wakes the compactor early).
        notes.note(stats.tail_bytes, stats.tail_records)
        return None
    try:
        async with store.compaction_lease() as held:
            # Without the lease another process squashes the document now.
            report = await store.squash() if held else None
    except YDocNotFound:
        return None
    if report is not None:
        notes.note(report.bytes_after, report.records_after - 1)
    return report
