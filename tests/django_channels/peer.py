"""A Yjs peer in Python speaking y-protocols through Channels' `WebsocketCommunicator`."""

from __future__ import annotations

from typing import Any

import pycrdt
from channels.testing import WebsocketCommunicator

from ystores.room.protocol import (
    MessageType,
    SyncType,
    decode_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

TIMEOUT = 10


class Peer:
    """One client of a consumer: its document, and the messages it received besides sync."""

    def __init__(self, application: Any, path: str) -> None:
        self.communicator = WebsocketCommunicator(application, path)
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("text", type=pycrdt.Text)
        self.awareness: list[bytes] = []
        self.closed: int | None = None

    async def connect(self) -> bool:
        connected, code = await self.communicator.connect(timeout=TIMEOUT)
        if not connected:
            self.closed = code
        return bool(connected)

    async def sync(self) -> None:
        """Answer the consumer's step 1, send ours and apply its step 2."""
        await self.communicator.send_to(bytes_data=encode_sync_step1(self.doc.get_state()))
        while True:
            decoded = await self.receive()
            if decoded is not None and decoded.sync_type is SyncType.STEP2:
                return

    async def receive(self) -> Any:
        """Handle the next message; returns it decoded (None once the consumer closed)."""
        output = await self.communicator.receive_output(TIMEOUT)
        if output["type"] == "websocket.close":
            self.closed = output.get("code", 1000)
            return None
        decoded = decode_message(output["bytes"])
        if decoded.type is MessageType.SYNC:
            if decoded.sync_type is SyncType.STEP1:
                diff = self.doc.get_update(decoded.payload)
                await self.communicator.send_to(bytes_data=encode_sync_step2(diff))
            else:
                self.doc.apply_update(decoded.payload)
        elif decoded.type is MessageType.AWARENESS:
            self.awareness.append(decoded.payload)
        return decoded

    async def until_text(self, expected: str) -> None:
        while str(self.text) != expected:
            if await self.receive() is None:
                raise AssertionError(f"Closed ({self.closed}) with text {str(self.text)!r}.")

    async def type(self, text: str) -> None:
        """Append `text` and send the change, as y-websocket does."""
        before = self.doc.get_state()
        self.text += text
        await self.communicator.send_to(bytes_data=encode_update(self.doc.get_update(before)))

    async def send(self, message: bytes) -> None:
        await self.communicator.send_to(bytes_data=message)

    async def leave(self) -> None:
        await self.communicator.disconnect()
