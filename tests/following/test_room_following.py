"""Rooms apply what their store receives from other writers, and broadcast it."""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
import pytest

from room.test_room_core import Client, clients, eventually
from ystores import open_store
from ystores.room import YRoom
from ystores.sql.engines import dispose_databases

pytestmark = pytest.mark.anyio


def typed(text: str, client_id: int) -> bytes:
    """An update typing `text` into the root text "text" (as a Yjs client would)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id)
    doc.get("text", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


async def stored(url: str) -> list[Any]:
    store = open_store(url, "doc")
    records = [r async for r in store.read_records()]
    await store.aclose()
    return records


async def test_rooms_of_two_servers_share_edits_live_and_write_nothing_twice(any_url: str) -> None:
    first = YRoom(ystore=open_store(any_url, "doc", metadata_callback=lambda: b"first"))
    second = YRoom(ystore=open_store(any_url, "doc", metadata_callback=lambda: b"second"))
    async with first, second, clients(first, "/doc") as (a,), clients(second, "/doc") as (b,):
        await a.sync()
        await b.sync()
        await a.type("hello")
        await b.until(lambda: str(b.text) == "hello")
        await b.type(" world")
        await a.until(lambda: str(a.text) == "hello world")
        one, two = first.follower, second.follower
        assert one is not None
        assert two is not None
        await eventually(lambda: one.applied > 0 and two.applied > 0)
        await asyncio.sleep(0.3)  # let any echo arrive, were there one
        # Each room broadcast what the other stored; its own records changed nothing.
        a_seen, b_seen = len(a.broadcasts), len(b.broadcasts)
    records = await stored(any_url)
    by_room = [r.metadata for r in records]
    # Every record was written once, by the room its client typed in: nothing re-written.
    assert set(by_room) == {b"first", b"second"}
    assert by_room.index(b"second") > by_room.index(b"first")
    assert len(records) <= len("hello world")
    assert a_seen >= 1
    assert b_seen >= 1
    await dispose_databases()


async def test_an_out_of_band_write_reaches_connected_clients(any_url: str) -> None:
    room = YRoom(ystore=open_store(any_url, "doc"))
    async with room, clients(room, "/doc") as (a,):
        await a.sync()
        await a.type("live ")
        # Application code (or `ystore import`) writes to the document's store directly.
        outside = open_store(any_url, "doc")
        await outside.write(typed("imported", client_id=424242))
        await a.until(lambda: "imported" in str(a.text))
        assert str(room.ydoc.get("text", type=pycrdt.Text)) == str(a.text)
        await outside.aclose()
    await dispose_databases()


async def test_a_snapshot_from_another_compactor_is_applied_and_never_rewritten(
    any_url: str,
) -> None:
    first = YRoom(ystore=open_store(any_url, "doc", metadata_callback=lambda: b"first"))
    second = YRoom(ystore=open_store(any_url, "doc", metadata_callback=lambda: b"second"))
    async with first, clients(first, "/doc") as (a,):
        await a.sync()
        await a.type("abc")
        compactor = open_store(any_url, "doc")
        for _ in range(200):  # until the room has written what it was sent
            if await compactor.last_seq() >= 2:
                break
            await asyncio.sleep(0.05)
        # The second room loads behind nothing; another server squashes meanwhile.
        async with second, clients(second, "/doc") as (b,):
            await b.sync()
            report = await compactor.squash()
            assert report is not None
            await a.type("def")
            await b.until(lambda: str(b.text) == "abcdef")
            await asyncio.sleep(0.3)
        await compactor.aclose()
    records = await stored(any_url)
    kinds = [(r.kind.name, r.metadata) for r in records]
    assert kinds[0] == ("SNAPSHOT", b"")
    assert all(meta == b"first" for _kind, meta in kinds[1:])  # the second room wrote nothing
    await dispose_databases()


async def test_a_room_behind_a_snapshot_applies_it_idempotently(any_url: str) -> None:
    room = YRoom(ystore=open_store(any_url, "doc"))
    writer = open_store(any_url, "doc")
    await writer.write(typed("one ", client_id=1))
    async with room, clients(room, "/doc") as (a,):
        await a.sync()
        assert room.follower is not None
        room.follower.stop()  # the room falls behind the store...
        await writer.write(typed("two ", client_id=2))
        await writer.write(typed("three", client_id=3))
        assert await writer.squash() is not None
        # ...and a follower from its last seq meets the snapshot first.
        follower = writer.follow(after=1)
        batch = await follower.__anext__()
        await follower.aclose()
        assert batch[0].kind.name == "SNAPSHOT"
        assert room._feed is not None
        room.follower._apply(batch)  # the path a running follower takes
        await a.until(lambda: len(str(a.text)) == len("one two three"))
        applied_once = room.follower.applied
        room.follower._apply(batch)  # again: idempotent, nothing new to broadcast
        assert room.follower.applied == applied_once
    await writer.aclose()
    await dispose_databases()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


__all__ = ["Client"]
