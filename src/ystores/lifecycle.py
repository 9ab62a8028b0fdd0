"""The lifecycle every long-running ystores object shares (stores, rooms, room managers).

Two ways to run one, as in ypy-websocket:

```python
async with thing:                      # start, and stop on exit
    ...
async with anyio.create_task_group() as tg:
    await tg.start(thing.start)        # or tg.start_soon(thing.start); await thing.started.wait()
    ...
    thing.stop()                       # start() returns once the thing has wound down
    await thing.stop()                 # the same, and wait until it has wound down
```

An exception raised inside `async with thing:` comes out as itself, on asyncio and
trio: the task group the object runs in is closed without it, so it is never wrapped
in an `ExceptionGroup`; so does one that fails the start. `start_lock` is the lock
pycrdt-websocket's rooms hold while they start a store they share.

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

import sys
from collections.abc import Generator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskStatus

from .errors import StoreStateError

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio depends on
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Lifecycle", "Stopping", "unwrap_group"]

_Self = TypeVar("_Self", bound="Lifecycle")


def unwrap_group(exc: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups of one, else `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Stopping:
    """What `stop()` returns: the stop is already requested; awaiting it waits for the end.

    So `thing.stop()` (ypy-websocket) and `await thing.stop()` (pycrdt-store) both work.
    """

    def __init__(self, stopped: anyio.Event | None) -> None:
        self._stopped = stopped

    def __await__(self) -> Generator[Any, None, None]:
        if self._stopped is not None:
            yield from self._stopped.wait().__await__()


class Lifecycle:
    """`start()`/`stop()`/`started`, `aclose()` and `async with` for a long-running object."""

    _started: anyio.Event | None = None
    _stop_requested: anyio.Event | None = None
    _stopped: anyio.Event | None = None
    _exit_stack: AsyncExitStack | None = None
    _start_lock_made: anyio.Lock | None = None

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
    def start_lock(self) -> anyio.Lock:
        """A lock for whoever starts the object on demand (pycrdt-websocket's rooms)."""
        if self._start_lock_made is None:
            self._start_lock_made = anyio.Lock()
        return self._start_lock_made

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

    def stop(self) -> Stopping:
        """Ask a running object to stop; `start()` returns once it has wound down.

        Returns:
            An awaitable that waits until the object has wound down (awaiting it
            is optional: the stop is requested either way).

        Raises:
            StoreStateError: Not running (also a RuntimeError, as in ypy-websocket).
        """
        if self._stop_requested is None:
            raise StoreStateError(f"{type(self).__name__} not running.")
        self._stop_requested.set()
        return Stopping(self._stopped)

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
        # A start that fails comes out as its own exception too, not as the group
        # the task group wraps it in.
        error: BaseException | None = None
        try:
            async with AsyncExitStack() as stack:
                tg = await stack.enter_async_context(anyio.create_task_group())
                await tg.start(self.start)
                self._exit_stack = stack.pop_all()
        except BaseExceptionGroup as group:
            error = unwrap_group(group)
            if error is group:
                raise
        if error is not None:
            raise error
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
        # The body's exception is not handed to the task group, which would wrap it in
        # an ExceptionGroup: the group closes on its own and the exception goes on as is.
        error: BaseException | None = None
        try:
            await stack.aclose()
        except BaseExceptionGroup as group:
            error = unwrap_group(group)
            if error is group:
                raise
        if error is not None:
            raise error  # outside the handler: no "during handling of the group" noise
        return None
