"""`RoomManager`: rooms by name, opened on a document's first client, closed after its last.

Besides serving clients, the manager has the room API of ypy-websocket's
`WebsocketServer` (`get_room`, `start_room`, `delete_room`, `rooms_ready`,
`auto_clean_rooms`) and `document(name)` for server-side edits; `RoomAccess`
offers the same on objects that hold a manager, such as `YStoreApp`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from logging import Logger, getLogger
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..base import BaseYStore
from ..errors import StoreStateError, YStoreError
from ..lifecycle import Lifecycle, Stopping
from .channel import Channel
from .room import YRoom

__all__ = ["RoomAccess", "RoomFactory", "RoomHook", "RoomManager", "StoreFactory"]

StoreFactory = Callable[[str], BaseYStore | None]
"""Makes the store of the document with the given name (None: the room lives in memory)."""

RoomFactory = Callable[[str, BaseYStore | None], YRoom]
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


def _default_room(name: str, ystore: BaseYStore | None) -> YRoom:
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

    Application code reaches rooms with `get_room`, `start_room` and
    `delete_room`, and edits a document live with `async with
    manager.document(name) as doc:`.

    Attributes:
        rooms: The open rooms by document name.
        grace_period: Seconds a room stays open without clients.
        on_room_closed: Hooks run after each room closes, in order.
        rooms_ready: Whether new rooms let clients sync at once; when False, a
            new room holds its clients until its `ready` is set to True.
        auto_clean_rooms: Whether a room closes once its last client has left
            (after `grace_period`); when False rooms stay open until
            `delete_room` or `stop`.
    """

    def __init__(
        self,
        store_factory: StoreFactory,
        *,
        grace_period: float = 5.0,
        room_factory: RoomFactory | None = None,
        on_room_closed: Sequence[RoomHook] = (),
        log: Logger | None = None,
        rooms_ready: bool = True,
        auto_clean_rooms: bool = True,
    ) -> None:
        """Make a manager; it serves clients once started.

        Args:
            store_factory: Makes the store of a document from its name.
            grace_period: Seconds a room stays open after its last client leaves.
            room_factory: Makes a room from a name and a store (to set room options).
            on_room_closed: Hooks run with `(name, room)` after a room closes.
            log: Where to log; the `ystores.room` logger by default.
            rooms_ready: Whether new rooms let clients sync at once.
            auto_clean_rooms: Whether rooms close once their last client has left.
        """
        self.store_factory = store_factory
        self.rooms_ready = rooms_ready
        self.auto_clean_rooms = auto_clean_rooms
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
            room = await self._started_room(name, entry)
            await room.serve(channel)
        finally:
            self._leave(name, entry)

    async def _join(self, name: str) -> _Entry:
        entry = await self._open(name)
        entry.clients += 1
        return entry

    async def _open(self, name: str, room: YRoom | None = None) -> _Entry:
        while True:
            tg = self._task_group
            if tg is None or self._stop_requested is None or self._stop_requested.is_set():
                raise StoreStateError("RoomManager not running.")
            closing = self._closing.get(name)
            if closing is None:
                break
            await closing.wait()
        entry = self._entries.get(name)
        if entry is not None:
            if room is not None and entry.room is not room:
                raise StoreStateError(f"Another room of {name} is already open.")
            return entry
        if room is None:
            room = self.room_factory(name, self.store_factory(name))
            if not self.rooms_ready:
                room.ready = False
        entry = _Entry(room)
        self._entries[name] = entry
        tg.start_soon(self._run_room, name, entry)
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
        if entry.clients == 0 and self.auto_clean_rooms and self._task_group is not None:
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

    # -- the room API -----------------------------------------------------------

    async def get_room(self, name: str) -> YRoom:
        """The open room of document `name`, opened (and loaded from its store) if none is.

        A room opened here without clients stays open until a client has come
        and gone (with `auto_clean_rooms`), `delete_room` or `stop`.

        Raises:
            StoreStateError: The manager is not running.
            YStoreError: The store factory refused the name, or the room could not start.
        """
        entry = await self._open(name)
        return await self._started_room(name, entry)

    async def start_room(self, room: YRoom, name: str | None = None) -> None:
        """Start `room` if it is not running yet; with `name`, serve it as that document's room.

        Args:
            room: A room this manager holds, or (with `name`) one made by the
                application, for instance with a custom document or store.
            name: The document the room serves; needed for a room the manager
                does not hold yet.

        Raises:
            StoreStateError: The manager is not running, or another room of
                `name` is already open.
            ValueError: `room` is not held by the manager and no `name` is given.
            YStoreError: The room could not start.
        """
        if name is None:
            name = self._name_of(room)
            if name is None:
                raise ValueError("This room is not held by the manager: pass its document name.")
        entry = await self._open(name, room)
        await self._started_room(name, entry)

    async def delete_room(self, *, name: str | None = None, room: YRoom | None = None) -> None:
        """Close a room (by document name or by room) and forget it.

        Its clients are disconnected with code 1001 (y-websocket clients
        reconnect and find a fresh room); everything pending is stored and the
        `on_room_closed` hooks run before this returns. A room that is not open
        is ignored.

        Raises:
            ValueError: Neither or both of `name` and `room` are given.
        """
        if (name is None) == (room is None):
            raise ValueError("Pass either name= or room= to delete_room.")
        if name is None:
            name = self._name_of(room) if room is not None else None
            if name is None:
                return
        entry = self._entries.get(name)
        if entry is not None:
            await entry.ready.wait()
            await self._close_room(name, entry)
        else:
            closing = self._closing.get(name)
            if closing is not None:
                await closing.wait()

    @asynccontextmanager
    async def document(self, name: str) -> AsyncIterator[Any]:
        """The live document of `name` for server-side edits: `async with manager.document(name)`.

        The room of `name` is opened (loaded from its store) if it is not open,
        and kept open while the block runs. Changes made to the document are
        broadcast to the room's clients and stored like a client's. The document
        is the room's own: a `pycrdt.Doc` unless the room factory gives the room
        a y-py document. Edit it only from the event loop's thread.

        Raises:
            StoreStateError: The manager is not running.
            YStoreError: The store factory refused the name, or the room could not start.
        """
        entry = await self._join(name)
        try:
            room = await self._started_room(name, entry)
            yield room.ydoc
        finally:
            self._leave(name, entry)

    def _name_of(self, room: YRoom) -> str | None:
        for name, entry in self._entries.items():
            if entry.room is room:
                return name
        return None

    async def _started_room(self, name: str, entry: _Entry) -> YRoom:
        await entry.ready.wait()
        if entry.error is not None:
            raise YStoreError(f"The room {name} could not start: {entry.error}")
        return entry.room

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

    def stop(self) -> Stopping:
        """Ask a running manager to stop; `start()` returns once every room has closed.

        Raises:
            StoreStateError: The manager is not running.
        """
        return super().stop()

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


