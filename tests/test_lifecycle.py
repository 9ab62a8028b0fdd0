"""The shared lifecycle: exceptions leave `async with` as themselves; `stop()` may be awaited."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ystores import FileYStore, SQLiteYStore, StoreStateError, YRoom

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


async def test_an_exception_inside_a_store_comes_out_unwrapped(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)

    async def fail_inside() -> None:
        async with store:
            await store.write(b"\x00\x00")
            raise Boom("inside")

    with pytest.raises(Boom) as caught:
        await fail_inside()
    assert str(caught.value) == "inside"
    assert not store.running
    assert [r async for r in store.read()]  # the write before the error is kept


async def test_an_exception_inside_a_room_comes_out_unwrapped(tmp_path: Path) -> None:
    room = YRoom(ystore=FileYStore("doc", root=tmp_path))
    with pytest.raises(Boom):
        async with room:
            raise Boom("inside")
    assert not room.running


async def test_a_keyboard_interrupt_is_not_turned_into_a_group(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        async with FileYStore("doc", root=tmp_path):
            raise KeyboardInterrupt


async def test_cancelling_the_block_still_stops_the_store(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    with anyio.move_on_after(0.05):
        async with store:
            await anyio.sleep(30)
    assert not store.running


async def test_stop_may_be_awaited_or_not(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    async with anyio.create_task_group() as tg:
        await tg.start(store.start)
        await store.stop()  # pycrdt-store's style: returns once wound down
        assert not store.running
        await tg.start(store.start)
        store.stop()  # ypy-websocket's style: a request
    assert not store.running
    with pytest.raises(StoreStateError):
        store.stop()


async def test_start_lock_is_one_lock(tmp_path: Path) -> None:
    store = FileYStore("doc", root=tmp_path)
    assert store.start_lock is store.start_lock
    async with store.start_lock:
        assert store.start_lock.locked()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_exception_inside_a_sql_store_comes_out_unwrapped(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        async with SQLiteYStore("doc", db_path=tmp_path / "y.db"):
            raise Boom


class FailsToOpen(FileYStore):
    async def _open(self) -> None:
        raise Boom("cannot open")


async def test_a_start_that_fails_comes_out_unwrapped_and_the_store_can_start_again(
    tmp_path: Path,
) -> None:
    store = FailsToOpen("doc", root=tmp_path)
    with pytest.raises(Boom, match="cannot open"):
        async with store:
            pass
    assert not store.running
    assert not store.started.is_set()
    with pytest.raises(Boom):  # not "already running": the failed start wound down
        async with store:
            pass
