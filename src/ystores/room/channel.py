"""What a room talks to: one client connection, whatever the websocket library.

`Channel` is a Protocol: any object with these members fits, so adapting a
websocket library is a few lines (`ystores.room.asgi` adapts raw ASGI).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Protocol

import anyio

__all__ = ["Channel", "CloseCode", "close_quietly", "short_reason"]


class Channel(Protocol):
    """One client connection carrying binary y-protocols messages.

    Iterating yields each message the client sends and ends when it disconnects.
    """

    @property
    def path(self) -> str:
        """Where the client connected (used in logs)."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one binary message to the client."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The client's messages, until it disconnects."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; a no-op once it is closed."""
        ...


class CloseCode(enum.IntEnum):
    """The websocket close codes a room and its server use.

    Codes 4400-4499 tell y-websocket clients not to reconnect (the cause will not
    go away); 4500-4599 invite them to try again later.
    """

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_PAYLOAD = 1007
    MESSAGE_TOO_BIG = 1009
    BAD_ROOM_NAME = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    TOO_SLOW = 4529
    UNAVAILABLE = 4500


def short_reason(reason: str) -> str:
    """`reason` cut to fit a websocket close frame (123 bytes of UTF-8)."""
    encoded = reason.encode("utf-8")
    return reason if len(encoded) <= 123 else encoded[:120].decode("utf-8", "ignore") + "..."


async def close_quietly(channel: Channel, code: int, reason: str) -> None:
    """Close `channel`, even when cancelled, and ignore a connection that already failed."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        try:
            await channel.close(code, short_reason(reason))
        except Exception:  # the transport is gone: nothing left to close
            return
