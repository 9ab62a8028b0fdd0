"""`ChangeFeed`: a room's document changes on their way to its clients and its store."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from logging import Logger

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .. import crdt
from ..base import BaseYStore
from .channel import CloseCode
from .client import RoomClient
from .protocol import encode_update

__all__ = ["ChangeFeed"]


class ChangeFeed:
    """Broadcasts each document change to the other clients, then queues it for the store.

    The document observer calls `record` synchronously; whoever made the change
    then awaits `dispatch`: a client's handler right after applying its message,
    a background task for changes the server makes on the document. `dispatch`
    hands changes to the writer through a bounded stream, so it waits when the
    store lags (backpressure: the client's next message is not read meanwhile).
    The writer merges what is queued into one write. `close` lets the writer
    finish what is queued; `done` is set once it has.

    Attributes:
        write_error: Why the last write failed, when one did; later changes are
            not written (and logged) so nothing claims to be stored that is not.
        unsaved: How many changes were recorded and are not written yet.
        done: Set once the writer has stored everything queued before `close`.
    """

    def __init__(self, members: list[RoomClient], log: Logger, write_buffer: int) -> None:
        self.write_error: BaseException | None = None
        self.unsaved = 0
        self.done = anyio.Event()
        self._members = members
        self._log = log
        self._write_buffer = write_buffer
        self._fresh: deque[tuple[bytes, RoomClient | None]] = deque()
        self._origin: RoomClient | None = None
        self._lock = anyio.Lock()
        self._wake_send, self._wake_receive = anyio.create_memory_object_stream[None](1)
        self._write_send: MemoryObjectSendStream[bytes] | None = None
        self._write_receive: MemoryObjectReceiveStream[bytes] | None = None
        self._name = "(in memory)"

    @contextmanager
    def applying(self, member: RoomClient) -> Iterator[None]:
        """Attribute the changes made inside the block to `member` (not echoed back to it)."""
        self._origin = member
        try:
            yield
        finally:
            self._origin = None

    def record(self, update: bytes) -> None:
        """Take a change from the document observer (synchronous)."""
        self._fresh.append((update, self._origin))
        self.unsaved += 1
        if self._origin is None:
            # A server-side edit: wake the dispatcher (one pending wake is enough).
            with suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                self._wake_send.send_nowait(None)

    async def run(
        self,
        ystore: BaseYStore | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Dispatch server-side edits and write changes to `ystore` (None: broadcast only).

        Returns once `close` was called and everything queued is written.
        """
        try:
            async with anyio.create_task_group() as tg:
                if ystore is not None:
                    self._name = ystore.path
                    self._write_send, self._write_receive = anyio.create_memory_object_stream[
                        bytes
                    ](self._write_buffer)
                    tg.start_soon(self._write_updates, ystore, self._write_receive)
                tg.start_soon(self._dispatch_server_edits)
                task_status.started()
        finally:
            self.close()
            if self._write_receive is not None:
                self._write_receive.close()
            self._wake_receive.close()
            self.done.set()

    def close(self) -> None:
        """Stop taking changes; the writer finishes what is queued."""
        if self._write_send is not None:
            self._write_send.close()
        self._wake_send.close()

    async def dispatch(self) -> None:
        """Broadcast fresh changes, then queue them for the store (waiting when it lags).

        Shielded: a change taken from the fresh list is always handed to the
        writer, even when the client that made it is being disconnected.
        """
        with anyio.CancelScope(shield=True):
            async with self._lock:
                while self._fresh:
                    update, origin = self._fresh.popleft()
                    message = encode_update(update)
                    for member in list(self._members):
                        if member is not origin:
                            member.queue(message)
                    await self._queue_write(update)

    async def _queue_write(self, update: bytes) -> None:
        if self._write_send is None:
            return
        try:
            await self._write_send.send(update)
        except anyio.ClosedResourceError:
            self._log.error("A change made after the room %s stopped was not stored.", self._name)

    async def _dispatch_server_edits(self) -> None:
        async for _ in self._wake_receive:
            await self.dispatch()

    async def _write_updates(
        self, ystore: BaseYStore, receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        async for update in receive:
            batch = [update]
            while len(batch) < self._write_buffer:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._write_batch(ystore, batch)

    async def _write_batch(self, ystore: BaseYStore, batch: list[bytes]) -> None:
        if self.write_error is not None:
            self._log.error("%d changes to %s were not stored.", len(batch), ystore.path)
            return
        try:
            await ystore.write(batch[0] if len(batch) == 1 else crdt.merge_updates(batch))
            self.unsaved -= len(batch)
        except Exception as exc:  # any failure means the change is not stored
            self.write_error = exc
            self._log.error(
                "Writing to %s failed; closing its room's clients: %s", ystore.path, exc
            )
            for member in list(self._members):
                member.disconnect(CloseCode.UNAVAILABLE, "The document could not be saved.")
