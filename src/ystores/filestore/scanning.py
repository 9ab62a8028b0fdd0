"""Reading record logs from a file in bounded memory, for every known layout.

A scanner reads a byte range of an open file in chunks and yields lists of
`Record`s. When the bytes stop making records it decides between two cases:

- a *torn tail*: nothing valid follows (a crash mid-append, chopped bytes);
  the scan ends normally and `tail` describes what was left over;
- *corruption*: valid records follow the bad bytes, so something in the middle
  was damaged; `CorruptStoreError` is raised, since skipping would hide data.
"""

from __future__ import annotations

import os
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

import crc32c

from ..errors import CorruptStoreError
from ..records import Record, RecordKind, decode_varuint

__all__ = ["FRAME_HEAD", "LegacyScanner", "Scanner", "TornTail", "V3Scanner", "frame_checksum"]

# Legacy records carry no checksum, so damage in their middle cannot be told from a
# torn tail: everything after the last parseable legacy record counts as a tail.

CHUNK = 1 << 20
FRAME_HEAD = struct.Struct("<II")  # body length, CRC32C of (length bytes + body)
MIN_BODY = 11  # varuint seq (1) + kind (1) + float64 timestamp (8) + varuint meta length (1)
MAX_BODY = 1 << 31
_F64 = struct.Struct("<d")
_KINDS = frozenset(int(kind) for kind in RecordKind)
_KIND_BY_VALUE = {int(kind): kind for kind in RecordKind}
_BODY_PEEK = 10 + 1 + 8 + 10  # var-uint seq, kind, float64 time, var-uint metadata length


T = TypeVar("T")
Make = Callable[[int, bytes, bytes, float, RecordKind], T]
"""Builds what a scan yields per record from `(seq, update, metadata, timestamp, kind)`."""


def _triple(
    _seq: int, update: bytes, metadata: bytes, timestamp: float, _kind: RecordKind
) -> tuple[bytes, bytes, float]:
    return update, metadata, timestamp


def _kind_update_time(
    _seq: int, update: bytes, _metadata: bytes, timestamp: float, kind: RecordKind
) -> tuple[RecordKind, bytes, float]:
    return kind, update, timestamp


def _update(_seq: int, update: bytes, _metadata: bytes, _ts: float, _kind: RecordKind) -> bytes:
    return update


@dataclass(frozen=True)
class TornTail:
    """Bytes at the end of a file that do not form a complete record.

    Attributes:
        offset: Where the incomplete bytes start (the end of the last good record).
        size: How many bytes follow that point.
    """

    offset: int
    size: int


def frame_checksum(length_bytes: bytes | memoryview, body: bytes | memoryview) -> int:
    """CRC32C over a frame's 4 length bytes and its body."""
    return int(crc32c.crc32c(body, crc32c.crc32c(length_bytes)))


class Scanner(ABC):
    """Yields batches of records from `file[start:end]`; see the module docstring."""

    def __init__(self, file: BinaryIO, start: int, end: int, *, path: str = "") -> None:
        self.file = file
        self.start = start
        self.end = end
        self.path = path
        self.tail: TornTail | None = None
        self.good_end = start
        self.last_seq = 0
        self.count = 0

    def __iter__(self) -> Iterator[list[Record]]:
        return self._batches(Record)

    def triples(self) -> Iterator[list[tuple[bytes, bytes, float]]]:
        """Batches of `(update, metadata, timestamp)`, as `read()` yields them."""
        return self._batches(_triple)

    def kinds_updates_times(self) -> Iterator[list[tuple[RecordKind, bytes, float]]]:
        """Batches of `(kind, update, timestamp)` (for compaction's statistics)."""
        return self._batches(_kind_update_time)

    def updates(self) -> Iterator[list[bytes]]:
        """Batches of the updates alone (for applying them to a document)."""
        return self._batches(_update)

    def _batches(self, make: Make[T]) -> Iterator[list[T]]:
        buf = b""
        pos = self.start  # file offset of buf[0]
        read_pos = self.start  # file offset of the next byte to read
        self.file.seek(read_pos)
        while True:
            batch, used = self._parse(buf, pos, make)
            if used:
                buf = buf[used:]
                pos += used
                self.good_end = pos
            if batch:
                self.count += len(batch)
                yield batch
            need = self._needed(buf)
            if need is None or need <= len(buf) or read_pos >= self.end:
                break  # a bad record, or the end of the range
            more = self.file.read(min(max(CHUNK, need - len(buf)), self.end - read_pos))
            if not more:
                break
            buf += more
            read_pos += len(more)
        if pos < self.end:
            self._bad_bytes_at(pos)

    @abstractmethod
    def _needed(self, buf: bytes) -> int | None:
        """Bytes the record at the start of `buf` needs, or None if it cannot be one."""

    @abstractmethod
    def _parse(self, buf: bytes, pos: int, make: Make[T]) -> tuple[list[T], int]:
        """Parse whole records from `buf` (at file offset `pos`); return them, each
        built by `make`, and the bytes used."""

    def _next_valid_record(self, offset: int) -> int | None:
        """The first offset after `offset` where a valid record starts, if any."""
        return None

    def _bad_bytes_at(self, offset: int) -> None:
        found = self._next_valid_record(offset)
        if found is not None:
            raise CorruptStoreError(
                f"{self.path or 'The file'} is damaged at byte {offset}: the record there "
                f"fails its framing or checksum but valid records follow at byte "
                f"{found}. Nothing was changed; restore it from a backup or cut the "
                "damaged part with `ystore verify --repair`.",
                path=self.path or None,
                offset=offset,
            )
        self.tail = TornTail(offset, self.end - offset)


