"""Blocks: a run of old update records packed and compressed together.

A keystroke update is about 30 bytes and does not compress on its own, so a
long history costs more in per-record overhead (a SQL row, a file frame) than
in updates. Records that a checkpoint already covers are read only by time
travel, `read()` and `ystore log`, so a backend may pack a run of them into
one record of kind `RecordKind.BLOCK`: its metadata is a `BlockHeader`, its
update the packed records, compressed. Every reader expands a block back into
the records it holds; nothing above the backends ever sees one.

Header (stored as the block record's metadata):

    u8 version (2; 1 is still read) | varuint first_seq | varuint last_seq
    | varuint count | float64 first_timestamp | float64 last_timestamp
    | 16-byte digest

Payload (stored as the block record's update), zlib-compressed; the columns
are laid out one after another, so that like bytes sit together:

    varuint seq deltas (count; the first from first_seq - 1)
    | timestamps (count x 8 bytes): the differences of their float64 bit
      patterns (each from the one before, the first from 0; u64, modulo 2**64),
      stored byte plane by byte plane (byte 0 of every difference, then byte 1, ...)
    | varuint metadata lengths (count) | varuint update lengths (count)
    | metadata bytes, concatenated
    | update bytes, by length ascending: the updates of each length in seq
      order, column by column when that length is at most 256 (byte 0 of each,
      then byte 1, ...), else one after another

Updates of one length are mostly the same kind of edit (a keystroke in one
place: the same client, nearly the same clock), so their columns are runs of
equal or counting bytes that compress far better than the updates side by
side. The timestamps come back bit for bit (-0.0, infinities and NaN payloads
too). Version 1 stored the timestamps as float64 values and the updates one
after another in seq order.

The digest is BLAKE2b-128 of the header fields before it and the uncompressed
payload: a damaged block is refused (`CorruptStoreError`), never half-read.
Only `RecordKind.UPDATE` records are packed: snapshots and checkpoints stay
records of their own.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat

from ..errors import CorruptStoreError
from ..records import Record, RecordKind, decode_varuint, encode_varuint

__all__ = [
    "BLOCK_VERSION",
    "BlockHeader",
    "PackReport",
    "decode_block_header",
    "pack_block",
    "unpack_block",
]

BLOCK_VERSION = 2
_READABLE = (1, BLOCK_VERSION)
_DIGEST_SIZE = 16
_F64 = struct.Struct("<d")
_LEVEL = 9  # written once, read rarely: the smallest output is worth the CPU
_COLUMNS_UP_TO = 256  # longer updates are few (pastes, outputs) and would cost a slice a byte
_U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What a block record says of the records it holds (stored as its metadata).

    Attributes:
        first_seq: The seq of its first record.
        last_seq: The seq of its last record.
        count: How many records it holds.
        first_timestamp: The timestamp of its first record.
        last_timestamp: The timestamp of its last record.
        digest: BLAKE2b-128 of the fields above and the uncompressed payload.
        version: The block format it is written in (`BLOCK_VERSION`, or 1).
    """

    first_seq: int
    last_seq: int
    count: int
    first_timestamp: float
    last_timestamp: float
    digest: bytes
    version: int = BLOCK_VERSION


@dataclass(frozen=True)
class PackReport:
    """What one `pack()` of a document's covered history did.

    Attributes:
        doc: The document.
        blocks: Blocks written.
        records_packed: Update records moved into those blocks.
        checkpoints_dropped: Old checkpoints removed by thinning.
        bytes_before: Bytes the document's history took before (backend's own measure).
        bytes_after: Bytes it takes after.
        seconds: How long it took.
    """

    doc: str
    blocks: int
    records_packed: int
    checkpoints_dropped: int
    bytes_before: int
    bytes_after: int
    seconds: float


def _fields(
    version: int, first_seq: int, last_seq: int, count: int, first_ts: float, last_ts: float
) -> bytes:
    return b"".join(
        (
            bytes((version,)),
            encode_varuint(first_seq),
            encode_varuint(last_seq),
            encode_varuint(count),
            _F64.pack(first_ts),
            _F64.pack(last_ts),
        )
    )


