"""Serve rooms with `bind`, edit a document on the server, keep a Python document in sync.

Run it: `python examples/client_and_server.py` (needs `pip install 'ystores[client]'`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from typing import Any

import pycrdt

from ystores.client import bind, connect


async def until(doc: pycrdt.Doc[Any], condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds, checking after each change of `doc`."""
    changed = asyncio.Event()
    subscription = doc.observe(lambda event: changed.set())
    while not condition():
        await changed.wait()
        changed.clear()
    doc.unobserve(subscription)


async def main(store_url: str) -> str:
    async with bind("ws://127.0.0.1:0", store=store_url) as server:
        # A server-side edit: the room's live document, loaded from the store if needed.
        async with server.app.document("notes/today") as live:
            live.get("text", type=pycrdt.Text).insert(0, "[server] ")

        # A Python client: its document stays in sync with the room "notes/today".
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        async with connect(f"{server.url}/notes/today", doc=doc) as client:
            await client.wait_synced()  # the client now has the server's edit
            client.set_local_state({"user": {"name": "Ana"}})  # awareness
            text = doc.get("text", type=pycrdt.Text)
            text += "Hello from Python."

            # The room API of ypy-websocket's WebsocketServer.
            room = await server.app.get_room("notes/today")
            assert room is server.app.rooms["notes/today"]
            room_text = room.ydoc.get("text", type=pycrdt.Text)
            await until(room.ydoc, lambda: str(room_text) == str(text))

        await server.app.delete_room(name="notes/today")  # stores what is pending

    # Everything is in the store: a new server loads it.
    async with bind(store=store_url) as server, connect(f"{server.url}/notes/today") as client:
        await client.wait_synced()
        return str(client.doc.get("text", type=pycrdt.Text))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        print(asyncio.run(main(f"sqlite:///{directory}/ystore.db")))
