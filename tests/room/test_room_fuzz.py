"""Property-based fuzzing of the room protocol (issue 11): mutated sync and awareness messages
from one client never disturb the room or its other clients.

Each example starts a room with a well-behaved client, lets an attacker send a few messages
(real sync/awareness messages mutated byte-wise, or random bytes), then checks that the
room still runs, still applies and stores the good client's edits, relays only well-formed
messages, and forgets the attacker's awareness once it is gone.

`YSTORES_FUZZ_EXAMPLES` sets the number of examples (CI: 150; a longer run:
`YSTORES_FUZZ_EXAMPLES=5000 pytest tests/room/test_room_fuzz.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pycrdt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ystores import FileYStore
from ystores.room import YRoom
from ystores.room.protocol import (
    AwarenessEntry,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

from .kit import MemoryChannel, stored_text

EXAMPLES = int(os.environ.get("YSTORES_FUZZ_EXAMPLES", "150"))
WAIT = 20
GOOD_ID = 424242


def _templates() -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=777)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=pycrdt.Text)
    text += "attack"
    doc.get("map", type=pycrdt.Map)["k"] = [1, {"x": "y"}]
    del text[1:3]
    return [
        encode_sync_step1(doc.get_state()),
        encode_sync_step2(doc.get_update()),
        *(encode_update(u) for u in updates),
        encode_awareness(encode_awareness_update([AwarenessEntry(777, 3, '{"user":"eve"}')])),
        encode_awareness(encode_awareness_update([AwarenessEntry(GOOD_ID, 99, "null")])),
        encode_query_awareness(),
    ]


TEMPLATES = _templates()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and len(data) > 1:
            del data[at]
        elif op == "cut":
            data = data[:at]
    return bytes(data)


messages = st.lists(mutated() | st.binary(max_size=64), min_size=1, max_size=5)


class GoodClient:
    def __init__(self) -> None:
        self.channel = MemoryChannel("/good")
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=GOOD_ID)
        self.text = self.doc.get("mine", type=pycrdt.Text)

    async def edit(self, chunk: str) -> None:
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(event.update))
        self.text += chunk
        self.doc.unobserve(subscription)
        for update in updates:
            await self.channel.put(encode_update(update))

    def received_all_decode(self) -> None:
        while True:
            try:
                message = self.channel.received.receive_nowait()
            except anyio.WouldBlock:
                return
            decode_message(message)  # raises if the room relayed garbage


async def _round(root: Path, attack: list[bytes]) -> None:
    good, attacker = GoodClient(), MemoryChannel("/attacker")
    store = FileYStore("doc", root=root)
    try:
        async with YRoom(ystore=store) as room, anyio.create_task_group() as tg:
            tg.start_soon(room.serve, good.channel)
            await good.channel.put(
                encode_awareness(encode_awareness_update([AwarenessEntry(GOOD_ID, 1, "{}")]))
            )
            await good.edit("before ")
            done = anyio.Event()

            async def serve_attacker() -> None:
                try:
                    await room.serve(attacker)
                finally:
                    done.set()

            tg.start_soon(serve_attacker)
            for message in attack:
                if attacker.closed is not None:
                    break
                await attacker.put(message)
            attacker.hang_up()
            with anyio.fail_after(WAIT):
                await done.wait()
            await good.edit("after")
            mine = room.ydoc.get("mine", type=pycrdt.Text)
            with anyio.fail_after(WAIT):
                while str(mine) != "before after":
                    await anyio.sleep(0.005)
            assert good.channel.closed is None
            assert room.write_error is None
            # Only the good client's awareness is left (unless the attacker forged a
            # removal of it, which the protocol allows any client to relay).
            assert set(room.awareness.entries) <= {GOOD_ID}
            good.received_all_decode()
            good.channel.hang_up()
        assert await stored_text(FileYStore("doc", root=root), "mine") == "before after"
    finally:
        good.channel.aclose_streams()
        attacker.aclose_streams()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(attack=messages)
def test_mutated_messages_never_disturb_the_room(
    tmp_path_factory: Any, attack: list[bytes]
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    anyio.run(_round, root, attack)
