"""Encoding v3 records: `u32 length | u32 crc32c(length bytes + body) | body`.

The body is `varuint seq | u8 kind | float64 timestamp | varuint len(metadata) |
metadata | update` (the update runs to the end of the body). All integers are
little-endian. The checksum covers the length so a damaged length is caught too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import crc32c

from ..records import Record, RecordKind, encode_varuint

__all__ = [
    "CHUNK",
    "FRAME_HEAD",
    "KINDS",
    "MAX_BODY",
    "MIN_BODY",
    "encode_frame",
    "encode_frames",
    "frame_checksum",
]

CHUNK = 1 << 20
"""How much of a file a scan reads at a time."""
FRAME_HEAD = struct.Struct("<II")  # body length, CRC32C of (length bytes + body)
MIN_BODY = 11  # varuint seq (1) + kind (1) + float64 timestamp (8) + varuint meta length (1)
MAX_BODY = 1 << 31
KINDS = frozenset(int(kind) for kind in RecordKind)

_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")


def frame_checksum(length_bytes: bytes | memoryview, body: bytes | memoryview) -> int:
    """CRC32C over a frame's 4 length bytes and its body."""
    return int(crc32c.crc32c(body, crc32c.crc32c(length_bytes)))


def encode_frame(record: Record) -> bytes:
    """One record as a v3 frame."""
    metadata = record.metadata
    body = b"".join(
        (
            encode_varuint(record.seq),
            bytes((record.kind,)),
            _F64.pack(record.timestamp),
            encode_varuint(len(metadata)),
            metadata,
            record.update,
        )
    )
    length = _U32.pack(len(body))
    return length + _U32.pack(frame_checksum(length, body)) + body


def encode_frames(records: Iterable[Record]) -> bytes:
    """Several records as consecutive v3 frames (one buffer, for one write)."""
    return b"".join(encode_frame(record) for record in records)
