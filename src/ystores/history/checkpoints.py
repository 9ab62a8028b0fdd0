"""Checkpoint records: the merged state of a document's log up to a seq, kept beside the log.

A checkpoint is a record of kind `RecordKind.CHECKPOINT`. Unlike a snapshot it
replaces nothing: the records it covers stay (until retention removes them), so
history stays record by record while a restore starts from the checkpoint and
replays only the records after `covers`.

A checkpoint's `metadata` is its header (never a user's metadata bytes):

    u8 version (2) | varuint covers | float64 covers_timestamp | u32 crc32c

Version 1 headers (the first releases) end in a 16-byte BLAKE2b-128 digest
instead; both versions are read.

- `covers`: every record with `seq <= covers` (updates and snapshots; never
  other checkpoints) is merged into the checkpoint's update. The checkpoint's
  own seq is higher (it is appended later, while writers go on writing).
- `covers_timestamp`: the timestamp of record `covers`, so that time travel
  still knows when the covered history ends after retention removed it.
- `crc32c`: CRC-32C (Castagnoli, little-endian, as the file format's frames)
  of `covers`, `covers_timestamp` and the checkpoint's raw (uncompressed)
  update, so that damage to the header is caught as surely as damage to the
  update (a flipped `covers` would otherwise make a restore skip records, or
  time travel replay records twice over a later state). A checkpoint whose
  header and update do not match it is damaged: readers skip it and fall back
  to an earlier checkpoint or a full replay, never to a wrong document. It
  guards against damage, not forgery (neither did version 1's unkeyed digest):
  CRC-32C catches every burst of up to 32 flipped bits and misses other damage
  once in 2**32, and checks a 180 KB checkpoint in about 10 us with the CPU's
  CRC instruction, where BLAKE2b took 0.15 to 0.35 ms of every restore.

Checkpoints are invisible to `read()` (which yields the log as ypy-websocket did)
and to `follow()`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import crc32c

from ..records import decode_varuint, encode_varuint

__all__ = [
    "DIGEST_SIZE",
    "CheckpointHeader",
    "CheckpointReport",
    "decode_header",
    "encode_header",
    "update_digest",
]

DIGEST_SIZE = 16
"""Size of `update_digest` (and of a version-1 header's digest)."""
_BLAKE2B = 1
_CRC32C = 2
_VERSION = _CRC32C
_DIGEST_SIZES = {_BLAKE2B: DIGEST_SIZE, _CRC32C: 4}
_F64 = struct.Struct("<d")


@dataclass(frozen=True, slots=True)
class CheckpointHeader:
    """What a checkpoint record says of itself (stored as its metadata).

    Attributes:
        covers: The highest seq merged into the checkpoint.
        covers_timestamp: The timestamp of record `covers`.
        digest: The digest of `covers`, `covers_timestamp` and the raw update:
            CRC-32C (4 bytes, version 2) or BLAKE2b-128 (16 bytes, version 1).
        version: The header's version (2 when written by this ystores).
    """

    covers: int
    covers_timestamp: float
    digest: bytes
    version: int = _VERSION

    def matches(self, update: bytes) -> bool:
        """Whether `update` (raw, uncompressed) and this header were written together."""
        fields = encode_varuint(self.covers) + _F64.pack(self.covers_timestamp)
        if self.version == _CRC32C:
            return _crc(fields, update) == self.digest
        digest = hashlib.blake2b(fields, digest_size=DIGEST_SIZE)
        digest.update(update)
        return digest.digest() == self.digest


def update_digest(update: bytes) -> bytes:
    """BLAKE2b-128 of an update (a header's digest also binds its `covers` and time)."""
    return hashlib.blake2b(update, digest_size=DIGEST_SIZE).digest()


def _crc(fields: bytes, update: bytes) -> bytes:
    return int(crc32c.crc32c(update, crc32c.crc32c(fields))).to_bytes(4, "little")


def encode_header(covers: int, covers_timestamp: float, update: bytes) -> bytes:
    """The metadata bytes of a checkpoint merging every record up to `covers` into `update`."""
    if covers < 1:
        raise ValueError(f"A checkpoint covers at least seq 1, not {covers}.")
    fields = encode_varuint(covers) + _F64.pack(covers_timestamp)
    return bytes((_VERSION,)) + fields + _crc(fields, update)


def decode_header(metadata: bytes) -> CheckpointHeader | None:
    """A checkpoint header from a checkpoint record's metadata; None when it is damaged.

    A header in a version this ystores does not know is treated as damaged too:
    the checkpoint is skipped, which costs time, never correctness.
    """
    try:
        version = metadata[0]
        if version not in _DIGEST_SIZES:
            return None
        covers, offset = decode_varuint(metadata, 1)
        (covers_timestamp,) = _F64.unpack_from(metadata, offset)
        offset += _F64.size
        digest = bytes(metadata[offset:])
    except (IndexError, ValueError, struct.error):
        return None
    if covers < 1 or len(digest) != _DIGEST_SIZES[version]:
        return None
    return CheckpointHeader(covers, covers_timestamp, digest, version)


@dataclass(frozen=True)
class CheckpointReport:
    """What writing one checkpoint did.

    Attributes:
        doc: The document.
        seq: The checkpoint record's own seq.
        covers: The highest seq merged into it.
        raw_bytes: Size of its update.
        stored_bytes: Bytes stored for it (smaller when compressed).
        seconds: How long building, verifying and writing it took.
    """

    doc: str
    seq: int
    covers: int
    raw_bytes: int
    stored_bytes: int
    seconds: float
