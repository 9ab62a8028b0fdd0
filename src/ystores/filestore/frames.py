"""Encoding v3, v4 and v5 records: `u32 length | u32 crc32c(length bytes + body) | body`.

The body is `varuint seq | u8 kind | float64 timestamp | varuint len(metadata) |
metadata | update` (the update runs to the end of the body). All integers are
little-endian. The checksum covers the length so a damaged length is caught too.

In version 4 the kind byte is `codec << 4 | kind`: the low four bits are the
`RecordKind` (0 update, 1 snapshot, 2 checkpoint), the high four the `Codec` the
update is stored with (0 raw, 1 zlib). Version 3 knows kinds 0 and 1, raw only,
so every v3 frame is a valid v4 frame.

Version 5 adds kind 3, a block (`history.packing`): a run of old update
records packed into one frame. Its seq is the first packed record's, its
timestamp the last one's, its metadata the block header and its update the
(already compressed) payload, stored with codec 0. Every v4 frame is a valid v5
frame; readers expand a block into the records it holds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import crc32c

from ..history.compression import Codec, compress
from ..history.packing import pack_block
from ..records import Record, RecordKind, encode_varuint

__all__ = [
    "CHUNK",
    "FRAME_HEAD",
    "KINDS",
    "MAX_BODY",
    "MIN_BODY",
    "V3_KINDS",
    "V4_KINDS",
    "V5_KINDS",
    "encode_block_frame",
    "encode_frame",
    "encode_frames",
    "frame_checksum",
    "kind_byte",
    "kinds_of_version",
    "needs_v4",
]

CHUNK = 1 << 20
"""How much of a file a scan reads at a time."""
FRAME_HEAD = struct.Struct("<II")  # body length, CRC32C of (length bytes + body)
MIN_BODY = 11  # varuint seq (1) + kind (1) + float64 timestamp (8) + varuint meta length (1)
MAX_BODY = 1 << 31
V3_KINDS = frozenset((int(RecordKind.UPDATE), int(RecordKind.SNAPSHOT)))
"""The kind bytes a version-3 file may hold."""
V4_KINDS = frozenset(
    int(codec) << 4 | int(kind)
    for kind in (RecordKind.UPDATE, RecordKind.SNAPSHOT, RecordKind.CHECKPOINT)
    for codec in Codec
)
"""The kind bytes a version-4 file may hold (`codec << 4 | kind`)."""
V5_KINDS = V4_KINDS | {int(RecordKind.BLOCK)}
"""The kind bytes a version-5 file may hold (a block is stored with codec 0)."""
KINDS = V5_KINDS
"""Every kind byte some version allows (for spotting frames when the version is unknown)."""

_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")


def frame_checksum(length_bytes: bytes | memoryview, body: bytes | memoryview) -> int:
    """CRC32C over a frame's 4 length bytes and its body."""
    return int(crc32c.crc32c(body, crc32c.crc32c(length_bytes)))


def kinds_of_version(version: int) -> frozenset[int]:
    """The kind bytes a checksummed file of `version` (3, 4 or 5) may hold."""
    if version == 3:
        return V3_KINDS
    return V4_KINDS if version == 4 else V5_KINDS


def kind_byte(kind: RecordKind, codec: Codec = Codec.RAW) -> int:
    """The kind byte of a record of `kind` stored with `codec`."""
    return int(codec) << 4 | int(kind)


def needs_v4(kind: RecordKind, *, compressing: bool) -> bool:
    """Whether a record of `kind` may be written as a frame only version 4 allows."""
    return compressing or kind not in (RecordKind.UPDATE, RecordKind.SNAPSHOT)


def encode_frame(record: Record, *, compressing: bool = False) -> bytes:
    """One record as a frame; with `compressing`, its update goes through `compress`.

    Without compression (and for updates and snapshots) the frame is a valid v3
    frame too.
    """
    metadata = record.metadata
    codec, stored = compress(record.update) if compressing else (Codec.RAW, record.update)
    body = b"".join(
        (
            encode_varuint(record.seq),
            bytes((kind_byte(record.kind, codec),)),
            _F64.pack(record.timestamp),
            encode_varuint(len(metadata)),
            metadata,
            stored,
        )
    )
    length = _U32.pack(len(body))
    return length + _U32.pack(frame_checksum(length, body)) + body


def encode_frames(records: Iterable[Record], *, compressing: bool = False) -> bytes:
    """Several records as consecutive frames (one buffer, for one write)."""
    return b"".join(encode_frame(record, compressing=compressing) for record in records)


def encode_block_frame(records: Sequence[Record]) -> bytes:
    """Update records (consecutive, in seq order) packed into one block frame (v5 only)."""
    header, payload = pack_block(records)
    block = Record(records[0].seq, payload, header, records[-1].timestamp, RecordKind.BLOCK)
    return encode_frame(block)
