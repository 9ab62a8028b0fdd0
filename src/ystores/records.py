"""The record model shared by every backend, and the var-uint encoding of lib0/Yjs.

Pure functions and data, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Record", "RecordKind", "decode_varuint", "encode_varuint"]


class RecordKind(enum.IntEnum):
    """What a record holds."""

    UPDATE = 0
    """One Yjs update, as written by a client or the server."""
    SNAPSHOT = 1
    """A merged update that replaces every record before it."""
    CHECKPOINT = 2
    """The merged state of every record up to a seq, kept beside them (replaces nothing).

    Its metadata is a header (`ystores.history.checkpoints`); `read()` and
    `follow()` never yield it."""
    BLOCK = 3
    """A run of older updates packed and compressed together (`ystores.history.packing`).

    Its metadata is a block header; every reader expands it into the records it
    holds, so nothing above a backend ever sees one."""


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of a document's log.

    Attributes:
        seq: Position in the document's log, strictly increasing (never the clock).
        update: A Yjs v1 update.
        metadata: Bytes from the store's metadata callback (empty by default).
        timestamp: Seconds since the epoch when written; 0.0 when the format
            that stored it kept no time (ypy-websocket file versions 0 and 1).
        kind: An update, a snapshot that replaces everything before it, or a
            checkpoint (whose metadata is its header, see `ystores.history`).
    """

    seq: int
    update: bytes
    metadata: bytes
    timestamp: float
    kind: RecordKind = RecordKind.UPDATE

    def as_tuple(self) -> tuple[bytes, bytes, float]:
        """The `(update, metadata, timestamp)` triple that `read()` yields."""
        return self.update, self.metadata, self.timestamp


def encode_varuint(value: int) -> bytes:
    """Encode a non-negative integer as an unsigned LEB128 var-uint (lib0's `writeVarUint`)."""
    if value < 0:
        raise ValueError(f"A var-uint cannot hold the negative number {value}.")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varuint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a var-uint at `offset`.

    Returns:
        The value and the offset just past it.

    Raises:
        IndexError: The bytes end inside the var-uint.
        ValueError: The var-uint is longer than 10 bytes (not a 64-bit number).
    """
    byte = data[offset]
    if byte < 0x80:
        return byte, offset + 1
    value = 0
    shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("A var-uint runs past 64 bits.")
