"""The client's websocket: `websockets`' asyncio client behind a small interface.

`websockets` is the maintained standard websocket library for asyncio (it is
also one of uvicorn's websocket implementations); keeping its use to this module
leaves the rest of the client independent of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..room.protocol import ProtocolError

__all__ = ["Connection", "open_connection"]

OPEN_TIMEOUT = 10.0


class Connection:
    """One open websocket to a room: binary messages in and out, and how it ended.

    Attributes:
        close_code: The close code the server sent, once the connection has ended
            (None when it ended without a close frame).
        close_reason: The close reason the server sent.
    """

    def __init__(self, websocket: ClientConnection) -> None:
        self._websocket = websocket
        self.close_code: int | None = None
        self.close_reason = ""

    async def send(self, message: bytes) -> None:
        """Send one binary message."""
        await self._websocket.send(message)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The server's binary messages until the connection ends.

        Raises:
            ProtocolError: The server sent a text message.
        """
        try:
            async for message in self._websocket:
                if isinstance(message, str):
                    raise ProtocolError("The server sent a text message; y-protocols are binary.")
                yield message
        except ConnectionClosed:
            pass
        finally:
            received = self._websocket.protocol.close_rcvd
            if received is not None:
                self.close_code, self.close_reason = received.code, received.reason

    async def close(self) -> None:
        """Close the connection normally."""
        await self._websocket.close()


@asynccontextmanager
async def open_connection(url: str, headers: Mapping[str, str]) -> AsyncIterator[Connection]:
    """Connect to `url`; the connection is closed when the block ends.

    Raises:
        OSError: The server cannot be reached, or refused the websocket handshake.
        ValueError: `url` is not a ws:// or wss:// URL.
    """
    try:
        websocket = await connect(
            url,
            additional_headers=dict(headers),
            max_size=None,
            open_timeout=OPEN_TIMEOUT,
            compression=None,
            proxy=None,
        )
    except InvalidURI as exc:
        raise ValueError(f"{url} is not a websocket URL: {exc}") from exc
    except (InvalidHandshake, TimeoutError) as exc:
        raise OSError(f"The websocket handshake with {url} failed: {exc}") from exc
    try:
        yield Connection(websocket)
    finally:
        await websocket.close()
