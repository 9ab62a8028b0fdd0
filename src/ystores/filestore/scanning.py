"""Reading record logs from a file in bounded memory, for every known layout.

A scanner reads a byte range of an open file in chunks and yields lists of
`Record`s. When the bytes stop making records it decides between two cases:

- a *torn tail*: only what a write cut short can leave (the last record,
  incomplete; see `damage`); the scan ends normally and `tail` describes it;
- *corruption*: anything else, such as a complete record failing its checksum;
  `CorruptStoreError` is raised, since skipping would hide data.

A record is read into memory only once the file is known to hold all of it, and
a large one only once its checksum was verified on disk: a damaged length never
makes a scan allocate what it claims.
"""

from __future__ import annotations

import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import crc32c

from ..errors import CorruptStoreError
from ..history.compression import decompress
from ..history.packing import BlockHeader, decode_block_header, unpack_block
from ..records import Record, RecordKind, decode_varuint
from .damage import (
    all_zero,
    checksum_on_disk,
    corrupt,
    frame_start_candidates,
    v3_torn_or_corrupt,
)
from .frames import CHUNK, FRAME_HEAD, MAX_BODY, MIN_BODY, V3_KINDS, frame_checksum

__all__ = [
    "CHUNK",
    "FRAME_HEAD",
    "LegacyScanner",
    "Scanner",
    "TornTail",
    "V3Scanner",
    "accelerated",
    "frame_checksum",
]

_frame_start_candidates = frame_start_candidates  # the name the tests know
ScanRaw = Callable[[bytes, int, int, list[Any], "list[int] | None", bool], tuple[int, int]]
"""`_framescan.scan_raw`: `(buf, i, last_seq, out, seqs, triples) -> (i, last_seq)`."""


def _compiled_scan() -> ScanRaw | None:
    """The C loop for frames of raw updates (compiled at install; see hatch_build.py).

    `YSTORES_PURE_PYTHON=1` in the environment leaves it unused (the Python loop
    reads the same frames with the same checks, several times slower).
    """
    if os.environ.get("YSTORES_PURE_PYTHON") == "1":
        return None
    try:
        from ._framescan import scan_raw
    except ImportError:  # a pure Python install: the Python loop reads every frame
        return None
    return scan_raw


_scan_raw = _compiled_scan()
_F64 = struct.Struct("<d")
_CHECKPOINT = RecordKind.CHECKPOINT
_BLOCK = RecordKind.BLOCK
_UPDATE = RecordKind.UPDATE
_HEAD_CRCS: dict[int, int] = {}
_MIN_UPDATE = 2  # the smallest Yjs v1 update, b"\x00\x00"
_SMALL_BODY = 1 << 16
"""A frame body up to this size is checked and decoded as a copy of its own."""


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


def accelerated() -> bool:
    """Whether frames of raw updates are read by the compiled loop (else by Python alone)."""
    return _scan_raw is not None


