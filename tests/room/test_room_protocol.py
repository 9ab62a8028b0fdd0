"""The y-protocols encoding against messages made by the real Yjs libraries (tests/room/js)."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest

from ystores.room.awareness import Awareness
from ystores.room.protocol import (
    AwarenessEntry,
    MessageType,
    ProtocolError,
    SyncType,
    decode_awareness_update,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    read_var_bytes,
    write_var_bytes,
)

from .kit import node


@pytest.fixture(scope="module")
def vectors(node_clients: None) -> dict[str, bytes]:
    return {key: bytes.fromhex(value) for key, value in node("vectors.mjs").items()}


def test_sync_messages_match_yjs(vectors: dict[str, bytes]) -> None:
    update, state_vector = vectors["update"], vectors["state_vector"]
    assert len(update) > 127  # the length prefix takes two bytes
    assert encode_sync_step1(state_vector) == vectors["sync_step1"]
    assert encode_sync_step2(update) == vectors["sync_step2"]
    assert encode_update(update) == vectors["sync_update"]
    for key, sync_type, payload in [
        ("sync_step1", SyncType.STEP1, state_vector),
        ("sync_step2", SyncType.STEP2, update),
        ("sync_update", SyncType.UPDATE, update),
    ]:
        message = decode_message(vectors[key])
        assert (message.type, message.sync_type, message.payload) == (
            MessageType.SYNC,
            sync_type,
            payload,
        )


def test_the_yjs_update_is_a_document_pycrdt_reads(vectors: dict[str, bytes]) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(vectors["update"])
    assert str(doc.get("text", type=pycrdt.Text)) == "héllo, wörld " * 12
    assert doc.get_state() == vectors["state_vector"]


def test_awareness_messages_match_yjs(vectors: dict[str, bytes]) -> None:
    present = decode_awareness_update(vectors["awareness_present"])
    assert present == [AwarenessEntry(1234567, 1, '{"user":{"name":"Zoë","color":"#ff0000"}}')]
    removed = decode_awareness_update(vectors["awareness_removed"])
    assert removed == [AwarenessEntry(1234567, 2, "null")]
    assert removed[0].removed
    assert encode_awareness_update(present) == vectors["awareness_present"]
    assert encode_awareness_update(removed) == vectors["awareness_removed"]
    assert encode_awareness(vectors["awareness_present"]) == vectors["awareness_message"]
    message = decode_message(vectors["awareness_message"])
    assert (message.type, message.payload) == (MessageType.AWARENESS, vectors["awareness_present"])
    assert encode_query_awareness() == vectors["query_awareness"]
    assert decode_message(vectors["query_awareness"]).type is MessageType.QUERY_AWARENESS


def test_awareness_keeps_the_newest_state_and_announces_removals(
    vectors: dict[str, bytes],
) -> None:
    awareness = Awareness()
    awareness.apply(vectors["awareness_present"])
    assert awareness.states == {1234567: {"user": {"name": "Zoë", "color": "#ff0000"}}}
    assert awareness.encode_present() == vectors["awareness_present"]
    stale = encode_awareness_update([AwarenessEntry(1234567, 0, '{"old": true}')])
    awareness.apply(stale)
    assert awareness.states[1234567]["user"]["name"] == "Zoë"
    assert awareness.remove([1234567]) == vectors["awareness_removed"]
    assert awareness.states == {}
    assert awareness.encode_present() is None
    assert awareness.remove([1234567]) is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x05", "Unknown message type 5"),
        (b"\x80", "message type"),
        (b"\x00", "sync type"),
        (b"\x00\x07\x00", "Unknown sync message type 7"),
        (b"\x00\x02", "length"),
        (b"\x00\x02\x05ab", "claims 5 bytes"),
        (b"\x00\x02\x01a!", "unexpected bytes"),
        (b"\x01\x04\x01\x01\x01", "claims 4 bytes"),
        (b"\x00\x02" + b"\xff" * 11, "length"),
    ],
)
def test_malformed_messages_raise_protocol_error(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        decode_message(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x05\x01\x01",  # an entry cut short
        b"\x01\x05\x01\x02\xff\xfe",  # a state that is not UTF-8
        b"\x00\x00",  # bytes after the entries
    ],
)
def test_malformed_awareness_updates_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_awareness_update(data)


def test_awareness_states_must_be_json() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        Awareness().apply(encode_awareness_update([AwarenessEntry(1, 1, "{nope")]))


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 70_000])
def test_var_bytes_round_trip(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    encoded = write_var_bytes(data) + b"tail"
    assert read_var_bytes(encoded) == (data, len(encoded) - 4)
