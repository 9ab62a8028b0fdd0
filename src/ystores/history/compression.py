"""The per-record codec: how a record's update is stored (raw or zlib-compressed).

The codec is recorded with each record (a SQL column, bits of a file frame's
kind byte), so compressed and raw records mix in one log and a store can turn
compression on or off at any time. Reads always return the raw update.
"""

from __future__ import annotations

import enum
import zlib

from ..errors import CorruptStoreError

__all__ = ["DEFAULT_THRESHOLD", "Codec", "compress", "decompress"]

DEFAULT_THRESHOLD = 256
"""Updates shorter than this are stored raw: zlib does not shrink a keystroke."""

_LEVEL = 6


class Codec(enum.IntEnum):
    """How a record's update bytes are stored."""

    RAW = 0
    ZLIB = 1


def compress(update: bytes, *, threshold: int = DEFAULT_THRESHOLD) -> tuple[Codec, bytes]:
    """The codec and bytes to store for `update`: zlib when it is long enough and shrinks."""
    if len(update) < threshold:
        return Codec.RAW, update
    packed = zlib.compress(update, _LEVEL)
    if len(packed) >= len(update):
        return Codec.RAW, update
    return Codec.ZLIB, packed


def decompress(codec: int, stored: bytes, *, where: str = "a record") -> bytes:
    """The raw update from stored bytes.

    Raises:
        CorruptStoreError: An unknown codec, or bytes the codec cannot decode.
    """
    if codec == Codec.RAW:
        return stored
    if codec == Codec.ZLIB:
        try:
            return zlib.decompress(stored)
        except zlib.error as exc:
            message = f"The compressed update of {where} does not decode: {exc}."
            raise CorruptStoreError(message) from exc
    raise CorruptStoreError(f"{where} is stored with codec {codec}, unknown to this ystores.")
