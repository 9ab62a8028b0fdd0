"""Checkpoint records: the merged state of a document's log up to a seq, kept beside the log.

A checkpoint is a record of kind `RecordKind.CHECKPOINT`. Unlike a snapshot it
replaces nothing: the records it covers stay (until retention removes them), so
history stays record by record while a restore starts from the checkpoint and
replays only the records after `covers`.

A checkpoint's `metadata` is its header (never a user's metadata bytes):

    u8 version (1) | varuint covers | float64 covers_timestamp | 16-byte digest

- `covers`: every record with `seq <= covers` (updates and snapshots; never
  other checkpoints) is merged into the checkpoint's update. The checkpoint's
  own seq is higher (it is appended later, while writers go on writing).
- `covers_timestamp`: the timestamp of record `covers`, so that time travel
  still knows when the covered history ends after retention removed it.
- `digest`: BLAKE2b-128 of `covers`, `covers_timestamp` and the checkpoint's
  raw (uncompressed) update, so that damage to the header is caught as surely
  as damage to the update (a flipped `covers` would otherwise make a restore
  skip records, or time travel replay records twice over a later state). A
  checkpoint whose header and update do not match its digest is damaged:
  readers skip it and fall back to an earlier checkpoint or a full replay,
  never to a wrong document.

Checkpoints are invisible to `read()` (which yields the log as ypy-websocket did)
and to `follow()`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

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
_VERSION = 1
_F64 = struct.Struct("<d")


@dataclass(frozen=True, slots=True)
class CheckpointHeader:
    """What a checkpoint record says of itself (stored as its metadata).

    Attributes:
        covers: The highest seq merged into the checkpoint.
        covers_timestamp: The timestamp of record `covers`.
        digest: BLAKE2b-128 of `covers`, `covers_timestamp` and the raw update.
    """

    covers: int
    covers_timestamp: float
    digest: bytes

    def matches(self, update: bytes) -> bool:
        """Whether `update` (raw, uncompressed) and this header were written together."""
        return _header_digest(self.covers, self.covers_timestamp, update) == self.digest


def update_digest(update: bytes) -> bytes:
    """BLAKE2b-128 of an update (a header's digest also binds its `covers` and time)."""
    return hashlib.blake2b(update, digest_size=DIGEST_SIZE).digest()


def _header_digest(covers: int, covers_timestamp: float, update: bytes) -> bytes:
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    digest.update(encode_varuint(covers))
    digest.update(_F64.pack(covers_timestamp))
    digest.update(update)
    return digest.digest()


def encode_header(covers: int, covers_timestamp: float, update: bytes) -> bytes:
    """The metadata bytes of a checkpoint merging every record up to `covers` into `update`."""
    if covers < 1:
        raise ValueError(f"A checkpoint covers at least seq 1, not {covers}.")
    return b"".join(
        (
            bytes((_VERSION,)),
            encode_varuint(covers),
            _F64.pack(covers_timestamp),
            _header_digest(covers, covers_timestamp, update),
        )
    )


def decode_header(metadata: bytes) -> CheckpointHeader | None:
    """A checkpoint header from a checkpoint record's metadata; None when it is damaged.

    A header in a version this ystores does not know is treated as damaged too:
    the checkpoint is skipped, which costs time, never correctness.
    """
    try:
        if not metadata or metadata[0] != _VERSION:
            return None
        covers, offset = decode_varuint(metadata, 1)
        (covers_timestamp,) = _F64.unpack_from(metadata, offset)
        offset += _F64.size
        digest = bytes(metadata[offset:])
    except (IndexError, ValueError, struct.error):
        return None
    if covers < 1 or len(digest) != DIGEST_SIZE:
        return None
    return CheckpointHeader(covers, covers_timestamp, digest)


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
