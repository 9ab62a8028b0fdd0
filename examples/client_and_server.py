"""Serve rooms with `bind`, keep a Python document in sync with `connect`, edit on the server.

Run it: `python examples/client_and_server.py` (needs `pip install 'ystores[client]'`).
"""

from __future__ import annotations

import asyncio
import tempfile

import pycrdt

from ystores.client import bind, connect


async def main(store_url: str) -> str:
    async with bind("ws://127.0.0.1:0", store=store_url) as server:
        # A Python client: its document stays in sync with the room "notes/today".
        doc: pycrdt.Doc = pycrdt.Doc()
        async with connect(f"{server.url}/notes/today", doc=doc) as client:
            await client.wait_synced()
            client.set_local_state({"user": {"name": "Ana"}})  # awareness
            text = doc.get("text", type=pycrdt.Text)
            text += "Hello from Python."

            # A server-side edit: the live document of the room, as application code sees it.
            async with server.app.document("notes/today") as live:
                live.get("text", type=pycrdt.Text).insert(0, "[server] ")

            # The room API of ypy-websocket's WebsocketServer.
            room = await server.app.get_room("notes/today")
            assert room is server.app.rooms["notes/today"]

            arrived = asyncio.Event()
            text.observe(lambda event: arrived.set())
            while str(text) != "[server] Hello from Python.":
                await arrived.wait()  # the server's edit arrives
                arrived.clear()
        await server.app.delete_room(name="notes/today")  # stores what is pending

    # Everything is in the store: a new server loads it.
    async with bind(store=store_url) as server, connect(f"{server.url}/notes/today") as client:
        await client.wait_synced()
        return str(client.doc.get("text", type=pycrdt.Text))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        print(asyncio.run(main(f"sqlite:///{directory}/ystore.db")))