class V3Scanner(Scanner):
    """The ystores log: `u32 length | u32 crc32c | body` frames."""

    def _needed(self, buf: bytes) -> int | None:
        if len(buf) < FRAME_HEAD.size:
            return FRAME_HEAD.size
        length = FRAME_HEAD.unpack_from(buf)[0]
        return FRAME_HEAD.size + length if MIN_BODY <= length <= MAX_BODY else None

    def _parse(self, buf: bytes, pos: int, make: Make[T]) -> tuple[list[T], int]:
        # One tight loop: restoring a document spends most of its time here, so the
        # fields are decoded inline (var-uints of one byte without a call) and the
        # hot names are locals.
        records: list[T] = []
        append = records.append
        view = memoryview(buf)
        unpack_head = FRAME_HEAD.unpack_from
        unpack_f64 = _F64.unpack_from
        crc = crc32c.crc32c
        kinds = _KIND_BY_VALUE
        only_updates = make is _update  # the restore path: no call per record
        i = 0
        n = len(buf)
        last_seq = self.last_seq
        while n - i >= 8:
            length, check = unpack_head(buf, i)
            if length < MIN_BODY or length > MAX_BODY:
                break
            j = i + 8
            stop = j + length
            if stop > n:
                break
            if crc(view[j:stop], crc(view[i : i + 4])) != check:
                break
            try:
                seq = buf[j]
                if seq < 0x80:
                    j += 1
                else:
                    seq, j = decode_varuint(buf, j)
                kind = kinds[buf[j]]
                (timestamp,) = unpack_f64(buf, j + 1)
                meta_len = buf[j + 9]
                if meta_len < 0x80:
                    j += 10
                else:
                    meta_len, j = decode_varuint(buf, j + 9)
                if j + meta_len > stop:
                    raise ValueError("metadata runs past the record")
            except (IndexError, KeyError, ValueError, struct.error) as exc:
                raise CorruptStoreError(
                    f"{self.path or 'The file'} has a record at byte {pos + i} whose "
                    f"checksum matches but whose contents do not decode ({exc}).",
                    path=self.path or None,
                    offset=pos + i,
                ) from exc
            if seq <= last_seq:
                raise CorruptStoreError(
                    f"{self.path or 'The file'} holds record seq {seq} after seq "
                    f"{last_seq} at byte {pos + i}; seqs must increase.",
                    path=self.path or None,
                    offset=pos + i,
                )
            last_seq = seq
            if only_updates:
                append(buf[j + meta_len : stop])  # type: ignore[arg-type]
            else:
                append(make(seq, buf[j + meta_len : stop], buf[j : j + meta_len], timestamp, kind))
            i = stop
        self.last_seq = last_seq
        return records, i

    def _next_valid_record(self, offset: int) -> int | None:
        """The first offset after `offset` where a record with a valid checksum starts.

        Before paying for the checksum of a long body, a candidate must look like a
        record written after the last good one (its seq, kind and metadata length
        decode) and be followed by the end of the file, a torn frame or another such
        record. Random bytes (a large torn tail of binary data) almost never pass, so
        the search stays about linear instead of checksumming megabytes per offset.
        """
        fd = self.file.fileno()
        head = FRAME_HEAD.size
        window_start = offset + 1
        while window_start < self.end - head:
            # windows overlap by a frame head and a body's first fields, which the
            # candidate pattern looks at; offsets from CHUNK on belong to the next window
            want = min(CHUNK + head + _BODY_PEEK, self.end - window_start)
            window = os.pread(fd, want, window_start)
            for k in _frame_start_candidates(window, self.end - window_start - head):
                if k >= CHUNK or k > len(window) - head:
                    break
                length, crc = FRAME_HEAD.unpack_from(window, k)
                at = window_start + k
                if length < MIN_BODY or at + head + length > self.end:
                    continue
                seq = self._plausible_body(fd, window, k + head, at + head, length)
                if seq is None or not self._plausible_successor(fd, at + head + length, seq):
                    continue
                if k + head + length <= len(window):
                    body: bytes | memoryview = memoryview(window)[k + head : k + head + length]
                else:
                    body = os.pread(fd, length, at + head)
                if frame_checksum(window[k : k + 4], body) == crc:
                    return at
            window_start += CHUNK
        return None

    def _plausible_body(
        self, fd: int, window: bytes, k: int, start: int, length: int
    ) -> int | None:
        """The seq of the body at file offset `start` (`window[k:]`), if its fields decode."""
        want = min(length, _BODY_PEEK)
        peek = window[k : k + want] if k + want <= len(window) else os.pread(fd, want, start)
        try:
            seq, j = decode_varuint(peek)
            kind = peek[j]
            meta_len, j = decode_varuint(peek, j + 9)
        except (IndexError, ValueError):
            return None
        if kind not in _KINDS or seq <= self.last_seq or j + meta_len > length:
            return None
        return seq

    def _plausible_successor(self, fd: int, offset: int, seq: int) -> bool:
        """Whether what follows a candidate record at `offset` could follow a real one."""
        peek = os.pread(fd, min(self.end - offset, FRAME_HEAD.size + 11), offset)
        if len(peek) < 4:
            return True  # the end of the file, or a frame head cut short
        (length,) = struct.unpack_from("<I", peek)
        if length < MIN_BODY or length > MAX_BODY:
            return False
        try:
            next_seq, j = decode_varuint(peek, FRAME_HEAD.size)
            kind = peek[j]
        except IndexError:
            return True  # a frame torn before its seq and kind
        except ValueError:
            return False
        return kind in _KINDS and next_seq > seq


