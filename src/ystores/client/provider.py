"""`YClient`: a local document kept in sync with a y-websocket-compatible server.

The client speaks the same y-protocols messages as y-websocket's
`WebsocketProvider`: it sends its state vector on connecting, answers the
server's, forwards each local change as an update and applies the server's.
After a lost connection it reconnects with exponential backoff and resyncs both
ways, so edits made while offline reach the server and edits made elsewhere
reach the document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from logging import Logger, getLogger
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import InvalidUpdateError, YStoreError
from ..room.awareness import Awareness
from ..room.document import RoomDocument
from ..room.protocol import (
    AwarenessEntry,
    MessageType,
    ProtocolError,
    SyncType,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from .transport import Connection, open_connection

__all__ = ["ConnectionRefusedByServer", "YClient"]


class ConnectionRefusedByServer(YStoreError):
    """The server closed the connection with a code that says retrying will not help (44xx).

    Attributes:
        code: The websocket close code.
        reason: The close reason the server gave.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"The server refused the connection ({code}): {reason or 'no reason'}.")
        self.code = code
        self.reason = reason


class YClient:
    """A live connection between a local document and a room on a y-websocket server.

    Use it as an async context manager (`ystores.client.connect` makes one):
    entering starts connecting in the background; `await client.wait_synced()` waits
    until the first (or current) sync has completed. Leaving says goodbye to
    the room's awareness and closes the connection. The client runs on asyncio
    (its websocket library, `websockets`, is asyncio-only).

    Edit `client.doc` as usual: every local change is sent to the server, and the
    server's changes are applied to it. Only edit it from the event loop's thread.

    Attributes:
        url: The room's websocket URL.
        doc: The local document (a `pycrdt.Doc`, or a `y_py.YDoc`).
        awareness: Every client's awareness state as the server relays it
            (`client.awareness.states`), this client's own included.
        connections: How many times the client has connected (1 after the first
            connection; more after reconnections).
        refused: Why the server refused the client for good, when it did.
    """

    def __init__(
        self,
        url: str,
        doc: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.1, 5.0),
        awareness_interval: float = 15.0,
        outbox_size: int = 10_000,
        log: Logger | None = None,
    ) -> None:
        """Make a client; it connects once entered.

        Args:
            url: The room's websocket URL, `ws://host:port/room-name` (as
                y-websocket builds it from a server URL and a room name).
            doc: The local document; a new `pycrdt.Doc` by default.
            params: Query parameters added to the URL (such as a token), like
                y-websocket's `params` option.
            headers: HTTP headers sent when connecting (such as a cookie).
            reconnect: Whether to reconnect after a lost connection.
            backoff: The first and the longest delay between reconnection attempts.
            awareness_interval: Seconds between renewals of the local awareness
                state (y-protocols drops states not renewed for 30 s).
            outbox_size: How many local changes may wait for the connection; when
                more pile up the connection is dropped and the client resyncs.
            log: Where to log; the `ystores.client` logger by default.

        Raises:
            ValueError: `url` is not a ws:// or wss:// URL.
        """
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"Expected a ws:// or wss:// URL, got {url!r}.")
        query = urlencode(dict(params)) if params else ""
        self.url = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
        self._document = RoomDocument(doc)
        self.doc: Any = self._document.ydoc
        self.awareness = Awareness()
        self.connections = 0
        self.refused: ConnectionRefusedByServer | None = None
        self.log = log or getLogger("ystores.client")
        self._headers = dict(headers or {})
        self._reconnect = reconnect
        self._backoff = backoff
        self._awareness_interval = awareness_interval
        self._outbox_size = outbox_size
        self._local_state: Any = None
        self._local_clock = 0
        self._applying = False
        self._synced = anyio.Event()
        self._gone = anyio.Event()
        self._outbox: MemoryObjectSendStream[bytes] | None = None
        self._connection: Connection | None = None
        self._task_group: TaskGroup | None = None

    # -- state ------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether the client is connected and has received the server's state."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait until the client is connected and holds everything the server had.

        Raises:
            ConnectionRefusedByServer: The server refused the client for good.
        """
        async with anyio.create_task_group() as tg:

            async def stop_when_refused() -> None:
                await self._gone.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stop_when_refused)
            await self._synced.wait()
            tg.cancel_scope.cancel()
        if self.refused is not None:
            raise self.refused

    @property
    def client_id(self) -> int:
        """The Yjs client id of the local document (its key in awareness states)."""
        from .. import crdt

        return crdt.client_id(self.doc)

    @property
    def local_state(self) -> Any:
        """This client's awareness state (JSON-serializable), None when it has none."""
        return self._local_state

    def set_local_state(self, state: Any) -> None:
        """Set this client's awareness state (such as `{"user": {"name": "Ana"}}`) and send it.

        None removes it: other clients see this client leave.
        """
        json.dumps(state)  # refuse what the other clients could not decode, now
        self._local_state = state
        self._local_clock += 1
        self._queue(self._awareness_message())

    def _awareness_message(self) -> bytes:
        entry = AwarenessEntry(self.client_id, self._local_clock, json.dumps(self._local_state))
        return encode_awareness(encode_awareness_update([entry]))

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> YClient:
        if self._task_group is not None:
            raise YStoreError("This client is already running.")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._document.observe(self._local_change)
        self._task_group.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        tg, self._task_group = self._task_group, None
        assert tg is not None
        self._document.unobserve()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._say_goodbye()
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc_value, exc_tb)

    async def _say_goodbye(self) -> None:
        connection = self._connection
        if connection is None:
            return
        if self._local_state is not None:
            self._local_state, self._local_clock = None, self._local_clock + 1
            try:
                await connection.send(self._awareness_message())
            except Exception as exc:  # the connection is already gone
                self.log.debug("Could not say goodbye to %s: %r", self.url, exc)
        await connection.close()

    # -- the connection loop ----------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            code, reason = None, ""
            try:
                async with open_connection(self.url, self._headers) as connection:
                    self.connections += 1
                    delay = self._backoff[0]
                    code, reason = await self._converse(connection)
            except OSError as exc:
                self.log.info("Could not connect to %s: %s", self.url, exc)
            except (ProtocolError, InvalidUpdateError) as exc:
                self.log.warning("The server at %s sent a malformed message: %s", self.url, exc)
            finally:
                self._connection = None
                self._outbox = None
                if self._synced.is_set():
                    self._synced = anyio.Event()
            if code is not None and 4400 <= code < 4500:
                self.refused = ConnectionRefusedByServer(code, reason)
                self.log.error("%s", self.refused)
                self._gone.set()
                return
            if not self._reconnect:
                self._gone.set()
                return
            await anyio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _converse(self, connection: Connection) -> tuple[int | None, str]:
        send, receive = anyio.create_memory_object_stream[bytes](self._outbox_size)
        async with anyio.create_task_group() as tg, send, receive:
            self._outbox, self._connection = send, connection
            send.send_nowait(encode_sync_step1(self._document.state_vector()))
            if self._local_state is not None:
                send.send_nowait(self._awareness_message())
            tg.start_soon(self._send_queued, connection, receive, tg)
            tg.start_soon(self._renew_awareness)
            async for message in connection:
                self._receive(message)
            tg.cancel_scope.cancel()
        self.log.info("Disconnected from %s (%s).", self.url, connection.close_code)
        return connection.close_code, connection.close_reason

    async def _send_queued(
        self, connection: Connection, receive: MemoryObjectReceiveStream[bytes], tg: TaskGroup
    ) -> None:
        try:
            async for message in receive:
                await connection.send(message)
        except Exception as exc:  # the connection failed: reconnect
            self.log.info("Sending to %s failed: %r", self.url, exc)
        tg.cancel_scope.cancel()

    async def _renew_awareness(self) -> None:
        while True:
            await anyio.sleep(self._awareness_interval)
            if self._local_state is not None:
                self._local_clock += 1
                self._queue(self._awareness_message())

    def _queue(self, message: bytes) -> None:
        outbox = self._outbox
        if outbox is None:
            return  # offline: the next connection's sync carries the change
        try:
            outbox.send_nowait(message)
        except anyio.WouldBlock:
            self.log.warning("%d messages wait for %s: resyncing.", self._outbox_size, self.url)
            outbox.close()  # ends the sender, which ends the connection
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def _local_change(self, update: bytes) -> None:
        if not self._applying:
            self._queue(encode_update(update))

    def _receive(self, message: bytes) -> None:
        decoded = decode_message(message)
        if decoded.type is MessageType.SYNC:
            if decoded.sync_type is SyncType.STEP1:
                self._queue(encode_sync_step2(self._document.diff(decoded.payload)))
                return
            self._apply_remote(decoded.payload)
            if decoded.sync_type is SyncType.STEP2:
                self._synced.set()
        elif decoded.type is MessageType.AWARENESS:
            self.awareness.apply(decoded.payload)
        elif decoded.type is MessageType.QUERY_AWARENESS and self._local_state is not None:
            self._queue(self._awareness_message())

    def _apply_remote(self, update: bytes) -> None:
        self._applying = True
        try:
            self._document.apply(update)
        finally:
            self._applying = False