@dataclass(frozen=True)
class TornTail:
    """Bytes at the end of a file that do not form a complete record.

    Attributes:
        offset: Where the incomplete bytes start (the end of the last good record).
        size: How many bytes follow that point.
    """

    offset: int
    size: int


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
        self.skip_checkpoints = False
        """Leave checkpoint records out (what `read()` and a restore's replay want)."""
        self.offsets: list[int] | None = None
        """When a list, the file offset of each record yielded is appended to it."""
        self.checkpoint_sink: list[tuple[int, Record]] | None = None
        """When a list and checkpoints are left out, each is appended to it instead,
        with the number of records yielded before it."""
        self.seqs: list[int] | None = None
        """When a list, `updates()` appends each yielded update's seq to it."""
        self.compressed_bytes = 0
        """Stored bytes of the compressed updates yielded so far."""
        self.decompressed_bytes = 0
        """Raw bytes those updates hold."""
        self.until_seq: int | None = None
        self.until_time: float | None = None
        """With either set, the scan stops (`stopped`) before the first update,
        snapshot or block past that seq or time: what a time travel reads up to."""
        self.stopped = False
        self.expand_blocks = True
        """Yield the records a block holds (False: the block record itself, unchecked;
        for a pack, which copies blocks as they are)."""

    def __iter__(self) -> Iterator[list[Record]]:
        return self._batches(Record)

    def records(self) -> Iterator[list[Record]]:
        """Batches of records without the checkpoints, as `read_records()` yields them."""
        self.skip_checkpoints = True
        return self._batches(Record)

    def triples(self) -> Iterator[list[tuple[bytes, bytes, float]]]:
        """Batches of `(update, metadata, timestamp)`, as `read()` yields them (no checkpoints)."""
        self.skip_checkpoints = True
        return self._batches(_triple)

    def kinds_updates_times(self) -> Iterator[list[tuple[RecordKind, bytes, float]]]:
        """Batches of `(kind, update, timestamp)` (for compaction's statistics)."""
        return self._batches(_kind_update_time)

    def updates(self) -> Iterator[list[bytes]]:
        """Batches of the updates alone, checkpoints left out (for replaying a log)."""
        self.skip_checkpoints = True
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
            if self.stopped:
                return
            need = self._needed(buf)
            if need is None or need <= len(buf) or read_pos >= self.end:
                break  # a bad record, or the end of the range
            if not self._worth_reading(pos, need):
                break  # a record that cannot be whole: judged below, never read
            # past a large record, a chunk more: the fields after it come in the same
            # read (joining a large buffer again is a copy of all of it)
            want = need - len(buf)
            more = self.file.read(min(want + CHUNK if want > CHUNK else CHUNK, self.end - read_pos))
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

    def _worth_reading(self, pos: int, need: int) -> bool:
        """Whether to read on for the record at `pos`, which needs `need` bytes."""
        return pos + need - 1 <= self.end  # (a legacy scan asks one byte ahead)

    @abstractmethod
    def _torn_tail_size(self, offset: int) -> int:
        """The size of the torn tail at `offset` (where records stopped).

        Raises:
            CorruptStoreError: The bytes there are damage, not a torn tail.
        """

    def _bad_bytes_at(self, offset: int) -> None:
        self.tail = TornTail(offset, self._torn_tail_size(offset))


