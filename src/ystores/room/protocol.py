"""The y-protocols wire format: sync and awareness messages, as Yjs clients speak it.

Pure functions over bytes, no I/O. A message is a var-uint message type followed
by its body:

| message | body |
|---|---|
| `SYNC` (0) | var-uint sync type, var-bytes: a state vector (step 1) or an update |
| `AWARENESS` (1) | var-bytes: an awareness update |
| `AUTH` (2) | var-uint auth type, var-string reason (sent by servers only) |
| `QUERY_AWARENESS` (3) | nothing: asks for every known awareness state |

An awareness update is a var-uint count, then for each client its var-uint id,
var-uint clock and var-string JSON state (`"null"` once the client is gone).
Var-uints are lib0's unsigned LEB128; var-bytes and var-strings are a var-uint
length followed by the bytes (UTF-8 for strings).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ProtocolError
from ..records import decode_varuint, encode_varuint

__all__ = [
    "AwarenessEntry",
    "Message",
    "MessageType",
    "ProtocolError",
    "SyncType",
    "decode_awareness_update",
    "decode_message",
    "encode_awareness",
    "encode_awareness_update",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "read_var_bytes",
    "read_var_string",
    "write_var_bytes",
    "write_var_string",
]


class MessageType(enum.IntEnum):
    """The first var-uint of every message."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(enum.IntEnum):
    """The second var-uint of a `SYNC` message."""

    STEP1 = 0
    """The body is the sender's state vector; the answer is a step 2."""
    STEP2 = 1
    """The body is an update holding what the receiver lacked."""
    UPDATE = 2
    """The body is an update made since the sync."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message.

    Attributes:
        type: What the message is.
        sync_type: For `SYNC` messages, the step; None otherwise.
        payload: The state vector or update (`SYNC`), the awareness update
            (`AWARENESS`), or the raw body (`AUTH`, `QUERY_AWARENESS`).
    """

    type: MessageType
    sync_type: SyncType | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's state in an awareness update.

    Attributes:
        client_id: The Yjs client id the state belongs to.
        clock: Increases with each change of that client's state.
        state: The state as JSON text; `"null"` when the client is gone.
    """

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        """Whether this entry says the client is gone."""
        return self.state == "null"


def write_var_bytes(data: bytes) -> bytes:
    """`data` prefixed with its length as a var-uint (lib0's `writeVarUint8Array`)."""
    return encode_varuint(len(data)) + data


def write_var_string(text: str) -> bytes:
    """`text` as UTF-8 var-bytes (lib0's `writeVarString`)."""
    return write_var_bytes(text.encode("utf-8"))


def _read_varuint(data: bytes, offset: int, what: str) -> tuple[int, int]:
    try:
        return decode_varuint(data, offset)
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"The message ends or breaks inside {what} at byte {offset}.") from exc


def read_var_bytes(data: bytes, offset: int = 0) -> tuple[bytes, int]:
    """Read var-bytes at `offset`.

    Returns:
        The bytes and the offset just past them.

    Raises:
        ProtocolError: The length or the bytes run past the end of `data`.
    """
    length, start = _read_varuint(data, offset, "a length")
    end = start + length
    if end > len(data):
        raise ProtocolError(
            f"A field claims {length} bytes at byte {start} but the message has {len(data)}."
        )
    return bytes(data[start:end]), end


def read_var_string(data: bytes, offset: int = 0) -> tuple[str, int]:
    """Read a var-string at `offset`.

    Returns:
        The text and the offset just past it.

    Raises:
        ProtocolError: It runs past the end of `data` or is not UTF-8.
    """
    raw, end = read_var_bytes(data, offset)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"A string at byte {offset} is not UTF-8.") from exc


def encode_sync_step1(state_vector: bytes) -> bytes:
    """A sync step 1 message carrying the sender's state vector."""
    return bytes((MessageType.SYNC, SyncType.STEP1)) + write_var_bytes(state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """A sync step 2 message carrying what the receiver lacks."""
    return bytes((MessageType.SYNC, SyncType.STEP2)) + write_var_bytes(update)


def encode_update(update: bytes) -> bytes:
    """A sync update message carrying one update."""
    return bytes((MessageType.SYNC, SyncType.UPDATE)) + write_var_bytes(update)


def encode_awareness(awareness_update: bytes) -> bytes:
    """An awareness message carrying an encoded awareness update."""
    return bytes((MessageType.AWARENESS,)) + write_var_bytes(awareness_update)


def encode_query_awareness() -> bytes:
    """A message asking the receiver for every awareness state it knows."""
    return bytes((MessageType.QUERY_AWARENESS,))


def _expect_end(data: bytes, offset: int) -> None:
    if offset != len(data):
        raise ProtocolError(
            f"The message has {len(data) - offset} unexpected bytes after its body."
        )


def decode_message(data: bytes) -> Message:
    """Decode one message.

    Raises:
        ProtocolError: It is empty, cut short, of an unknown type, or has bytes
            after its body.
    """
    if not data:
        raise ProtocolError("The message is empty.")
    kind, offset = _read_varuint(data, 0, "the message type")
    try:
        message_type = MessageType(kind)
    except ValueError:
        raise ProtocolError(f"Unknown message type {kind}.") from None
    if message_type is MessageType.SYNC:
        step, offset = _read_varuint(data, offset, "the sync type")
        try:
            sync_type = SyncType(step)
        except ValueError:
            raise ProtocolError(f"Unknown sync message type {step}.") from None
        payload, offset = read_var_bytes(data, offset)
        _expect_end(data, offset)
        return Message(message_type, sync_type, payload)
    if message_type is MessageType.AWARENESS:
        payload, offset = read_var_bytes(data, offset)
        _expect_end(data, offset)
        return Message(message_type, None, payload)
    return Message(message_type, None, bytes(data[offset:]))


def encode_awareness_update(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode client states as an awareness update (y-protocols' `encodeAwarenessUpdate`)."""
    batch = list(entries)
    out = bytearray(encode_varuint(len(batch)))
    for entry in batch:
        out += encode_varuint(entry.client_id)
        out += encode_varuint(entry.clock)
        out += write_var_string(entry.state)
    return bytes(out)


def decode_awareness_update(data: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update into its entries (states stay JSON text).

    Raises:
        ProtocolError: It is cut short, not UTF-8, or has bytes after its entries.
    """
    count, offset = _read_varuint(data, 0, "the awareness entry count")
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client_id, offset = _read_varuint(data, offset, "an awareness client id")
        clock, offset = _read_varuint(data, offset, "an awareness clock")
        state, offset = read_var_string(data, offset)
        entries.append(AwarenessEntry(client_id, clock, state))
    _expect_end(data, offset)
    return entries