def _digest(fields: bytes, payload: bytes) -> bytes:
    digest = hashlib.blake2b(fields, digest_size=_DIGEST_SIZE)
    digest.update(payload)
    return digest.digest()


def pack_block(records: Sequence[Record]) -> tuple[bytes, bytes]:
    """Pack update records (in seq order) into a block (`BLOCK_VERSION`).

    Returns:
        The block's header (to store as its metadata) and its compressed payload
        (to store as its update, raw: the payload is compressed already).

    Raises:
        ValueError: No records, a record that is not an update, or seqs not
            strictly increasing.
    """
    if not records:
        raise ValueError("A block holds at least one record.")
    deltas = bytearray()
    metadata_lengths = bytearray()
    update_lengths = bytearray()
    by_length: dict[int, list[bytes]] = {}
    previous = records[0].seq - 1
    if previous < 0:
        raise ValueError(f"A block's seqs start at 1 or more, not {records[0].seq}.")
    for record in records:
        if record.kind != RecordKind.UPDATE:
            raise ValueError(f"Only updates are packed into a block, not a {record.kind.name}.")
        if record.seq <= previous:
            raise ValueError(f"A block's seqs must increase: {record.seq} after {previous}.")
        deltas += encode_varuint(record.seq - previous)
        previous = record.seq
        metadata_lengths += encode_varuint(len(record.metadata))
        update_lengths += encode_varuint(len(record.update))
        by_length.setdefault(len(record.update), []).append(record.update)
    payload = b"".join(
        (
            deltas,
            _timestamp_planes([record.timestamp for record in records]),
            metadata_lengths,
            update_lengths,
            *(record.metadata for record in records),
            *(_columns(length, by_length[length]) for length in sorted(by_length)),
        )
    )
    first, last = records[0], records[-1]
    fields = _fields(
        BLOCK_VERSION, first.seq, last.seq, len(records), first.timestamp, last.timestamp
    )
    header = fields + _digest(fields, payload)
    return header, zlib.compress(payload, _LEVEL)


def _timestamp_planes(timestamps: list[float]) -> bytes:
    """The timestamps' bit patterns as u64 differences, byte plane by byte plane."""
    count = len(timestamps)
    bits = struct.unpack(f"<{count}Q", struct.pack(f"<{count}d", *timestamps))
    differences = struct.pack(
        f"<{count}Q",
        *[(value - before) & _U64 for before, value in zip((0, *bits[:-1]), bits, strict=True)],
    )
    return b"".join(differences[plane::8] for plane in range(8))


def _columns(length: int, updates: list[bytes]) -> bytes:
    """Updates of one length, column by column (byte 0 of each, then byte 1, ...)."""
    joined = b"".join(updates)
    if length > _COLUMNS_UP_TO or len(updates) == 1:
        return joined
    return b"".join(joined[column::length] for column in range(length))


def decode_block_header(metadata: bytes) -> BlockHeader:
    """The header of a block record (its metadata).

    Raises:
        CorruptStoreError: The header is damaged or in a version this ystores does not know.
    """
    try:
        if not metadata or metadata[0] not in _READABLE:
            version = metadata[0] if metadata else "none"
            raise CorruptStoreError(f"A block header has version {version}, unknown here.")
        first_seq, offset = decode_varuint(metadata, 1)
        last_seq, offset = decode_varuint(metadata, offset)
        count, offset = decode_varuint(metadata, offset)
        (first_ts,) = _F64.unpack_from(metadata, offset)
        (last_ts,) = _F64.unpack_from(metadata, offset + _F64.size)
        digest = bytes(metadata[offset + 2 * _F64.size :])
    except (IndexError, ValueError, struct.error) as exc:
        raise CorruptStoreError(f"A block header is damaged: {exc}.") from exc
    if len(digest) != _DIGEST_SIZE or count < 1 or first_seq < 1 or last_seq < first_seq:
        raise CorruptStoreError("A block header is damaged: its fields do not add up.")
    return BlockHeader(first_seq, last_seq, count, first_ts, last_ts, digest, metadata[0])


