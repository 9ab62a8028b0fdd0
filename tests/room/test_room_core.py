"""YRoom and RoomManager over in-memory channels, with real file stores, on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores import FileYStore, SQLiteYStore
from ystores.room import RoomManager, YRoom
from ystores.room.protocol import (
    AwarenessEntry,
    MessageType,
    SyncType,
    decode_awareness_update,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

from .kit import MemoryChannel, stored_text

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds any single wait in these tests may take


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


class Client:
    """A Yjs client in Python: a pycrdt document synced with a room over a MemoryChannel."""

    def __init__(self, path: str = "/doc", receive_buffer: int = 10_000) -> None:
        self.channel = MemoryChannel(path, receive_buffer)
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("text", type=pycrdt.Text)
        self.broadcasts: list[bytes] = []
        self.awareness: list[AwarenessEntry] = []

    async def handle(self, message: bytes) -> bool:
        """Apply one message from the room; True for a sync step 2."""
        decoded = decode_message(message)
        if decoded.type is MessageType.AWARENESS:
            self.awareness += decode_awareness_update(decoded.payload)
        elif decoded.sync_type is SyncType.STEP1:
            await self.channel.put(encode_sync_step2(self.doc.get_update(decoded.payload)))
        else:
            self.doc.apply_update(decoded.payload)
            if decoded.sync_type is SyncType.UPDATE:
                self.broadcasts.append(decoded.payload)
        return decoded.sync_type is SyncType.STEP2

    async def sync(self) -> None:
        await self.channel.put(encode_sync_step1(self.doc.get_state()))
        with anyio.fail_after(WAIT):
            while not await self.handle(await self.channel.received.receive()):
                pass

    async def until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not condition():
                await self.handle(await self.channel.received.receive())

    async def type(self, text: str) -> list[bytes]:
        """Type `text` one character per update, sending each to the room."""
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(event.update))
        for char in text:
            self.text += char
        self.doc.unobserve(subscription)
        for update in updates:
            await self.channel.put(encode_update(update))
        return updates

    async def closed(self) -> tuple[int, str]:
        with anyio.fail_after(WAIT):
            await self.channel.closed_event.wait()
        assert self.channel.closed is not None
        return self.channel.closed


@asynccontextmanager
async def clients(
    room: YRoom | RoomManager, *paths: str, unbuffered: tuple[str, ...] = ()
) -> AsyncIterator[list[Client]]:
    """Clients served by `room` (a room, or a manager: the path names the room).

    Clients in `unbuffered` take each message from the room only when they read it.
    """
    made = [Client(path, 0 if path in unbuffered else 10_000) for path in paths]
    try:
        async with anyio.create_task_group() as tg:
            for client in made:
                if isinstance(room, RoomManager):
                    tg.start_soon(room.serve, client.channel.path.strip("/"), client.channel)
                else:
                    tg.start_soon(room.serve, client.channel)
            yield made
            for client in made:
                client.channel.hang_up()
    finally:
        for client in made:
            client.channel.aclose_streams()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds (polled, at most WAIT seconds)."""
    for _ in range(WAIT * 100):
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("The condition did not hold in time.")


def store_in(tmp_path: Path) -> Callable[[str], FileYStore]:
    return lambda name: FileYStore(name, root=tmp_path)


