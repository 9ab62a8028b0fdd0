"""`YjsConsumer` under Channels' `WebsocketCommunicator` with the in-memory channel layer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.test import override_settings
from django.urls import re_path

from ystores import SQLiteYStore
from ystores.django import YjsConsumer, edit_document, group_name, send_doc_update
from ystores.room.protocol import (
    AwarenessEntry,
    decode_awareness_update,
    encode_awareness,
    encode_awareness_update,
    encode_update,
)

from .peer import Peer

pytestmark = pytest.mark.anyio


def router(consumer: type[YjsConsumer] = YjsConsumer) -> Any:
    return URLRouter([re_path(r"^ws/(?P<room>.+)$", consumer.as_asgi())])


async def stored_text(db: Path, name: str) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    async with SQLiteYStore(name, db_path=str(db)) as store:
        await store.apply_updates(doc)
    return str(doc.get("text", type=pycrdt.Text))


async def joined(path: str, app: Any = None) -> Peer:
    peer = Peer(app or router(), path)
    assert await peer.connect()
    await peer.sync()
    return peer


async def test_clients_sync_broadcast_and_relay_awareness(tmp_path: Path) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/notes/today")
        bob = await joined("/ws/notes/today")
        other = await joined("/ws/notes/other")
        await ana.type("hello")
        await bob.until_text("hello")
        await bob.type(" world")
        await ana.until_text("hello world")
        state = encode_awareness_update([AwarenessEntry(ana.doc.client_id, 1, '{"user":"ana"}')])
        await ana.send(encode_awareness(state))
        while state not in bob.awareness:
            await bob.receive()
        # The other room saw nothing of it.
        assert await other.communicator.receive_nothing(timeout=0.3)
        # Ana's connection ends without a goodbye: bob is told ana's state is gone.
        await ana.leave()

        def ana_removed() -> bool:
            return any(
                entry.client_id == ana.doc.client_id and entry.removed
                for message in bob.awareness
                for entry in decode_awareness_update(message)
            )

        while not ana_removed():
            await bob.receive()
        for peer in (bob, other):
            await peer.leave()


async def test_the_document_persists_across_connections(tmp_path: Path) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/notes/today")
        await ana.type("kept")
        await ana.leave()
        assert await stored_text(tmp_path / "y.db", "notes/today") == "kept"
        bob = await joined("/ws/notes/today")
        assert str(bob.text) == "kept"
        await bob.leave()


async def test_send_doc_update_from_sync_code_reaches_every_client(tmp_path: Path) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/notes/today")
        bob = await joined("/ws/notes/today")
        await ana.type("typed;")
        await bob.until_text("typed;")

        def view() -> None:  # a synchronous Django view, run in a thread as under ASGI
            with edit_document("notes/today") as doc:
                doc.get("text", type=pycrdt.Text).insert(6, "edited;")

        await sync_to_async(view)()
        await ana.until_text("typed;edited;")
        await bob.until_text("typed;edited;")

        def signal_handler() -> None:
            change: pycrdt.Doc[Any] = pycrdt.Doc()
            change.get("banner", type=pycrdt.Text).insert(0, "hi")
            send_doc_update("notes/today", change.get_update())

        await sync_to_async(signal_handler)()
        while str(bob.doc.get("banner", type=pycrdt.Text)) != "hi":
            await bob.receive()
        for peer in (ana, bob):
            await peer.leave()
        assert await stored_text(tmp_path / "y.db", "notes/today") == "typed;edited;"
        carol = await joined("/ws/notes/today")
        assert str(carol.doc.get("banner", type=pycrdt.Text)) == "hi"
        await carol.leave()


async def test_send_doc_update_refuses_bytes_that_are_not_an_update(tmp_path: Path) -> None:
    from ystores import InvalidUpdateError

    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        with pytest.raises(InvalidUpdateError):
            await sync_to_async(send_doc_update)("notes/today", b"\xff\xff\xff")
        assert (
            not (tmp_path / "y.db").exists()
            or await stored_text(tmp_path / "y.db", "notes/today") == ""
        )


class Guarded(YjsConsumer):
    async def connect(self) -> None:
        if self.scope["query_string"] != b"token=ok":
            await self.close(code=4403)
            return
        await super().connect()


async def test_connect_can_refuse_a_client() -> None:
    refused = Peer(router(Guarded), "/ws/a")
    assert not await refused.connect()
    assert refused.closed == 4403
    admitted = await joined("/ws/a?token=ok", router(Guarded))
    await admitted.leave()


async def test_bad_input_closes_only_its_client() -> None:
    ana = await joined("/ws/a")
    bob = await joined("/ws/a")
    await ana.send(b"\x05")
    assert await ana.receive() is None
    assert ana.closed == 1002
    carol = await joined("/ws/a")
    await carol.send(encode_update(b"\xff\xff\xff\xff"))
    assert await carol.receive() is None
    assert carol.closed == 1007
    await bob.type("still here")
    dave = await joined("/ws/a")
    await dave.until_text("still here")
    for peer in (bob, dave):
        await peer.leave()


class YPyConsumer(YjsConsumer):
    async def make_ydoc(self) -> Any:
        y_py = pytest.importorskip("y_py")
        return y_py.YDoc()


async def test_make_ydoc_may_return_a_y_py_document(tmp_path: Path) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/a", router(YPyConsumer))
        await ana.type("y-py")
        await ana.leave()
        bob = await joined("/ws/a", router(YPyConsumer))
        assert str(bob.text) == "y-py"
        await bob.leave()


async def test_room_names_map_to_valid_group_names() -> None:
    layer: Any = get_channel_layer()
    for name in ("plain", "notes/today", "é" * 200, "a b"):
        assert layer.require_valid_group_name(group_name(name))
    assert group_name("plain") == "plain"  # as ypy-websocket used it
    assert group_name("notes/a") != group_name("notes/b")


async def test_a_change_the_store_cannot_take_closes_its_client_and_is_not_sent_on(
    tmp_path: Path,
) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/a")
        await ana.type("stored;")
        bob = await joined("/ws/a")
        await bob.until_text("stored;")
        with sqlite3.connect(tmp_path / "y.db") as db:  # the store loses its tables
            db.execute("DROP TABLE ystore_records")
        await ana.type("lost?")
        assert await ana.receive() is None
        assert ana.closed == 4500
        # Not stored, so not sent on: bob never sees a change the store does not hold.
        assert await bob.communicator.receive_nothing(timeout=0.5)
        assert str(bob.text) == "stored;"
        await bob.leave()


async def test_a_message_that_changes_nothing_is_neither_stored_nor_sent_on(
    tmp_path: Path,
) -> None:
    with override_settings(YSTORES_URL=f"sqlite:///{tmp_path}/y.db"):
        ana = await joined("/ws/a")
        await ana.type("once")
        bob = await joined("/ws/a")  # its sync step 2 holds nothing new
        await bob.until_text("once")
        await bob.send(encode_update(bob.doc.get_update()))  # all it has: nothing new
        assert await ana.communicator.receive_nothing(timeout=0.5)
        async with SQLiteYStore("a", db_path=str(tmp_path / "y.db")) as store:
            records = [update async for update, _, _ in store.read()]
        assert len(records) == 1
        for peer in (ana, bob):
            await peer.leave()
