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

__all__ = ["RoomFollower"]

FIRST_PAUSE = 0.1
"""Seconds before following again after the store failed (doubling each time)."""
LONGEST_PAUSE = 5.0
"""The longest pause between two attempts."""


class RoomFollower:
    """Applies to a room's document the records its store receives from other writers.

    Args:
        store: The room's store.
        document: The room's document.
        feed: The room's change feed (broadcasts what is applied; writes none of it).
        log: Where failures are logged.

    Attributes:
        last_seq: The last seq applied (or known to be in the document at load).
        applied: How many followed records changed the document.
    """

    def __init__(
        self, store: BaseYStore, document: RoomDocument, feed: ChangeFeed, log: Logger
    ) -> None:
        self.store = store
        self.document = document
        self.feed = feed
        self.log = log
        self.last_seq = 0
        self.applied = 0
        self._scope = anyio.CancelScope()

    async def run(
        self, after: int, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the store from seq `after` until `stop()`."""
        self.last_seq = after
        task_status.started()
        pause = FIRST_PAUSE
        failing = False
        with self._scope:
            while True:
                try:
                    async with aclosing(self.store.follow(after=self.last_seq)) as batches:
                        async for records in batches:
                            self._apply(records)
                            pause, failing = FIRST_PAUSE, False
                except NotImplementedError:
                    self.log.info("The store of %s cannot be followed.", self.store.path)
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

    def _apply(self, records: list[Record]) -> None:
        with self.feed.following():
            for record in records:
                before = self.feed.followed
                try:
                    self.document.apply(record.update)
                except InvalidUpdateError as exc:  # a poisoned record: skip it, serve on
                    self.log.error(
                        "Record %d of %s does not apply; skipped: %s",
                        record.seq,
                        self.store.path,
                        exc,
                    )
                self.applied += self.feed.followed - before
                self.last_seq = record.seq
