"""Following a document's log: the records appended by anyone, each delivered once, in order.

`BaseYStore.follow(after=seq)` yields lists of `Record`s with seqs above `after`,
in seq order, as other writers (this process, another process or server,
`ystore import`, application code) append them. A follower never sees a record
twice and never misses one: it remembers the last seq it delivered and fetches
from there after every wake-up, so a lost notification only delays a record,
and reconnecting is catching up from that seq.

Snapshots: compaction replaces the records up to a cut by one snapshot record
that carries the cut's seq. A follower already past the cut never sees it (it
has everything the snapshot holds). A follower behind the cut is handed the
snapshot (kind `RecordKind.SNAPSHOT`) in place of the records it replaced, then
the records after it; applying a snapshot to a document that already holds part
of it is idempotent (Yjs updates are), so the follower applies it and carries on.

How a backend is told of changes (the `ChangeSignal` it hands its followers):

- Postgres: `LISTEN/NOTIFY` on one channel per database, one listening
  connection per process (`sql.listening`).
- SQLite: `PRAGMA data_version` polled on a short interval, one poll per
  database per process for all its followed documents (`sql.polling`).
- Files: the followed file's size, mtime and inode polled (`filestore.following`).

A wake-up costs one query only when it must: records this process wrote
through the same database are handed to its followers with their seq as they
are committed (`ChangeSignal.offer`), so a follower takes them without reading
them back; a notification naming a seq the follower holds wakes nobody; and a
fetch that returned fewer records than asked is not followed by another until
something new is signalled. Checkpoint records (`RecordKind.CHECKPOINT`) are
never delivered: they replace nothing and hold nothing a follower lacks.
"""

from __future__ import annotations

import math

import anyio

from .records import Record, RecordKind

__all__ = ["FOLLOW_SAFETY_INTERVAL", "HELD_MAX", "ChangeSignal", "PollingSignal", "followable"]

FOLLOW_SAFETY_INTERVAL = 5.0
"""Seconds after which a follower fetches even without a wake-up (a signal lost
by the network or the operating system costs at most this much delay)."""

HELD_MAX = 1024
"""The most records a signal keeps in memory for its follower (see `ChangeSignal.offer`);
past that the follower reads them from the store."""


def followable(record: Record) -> bool:
    """Whether followers are handed `record` (every kind but checkpoints)."""
    return record.kind is not RecordKind.CHECKPOINT


class ChangeSignal:
    """Wakes one follower when its document may have records past the ones it holds.

    Backends call `notify` (from the event loop thread) with the highest seq they
    know of, or with no seq when they cannot tell, and `offer` with a record this
    process just stored. The follower takes what was offered (`take`), fetches
    when `pending` says it must (calling `fetching` first), and otherwise `wait`s.

    Attributes:
        doc: The document followed.
    """

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self._floor = 0  # the follower holds every record up to this seq
        self._wanted: float = math.inf  # the highest seq signalled (inf: unknown); fetch first
        self._held: dict[int, Record] = {}
        self._event = anyio.Event()

    async def ready(self) -> None:
        """Make sure changes from now on will be signalled (called before each fetch).

        Backends that listen on a connection re-open it here after it dropped,
        so that nothing committed after the fetch starts can go unsignalled.
        """

    def notify(self, seq: int | None = None) -> None:
        """Tell the follower the document may have changed.

        Args:
            seq: The highest seq known to be stored; None when unknown (always wakes).
        """
        wanted = math.inf if seq is None else seq
        if wanted <= self._floor:
            return  # the follower already holds it
        self._wanted = max(self._wanted, wanted)
        self._event.set()

    def offer(self, record: Record) -> None:
        """Hand over a record this process stored (with its seq), sparing a read of it.

        A checkpoint wakes nobody: followers never get one.
        """
        if not followable(record):
            return
        if record.seq > self._floor and len(self._held) < HELD_MAX:
            self._held[record.seq] = record
        self.notify(record.seq)

    def take(self, after: int, limit: int) -> list[Record]:
        """The offered records that follow seq `after` without a gap, up to `limit`.

        Seqs are consecutive integers, so an offered record with seq `after + 1`
        is the very next record of the log: nothing can come between.
        """
        self._floor = max(self._floor, after)
        taken: list[Record] = []
        while len(taken) < limit and (record := self._held.pop(after + 1, None)) is not None:
            taken.append(record)
            after = record.seq
        if self._held:
            self._held = {seq: r for seq, r in self._held.items() if seq > after}
        self._floor = after
        return taken

    def pending(self, after: int) -> bool:
        """Whether records past `after` may be stored that the follower has not fetched."""
        return self._wanted > after or (after + 1) in self._held

    def fetching(self, after: int) -> None:
        """Note that the follower fetches everything after `after` now (call before fetching)."""
        self._floor = max(self._floor, after)
        self._wanted = 0

    async def wait(self) -> None:
        """Return once notified since the last `fetching`, or after `FOLLOW_SAFETY_INTERVAL`."""
        await self._wait_at_most(FOLLOW_SAFETY_INTERVAL)

    async def _notified_within(self, seconds: float) -> bool:
        """Wait at most `seconds` for a notification; whether one came (or was pending)."""
        if self.pending(self._floor):
            return True
        self._event = anyio.Event()
        with anyio.move_on_after(seconds if math.isfinite(seconds) else 3600):
            await self._event.wait()
            return True
        return False

    async def _wait_at_most(self, seconds: float) -> None:
        """Wait for a notification; after `seconds` without one, ask for a fetch anyway."""
        if not await self._notified_within(seconds):
            self.notify()


class PollingSignal(ChangeSignal):
    """A signal whose `wait` simply sleeps `interval` seconds (backends without notifications)."""

    def __init__(self, doc: str, interval: float) -> None:
        super().__init__(doc)
        self.interval = interval

    async def wait(self) -> None:
        """Return once notified, or after the polling interval."""
        await self._wait_at_most(self.interval)
