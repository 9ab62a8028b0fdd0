"""`ystores.client`: a Python document in sync with real servers, beside real Node Yjs clients."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores.client import ConnectionRefusedByServer, YClient, bind, connect
from ystores.yupdate import decode_state_vector

from .kit import free_port, node, read_json_line, start_node, stop_process
from .live import WAIT, b64, node_websocket_server, text_of, until

pytestmark = pytest.mark.anyio

EDITS = 15


def markers(name: str, count: int = EDITS) -> list[str]:
    return [f"<{name}:{i}>" for i in range(count)]


async def type_markers(doc: pycrdt.Doc[Any], name: str) -> None:
    """Insert markers between markers, with pauses, as the Node editors do."""
    text = doc.get("text", type=pycrdt.Text)
    for i, marker in enumerate(markers(name)):
        current = str(text)
        boundaries = [0] + [at + 1 for at, char in enumerate(current) if char == ">"]
        text.insert(boundaries[(i * 7) % len(boundaries)], marker)
        await anyio.sleep(0.005)


async def edit_beside_node_clients(url: str, room: str) -> None:
    """A Python client and two Node clients edit concurrently; all three end byte-identical."""
    names = ["py", "ana", "bob"]
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    async with connect(f"{url}/{room}", doc=doc) as client:
        await client.wait_synced()
        editors = [
            start_node("peer.mjs", "edit", url, room, name, str(EDITS), ",".join(names))
            for name in names[1:]
        ]
        try:
            await type_markers(doc, "py")
            everything = [m for name in names for m in markers(name)]
            await until(doc, lambda: all(m in text_of(doc) for m in everything))
            states = [await anyio.to_thread.run_sync(read_json_line, editor) for editor in editors]
        finally:
            for editor in editors:
                stop_process(editor, grace=10)
        # The Node clients left after printing: the Python client has everything they had.
        for state in states:
            assert state["text"] == text_of(doc)
            # Yjs and yrs order a state vector's entries differently: compare them decoded,
            # and the content byte for byte through one encoder.
            assert decode_state_vector(b64(state["stateVector"])) == decode_state_vector(
                doc.get_state()
            )
            replica: pycrdt.Doc[Any] = pycrdt.Doc()
            replica.apply_update(b64(state["update"]))
            assert replica.get_update() == doc.get_update()
            # Same content: the Node client's whole state applied here changes nothing.
            before = doc.get_state()
            doc.apply_update(b64(state["update"]))
            assert doc.get_state() == before
        for marker in everything:
            assert text_of(doc).count(marker) == 1


async def test_the_client_converges_with_node_clients_on_a_ystores_server(
    node_clients: None, tmp_path: Path
) -> None:
    async with bind(store=f"sqlite:///{tmp_path}/ystore.db") as server:
        await edit_beside_node_clients(server.url, "notes/today")
        expected = text_of((await server.app.get_room("notes/today")).ydoc)
    # The store holds what the clients converged on.
    async with bind(store=f"sqlite:///{tmp_path}/ystore.db") as server:
        reader = await anyio.to_thread.run_sync(
            node, "client.mjs", "read", server.url, "notes/today"
        )
    assert reader == {"text": expected}


async def test_the_client_converges_with_node_clients_on_node_y_websocket_server(
    node_clients: None,
) -> None:
    with node_websocket_server() as url:
        await edit_beside_node_clients(url, "shared-room")


async def test_awareness_reaches_node_clients_and_leaves_with_the_client(
    node_clients: None,
) -> None:
    with node_websocket_server() as url:
        watcher = start_node("client.mjs", "watch", url, "room", "zoë")
        try:
            async with connect(f"{url}/room") as client:
                await client.wait_synced()
                client.set_local_state({"user": "zoë"})
                seen = await anyio.to_thread.run_sync(read_json_line, watcher)
                assert seen == {"seen": client.client_id}
                # The Python client sees the Node client's presence too.
                presenter = start_node("client.mjs", "present", url, "room", "ana")
                try:
                    node_id = (await anyio.to_thread.run_sync(read_json_line, presenter))[
                        "clientID"
                    ]
                    with anyio.fail_after(WAIT):
                        while client.awareness.states.get(node_id) != {"user": "ana"}:
                            await anyio.sleep(0.05)
                finally:
                    stop_process(presenter, signal.SIGKILL)
            # Leaving the block says goodbye: the watcher sees the state removed.
            removed = await anyio.to_thread.run_sync(read_json_line, watcher)
            assert removed == {"removed": client.client_id}
        finally:
            stop_process(watcher)


async def test_the_client_reconnects_and_resyncs_after_the_server_restarts(
    node_clients: None, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path}/ystore.db"
    port = free_port()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    async with YClient(f"ws://127.0.0.1:{port}/doc", doc, backoff=(0.05, 0.5)) as client:
        async with bind(f"ws://127.0.0.1:{port}", store=store) as server:
            await client.wait_synced()
            text += "before;"
            async with server.app.document("doc") as live:
                await until(live, lambda: text_of(live) == "before;")
        # The server is gone (its rooms stored everything); the client edits offline.
        with anyio.fail_after(WAIT):
            while client.synced:
                await anyio.sleep(0.01)
        text += "offline;"
        async with bind(f"ws://127.0.0.1:{port}", store=store) as server:
            await client.wait_synced()
            seen = await anyio.to_thread.run_sync(
                node, "peer.mjs", "until", server.url, "doc", "offline;"
            )
            assert seen["text"] == "before;offline;"
            editor = start_node("peer.mjs", "edit", server.url, "doc", "ana", "3", "ana")
            try:
                await until(doc, lambda: all(m in str(text) for m in markers("ana", 3)))
            finally:
                stop_process(editor, grace=10)
        assert client.connections == 2


async def test_a_refused_client_says_why_and_stops_retrying() -> None:
    async def nobody(scope: Any) -> bool:
        return False

    async with bind(authenticate=nobody) as server, connect(f"{server.url}/doc") as client:
        with anyio.fail_after(WAIT), pytest.raises(ConnectionRefusedByServer) as refused:
            await client.wait_synced()
        assert refused.value.code == 4403
        assert client.connections == 1


async def test_a_y_py_document_is_kept_in_sync(node_clients: None) -> None:
    y_py = pytest.importorskip("y_py")
    doc = y_py.YDoc()
    async with bind() as server, connect(server.url, id="doc", doc=doc) as client:
        await client.wait_synced()
        text = doc.get_text("text")
        with doc.begin_transaction() as txn:
            text.extend(txn, "from y-py;")
        seen = await anyio.to_thread.run_sync(node, "peer.mjs", "until", server.url, "doc", "y-py")
        assert seen["text"] == "from y-py;"
        editor = start_node("peer.mjs", "edit", server.url, "doc", "ana", "3", "ana")
        try:
            await until(doc, lambda: all(m in text_of(doc) for m in markers("ana", 3)))
        finally:
            stop_process(editor, grace=10)


def test_a_url_that_is_not_a_websocket_url_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="ws:// or wss://"):
        connect("http://127.0.0.1:1234/doc")
