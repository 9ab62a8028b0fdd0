"""`ChangeFeed`: a room's document changes on their way to its clients and its store."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
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

__all__ = ["RETRY_MAX", "ChangeFeed"]

RETRY_MAX = 30.0
"""The longest wait, in seconds, between attempts to write to a failing store."""


class ChangeFeed:
    """Broadcasts each document change to the other clients, then queues it for the store.

    The document observer calls `record` synchronously; whoever made the change
    then awaits `dispatch`: a client's handler right after applying its message,
    a background task for changes the server makes on the document. `dispatch`
    hands changes to the writer through a bounded stream, so it waits when the
    store lags (backpressure: the client's next message is not read meanwhile).
    The writer merges what is queued into one write. `close` lets the writer
    finish what is queued; `done` is set once it has.

    When a write fails (disk full, database gone), every client is closed with
    4500 (try again later) and `write_error` is set, so the room refuses new
    clients. The writer then tries, with a backoff doubling from `retry_delay`
    to `RETRY_MAX` seconds, to write the document's whole state (which holds the
    failed changes and every change since); once that is stored, `write_error`
    is cleared and the room serves again. Nothing a client sent is dropped: it
    is stored by that write, or, if the room stops first, the client was closed
    without being told it was kept and gives it back when it reconnects.

    Attributes:
        write_error: Why the store is failing, while it is; None when it works.
        unsaved: How many changes were recorded and are not written yet.
        done: Set once the writer has stored everything queued before `close`.
    """

    def __init__(
        self,
        members: list[RoomClient],
        log: Logger,
        write_buffer: int,
        *,
        state: Callable[[], bytes],
        retry_delay: float = 0.5,
    ) -> None:
        self.write_error: BaseException | None = None
        self.unsaved = 0
        self._state = state
        self._retry_delay = retry_delay
        self._closed = anyio.Event()
        self._overflowed = False
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
        self._following = False
        self.followed = 0
        """How many changes came from the store's other writers (see `following`)."""

    @contextmanager
    def applying(self, member: RoomClient) -> Iterator[None]:
        """Attribute the changes made inside the block to `member` (not echoed back to it)."""
        self._origin = member
        try:
            yield
        finally:
            self._origin = None

    @contextmanager
    def following(self) -> Iterator[None]:
        """Changes made inside the block came from the store (written by others):
        broadcast them to every client at once, never write them back."""
        self._following = True
        try:
            yield
        finally:
            self._following = False

    def record(self, update: bytes) -> None:
        """Take a change from the document observer (synchronous)."""
        if self._following:
            self.followed += 1
            message = encode_update(update)
            for member in list(self._members):
                member.queue(message)
            return
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
        self._closed.set()
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
            if self.write_error is None:
                await self._write_send.send(update)
            else:  # the writer is retrying: the document's whole state will carry this
                try:
                    self._write_send.send_nowait(update)
                except anyio.WouldBlock:
                    self._overflowed = True  # the next whole-state write must include it
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
        try:
            await ystore.write(batch[0] if len(batch) == 1 else crdt.merge_updates(batch))
            self.unsaved -= len(batch)
        except Exception as exc:  # any failure means the change is not stored
            self.write_error = exc
            self._log.error(
                "Writing to %s failed; closing its room's clients until the store works again: %s",
                ystore.path,
                exc,
            )
            for member in list(self._members):
                member.disconnect(CloseCode.UNAVAILABLE, "The document could not be saved.")
            await self._recover(ystore)

    async def _recover(self, ystore: BaseYStore) -> None:
        """Write the document's whole state until it is stored (backing off), or the room stops."""
        delay = self._retry_delay
        wait = True
        while True:
            closing = self._closed.is_set()
            if wait and not closing:
                with anyio.move_on_after(delay):
                    await self._closed.wait()
                closing = self._closed.is_set()  # stopping: one last try
            wait = True
            # Everything recorded so far is in the state; what is still queued is
            # covered by it, what is still fresh will be written (again) later.
            queued = self._queued()
            covered = self.unsaved - len(self._fresh)
            self._overflowed = False
            try:
                await ystore.write(self._state())
            except Exception as exc:
                if closing:
                    self._log.error(
                        "The room of %s stopped while its store was failing; changes made "
                        "since the failure are not stored (their clients were closed "
                        "without being told they were kept): %s",
                        ystore.path,
                        exc,
                    )
                    return
                delay = min(RETRY_MAX, delay * 2)
                self._log.warning(
                    "Writing to %s still fails, next try in %.1f s: %s", ystore.path, delay, exc
                )
                continue
            self.unsaved -= covered
            self._discard(queued)
            if self._overflowed and not closing:
                wait = False  # a change made meanwhile found the queue full: once more
                continue
            self.write_error = None
            self._log.warning("Writing to %s works again; its room serves clients.", ystore.path)
            return

    def _queued(self) -> int:
        receive = self._write_receive
        return 0 if receive is None else receive.statistics().current_buffer_used

    def _discard(self, count: int) -> None:
        """Drop the first `count` queued changes (a whole-state write stored them)."""
        assert self._write_receive is not None
        for _ in range(count):
            self._write_receive.receive_nowait()
