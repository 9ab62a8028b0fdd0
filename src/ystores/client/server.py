"""`bind`: a room server on a real socket, started the same way `connect` starts a client.

The server is `YStoreApp` (the same rooms, names, authentication and room API
as `ystore serve`) on the `websockets` asyncio server, so a test, a notebook or
a small application serves documents without an ASGI server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from logging import Logger
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup, TaskStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..base import BaseYStore
from ..errors import StoreStateError
from ..room.asgi import Authenticate, YStoreApp
from ..room.manager import StoreFactory
from ..room.room import YRoom

__all__ = ["Room", "Server", "bind"]


class Room(YRoom):
    """A `YRoom` with the room API of pycrdt-websocket's later releases.

    `Room(id)` makes a room for the document `id`; `doc` is its document,
    `run()` serves until the room stops, and `task_group` runs background tasks
    for as long as the room runs.
    """

    def __init__(self, id: str, ystore: BaseYStore | None = None, **options: Any) -> None:
        """Make the room of document `id` (options as for `YRoom`)."""
        super().__init__(ystore=ystore, **options)
        self._id = id
        self._room_task_group: TaskGroup | None = None

    @property
    def id(self) -> str:
        """The room's document name."""
        return self._id

    @property
    def doc(self) -> Any:
        """The room's shared document (its `ydoc`)."""
        return self.ydoc

    @property
    def task_group(self) -> TaskGroup:
        """A task group that lives while the room runs; its tasks are cancelled when it stops.

        Raises:
            StoreStateError: The room is not running.
        """
        if self._room_task_group is None:
            raise StoreStateError(f"The room {self._id} is not running.")
        return self._room_task_group

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()` (see `YRoom.start`), with `task_group` open meanwhile."""
        async with anyio.create_task_group() as tg:
            self._room_task_group = tg
            try:
                await super().start(task_status=task_status)
            finally:
                self._room_task_group = None
                tg.cancel_scope.cancel()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until `stop()`: the same as `start`."""
        await self.start(task_status=task_status)


class Server:
    """A running room server made by `bind`.

    Attributes:
        app: The application serving the rooms; its room API (`get_room`,
            `delete_room`, `document(name)`...) works while the server runs.
        host: The address it listens on.
        port: The port it listens on (chosen by the system when bound to port 0).
    """

    def __init__(self, app: YStoreApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """The server's websocket URL; a room's URL is this plus `/name`."""
        return f"ws://{self.host}:{self.port}"


@asynccontextmanager
async def bind(
    wire: str = "ws://127.0.0.1:0",
    *,
    store: str | StoreFactory | None = None,
    room_factory: Callable[[str], YRoom] | None = None,
    host: str | None = None,
    port: int | None = None,
    authenticate: Authenticate | None = None,
    grace_period: float = 5.0,
    log: Logger | None = None,
) -> AsyncIterator[Server]:
    """Serve rooms on a socket for as long as the block runs: `async with bind(...) as server:`.

    Args:
        wire: Where to listen, as `ws://host:port` (port 0 picks a free port), or
            `"websocket"` with `host` and `port` (the wire API's spelling).
        store: A store URL or a store factory, as for `YStoreApp`; None keeps
            the documents in memory (gone when the server stops).
        room_factory: Makes the room of a document from its name (`Room` fits);
            a store given in `store` is attached to rooms made without one.
        host: The address for `wire="websocket"` (default 127.0.0.1).
        port: The port for `wire="websocket"` (default 0: a free port).
        authenticate: The access hook, as for `YStoreApp`.
        grace_period: Seconds a room stays open after its last client leaves.
        log: Where to log; the `ystores.room` logger by default.

    Raises:
        ValueError: `wire` is neither a ws:// URL nor "websocket".
        OSError: The address cannot be bound.
    """
    if wire == "websocket":
        host, port = host or "127.0.0.1", port or 0
    else:
        parts = urlsplit(wire)
        if parts.scheme != "ws" or parts.hostname is None:
            raise ValueError(f"Expected ws://host:port or 'websocket', got {wire!r}.")
        host, port = parts.hostname, parts.port or 0
    factory: StoreFactory = _memory if store is None else _store_factory(store)
    app = YStoreApp(factory, authenticate=authenticate, grace_period=grace_period, log=log)
    if room_factory is not None:
        make = room_factory

        def make_room(name: str, ystore: BaseYStore | None) -> YRoom:
            room = make(name)
            if room.ystore is None:
                room.ystore = ystore
            return room

        app.manager.room_factory = make_room
    async with app, serve(lambda ws: _serve_connection(app, ws), host, port) as listener:
        bound = next(iter(listener.sockets)).getsockname()
        yield Server(app, host, int(bound[1]))


def _memory(name: str) -> BaseYStore | None:
    return None


def _store_factory(store: str | StoreFactory) -> StoreFactory:
    if not isinstance(store, str):
        return store
    from ..urls import open_store

    url = store

    def factory(name: str) -> BaseYStore:
        return open_store(url, name)

    return factory


async def _serve_connection(app: YStoreApp, websocket: ServerConnection) -> None:
    """Hand one websocket to the application as an ASGI websocket connection."""
    request = websocket.request
    assert request is not None  # set once the handshake is done
    target = urlsplit(request.path)
    scope: MutableMapping[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": target.path,
        "raw_path": target.path.encode(),
        "query_string": target.query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.raw_items()],
        "client": websocket.remote_address[:2] if websocket.remote_address else None,
        "subprotocols": [],
    }
    connected = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        try:
            message = await websocket.recv()
        except ConnectionClosed as exc:
            return {"type": "websocket.disconnect", "code": exc.rcvd.code if exc.rcvd else 1006}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def send(event: MutableMapping[str, Any]) -> None:
        if event["type"] == "websocket.send":
            try:
                await websocket.send(
                    event["bytes"] if event.get("bytes") is not None else event["text"]
                )
            except ConnectionClosed as exc:
                raise OSError("The client is gone.") from exc
        elif event["type"] == "websocket.close":
            await websocket.close(event.get("code", 1000), event.get("reason", ""))

    await app(scope, receive, send)
