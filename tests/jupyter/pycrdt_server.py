"""pycrdt-websocket's `WebsocketServer` and `YRoom` persisting through a `ystores.jupyter` store.

    python pycrdt_server.py BACKEND LOCATION PORT

BACKEND is sqlite (LOCATION: the database file), postgres (the URL) or file (the root
directory). Serves y-websocket clients on 127.0.0.1:PORT (one room per URL path) until
SIGINT or SIGTERM; prints "loaded ROOM" or "new ROOM" when a room opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any

import pycrdt.store
import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom, exception_logger
from uvicorn.protocols.utils import ClientDisconnected

from ystores.jupyter import FileYStore, PostgresYStore, SQLiteYStore


def store_maker(backend: str, location: str) -> Callable[[str], pycrdt.store.BaseYStore]:
    if backend == "sqlite":
        return lambda name: SQLiteYStore(path=name, db_path=location)
    if backend == "postgres":
        return lambda name: PostgresYStore(path=name, db_url=location)
    if backend == "file":
        return lambda name: FileYStore(path=name, root_dir=location)
    raise SystemExit(f"unknown backend {backend!r}")


class HangUpTolerant:
    """A channel whose `send` to a client that has hung up does nothing, as Jupyter's
    websocket handler behaves: pycrdt-websocket's room sends in its own task group, so a
    raising send would cancel the room's pending store writes with it."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    @property
    def path(self) -> str:
        return str(self._channel.path)

    def __aiter__(self) -> HangUpTolerant:
        return self

    async def __anext__(self) -> bytes:
        return bytes(await self._channel.__anext__())

    async def recv(self) -> bytes:
        return bytes(await self._channel.recv())

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(ClientDisconnected):
            await self._channel.send(message)


class StoredRooms(WebsocketServer):
    """Rooms whose document is loaded from, and written to, a store (the documented way)."""

    def __init__(self, make_store: Callable[[str], pycrdt.store.BaseYStore], **kwargs: Any):
        super().__init__(**kwargs)
        self.make_store = make_store

    async def get_room(self, name: str) -> YRoom:
        if name not in self.rooms:
            store = self.make_store(name.lstrip("/"))
            room = YRoom(
                ready=False, ystore=store, log=self.log, exception_handler=exception_logger
            )
            self.rooms[name] = room
            await self.start_room(room)  # starts the store under its start_lock
            try:
                await store.apply_updates(room.ydoc)
                print(f"loaded {name}", flush=True)
            except pycrdt.store.YDocNotFound:
                print(f"new {name}", flush=True)
            room.ready = True
        return await super().get_room(name)

    async def serve(self, websocket: Any) -> None:
        await super().serve(HangUpTolerant(websocket))


async def main(backend: str, location: str, port: int) -> None:
    # As jupyter-collaboration does: a client that hangs up mid-send is logged, not fatal.
    server = StoredRooms(
        store_maker(backend, location),
        rooms_ready=False,
        auto_clean_rooms=False,
        exception_handler=exception_logger,
    )
    async with server:
        config = uvicorn.Config(
            ASGIServer(server), host="127.0.0.1", port=port, ws="wsproto", log_level="warning"
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # it found: a no-op one lets the rooms and stores close and the process exit with 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
