"""Awareness limits (issue 11, case 11): bounded per connection, forgotten when clients leave.

`YSTORES_AWARENESS_CONNECTIONS` sets how many short connections the memory test opens
(CI: 300; the issue's case, 2 million fake ids, is 100,000 connections of 20 ids).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import anyio
import pytest

from faults.waits import closed
from ystores.room import YRoom
from ystores.room.protocol import AwarenessEntry, encode_awareness, encode_awareness_update

from .kit import MemoryChannel, node, serve_cli

pytestmark = pytest.mark.anyio

WAIT = 20
CONNECTIONS = int(os.environ.get("YSTORES_AWARENESS_CONNECTIONS", "300"))
IDS_PER_CONNECTION = 20


def announce(ids: list[int], state: str = '{"user":"x"}', clock: int = 1) -> bytes:
    return encode_awareness(encode_awareness_update(AwarenessEntry(i, clock, state) for i in ids))


async def serve_once(room: YRoom, channel: MemoryChannel, done: anyio.Event) -> None:
    try:
        await room.serve(channel)
    finally:
        done.set()


async def test_awareness_memory_returns_to_empty_after_many_short_connections() -> None:
    rng = random.Random(11)
    watcher = MemoryChannel("/watcher")
    async with YRoom() as room, anyio.create_task_group() as tg:
        tg.start_soon(room.serve, watcher)
        for n in range(CONNECTIONS):
            ids = [rng.getrandbits(32) for _ in range(IDS_PER_CONNECTION)]
            channel, done = MemoryChannel(f"/c{n}", receive_buffer=0), anyio.Event()
            tg.start_soon(serve_once, room, channel, done)
            await channel.put(announce(ids))
            with anyio.fail_after(WAIT):
                while not set(ids) <= room.awareness.entries.keys():
                    await anyio.sleep(0.001)
            channel.hang_up()
            with anyio.fail_after(WAIT):
                await done.wait()
            channel.aclose_streams()
            assert room.awareness.entries == {}
        assert len(room.clients) == 1
        watcher.hang_up()
    watcher.aclose_streams()
    assert room.awareness.entries == {}


async def test_a_client_announcing_its_own_removal_is_forgotten() -> None:
    async with YRoom() as room, anyio.create_task_group() as tg:
        channel = MemoryChannel("/a")
        tg.start_soon(room.serve, channel)
        await channel.put(announce([7, 8]))
        await channel.put(announce([7], "null", clock=2))
        with anyio.fail_after(WAIT):
            while set(room.awareness.entries) != {8}:
                await anyio.sleep(0.01)
        channel.hang_up()
    channel.aclose_streams()
    assert room.awareness.entries == {}


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (announce(list(range(1, 10))), 1002, "at most 8 awareness clients"),
        (announce([1], json.dumps({"blob": "x" * 5000})), 1009, "over the limit of 4096"),
    ],
    ids=["too-many-ids", "state-too-large"],
)
async def test_awareness_over_the_limits_closes_only_that_connection(
    message: bytes, code: int, reason: str
) -> None:
    room = YRoom(max_awareness_clients=8, max_awareness_state=4096)
    good, bad = MemoryChannel("/good"), MemoryChannel("/bad")
    async with room, anyio.create_task_group() as tg:
        tg.start_soon(room.serve, good)
        await good.put(announce([100]))
        tg.start_soon(room.serve, bad)
        await bad.put(message)
        got = await closed(bad)
        assert got[0] == code
        assert reason in got[1]
        assert set(room.awareness.entries) == {100}
        assert good.closed is None
        good.hang_up()
    for channel in (good, bad):
        channel.aclose_streams()


def test_serve_closes_a_socket_that_brings_too_many_awareness_ids(
    node_clients: None, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    with serve_cli(f"file://{root}/", tmp_path / "serve.log") as ws:
        closed = node("raw.mjs", f"{ws}/doc", announce(list(range(1, 200))).hex())
        assert closed["code"] == 1002, closed
        assert "awareness clients" in closed["reason"], closed
        kept = node("raw.mjs", "--expect=2", f"{ws}/doc", announce([5, 6]).hex())
        assert kept["code"] == 1000, kept
