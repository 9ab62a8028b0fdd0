"""`RoomManager`: rooms by name, opened on a document's first client, closed after its last."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from logging import Logger, getLogger

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..base import BaseYStore
from ..errors import StoreStateError, YStoreError
from ..lifecycle import Lifecycle
from .channel import Channel
from .room import YRoom

__all__ = ["RoomFactory", "RoomHook", "RoomManager", "StoreFactory"]

StoreFactory = Callable[[str], BaseYStore]
"""Makes the store of the document with the given name."""

RoomFactory = Callable[[str, BaseYStore], YRoom]
"""Makes the room of a document from its name and store."""

RoomHook = Callable[[str, YRoom], Awaitable[None]]
"""Runs with a room's name and room once the room has closed and stored everything."""


@dataclass(eq=False)
class _Entry:
    room: YRoom
    clients: int = 0
    departures: int = 0
    ready: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


def _default_room(name: str, ystore: BaseYStore) -> YRoom:
    return YRoom(ystore=ystore)


class RoomManager(Lifecycle):
    """The rooms of many documents, each made when its first client arrives.

    A room closes `grace_period` seconds after its last client leaves (a client
    that comes back in time finds it open). Closing stores every pending change,
    then runs the `on_room_closed` hooks: the place for work on a document nobody
    edits, such as compaction. A client arriving while its document's room is
    closing waits for the close to finish, so the new room loads every change.

    Use it as `async with manager:` or with `await task_group.start(manager.start)`
    and `manager.stop()`; stopping closes every room.

    Attributes:
        rooms: The open rooms by document name.
        grace_period: Seconds a room stays open without clients.
        on_room_closed: Hooks run after each room closes, in order.
    """

    def __init__(
        self,
        store_factory: StoreFactory,
        *,
        grace_period: float = 5.0,
        room_factory: RoomFactory | None = None,
        on_room_closed: Sequence[RoomHook] = (),
        log: Logger | None = None,
    ) -> None:
        """Make a manager; it serves clients once started.

        Args:
            store_factory: Makes the store of a document from its name.
            grace_period: Seconds a room stays open after its last client leaves.
            room_factory: Makes a room from a name and a store (to set room options).
            on_room_closed: Hooks run with `(name, room)` after a room closes.
            log: Where to log; the `ystores.room` logger by default.
        """
        self.store_factory = store_factory
        self.grace_period = grace_period
        self.room_factory = room_factory or _default_room
        self.on_room_closed = list(on_room_closed)
        self.log = log or getLogger("ystores.room")
        self._entries: dict[str, _Entry] = {}
        self._closing: dict[str, anyio.Event] = {}
        self._task_group: TaskGroup | None = None

    @property
    def rooms(self) -> dict[str, YRoom]:
        """The open rooms by document name."""
        return {name: entry.room for name, entry in self._entries.items()}

    async def serve(self, name: str, channel: Channel) -> None:
        """Serve one client in the room of document `name`, opening the room if needed.

        Args:
            name: The document's name (already validated by the caller).
            channel: The client's connection.

        Raises:
            StoreStateError: The manager is not running.
            YStoreError: The store factory refused the name, or the room could
                not start; the channel is left open for the caller to close.
        """
        entry = await self._join(name)
        try:  # from here on the entry counts this client: _leave must run
            await entry.ready.wait()
            if entry.error is not None:
                raise YStoreError(f"The room {name} could not start: {entry.error}")
            await entry.room.serve(channel)
        finally:
            self._leave(name, entry)

    async def _join(self, name: str) -> _Entry:
        while True:
            tg = self._task_group
            if tg is None or self._stop_requested is None or self._stop_requested.is_set():
                raise StoreStateError("RoomManager not running.")
            closing = self._closing.get(name)
            if closing is None:
                break
            await closing.wait()
        entry = self._entries.get(name)
        if entry is None:
            entry = _Entry(self.room_factory(name, self.store_factory(name)))
            self._entries[name] = entry
            tg.start_soon(self._run_room, name, entry)
        entry.clients += 1
        return entry

    async def _run_room(self, name: str, entry: _Entry) -> None:
        try:
            await entry.room.start(task_status=_ReadySignal(entry.ready))
        except Exception as exc:
            self.log.error("The room %s could not start: %s", name, exc)
            entry.error = exc
            if self._entries.get(name) is entry:
                del self._entries[name]
        finally:
            entry.ready.set()

    def _leave(self, name: str, entry: _Entry) -> None:
        entry.clients -= 1
        entry.departures += 1
        if entry.clients == 0 and self._task_group is not None:
            self._task_group.start_soon(self._close_when_idle, name, entry, entry.departures)

    async def _close_when_idle(self, name: str, entry: _Entry, departures: int) -> None:
        await anyio.sleep(self.grace_period)
        # Only the closer of the latest departure acts: the room idles a full grace period.
        if entry.clients == 0 and entry.departures == departures:
            await self._close_room(name, entry)

    async def _close_room(self, name: str, entry: _Entry) -> None:
        if self._entries.get(name) is not entry:
            return  # already closing or closed
        del self._entries[name]
        self._closing[name] = closed = anyio.Event()
        try:
            with anyio.CancelScope(shield=True):
                await entry.room.aclose()
                for hook in self.on_room_closed:
                    try:
                        await hook(name, entry.room)
                    except Exception:
                        self.log.exception("A hook failed after the room %s closed.", name)
        finally:
            del self._closing[name]
            closed.set()
        self.log.info("Closed the room %s.", name)

    # -- lifecycle --------------------------------------------------------------

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve rooms until `stop()`, then close every room (storing what is pending).

        Args:
            task_status: Signalled once the manager accepts clients.

        Raises:
            StoreStateError: The manager is already running.
        """
        stop_requested = self._begin()
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                task_status.started()
                await stop_requested.wait()
                async with anyio.create_task_group() as closers:
                    for name, entry in list(self._entries.items()):
                        closers.start_soon(self._close_room, name, entry)
                    for closing in list(self._closing.values()):
                        closers.start_soon(closing.wait)
                tg.cancel_scope.cancel()
        finally:
            self._task_group = None
            self._finish()

    def stop(self) -> None:
        """Ask a running manager to stop; `start()` returns once every room has closed.

        Raises:
            StoreStateError: The manager is not running.
        """
        super().stop()

    @property
    def running(self) -> bool:
        """Whether the manager accepts clients."""
        return self._stop_requested is not None and not self._stop_requested.is_set()


class _ReadySignal(TaskStatus[None]):
    """Sets an event when the room reports it has started."""

    def __init__(self, event: anyio.Event) -> None:
        self._event = event

    def started(self, value: None = None) -> None:
        self._event.set()