def _frame_start_candidates(window: bytes, room: int) -> Iterator[int]:
    """Offsets in `window` where a frame whose body fits in `room` bytes could start.

    A C-speed regex keeps the offsets whose u32 length could be at most `room`
    (which bounds its top byte and zeroes the bytes above) and whose body starts
    with a var-uint seq then a known kind byte: far fewer than every byte of a
    large torn tail, each of which Python would otherwise unpack.
    """
    kinds = b"".join(b"\\x%02x" % kind for kind in sorted(_KINDS))
    body = b".{4}[\\x80-\\xff]{0,9}[\\x00-\\x7f][%s]" % kinds
    if room >= 1 << 32:
        length = b".{4}"
    else:
        size = max(1, (room.bit_length() + 7) // 8)  # bytes the largest length takes
        top = room >> (8 * (size - 1))
        length = b".{%d}[\\x00-\\x%02x]\\x00{%d}" % (size - 1, top, 4 - size)
    pattern = b"(?=" + length + body + b")"
    return (match.start() for match in re.finditer(pattern, window, re.DOTALL))


class LegacyScanner(Scanner):
    """ypy-websocket's layouts: var-uint length-prefixed fields, 2 or 3 per record.

    With 3 fields (file version 2) the last is an 8-byte little-endian float64 time;
    with 2 (versions 1 and 0) the timestamp is reported as 0.0.
    """

    def __init__(
        self, file: BinaryIO, start: int, end: int, *, fields: int, path: str = ""
    ) -> None:
        super().__init__(file, start, end, path=path)
        self.fields = fields

    def _needed(self, buf: bytes) -> int | None:
        # read a large record in one go, as far as its fields' length prefixes tell
        end = 0
        for _ in range(self.fields):
            try:
                length, start = decode_varuint(buf, end)
            except IndexError:
                return len(buf) + 1  # a length prefix cut short: one byte more, at least
            except ValueError:
                return None
            end = start + length
            if end > len(buf):
                return end + 1
        return None  # every field is there but `_parse` refused the record: a bad one

    def _read_record(self, buf: bytes | memoryview, i: int) -> tuple[list[bytes], int] | None:
        parts: list[bytes] = []
        n = len(buf)
        for _ in range(self.fields):
            try:
                length, j = decode_varuint(buf, i)
            except (IndexError, ValueError):
                return None
            if j + length > n:
                return None
            parts.append(bytes(buf[j : j + length]))
            i = j + length
        if self.fields == 3 and len(parts[2]) != 8:
            return None
        return parts, i

    def _parse(self, buf: bytes, pos: int, make: Make[T]) -> tuple[list[T], int]:
        records: list[T] = []
        i = 0
        seq = self.last_seq
        while i < len(buf):
            parsed = self._read_record(buf, i)
            if parsed is None:
                break
            parts, i = parsed
            seq += 1
            timestamp = _F64.unpack(parts[2])[0] if self.fields == 3 else 0.0
            records.append(make(seq, parts[0], parts[1], timestamp, RecordKind.UPDATE))
        self.last_seq = seq
        return records, i