def unpack_block(metadata: bytes, stored: bytes) -> list[Record]:
    """The update records a block holds, in seq order.

    Raises:
        CorruptStoreError: The header or payload is damaged (checked against
            the digest), so none of its records can be trusted.
    """
    header = decode_block_header(metadata)
    where = f"the block of seqs {header.first_seq}-{header.last_seq}"
    try:
        payload = zlib.decompress(stored)
    except zlib.error as exc:
        raise CorruptStoreError(f"The payload of {where} does not decompress: {exc}.") from exc
    fields = _fields(
        header.version,
        header.first_seq,
        header.last_seq,
        header.count,
        header.first_timestamp,
        header.last_timestamp,
    )
    if _digest(fields, payload) != header.digest:
        raise CorruptStoreError(f"The payload of {where} does not match its digest.")
    split = _split if header.version == BLOCK_VERSION else _split_v1
    try:
        return split(payload, header)
    except (IndexError, ValueError, struct.error) as exc:  # a digest that matches a bad payload
        raise CorruptStoreError(f"The payload of {where} does not add up: {exc}.") from exc


def _varuints(payload: bytes, offset: int, count: int) -> tuple[list[int], int]:
    """`count` var-uints from `offset` (most are one byte: that case costs no call)."""
    values: list[int] = []
    append = values.append
    for _ in range(count):
        byte = payload[offset]
        if byte < 0x80:
            append(byte)
            offset += 1
        else:
            value, offset = decode_varuint(payload, offset)
            append(value)
    return values, offset


def _pieces(payload: bytes, offset: int, lengths: list[int]) -> tuple[list[bytes], int]:
    """The byte strings of `lengths` laid end to end from `offset`, and the offset after them."""
    pieces = []
    for length in lengths:
        pieces.append(payload[offset : offset + length])
        offset += length
    return pieces, offset


def _split(payload: bytes, header: BlockHeader) -> list[Record]:
    count = header.count
    deltas, offset = _varuints(payload, 0, count)
    differences = bytearray(8 * count)
    for plane in range(8):
        differences[plane::8] = payload[offset : offset + count]
        offset += count
    bits = map(_U64.__and__, accumulate(struct.unpack(f"<{count}Q", differences)))
    timestamps = struct.unpack(f"<{count}d", struct.pack(f"<{count}Q", *bits))
    metadata_lengths, offset = _varuints(payload, offset, count)
    update_lengths, offset = _varuints(payload, offset, count)
    metadatas, offset = _pieces(payload, offset, metadata_lengths)
    groups: dict[int, Iterator[bytes]] = {}
    for length, number in sorted(Counter(update_lengths).items()):
        end = offset + length * number
        if end > len(payload):
            raise ValueError("the updates end early")
        if length == 0:
            updates = [b""] * number
        elif length > _COLUMNS_UP_TO or number == 1:
            updates = [payload[at : at + length] for at in range(offset, end, length)]
        else:
            columns = payload[offset:end]
            updates = [columns[row::number] for row in range(number)]
        groups[length] = iter(updates)
        offset = end
    if offset != len(payload):
        raise ValueError("bytes are left over")
    deltas[0] += header.first_seq - 1  # every column holds `count` values
    in_order = map(next, map(groups.__getitem__, update_lengths))  # the updates in seq order
    kinds = repeat(RecordKind.UPDATE)
    return list(map(Record, accumulate(deltas), in_order, metadatas, timestamps, kinds))


def _split_v1(payload: bytes, header: BlockHeader) -> list[Record]:
    """Version 1: float64 timestamps, updates one after another in seq order."""
    count = header.count
    deltas, offset = _varuints(payload, 0, count)
    timestamps = struct.unpack_from(f"<{count}d", payload, offset)
    offset += count * _F64.size
    metadata_lengths, offset = _varuints(payload, offset, count)
    update_lengths, offset = _varuints(payload, offset, count)
    metadatas, offset = _pieces(payload, offset, metadata_lengths)
    records = []
    seq = header.first_seq - 1
    kind = RecordKind.UPDATE
    for delta, timestamp, metadata, length in zip(
        deltas, timestamps, metadatas, update_lengths, strict=True
    ):
        seq += delta
        records.append(Record(seq, payload[offset : offset + length], metadata, timestamp, kind))
        offset += length
    if offset != len(payload):
        raise ValueError("bytes are left over")
    return records