class V3Scanner(Scanner):
    """The ystores log (versions 3 and 4): `u32 length | u32 crc32c | body` frames.

    Args:
        kinds: The kind bytes the file's version allows (`frames.kinds_of_version`);
            any other is damage. A compressed update (codec bits set) is decompressed.
    """

    def __init__(
        self,
        file: BinaryIO,
        start: int,
        end: int,
        *,
        path: str = "",
        kinds: frozenset[int] = V3_KINDS,
    ) -> None:
        super().__init__(file, start, end, path=path)
        self.kinds = kinds
        self._kind_by_byte = {byte: RecordKind(byte & 0x0F) for byte in kinds}

    def _needed(self, buf: bytes) -> int | None:
        if len(buf) < FRAME_HEAD.size:
            return FRAME_HEAD.size
        length = FRAME_HEAD.unpack_from(buf)[0]
        return FRAME_HEAD.size + length if MIN_BODY <= length <= MAX_BODY else None

    def _parse(self, buf: bytes, pos: int, make: Make[T]) -> tuple[list[T], int]:
        # One tight loop: restoring a document spends most of its time here, so the
        # fields are decoded inline (var-uints of one byte without a call) and the
        # hot names are locals. The loop's back edge is a plain jump (`while True`):
        # CPython 3.11 warms a function up, and so specializes its bytecode, only at
        # calls and plain backward jumps, and this function is called once a chunk.
        # A small body is checked and decoded as a copy of its own: its offsets are
        # small integers, which Python never allocates (a large one is read in place).
        records: list[T] = []
        append = records.append
        view = memoryview(buf)
        unpack_head = FRAME_HEAD.unpack_from
        unpack_f64 = _F64.unpack_from
        crc = crc32c.crc32c
        kinds = self._kind_by_byte
        skip_checkpoints = self.skip_checkpoints
        sink = self.checkpoint_sink
        seqs = self.seqs
        offsets = self.offsets
        only_updates = make is _update and offsets is None  # the restore path: no call per record
        only_triples = make is _triple and offsets is None  # read(): no call per record either
        head_crcs = _HEAD_CRCS  # the CRC32C of a length's 4 bytes, by length (few distinct)
        checkpoint_kind, block_kind = _CHECKPOINT, _BLOCK
        min_body, max_body, small_body = MIN_BODY, MAX_BODY, _SMALL_BODY
        i = 0
        n = len(buf)
        last_seq = self.last_seq
        expand = self.expand_blocks
        until_seq, until_time = self.until_seq, self.until_time
        limited = until_seq is not None or until_time is not None
        # The compiled loop, where there is one, takes every frame of a raw update or
        # snapshot (what `read()` and a replay yield as they are) and stops at any
        # other frame, which this loop reads and judges (then hands back to it).
        fast = _scan_raw if (only_triples or only_updates) and not limited else None
        if fast is not None and (type(buf) is not bytes or not (0 in kinds and 1 in kinds)):
            fast = None  # (it reads `bytes` alone, and kinds 0 and 1 as always allowed)
        while True:
            if fast is not None:
                i, last_seq = fast(buf, i, last_seq, records, seqs, only_triples)
            if n - i < 8:
                break
            length, check = unpack_head(buf, i)
            if length < min_body or length > max_body:
                break
            stop = i + 8 + length
            if stop > n:
                break
            try:
                head_crc = head_crcs[length]
            except KeyError:
                head_crc = crc(view[i : i + 4])
                if len(head_crcs) < 4096:
                    head_crcs[length] = head_crc
            if length <= small_body:
                body = buf[i + 8 : stop]
                if crc(body, head_crc) != check:
                    break
                j = 0
            else:
                if crc(view[i + 8 : stop], head_crc) != check:
                    break
                body = buf
                j = i + 8
            end = j + length  # the body is body[j:end]
            try:
                seq = body[j]
                if seq < 0x80:
                    j += 1
                elif body[j + 1] < 0x80:  # seqs up to 16,383: two bytes, no call
                    seq = (seq & 0x7F) | body[j + 1] << 7
                    j += 2
                elif body[j + 2] < 0x80:  # up to 2,097,151: three bytes, no call
                    seq = (seq & 0x7F) | (body[j + 1] & 0x7F) << 7 | body[j + 2] << 14
                    j += 3
                else:
                    seq, j = decode_varuint(body, j)
                kind_byte = body[j]
                kind = kinds[kind_byte]
                (timestamp,) = unpack_f64(body, j + 1)
                meta_len = body[j + 9]
                if meta_len < 0x80:
                    j += 10
                else:
                    meta_len, j = decode_varuint(body, j + 9)
                if j + meta_len > end:
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
            metadata = body[j : j + meta_len] if meta_len else b""
            j += meta_len  # the stored update is body[j:end]
            if kind_byte < 2 and not limited:  # a raw update or snapshot: the common case
                if only_triples:
                    append((body[j:end], metadata, timestamp))  # type: ignore[arg-type]
                elif only_updates:
                    append(body[j:end])  # type: ignore[arg-type]
                    if seqs is not None:
                        seqs.append(seq)
                else:
                    if offsets is not None:
                        offsets.append(pos + i)
                    append(make(seq, body[j:end], metadata, timestamp, kind))
                last_seq = seq
                i = stop
                continue
            previous_seq, last_seq = last_seq, seq
            if kind is checkpoint_kind and skip_checkpoints:
                if sink is not None:
                    stored = body[j:end]
                    raw = stored if kind_byte < 0x10 else self._set_aside(kind_byte, stored)
                    checkpoint = Record(seq, raw, metadata, timestamp, kind)
                    sink.append((self.count + len(records), checkpoint))
                i = stop
                continue
            if limited and kind is not checkpoint_kind:
                first_seq, first_time = seq, timestamp
                if kind is block_kind:
                    block = self._block_header(metadata, seq, pos + i)
                    first_time = block.first_timestamp
                if (until_seq is not None and first_seq > until_seq) or (
                    until_time is not None and first_time > until_time
                ):
                    self.stopped = True
                    last_seq = previous_seq
                    break
            if kind is block_kind and expand:
                packed = self._unpack(metadata, body[j:end], seq, pos + i)
                last_seq = packed[-1].seq
                for record in packed:
                    if only_triples:
                        append((record.update, record.metadata, record.timestamp))  # type: ignore[arg-type]
                    elif only_updates:
                        append(record.update)  # type: ignore[arg-type]
                        if seqs is not None:
                            seqs.append(record.seq)
                    else:
                        if offsets is not None:
                            offsets.append(pos + i)
                        append(
                            make(
                                record.seq,
                                record.update,
                                record.metadata,
                                record.timestamp,
                                _UPDATE,
                            )
                        )
                i = stop
                continue
            if kind is block_kind:  # not expanded: the block record itself
                last_seq = self._block_last_seq(metadata, seq, pos + i)
            if kind_byte < 0x10:
                update = body[j:end]
            elif kind is checkpoint_kind:
                update = self._checkpoint_update(kind_byte, body[j:end], pos + i)
            else:
                update = self._decompress(kind_byte >> 4, body[j:end], pos + i)
            if only_triples:
                append((update, metadata, timestamp))  # type: ignore[arg-type]
            elif only_updates:
                append(update)  # type: ignore[arg-type]
                if seqs is not None:
                    seqs.append(seq)
            else:
                if offsets is not None:
                    offsets.append(pos + i)
                append(make(seq, update, metadata, timestamp, kind))
            i = stop
        self.last_seq = last_seq
        return records, i

    def _block_last_seq(self, header: bytes, seq: int, offset: int) -> int:
        return self._block_header(header, seq, offset).last_seq

    def _block_header(self, header: bytes, seq: int, offset: int) -> BlockHeader:
        try:
            decoded = decode_block_header(header)
        except CorruptStoreError as exc:
            raise CorruptStoreError(
                f"{self.path or 'The file'} has a damaged block at byte {offset}: {exc}",
                path=self.path or None,
                offset=offset,
            ) from exc
        if decoded.first_seq != seq:
            raise CorruptStoreError(
                f"{self.path or 'The file'} has a block at byte {offset} whose records "
                f"start at seq {decoded.first_seq}, not at its seq {seq}.",
                path=self.path or None,
                offset=offset,
            )
        return decoded

    def _unpack(self, header: bytes, payload: bytes, seq: int, offset: int) -> list[Record]:
        """The records of the block frame at `offset` (seq `seq`), checked against its digest."""
        where = f"{self.path or 'The file'} has a block at byte {offset}"
        try:
            packed = unpack_block(header, payload)
        except CorruptStoreError as exc:
            raise CorruptStoreError(
                f"{where} that is damaged: {exc} Its records cannot be read; restore "
                "the file from a backup.",
                path=self.path or None,
                offset=offset,
            ) from exc
        if packed[0].seq != seq:
            raise CorruptStoreError(
                f"{where} whose records start at seq {packed[0].seq}, not at its seq {seq}.",
                path=self.path or None,
                offset=offset,
            )
        self.compressed_bytes += len(payload)
        self.decompressed_bytes += sum(len(record.update) for record in packed)
        return packed

    @staticmethod
    def _set_aside(kind_byte: int, stored: bytes) -> bytes:
        """A set-aside checkpoint's update; empty when it does not decompress (damaged:
        its digest then fails, and the restore skips it with a warning)."""
        try:
            return decompress(kind_byte >> 4, stored, where="a checkpoint")
        except CorruptStoreError:
            return b""

    def _checkpoint_update(self, kind_byte: int, stored: bytes, offset: int) -> bytes:
        """A checkpoint's update; empty when it does not decompress.

        A checkpoint is a cache of what the records hold: one that is damaged
        fails its digest and every reader skips it (restore and time travel fall
        back to an earlier one or a replay; verify reports it), so it is never a
        reason to refuse the whole file.
        """
        try:
            return self._decompress(kind_byte >> 4, stored, offset)
        except CorruptStoreError:
            return b""

    def _decompress(self, codec: int, stored: bytes, offset: int, *, count: bool = True) -> bytes:
        where = f"the record at byte {offset} of {self.path or 'the file'}"
        try:
            update = decompress(codec, stored, where=where)
        except CorruptStoreError as exc:
            raise CorruptStoreError(str(exc), path=self.path or None, offset=offset) from exc
        if count:  # set-aside checkpoints are not counted
            self.compressed_bytes += len(stored)
            self.decompressed_bytes += len(update)
        return update

    def _worth_reading(self, pos: int, need: int) -> bool:
        if pos + need > self.end:
            return False  # the frame runs past the end of the file
        if need <= CHUNK:
            return True
        # a large frame: verify its checksum on disk before holding it in memory
        fd = self.file.fileno()
        head = os.pread(fd, FRAME_HEAD.size, pos)
        length, check = FRAME_HEAD.unpack(head)
        return bool(checksum_on_disk(fd, head[:4], pos + FRAME_HEAD.size, length) == check)

    def _torn_tail_size(self, offset: int) -> int:
        return v3_torn_or_corrupt(
            self.file.fileno(), offset, self.end, self.last_seq, self.path, self.kinds
        )


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
        # Fields are copied only once the whole record is known to be there: a huge
        # field is otherwise copied again at every attempt while the rest is read.
        spans: list[tuple[int, int]] = []
        n = len(buf)
        for _ in range(self.fields):
            try:
                length, j = decode_varuint(buf, i)
            except (IndexError, ValueError):
                return None
            if j + length > n:
                return None
            spans.append((j, j + length))
            i = j + length
        if spans[0][1] - spans[0][0] < _MIN_UPDATE:
            return None
        if self.fields == 3 and spans[2][1] - spans[2][0] != 8:
            return None
        return [bytes(buf[start:stop]) for start, stop in spans], i

    def _torn_tail_size(self, offset: int) -> int:
        # Legacy records carry no checksum: only a record whose fields run past the
        # end (or zeros, blocks a crash never wrote) can be a torn tail.
        fd = self.file.fileno()
        if all_zero(fd, offset, self.end):
            return self.end - offset
        cursor = offset
        for _ in range(self.fields):
            prefix = os.pread(fd, 10, cursor)
            try:
                length, used = decode_varuint(prefix)
            except IndexError:
                return self.end - offset  # a length prefix cut short by the end
            except ValueError:
                break
            cursor += used + length
            if cursor > self.end:
                return self.end - offset
        raise corrupt(
            self.path,
            offset,
            "the record there is complete but is not a valid record of its format",
        )

    def _parse(self, buf: bytes, pos: int, make: Make[T]) -> tuple[list[T], int]:
        records: list[T] = []
        i = 0
        seq = self.last_seq
        while True:  # a plain back edge, as in `V3Scanner._parse`
            if i >= len(buf):
                break
            parsed = self._read_record(buf, i)
            if parsed is None:
                break
            parts, i = parsed
            seq += 1
            timestamp = _F64.unpack(parts[2])[0] if self.fields == 3 else 0.0
            records.append(make(seq, parts[0], parts[1], timestamp, RecordKind.UPDATE))
        self.last_seq = seq
        return records, i
