"""Group commit: concurrent writers share one flush (one fsync, one transaction).

The first writer to reach the flush lock becomes the leader: it takes every
entry queued so far and flushes them together, while later writers queue up for
the next flush. Each `submit()` returns only once its own entry has been flushed,
and raises the error of the flush that carried it. A flush in progress is
shielded from cancellation, so a batch is never half-reported. A writer whose
task is cancelled while it waits for its turn may still have its entry flushed
(like any database write cancelled mid-flight, its outcome is then unknown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

from .errors import StoreStateError

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "entry", "error", "result", "yielded")

    def __init__(self, entry: T) -> None:
        self.entry = entry
        self.done = False
        self.yielded = False
        self.error: BaseException | None = None
        self.result: R | None = None


class GroupCommitter(Generic[T, R]):
    """Batches entries from concurrent tasks into calls of `flush`.

    A writer that finds no flush in progress flushes at once, without a detour
    through the event loop; only writers that arrive during a flush wait, and
    the first of them to wake leads the next flush with everything queued. Under
    contention (the last flush carried several entries or others queued behind
    it) a writer lets the other ready tasks run once before leading, so that the
    writers a flush just released join the next batch instead of trailing it.

    Args:
        flush: Stores a batch of entries, returning one result per entry in order.
    """

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]]) -> None:
        self._flush = flush
        self._queue: list[_Slot[T, R]] = []
        self._flushing = False
        self._flushed: anyio.Event | None = None  # made by the first writer to wait for it
        self._contended = False

    async def submit(self, entry: T) -> R:
        """Queue `entry`, wait until a flush has stored it, and return its result."""
        slot: _Slot[T, R] = _Slot(entry)
        self._queue.append(slot)
        while not slot.done:
            if self._flushing:
                if self._flushed is None:
                    self._flushed = anyio.Event()
                await self._flushed.wait()
            elif self._contended and not slot.yielded:
                slot.yielded = True
                await anyio.lowlevel.checkpoint()
            else:
                await self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    async def _lead(self) -> None:
        """Flush everything queued, shielded, and wake the writers waiting meanwhile."""
        batch, self._queue = self._queue, []
        self._flushing = True
        try:
            with anyio.CancelScope(shield=True):
                results = await self._flush([s.entry for s in batch])
        except Exception as exc:
            for s in batch:
                s.error, s.done = exc, True
        except BaseException as exc:  # interrupted: nobody's write is known stored
            interrupted = StoreStateError(
                "The write was interrupted before it was known to be stored."
            )
            interrupted.__cause__ = exc
            for s in batch:
                s.error, s.done = interrupted, True
            raise
        else:
            for s, result in zip(batch, results, strict=True):
                s.result, s.done = result, True
        finally:
            flushed, self._flushed, self._flushing = self._flushed, None, False
            self._contended = len(batch) > 1 or bool(self._queue)
            if flushed is not None:
                flushed.set()
