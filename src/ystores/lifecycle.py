"""The lifecycle every long-running ystores object shares (stores, rooms, room managers).

Two ways to run one, as in ypy-websocket:

```python
async with thing:                      # start, and stop on exit
    ...
async with anyio.create_task_group() as tg:
    await tg.start(thing.start)        # or tg.start_soon(thing.start); await thing.started.wait()
    ...
    thing.stop()                       # start() returns once the thing has wound down
```

A subclass writes `start()` around `_begin()` and `_finish()`:

```python
async def start(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
    stop_requested = self._begin()
    try:
        ...                             # set up, then self.started.set(); task_status.started()
        await stop_requested.wait()
        ...                             # wind down
    finally:
        self._finish()
```
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import TypeVar

import anyio
from anyio.abc import TaskStatus

from .errors import StoreStateError

__all__ = ["Lifecycle"]

_Self = TypeVar("_Self", bound="Lifecycle")


class Lifecycle:
    """`start()`/`stop()`/`started`, `aclose()` and `async with` for a long-running object."""

    _started: anyio.Event | None = None
    _stop_requested: anyio.Event | None = None
    _stopped: anyio.Event | None = None
    _exit_stack: AsyncExitStack | None = None

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until `stop()` (subclasses implement it with `_begin` and `_finish`)."""
        raise NotImplementedError

    @property
    def started(self) -> anyio.Event:
        """Set once the object has started."""
        if self._started is None:
            self._started = anyio.Event()
        return self._started

    @property
    def running(self) -> bool:
        """Whether `start()` is running and `stop()` has not finished it yet."""
        return self._stop_requested is not None

    def _begin(self) -> anyio.Event:
        """Mark the start of `start()`; return the event `stop()` sets.

        Raises:
            StoreStateError: Already running.
        """
        if self._stop_requested is not None:
            raise StoreStateError(f"{type(self).__name__} already running.")
        self._stop_requested = anyio.Event()
        self._stopped = anyio.Event()
        return self._stop_requested

    def _finish(self) -> None:
        """Mark the end of `start()` (call it in a `finally`)."""
        self._stop_requested = None
        self._started = None
        if self._stopped is not None:
            self._stopped.set()

    def stop(self) -> None:
        """Ask a running object to stop; `start()` returns once it has wound down.

        Raises:
            StoreStateError: Not running (also a RuntimeError, as in ypy-websocket).
        """
        if self._stop_requested is None:
            raise StoreStateError(f"{type(self).__name__} not running.")
        self._stop_requested.set()

    async def aclose(self) -> None:
        """Stop the object if it runs and wait until it has wound down."""
        stopped = self._stopped
        if self._stop_requested is not None:
            self._stop_requested.set()
        if stopped is not None:
            await stopped.wait()

    async def __aenter__(self: _Self) -> _Self:
        if self._exit_stack is not None or self._stop_requested is not None:
            raise StoreStateError(f"{type(self).__name__} already running.")
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.start)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            raise StoreStateError(f"{type(self).__name__} not running.")
        if self._stop_requested is not None:
            self._stop_requested.set()
        return await stack.__aexit__(exc_type, exc_value, exc_tb)
