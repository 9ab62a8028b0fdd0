"""One client in a room: its channel, its bounded outbox and the awareness ids it announced."""

from __future__ import annotations

from logging import Logger

import anyio

from .channel import Channel, CloseCode

__all__ = ["RoomClient"]


class RoomClient:
    """A connection served by a room.

    Messages for the client go through a bounded outbox drained by `run_sender`,
    so a slow client never holds up the room: when its outbox is full it is
    closed (it resyncs when it reconnects) instead of buffering without bound.

    Attributes:
        channel: The connection.
        awareness_ids: The Yjs client ids whose awareness this connection
            brought to the room first; their states are cleared when it ends.
        close_code: The close code to send when the room ends the connection.
        close_reason: Why the room ends the connection.
    """

    def __init__(self, channel: Channel, outbox_size: int, log: Logger) -> None:
        self.channel = channel
        self.log = log
        self.awareness_ids: set[int] = set()
        self.close_code: int = CloseCode.NORMAL
        self.close_reason = ""
        self.cancel_scope: anyio.CancelScope | None = None
        self._outbox_send, self._outbox_receive = anyio.create_memory_object_stream[bytes](
            outbox_size
        )

    def queue(self, message: bytes) -> None:
        """Queue a message for the client without waiting; close the client if it lags."""
        try:
            self._outbox_send.send_nowait(message)
        except anyio.WouldBlock:
            self.disconnect(CloseCode.TOO_SLOW, "The client did not keep up with the room.")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the client is leaving; it resyncs if it comes back

    def disconnect(self, code: int, reason: str) -> None:
        """End the connection from another task: the serving task closes it with `code`."""
        if self.cancel_scope is None or self.cancel_scope.cancel_called:
            return
        self.close_code, self.close_reason = code, reason
        self.log.info("Closing client %s (%d): %s", self.channel.path, code, reason)
        self.cancel_scope.cancel()

    async def run_sender(self) -> None:
        """Send queued messages in order until the outbox closes or the client is gone."""
        async with self._outbox_receive:
            try:
                async for message in self._outbox_receive:
                    await self.channel.send(message)
            except Exception as exc:  # any transport failure means the client is gone
                self.log.debug("Sending to %s failed: %r", self.channel.path, exc)
                self.disconnect(CloseCode.GOING_AWAY, "The connection failed.")

    def close_outbox(self) -> None:
        """Stop accepting messages for this client."""
        self._outbox_send.close()

    def release(self) -> None:
        """Close both ends of the outbox (once the sender is done)."""
        self._outbox_send.close()
        self._outbox_receive.close()
