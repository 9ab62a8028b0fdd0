"""Running blocking file work off the event loop, cheaply.

`anyio.to_thread.run_sync` costs about 130 µs per call on this project's
reference machine, as much as the `fdatasync` it wraps; a long-lived thread
fed by a `queue.SimpleQueue` that wakes the loop directly costs about 40 µs. The
durable write path pays this once per batch, so it matters.

`WorkerThreads` is a small set of daemon threads shared by every file store in
the process. It works under asyncio and trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

__all__ = ["WorkerThreads", "run_in_worker"]

T = TypeVar("T")
_Job = tuple[Callable[[], Any], Callable[[bool, Any], None]]


class WorkerThreads:
    """Up to `size` daemon threads taking jobs from one queue.

    Args:
        size: The most threads running at once (blocking calls run in parallel up to it).
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0  # threads waiting for a job that no submitted job has claimed yet
        self._backlog = 0  # jobs queued while every thread was busy
        self._lock = threading.Lock()

    def _submit(self, job: _Job) -> None:
        # An idle thread is claimed here, under the lock, not when it wakes: two jobs
        # submitted before a woken thread got round to it would otherwise both count
        # on that one thread, and the second would wait behind the first (a call
        # blocking on another call's progress would then never finish).
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            elif self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._work, name="ystores-io", daemon=True).start()
            else:
                self._backlog += 1  # the next thread to finish takes it
            self._jobs.put(job)

    def _work(self) -> None:
        while True:
            function, done = self._jobs.get()
            try:
                ok, value = True, function()
            except BaseException as exc:
                ok, value = False, exc
            # RuntimeError: the caller's event loop has closed; nobody waits for this result.
            with contextlib.suppress(RuntimeError):
                done(ok, value)
            del function, done, value
            with self._lock:
                if self._backlog:
                    self._backlog -= 1
                else:
                    self._idle += 1

    async def run(self, function: Callable[[], T]) -> T:
        """Run `function` in a worker thread and return its result (or raise its error).

        The call runs to completion even if the caller is cancelled meanwhile.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: trio
            return await self._run_trio(function)
        return await self._run_asyncio(loop, function)

    async def _run_asyncio(self, loop: asyncio.AbstractEventLoop, function: Callable[[], T]) -> T:
        future: asyncio.Future[T] = loop.create_future()
        inbox = _inboxes.get(loop)
        if inbox is None:
            inbox = _inboxes[loop] = _Inbox(loop)
        deliver = inbox.deliver

        def done(ok: bool, value: Any) -> None:
            deliver(future, ok, value)

        self._submit((function, done))
        # Cancelling the caller cancels only this future; the job runs on regardless
        # and `settle` then finds the future done.
        return await future

    async def _run_trio(self, function: Callable[[], T]) -> T:
        import trio

        token = trio.lowlevel.current_trio_token()
        finished = anyio.Event()
        outcome: list[tuple[bool, Any]] = []

        def done(ok: bool, value: Any) -> None:
            outcome.append((ok, value))
            token.run_sync_soon(finished.set)

        self._submit((function, done))
        with anyio.CancelScope(shield=True):
            await finished.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


class _Inbox:
    """Results on their way from worker threads to one asyncio loop.

    `call_soon_threadsafe` wakes the loop through its self-pipe once per call; with
    many jobs finishing at once (20 documents fsyncing), each wake-up's `recv`
    also had to win the GIL back from the workers, about 100 µs apiece here. The
    inbox wakes the loop once for every result that arrives before it drains.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._lock = threading.Lock()
        self._wake_pending = False

    def deliver(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """Hand over one result (from a worker thread)."""
        with self._lock:
            self._results.append((future, ok, value))
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            results, self._results = self._results, []
            self._wake_pending = False
        for future, ok, value in results:
            if not future.done():  # a cancelled caller's future is done already
                (future.set_result if ok else future.set_exception)(value)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
_default = WorkerThreads()


async def run_in_worker(function: Callable[[], T]) -> T:
    """Run a blocking call in the shared worker threads (see `WorkerThreads.run`)."""
    return await _default.run(function)
