"""The room API (`get_room`, `start_room`, `delete_room`, `rooms_ready`, `auto_clean_rooms`) and
server-side edits (`app.document`), on `YStoreApp` under uvicorn with real Node Yjs clients."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest
import uvicorn

from ystores import FileYStore
from ystores.client import Room
from ystores.room import YStoreApp

from .kit import node, read_json_line, start_node, stop_process, stored_text
from .live import WAIT, text_of, until

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(app: YStoreApp) -> AsyncIterator[str]:
    """uvicorn serving `app` in this event loop (so the test can use the room API); its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", ws="wsproto", log_level="warning")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(WAIT):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"ws://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


async def run_node(*args: str) -> Any:
    return await anyio.to_thread.run_sync(lambda: node(*args))


async def test_server_side_edits_reach_clients_and_the_store(
    node_clients: None, tmp_path: Path
) -> None:
    await FileYStore("notes/a", root=tmp_path).encode_state_as_update(_doc_with("stored;"))
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path))
    async with serving(app) as url:
        # No room is open: the document is loaded from the store.
        async with app.document("notes/a") as doc:
            assert text_of(doc) == "stored;"
            watcher = start_node("peer.mjs", "until", url, "notes/a", "server;")
            try:
                await anyio.sleep(0.3)  # let the watcher connect first: the edit is live
                doc.get("text", type=pycrdt.Text).insert(7, "server;")
                seen = await anyio.to_thread.run_sync(read_json_line, watcher)
            finally:
                stop_process(watcher, grace=10)
        assert seen["text"] == "stored;server;"
        # A client's edit reaches the application's view of the document too.
        editor = start_node("client.mjs", "edit", url, "notes/a", "ana", "3", "ana")
        try:
            async with app.document("notes/a") as doc:
                await until(doc, lambda: text_of(doc).count("<ana:") == 3)
        finally:
            stop_process(editor, grace=10)
    stored = await stored_text(FileYStore("notes/a", root=tmp_path))
    assert "stored;server;" in stored
    assert stored.count("<ana:") == 3


async def test_get_room_returns_the_room_clients_join(node_clients: None, tmp_path: Path) -> None:
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path), grace_period=60)
    async with serving(app) as url:
        room = await app.get_room("a")
        assert await app.get_room("a") is room
        assert app.rooms == {"a": room}
        written = await run_node("client.mjs", "edit", url, "a", "ana", "3", "ana")
        assert text_of(room.ydoc) == written["text"]
        assert app.rooms["a"] is room  # the grace period keeps it open


async def test_start_room_serves_a_room_the_application_made(
    node_clients: None, tmp_path: Path
) -> None:
    y_py = pytest.importorskip("y_py")
    ydoc = y_py.YDoc()
    with ydoc.begin_transaction() as txn:
        ydoc.get_text("text").extend(txn, "prepared in y-py;")
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path))
    async with serving(app) as url:
        room = Room("prepared", ystore=FileYStore("prepared", root=tmp_path), ydoc=ydoc)
        await app.start_room(room, "prepared")
        await app.start_room(room)  # already running: nothing happens
        assert room.id == "prepared"
        assert room.doc is ydoc
        assert await run_node("client.mjs", "read", url, "prepared") == {
            "text": "prepared in y-py;"
        }
        await run_node("client.mjs", "edit", url, "prepared", "ana", "2", "ana")
        assert str(ydoc.get_text("text")).count("<ana:") == 2
        with pytest.raises(ValueError, match="not held by the manager"):
            await app.start_room(Room("stray"))
        await app.delete_room(room=room)
        assert app.rooms == {}
    # What the document held before its room started is stored too (the clients' edits
    # build on it: without it the stored edits would not apply).
    stored = await stored_text(FileYStore("prepared", root=tmp_path))
    assert "prepared in y-py;" in stored
    assert stored.count("<ana:") == 2


async def test_delete_room_stores_the_document_and_clients_come_back_to_a_new_room(
    node_clients: None, tmp_path: Path
) -> None:
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path), grace_period=60)
    async with serving(app) as url:
        present = start_node("client.mjs", "present", url, "a", "zoë")
        try:
            await anyio.to_thread.run_sync(read_json_line, present)
            room = await app.get_room("a")
            with anyio.fail_after(WAIT):
                while not room.clients:
                    await anyio.sleep(0.02)
            async with app.document("a") as doc:
                doc.get("text", type=pycrdt.Text).insert(0, "kept")
            await app.delete_room(name="a")
            assert await stored_text(FileYStore("a", root=tmp_path)) == "kept"
            # y-websocket reconnects after the 1001 close and finds a new room.
            with anyio.fail_after(WAIT):
                while "a" not in app.rooms or not app.rooms["a"].clients:
                    await anyio.sleep(0.05)
            assert app.rooms["a"] is not room
            assert text_of(app.rooms["a"].ydoc) == "kept"
        finally:
            stop_process(present)
        with pytest.raises(ValueError, match="either name= or room="):
            await app.delete_room()
        await app.delete_room(name="never-opened")  # nothing to do


async def test_auto_clean_rooms_decides_whether_idle_rooms_close(
    node_clients: None, tmp_path: Path
) -> None:
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path), grace_period=0)
    async with serving(app) as url:
        app.auto_clean_rooms = False
        await run_node("client.mjs", "read", url, "kept-open")
        await anyio.sleep(0.3)
        assert "kept-open" in app.rooms
        app.auto_clean_rooms = True
        await run_node("client.mjs", "read", url, "cleaned")
        with anyio.fail_after(WAIT):
            while "cleaned" in app.rooms:
                await anyio.sleep(0.02)


async def test_rooms_ready_holds_clients_until_the_document_is_prepared(
    node_clients: None, tmp_path: Path
) -> None:
    app = YStoreApp(lambda name: FileYStore(name, root=tmp_path))
    app.rooms_ready = False
    async with serving(app) as url:
        reader = start_node("client.mjs", "read", url, "a")
        try:
            room = await app.get_room("a")
            await anyio.sleep(0.5)
            assert reader.poll() is None  # still waiting for the room
            room.ydoc.get("text", type=pycrdt.Text).insert(0, "prepared")
            room.ready = True
            assert await anyio.to_thread.run_sync(read_json_line, reader) == {"text": "prepared"}
        finally:
            stop_process(reader, grace=10)


def _doc_with(text: str) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("text", type=pycrdt.Text).insert(0, text)
    return doc
