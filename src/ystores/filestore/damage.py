"""Telling a torn tail from damage, on disk, in bounded time and memory.

A scan stops at the first bytes that do not make a record. Only what a write cut
short can leave counts as a *torn tail*, which is dropped with a warning:

- fewer bytes than a frame head;
- the last frame, incomplete: its length is plausible and runs past the end of the
  file, its first body bytes are those of the record written next, the rest of the
  file is not that record whole under a damaged length, and no valid frame follows;
- zeros up to the end of the file (a crash can leave the blocks of an append that
  never reached the disk as zeros).

Anything else is `CorruptStoreError`: a complete frame failing its checksum, a
length no writer wrote, bytes that cannot start the next record. Nothing here
holds more than a chunk of the file in memory, whatever a damaged length claims.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator

import crc32c

from ..errors import CorruptStoreError
from ..records import decode_varuint
from .frames import CHUNK, FRAME_HEAD, KINDS, MAX_BODY, MIN_BODY

__all__ = [
    "BODY_PEEK",
    "all_zero",
    "body_start_fits",
    "checksum_on_disk",
    "corrupt",
    "frame_at",
    "frame_start_candidates",
    "next_valid_frame",
    "v3_torn_or_corrupt",
]

BODY_PEEK = 10 + 1 + 8 + 10  # var-uint seq, kind, float64 time, var-uint metadata length
_U32 = struct.Struct("<I")


def corrupt(path: str, offset: int, why: str) -> CorruptStoreError:
    """The error for damage at `offset`, naming what is wrong and what to do."""
    return CorruptStoreError(
        f"{path or 'The file'} is damaged at byte {offset}: {why}. Nothing was changed; "
        "restore it from a backup or cut the damaged part with `ystore verify --repair` "
        "(which keeps a backup copy).",
        path=path or None,
        offset=offset,
    )


def all_zero(fd: int, start: int, end: int) -> bool:
    """Whether `file[start:end]` holds only zero bytes (read a chunk at a time)."""
    while start < end:
        chunk = os.pread(fd, min(CHUNK, end - start), start)
        if not chunk:
            return True
        if chunk.count(0) != len(chunk):
            return False
        start += len(chunk)
    return True


def checksum_on_disk(fd: int, length_bytes: bytes, start: int, size: int) -> int:
    """The frame checksum of `length_bytes` and the `size` body bytes at `start`."""
    crc = crc32c.crc32c(length_bytes)
    while size > 0:
        chunk = os.pread(fd, min(CHUNK, size), start)
        if not chunk:
            break
        crc = crc32c.crc32c(chunk, crc)
        start += len(chunk)
        size -= len(chunk)
    return int(crc)


def body_start_fits(
    prefix: bytes, length: int, last_seq: int, kinds: frozenset[int] = KINDS
) -> bool | None:
    """Whether a body's first bytes are those of a record written after seq `last_seq`.

    `kinds` are the kind bytes the file's version allows (`frames.kinds_of_version`).

    Returns:
        True if its seq, kind and metadata length decode and fit, False if they do
        not, None if `prefix` ends before they can be told.
    """
    try:
        seq, j = decode_varuint(prefix)
        kind = prefix[j]
        meta_len, end = decode_varuint(prefix, j + 9)
    except IndexError:
        return None
    except ValueError:
        return False
    return kind in kinds and seq > last_seq and end + meta_len <= length


def frame_at(fd: int, offset: int, end: int) -> bool:
    """Whether a whole frame with a valid checksum starts at `offset` (streamed, bounded).

    Its body must start like a record's before its checksum is computed, so that
    bytes of another format rarely cost a pass over the file.
    """
    peek = os.pread(fd, FRAME_HEAD.size + BODY_PEEK, offset)
    if len(peek) < FRAME_HEAD.size:
        return False
    length, check = FRAME_HEAD.unpack_from(peek)
    if not MIN_BODY <= length <= MAX_BODY or offset + FRAME_HEAD.size + length > end:
        return False
    if not body_start_fits(peek[FRAME_HEAD.size :], length, 0):
        return False
    return bool(checksum_on_disk(fd, peek[:4], offset + FRAME_HEAD.size, length) == check)


def v3_torn_or_corrupt(
    fd: int, offset: int, end: int, last_seq: int, path: str, kinds: frozenset[int] = KINDS
) -> int:
    """Judge the bytes from `offset` (where records stopped) to `end` of a v3 or v4 file.

    `kinds` are the kind bytes the file's version allows.

    Returns:
        The size of the torn tail at `offset`.

    Raises:
        CorruptStoreError: They are not a torn tail (see the module docstring).
    """
    remaining = end - offset
    if remaining < FRAME_HEAD.size:
        return remaining
    peek = os.pread(fd, min(remaining, FRAME_HEAD.size + BODY_PEEK), offset)
    length, check = FRAME_HEAD.unpack_from(peek)
    if not MIN_BODY <= length <= MAX_BODY:
        if all_zero(fd, offset, end):
            return remaining
        raise corrupt(path, offset, f"no record starts there (a frame length of {length})")
    if FRAME_HEAD.size + length <= remaining:
        raise corrupt(path, offset, "the record there is complete but fails its checksum")
    body = remaining - FRAME_HEAD.size
    if body_start_fits(peek[FRAME_HEAD.size :], length, last_seq, kinds) is False:
        if all_zero(fd, offset + FRAME_HEAD.size, end):
            return remaining
        raise corrupt(
            path,
            offset,
            f"a frame claims {length} bytes where {body} remain, and its first bytes are "
            f"not those of a record written after seq {last_seq}",
        )
    if body >= MIN_BODY:
        whole = checksum_on_disk(fd, _U32.pack(body), offset + FRAME_HEAD.size, body)
        if whole == check:
            raise corrupt(
                path,
                offset,
                f"the last record is whole but its length field is damaged (it says "
                f"{length}, the record has {body} bytes)",
            )
    found = next_valid_frame(fd, offset, end, last_seq, kinds=kinds)
    if found is not None:
        raise corrupt(
            path,
            offset,
            f"the record there is cut short or fails its checksum, but valid records "
            f"follow at byte {found}",
        )
    return remaining


def next_valid_frame(
    fd: int,
    offset: int,
    end: int,
    last_seq: int,
    *,
    within: int | None = None,
    kinds: frozenset[int] = KINDS,
) -> int | None:
    """The first offset after `offset` where a record with a valid checksum starts.

    With `within`, only offsets below it are looked at (the records may run past it).
    `kinds` are the kind bytes a record may have (the file's version's).

    Before paying for the checksum of a long body, a candidate must look like a
    record written after seq `last_seq` (its seq, kind and metadata length decode)
    and be followed by the end of the file, a torn frame or another such record.
    Random bytes and zeros almost never pass, so the search stays about linear.
    """
    head = FRAME_HEAD.size
    window_start = offset + 1
    stop = end - head if within is None else min(end - head, within)
    while window_start < stop:
        # windows overlap by a frame head and a body's first fields, which the
        # candidate pattern looks at; offsets from CHUNK on belong to the next window
        window = os.pread(fd, min(CHUNK + head + BODY_PEEK, end - window_start), window_start)
        for k in frame_start_candidates(window, end - window_start - head, kinds):
            if k >= CHUNK or k > len(window) - head or window_start + k >= stop:
                break
            length, crc = FRAME_HEAD.unpack_from(window, k)
            at = window_start + k
            if length < MIN_BODY or at + head + length > end:
                continue
            start = at + head
            want = min(length, BODY_PEEK)
            peek = window[k + head : k + head + want]
            if len(peek) < want:
                peek = os.pread(fd, want, start)
            if not body_start_fits(peek, length, last_seq, kinds):
                continue
            seq = decode_varuint(peek)[0]
            if not _plausible_successor(fd, start + length, end, seq, kinds):
                continue
            if checksum_on_disk(fd, window[k : k + 4], start, length) == crc:
                return at
        window_start += CHUNK
    return None


def _plausible_successor(fd: int, offset: int, end: int, seq: int, kinds: frozenset[int]) -> bool:
    """Whether what follows a candidate record at `offset` could follow a real one."""
    peek = os.pread(fd, min(end - offset, FRAME_HEAD.size + 11), offset)
    if len(peek) < 4:
        return True  # the end of the file, or a frame head cut short
    (length,) = _U32.unpack_from(peek)
    if length < MIN_BODY or length > MAX_BODY:
        return False
    try:
        next_seq, j = decode_varuint(peek, FRAME_HEAD.size)
        kind = peek[j]
    except IndexError:
        return True  # a frame torn before its seq and kind
    except ValueError:
        return False
    return kind in kinds and next_seq > seq


def frame_start_candidates(
    window: bytes, room: int, kinds: frozenset[int] = KINDS
) -> Iterator[int]:
    """Offsets in `window` where a frame whose body fits in `room` bytes could start.

    A C-speed regex keeps the offsets whose u32 length could be at most `room`
    (which bounds its top byte and zeroes the bytes above) and whose body starts
    with a non-zero var-uint seq (seqs start at 1) then a known kind byte: far
    fewer than every byte of a large tail, each of which Python would otherwise
    unpack. Zeros never match. The match starts at the length's top byte, a
    character class the regex engine scans for quickly (a lookahead at every
    offset was 7 times slower).
    """
    kind_class = b"".join(b"\\x%02x" % kind for kind in sorted(kinds))
    body = b".{4}[\\x80-\\xff]{0,9}[\\x01-\\x7f][%s]" % kind_class
    if room >= 1 << 32:
        pattern, before = b"(?=.{4}" + body + b")", 0
    else:
        size = max(1, (room.bit_length() + 7) // 8)  # bytes the largest length takes
        top = room >> (8 * (size - 1))
        pattern = b"[\\x00-\\x%02x](?=\\x00{%d}%s)" % (top, 4 - size, body)
        before = size - 1  # length bytes below the top one
    for match in re.finditer(pattern, window, re.DOTALL):
        if match.start() >= before:
            yield match.start() - before
