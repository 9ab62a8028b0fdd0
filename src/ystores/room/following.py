"""A room following its store: records other writers append reach the room's clients.

Another server's room over the same document, `ystore import`, application code
writing to the store: whatever lands in the document's log after the room
loaded it is applied to the room's document and broadcast to its clients (see
`BaseYStore.follow`). Nothing followed is written back: the room's own writes
come back through the follower too, but applying an update the document
already holds changes nothing, so they are neither broadcast nor written again;
a snapshot made by another server's compaction is applied the same way.

When the store cannot be read (the database is unreachable), the room keeps
serving its connected clients, holds nothing in memory for later, and follows
again from the last seq it applied once the store answers, with a growing pause
between attempts.

`StoreFollower` is that loop without the room: the Django consumer
(`ystores.django.following`) follows its store with it too, so a document is
kept in step with its store by one mechanism whoever serves it.
"""

from __future__ import annotations

from contextlib import aclosing
from logging import Logger

import anyio
from anyio.abc import TaskStatus

from ..base import BaseYStore
from ..errors import InvalidUpdateError
from ..records import Record
from .changes import ChangeFeed
from .document import RoomDocument

__all__ = ["RoomFollower", "StoreFollower", "apply_record"]

FIRST_PAUSE = 0.1
"""Seconds before following again after the store failed (doubling each time)."""
LONGEST_PAUSE = 5.0
"""The longest pause between two attempts."""


def apply_record(document: RoomDocument, record: Record, store: BaseYStore, log: Logger) -> None:
    """Apply a followed record to `document`; a record that does not apply is logged and skipped."""
    try:
        document.apply(record.update)
    except InvalidUpdateError as exc:  # a poisoned record: skip it, serve on
        log.error("Record %d of %s does not apply; skipped: %s", record.seq, store.path, exc)


class StoreFollower:
    """Follows a store's document, retrying when the store fails; subclasses take the records.

    Args:
        store: The store followed.
        log: Where failures are logged.

    Attributes:
        last_seq: The last seq delivered (or known to be held when following began).
        ready: Set once the seq to follow from is known (see `run`).
        followable: False once the store turned out to keep no seqs (nothing is followed).
    """

    def __init__(self, store: BaseYStore, log: Logger) -> None:
        self.store = store
        self.log = log
        self.last_seq = 0
        self.ready = anyio.Event()
        self.followable = True
        self._scope = anyio.CancelScope()

    async def run(
        self, after: int | None, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the store from seq `after` (None: from its last seq now) until `stop()`."""
        task_status.started()
        pause = FIRST_PAUSE
        failing = False
        with self._scope:
            while True:
                try:
                    if after is None:
                        after = await self.store.last_seq()
                    if not self.ready.is_set():
                        self.last_seq = after
                        self.ready.set()
                    async with aclosing(self.store.follow(after=self.last_seq)) as batches:
                        async for records in batches:
                            await self._deliver(records)
                            self.last_seq = records[-1].seq
                            pause, failing = FIRST_PAUSE, False
                except NotImplementedError:
                    self.log.info("The store of %s cannot be followed.", self.store.path)
                    self.followable = False
                    self.ready.set()
                    return
                except Exception as exc:  # the store failed: serve on, follow again later
                    if not failing:
                        self.log.warning(
                            "Following %s failed (retrying from seq %d): %s",
                            self.store.path,
                            self.last_seq,
                            exc,
                        )
                    failing = True
                await anyio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)

    def stop(self) -> None:
        """Stop following."""
        self._scope.cancel()

    async def _deliver(self, records: list[Record]) -> None:
        raise NotImplementedError


class RoomFollower(StoreFollower):
    """Applies to a room's document the records its store receives from other writers.

    Args:
        store: The room's store.
        document: The room's document.
        feed: The room's change feed (broadcasts what is applied; writes none of it).
        log: Where failures are logged.

    Attributes:
        applied: How many followed records changed the document.
    """

    def __init__(
        self, store: BaseYStore, document: RoomDocument, feed: ChangeFeed, log: Logger
    ) -> None:
        super().__init__(store, log)
        self.document = document
        self.feed = feed
        self.applied = 0

    async def _deliver(self, records: list[Record]) -> None:
        self._apply(records)

    def _apply(self, records: list[Record]) -> None:
        with self.feed.following():
            for record in records:
                before = self.feed.followed
                apply_record(self.document, record, self.store, self.log)
                self.applied += self.feed.followed - before
                self.last_seq = record.seq