class RoomAccess:
    """The room API of a `RoomManager`, offered by an object that holds one in `manager`.

    `YStoreApp` inherits it, so `app.get_room(name)`, `app.delete_room(name=...)`
    and `async with app.document(name) as doc:` work on the application.
    """

    manager: RoomManager

    @property
    def rooms(self) -> dict[str, YRoom]:
        """The open rooms by document name."""
        return self.manager.rooms

    @property
    def rooms_ready(self) -> bool:
        """Whether new rooms let clients sync at once (see `RoomManager`)."""
        return self.manager.rooms_ready

    @rooms_ready.setter
    def rooms_ready(self, value: bool) -> None:
        self.manager.rooms_ready = value

    @property
    def auto_clean_rooms(self) -> bool:
        """Whether rooms close once their last client has left (see `RoomManager`)."""
        return self.manager.auto_clean_rooms

    @auto_clean_rooms.setter
    def auto_clean_rooms(self, value: bool) -> None:
        self.manager.auto_clean_rooms = value

    async def get_room(self, name: str) -> YRoom:
        """See `RoomManager.get_room`."""
        return await self.manager.get_room(name)

    async def start_room(self, room: YRoom, name: str | None = None) -> None:
        """See `RoomManager.start_room`."""
        await self.manager.start_room(room, name)

    async def delete_room(self, *, name: str | None = None, room: YRoom | None = None) -> None:
        """See `RoomManager.delete_room`."""
        await self.manager.delete_room(name=name, room=room)

    def document(self, name: str) -> AbstractAsyncContextManager[Any]:
        """See `RoomManager.document`: `async with app.document(name) as doc:`."""
        return self.manager.document(name)
