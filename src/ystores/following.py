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
"""

from __future__ import annotations

import math

import anyio

__all__ = ["FOLLOW_SAFETY_INTERVAL", "ChangeSignal", "PollingSignal"]

FOLLOW_SAFETY_INTERVAL = 5.0
"""Seconds after which a follower fetches even without a wake-up (a signal lost
by the network or the operating system costs at most this much delay)."""


class ChangeSignal:
    """Wakes one follower when its document may have records past the ones it holds.

    Backends call `notify` (from the event loop thread) with the highest seq they
    know of, or with no seq when they cannot tell; the follower calls `wait`
    with the seq it holds, after a fetch that found nothing new.

    Attributes:
        doc: The document followed.
    """

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self._floor = 0  # the follower holds every record up to this seq
        self._pending = True  # something may be new since the last fetch
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
        if seq is not None and seq <= self._floor:
            return  # the follower already holds it
        self._pending = True
        self._event.set()

    def fetching(self, after: int) -> None:
        """Note that the follower fetches everything after `after` now (call before fetching)."""
        self._floor = after
        if self._pending:
            self._pending = False
            self._event = anyio.Event()

    async def wait(self) -> None:
        """Return once notified since the last `fetching`, or after `FOLLOW_SAFETY_INTERVAL`."""
        await self._wait_at_most(FOLLOW_SAFETY_INTERVAL)

    async def _wait_at_most(self, seconds: float) -> None:
        if self._pending:
            return
        with anyio.move_on_after(seconds if math.isfinite(seconds) else 3600):
            await self._event.wait()


class PollingSignal(ChangeSignal):
    """A signal whose `wait` simply sleeps `interval` seconds (backends without notifications)."""

    def __init__(self, doc: str, interval: float) -> None:
        super().__init__(doc)
        self.interval = interval

    async def wait(self) -> None:
        """Return once notified, or after the polling interval."""
        await self._wait_at_most(self.interval)