async def test_clients_converge_and_every_change_is_stored(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    async with YRoom(ystore=store) as room, clients(room, "/a", "/b") as (a, b):
        await a.sync()
        await b.sync()
        await a.type("hello")
        await b.until(lambda: str(b.text) == "hello")
        await b.type(" world")
        await a.until(lambda: str(a.text) == "hello world")
        assert len(room.clients) == 2
    assert await stored_text(store) == "hello world"


async def test_a_room_loads_its_document_before_the_first_sync(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    async with YRoom(ystore=store) as room, clients(room, "/a") as (a,):
        await a.sync()
        await a.type("kept")
    async with YRoom(ystore=FileYStore("doc", root=tmp_path)) as room, clients(room, "/b") as (b,):
        await b.sync()
        assert str(b.text) == "kept"


async def test_two_rooms_on_one_store_stay_separate(tmp_path: Path) -> None:
    async with (
        RoomManager(store_in(tmp_path), grace_period=0) as manager,
        clients(manager, "/one", "/two", "/one") as (one, two, one_again),
    ):
        for client in (one, two, one_again):
            await client.sync()
        await one.type("first")
        await two.type("second")
        await one_again.until(lambda: str(one_again.text) == "first")
        await two.until(lambda: str(two.text) == "second")
        assert set(manager.rooms) == {"one", "two"}
        assert not two.broadcasts  # nothing of room "one" reached it
    assert await stored_text(FileYStore("one", root=tmp_path)) == "first"
    assert await stored_text(FileYStore("two", root=tmp_path)) == "second"


async def test_a_client_leaving_mid_sync_disturbs_nobody(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    async with YRoom(ystore=store) as room, clients(room, "/early", "/b") as (early, b):
        await early.channel.put(encode_sync_step1(early.doc.get_state()))
        early.channel.hang_up()  # before reading the answer
        await b.sync()
        await b.type("still here")
        await eventually(lambda: len(room.clients) == 1)
    assert await stored_text(store) == "still here"


def sync_update(payload: bytes) -> bytes:
    return bytes((0, 2)) + bytes((len(payload),)) + payload


BAD_MESSAGES = [
    pytest.param(b"\x07", 1002, "Unknown message type 7", id="unknown-type"),
    pytest.param(b"\x00\x02\x05ab", 1002, "claims 5 bytes", id="cut-short"),
    pytest.param(b"", 1002, "empty", id="empty"),
    pytest.param(sync_update(b"\x05\xff\xff"), 1007, "does not decode", id="bad-update"),
    pytest.param(b"\x00\x00\x02\x01\xff", 1002, "state vector", id="bad-state-vector"),
    pytest.param(b"\x01\x02\x01\x01", 1002, "ends or breaks", id="bad-awareness"),
    pytest.param(encode_awareness(b"\x01\x01\x01\x01{"), 1002, "not JSON", id="awareness-json"),
    pytest.param(b"\x02\x00\x00", 1002, "AUTH", id="auth-from-client"),
    pytest.param(encode_update(b"\x00" * 300), 1009, "over the limit", id="too-large"),
]


@pytest.mark.parametrize(("message", "code", "reason"), BAD_MESSAGES)
async def test_bad_input_closes_only_that_client(
    tmp_path: Path, message: bytes, code: int, reason: str
) -> None:
    store = FileYStore("doc", root=tmp_path)
    room = YRoom(ystore=store, max_message_size=200)
    async with room, clients(room, "/good", "/bad") as (good, bad):
        await good.sync()
        await good.type("intact")
        await bad.sync()
        await bad.until(lambda: str(bad.text) == "intact")
        await bad.channel.put(message)
        closed_code, closed_reason = await bad.closed()
        assert closed_code == code
        assert reason in closed_reason
        await good.type("!")
        await good.sync()
        assert good.channel.closed is None
        assert room.clients == [good.channel]
    assert await stored_text(store) == "intact!"


async def test_stopping_stores_every_broadcast_change(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    room = YRoom(ystore=store, write_buffer=1)
    async with anyio.create_task_group() as tg:
        await tg.start(room.start)
        async with clients(room, "/watch", "/a", "/b") as (watch, a, b):
            for client in (watch, a, b):
                await client.sync()
            await a.type("a" * 60)
            await b.type("b" * 60)
            await watch.until(lambda: len(watch.broadcasts) >= 10)
            room.stop()  # with changes still queued for the store
            with anyio.fail_after(WAIT):
                await watch.channel.closed_event.wait()
            while True:  # the broadcasts the watcher had not read yet
                try:
                    await watch.handle(watch.channel.received.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
    stored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(stored)
    state = stored.get_state()
    for update in watch.broadcasts:
        stored.apply_update(update)
        assert stored.get_state() == state, "a broadcast change is missing from the store"
    assert len(watch.broadcasts) >= 10


async def test_server_side_edits_are_broadcast_and_stored(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    async with YRoom(ystore=store) as room, clients(room, "/a") as (a,):
        await a.sync()
        await a.sync()  # a round trip: the room has handled all a sent (no dispatch pending)
        room.ydoc.get("text", type=pycrdt.Text).insert(0, "from the server")
        await a.until(lambda: str(a.text) == "from the server")
    assert await stored_text(store) == "from the server"


async def test_a_store_that_cannot_be_read_is_never_overwritten(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    garbage = b"this is not a ystores file, and must stay as it is\n" * 3
    await anyio.Path(store.file_path).write_bytes(garbage)
    async with YRoom(ystore=store) as room, clients(room, "/a") as (a,):
        code, reason = await a.closed()
        assert code == 4500
        assert "could not be loaded" in reason
        assert room.load_error is not None
        room.ydoc.get("text", type=pycrdt.Text).insert(0, "would overwrite")
        await anyio.sleep(0.05)
    assert await anyio.Path(store.file_path).read_bytes() == garbage


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_database_that_cannot_be_opened_is_a_load_error_not_a_crash(
    tmp_path: Path,
) -> None:
    store = SQLiteYStore("doc", db_path=tmp_path / "missing" / "ystore.db")
    async with YRoom(ystore=store) as room, clients(room, "/a") as (a,):
        code, reason = await a.closed()
        assert code == 4500
        assert "could not be loaded" in reason
        assert "does not exist" in str(room.load_error)
    assert not (tmp_path / "missing").exists()


async def test_awareness_is_relayed_and_cleared_when_a_client_leaves(tmp_path: Path) -> None:
    async with YRoom() as room, clients(room, "/a", "/b") as (a, b):
        await a.sync()
        await b.sync()
        state = AwarenessEntry(77, 3, '{"user":"ana"}')
        await a.channel.put(encode_awareness(encode_awareness_update([state])))
        await b.until(lambda: state in b.awareness)
        await a.until(lambda: state in a.awareness)  # echoed: y-websocket's keep-alive
        assert room.awareness.states == {77: {"user": "ana"}}
        a.channel.hang_up()
        await b.until(lambda: AwarenessEntry(77, 4, "null") in b.awareness)
        assert room.awareness.states == {}


async def test_a_new_client_sees_present_awareness_at_once() -> None:
    async with YRoom() as room, clients(room, "/a") as (a,):
        await a.sync()
        state = AwarenessEntry(5, 1, '{"cursor":3}')
        await a.channel.put(encode_awareness(encode_awareness_update([state])))
        await a.until(lambda: state in a.awareness)
        async with clients(room, "/late") as (late,):
            await late.sync()
            await late.until(lambda: state in late.awareness)


async def test_an_idle_room_closes_after_its_grace_period(tmp_path: Path) -> None:
    closed: list[str] = []

    async def hook(name: str, room: YRoom) -> None:
        closed.append(name)
        assert room.ystore is not None
        assert await stored_text(FileYStore(name, root=tmp_path)) == "saved"

    async with RoomManager(store_in(tmp_path), grace_period=0.2, on_room_closed=[hook]) as manager:
        async with clients(manager, "/doc") as (a,):
            await a.sync()
            await a.type("saved")
        assert "doc" in manager.rooms  # within the grace period
        await eventually(lambda: closed == ["doc"])  # hooks run once the room has closed
        assert not manager.rooms
        async with clients(manager, "/doc") as (b,):
            await b.sync()
            assert str(b.text) == "saved"
    assert closed == ["doc", "doc"]


async def test_lifecycle_misuse_raises(tmp_path: Path) -> None:
    room = YRoom()
    with pytest.raises(RuntimeError, match="not running"):
        room.stop()
    async with room:
        with pytest.raises(RuntimeError, match="already running"):
            await room.start()
    manager = RoomManager(store_in(tmp_path))
    channel = MemoryChannel()
    with pytest.raises(RuntimeError, match="not running"):
        await manager.serve("doc", channel)
    channel.aclose_streams()


async def test_a_failing_store_closes_the_room_to_clients(tmp_path: Path) -> None:
    root = tmp_path / "store"
    await anyio.Path(root).mkdir()
    store = FileYStore("doc", root=root)
    async with YRoom(ystore=store) as room, clients(room, "/a") as (a,):
        await a.sync()
        await anyio.Path(root).rmdir()
        await anyio.Path(root).write_text("a file where the store's directory was\n")
        await a.type("lost")
        code, reason = await a.closed()
        assert (code, reason) == (4500, "The document could not be saved.")
        assert room.write_error is not None
        async with clients(room, "/b") as (b,):
            code, reason = await b.closed()
            assert code == 4500
            assert "could not be saved" in reason


async def test_clients_wait_until_the_room_is_ready(tmp_path: Path) -> None:
    async with YRoom(ready=False) as room, clients(room, "/a") as (a,):
        with anyio.move_on_after(0.1):
            await a.sync()
        assert room.clients == []  # held back before syncing
        room.ydoc.get("text", type=pycrdt.Text).insert(0, "prepared")
        room.ready = True
        await a.until(lambda: str(a.text) == "prepared")


async def test_on_message_may_skip_messages(tmp_path: Path) -> None:
    seen: list[bytes] = []

    async def on_message(message: bytes) -> bool:
        seen.append(message)
        return message[0] == MessageType.AWARENESS

    async with YRoom() as room, clients(room, "/a") as (a,):
        room.on_message = on_message
        await a.sync()
        state = AwarenessEntry(3, 1, '{"skipped":true}')
        await a.channel.put(encode_awareness(encode_awareness_update([state])))
        await a.sync()
        assert len(seen) == 4  # step 1, step 2 (answering the room), awareness, step 1
        assert room.awareness.entries == {}  # the awareness message was skipped


async def test_relayed_awareness_belongs_to_the_client_that_brought_it() -> None:
    async with YRoom() as room, clients(room, "/a", "/b") as (a, b):
        await a.sync()
        await b.sync()
        state = encode_awareness(encode_awareness_update([AwarenessEntry(11, 1, '{"n":1}')]))
        await a.channel.put(state)
        await b.until(lambda: AwarenessEntry(11, 1, '{"n":1}') in b.awareness)
        await b.channel.put(state)  # y-websocket clients send others' states back
        await b.sync()
        b.channel.hang_up()
        await a.sync()
        assert room.awareness.states == {11: {"n": 1}}  # b leaving did not remove a's state
        assert AwarenessEntry(11, 2, "null") not in a.awareness


async def test_a_client_that_does_not_keep_up_is_closed_alone(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    room = YRoom(ystore=store, client_buffer=4)
    async with room, clients(room, "/fast", "/slow", unbuffered=("/slow",)) as (fast, slow):
        await fast.sync()
        await slow.sync()
        await fast.type("x" * 40)  # the slow client reads none of it: its outbox holds 4
        assert await slow.closed() == (4529, "The client did not keep up with the room.")
        await fast.sync()
        assert room.clients == [fast.channel]
    assert await stored_text(store) == "x" * 40
