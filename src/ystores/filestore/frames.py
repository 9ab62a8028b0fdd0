"""Encoding v3 records: `u32 length | u32 crc32c(length bytes + body) | body`.

The body is `varuint seq | u8 kind | float64 timestamp | varuint len(metadata) |
metadata | update` (the update runs to the end of the body). All integers are
little-endian. The checksum covers the length so a damaged length is caught too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ..records import Record, encode_varuint
from .scanning import frame_checksum

__all__ = ["encode_frame", "encode_frames"]

_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")


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
