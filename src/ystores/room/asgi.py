"""`YStoreApp`: an ASGI application serving one room per document over websockets.

It speaks the ASGI websocket, HTTP and lifespan protocols directly, so it runs
under any ASGI server and mounts in Starlette, FastAPI or Django Channels. A
plain HTTP GET of a room's path gets that room's editor page (`ystores.web`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from logging import Logger, getLogger
from types import TracebackType
from typing import Any

from ..base import BaseYStore
from ..errors import AccessDenied, InvalidDocumentNameError, YStoreError
from ..names import validate_name
from ..urls import open_store
from ..web.http import serve_http
from .channel import CloseCode, close_quietly
from .manager import RoomAccess, RoomHook, RoomManager, StoreFactory
from .protocol import ProtocolError
from .room import DEFAULT_MAX_MESSAGE_SIZE, YRoom

__all__ = ["ASGIChannel", "AccessDenied", "Authenticate", "YStoreApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

Authenticate = Callable[[Scope], Awaitable[bool]]
"""Decides from the ASGI scope (headers, query string, cookies...) whether a client may join."""


class ASGIChannel:
    """A room `Channel` over one accepted ASGI websocket connection."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._path = str(scope.get("path", ""))
        self._receive = receive
        self._send = send
        self._closed = False

    @property
    def path(self) -> str:
        """The request path."""
        return self._path

    async def send(self, message: bytes) -> None:
        """Send one binary message."""
        await self._send({"type": "websocket.send", "bytes": message})

    def __aiter__(self) -> ASGIChannel:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        event = await self._receive()
        if event["type"] == "websocket.disconnect":
            self._closed = True
            raise StopAsyncIteration
        data = event.get("bytes")
        if data is None:
            raise ProtocolError("A text message arrived; y-protocols messages are binary.")
        return bytes(data)

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection; a no-op once it is closed."""
        if self._closed:
            return
        self._closed = True
        await self._send({"type": "websocket.close", "code": int(code), "reason": reason})


class YStoreApp(RoomAccess):
    """An ASGI application: a websocket at `/{name}` joins the room of document `name`.

    Rooms run in a `RoomManager` that lives while the application runs: under an
    ASGI server with lifespan support (uvicorn, hypercorn) the lifespan protocol
    starts and stops it; when mounted in another application, enter
    `async with app:` in that application's lifespan instead.

    Connections are accepted, then closed before joining a room with code 4400
    for a name that `ystores.names.validate_name` refuses (absolute, `..`, NUL),
    4403 when `authenticate` returns False (or the code of an `AccessDenied` it
    raises), and 4500 when the application is not running or the room cannot
    open. The room name is the path after the mount point (the `room` URL
    argument under Django Channels' `URLRouter`).

    Plain HTTP GETs get pages for browsers (`ystores.web.http`): `/` picks or
    creates a room and `/NAME` is the collaborative editor of document NAME;
    `authenticate` sees those requests too (an `AccessDenied` with code 4401
    answers 401, any other refusal 403). Paths under `/.ystores/` are the pages'
    own (assets and status) over HTTP.

    The room API of `RoomAccess` (`get_room`, `start_room`, `delete_room`,
    `rooms_ready`, `auto_clean_rooms`, `document(name)` for server-side edits)
    works on the application while it runs.

    Attributes:
        manager: The rooms.
        authenticate: The access hook, when there is one.
        log: Where refusals are logged.
    """

    def __init__(
        self,
        store: str | StoreFactory,
        *,
        authenticate: Authenticate | None = None,
        grace_period: float = 5.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_room_closed: Sequence[RoomHook] = (),
        log: Logger | None = None,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Make the application.

        Args:
            store: A store URL for `ystores.urls.open_store` (such as
                `sqlite:///ystore.db`), or a callable making a document's store
                from its name.
            authenticate: Awaited with the ASGI scope before a client joins;
                False refuses it with close code 4403.
            grace_period: Seconds a room stays open after its last client leaves.
            max_message_size: Larger client messages close that client (1009).
            on_room_closed: Hooks run with `(name, room)` after a room closes.
            log: Where to log; the `ystores.room` logger by default.
            store_options: With a store URL, the keyword arguments each
                document's store is opened with (`compaction=`, `checkpoints=`,
                `retention=`, `compress=`; see `BaseYStore`).
        """
        if store_options and not isinstance(store, str):
            raise TypeError("store_options go with a store URL; a factory sets its own.")
        options = dict(store_options or {})
        factory = _url_factory(store, options) if isinstance(store, str) else store
        self.log = log or getLogger("ystores.room")
        self.authenticate = authenticate

        def make_room(name: str, ystore: BaseYStore | None) -> YRoom:
            return YRoom(ystore=ystore, log=self.log, max_message_size=max_message_size)

        self.manager = RoomManager(
            factory,
            grace_period=grace_period,
            room_factory=make_room,
            on_room_closed=on_room_closed,
            log=self.log,
        )

    async def __aenter__(self) -> YStoreApp:
        await self.manager.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        return await self.manager.__aexit__(exc_type, exc_value, exc_tb)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: websocket, HTTP (the pages) and lifespan scopes."""
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await serve_http(self, scope, receive, send)

    def room_name(self, scope: Scope) -> str:
        """The document name a connection asks for: its path after the mount point.

        Override to map paths to documents differently.
        """
        url_route = scope.get("url_route")
        if isinstance(url_route, dict) and "room" in url_route.get("kwargs", {}):
            return str(url_route["kwargs"]["room"])
        path = str(scope.get("path", ""))
        root_path = str(scope.get("root_path", ""))
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        return path[1:] if path.startswith("/") else path

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        channel = ASGIChannel(scope, receive, send)
        refusal = await self._refusal(scope)
        await send({"type": "websocket.accept"})
        if refusal is not None:
            code, reason = refusal
            self.log.warning("Refused %s (%d): %s", channel.path, code, reason)
            await close_quietly(channel, code, reason)
            return
        try:
            await self.manager.serve(self.room_name(scope), channel)
        except InvalidDocumentNameError as exc:  # a name this backend cannot hold
            self.log.warning("Refused %s: %s", channel.path, exc)
            await close_quietly(channel, CloseCode.BAD_ROOM_NAME, str(exc))
        except YStoreError as exc:
            self.log.error("Could not serve %s: %s", channel.path, exc)
            await close_quietly(channel, CloseCode.UNAVAILABLE, str(exc))

    async def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        try:
            validate_name(self.room_name(scope))
        except InvalidDocumentNameError as exc:
            return CloseCode.BAD_ROOM_NAME, str(exc)
        if self.authenticate is not None:
            try:
                allowed = await self.authenticate(scope)
            except AccessDenied as exc:
                return exc.code, exc.reason
            if not allowed:
                return CloseCode.FORBIDDEN, "Forbidden."
        if not self.manager.running:
            return CloseCode.UNAVAILABLE, (
                "The ystores application is not running: serve it with lifespan on, "
                "or enter `async with app:` in your application's lifespan."
            )
        return None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                try:
                    await self.__aenter__()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                if self.manager.running:
                    await self.__aexit__(None, None, None)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _url_factory(url: str, options: dict[str, Any]) -> StoreFactory:
    def factory(name: str) -> BaseYStore:
        return open_store(url, name, **options)

    return factory
