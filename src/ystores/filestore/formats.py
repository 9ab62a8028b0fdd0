"""Which layout a store file is in, and how to read records from it.

| version | written by | header | record |
|---|---|---|---|
| 5 | ystores (packed) | `VERSION:5\\n` | as 4; kind 3 (a block of packed records) too |
| 4 | ystores | `VERSION:4\\n` | as 3; kind byte `codec << 4 \\| kind`, kinds 0-2, codecs 0-1 |
| 3 | ystores | `VERSION:3\\n` | `u32 length, u32 crc32c, body` (see `frames`), kinds 0-1 |
| 2 | ypy-websocket 0.8-0.12, pycrdt-store | `VERSION:2\\n` | update, metadata, float64 time |
| 1 | ypy-websocket 0.7 | `VERSION:1\\n` | update, metadata |
| 0 | ypy-websocket 0.2-0.6 | none | update, metadata |

Legacy fields are each a var-uint length followed by the bytes.

Version 4 frames are version 3's; the kind byte also holds the codec the update
is stored with, and kind 2 (a checkpoint) is allowed. New files are written as
version 4. A version-3 file is appended to as it is until a frame only version
4 allows (a checkpoint, a compressed update) is to be written: it is then
rewritten with a version-4 header, atomically (`FileLog`), before that frame.
Version 5 adds block frames (`frames`); a file becomes version 5 only when
`pack()` rewrites it (atomically, as every rewrite): a file never packed stays
version 4, readable by ystores releases that know no blocks, and those refuse
a version-5 file as a newer format, never misreading it.

The header has no checksum of its own; the first frame's checksum vouches for it.
Whatever a file's first bytes say, a whole, checksummed v3/v4 frame starting within
its first 64 KiB means a damaged (or missing) checksummed header
(`CorruptStoreError`), never another format: ypy-websocket's records would pass
that check by chance far less than once in a million files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from ..crdt import validate_update
from ..errors import CorruptStoreError, InvalidUpdateError, UnknownFormatError
from ..records import decode_varuint
from ..yupdate import parse_update
from .damage import frame_at, next_valid_frame
from .frames import kinds_of_version
from .scanning import LegacyScanner, Scanner, V3Scanner

__all__ = [
    "CURRENT_VERSION",
    "HEADER",
    "HEADER_V3",
    "HEADER_V5",
    "NEWEST_VERSION",
    "FileFormat",
    "detect_format",
    "header_of",
    "open_scanner",
    "v3_records_start",
]

CURRENT_VERSION = 4
"""The version new files are written in (a packed file is version 5)."""
HEADER = b"VERSION:4\n"
HEADER_V3 = b"VERSION:3\n"
HEADER_V5 = b"VERSION:5\n"
NEWEST_VERSION = 5
"""The newest version this ystores reads and writes."""
_CHECKSUMMED = 3  # the first checksummed version
_HEADERS = (b"VERSION:1\n", b"VERSION:2\n", HEADER_V3, HEADER, HEADER_V5)
_HEADER_SEARCH = 2 * len(HEADER) + 1
_FRAME_SEARCH = 1 << 16
_PARSE_AT_MOST = 1 << 20
_DESCRIPTIONS = {
    5: "ystores file format version 5 (checksummed, packed)",
    4: "ystores file format version 4 (checksummed)",
    3: "ystores file format version 3 (checksummed)",
    2: "ypy-websocket file format version 2",
    1: "ypy-websocket file format version 1",
    0: "ypy-websocket headerless file format (version 0)",
}


@dataclass(frozen=True)
class FileFormat:
    """A file's layout.

    Attributes:
        version: 0 to 5 (see the module docstring).
        data_offset: Where the first record starts, just past the header.
    """

    version: int
    data_offset: int

    @property
    def legacy(self) -> bool:
        """Whether this is one of ypy-websocket's layouts (read-only until migrated)."""
        return self.version < _CHECKSUMMED

    @property
    def checksummed(self) -> bool:
        """Whether this is one of ystores' checksummed layouts (3, 4 or 5)."""
        return self.version >= _CHECKSUMMED

    @property
    def kinds(self) -> frozenset[int]:
        """The kind bytes this (checksummed) layout allows."""
        return kinds_of_version(self.version)

    @property
    def description(self) -> str:
        """A human name for the layout."""
        return _DESCRIPTIONS[self.version]


def detect_format(file: BinaryIO, size: int, path: str) -> FileFormat | None:
    """Read a file's header, checked against the first record.

    Returns:
        Its format, or None for an empty file or a header cut short while the file
        was being created (no record can have been written yet).

    Raises:
        UnknownFormatError: The file is in none of the known formats.
        CorruptStoreError: The header is damaged (checksummed version-3 records
            follow a header that is not version 3's); its `offset` is 0.
    """
    try:
        fmt = _read_header(file, size, path)
    except UnknownFormatError:
        _refuse_damaged_header(file, size, path, None)
        raise
    if fmt is not None and fmt.legacy:
        _refuse_damaged_header(file, size, path, fmt)
        if fmt.version > 0:
            _refuse_damaged_first_record(file, size, path, fmt)
    return fmt


def v3_records_start(file: BinaryIO, size: int) -> int | None:
    """Where checksummed version-3 records start near the top of a file, if they do.

    Looks at every offset up to twice a header's length, so a header flipped,
    cut, grown or missing is seen, then for any valid frame starting in the first
    64 KiB, so a damaged header over a damaged first record is seen too.
    """
    fd = file.fileno()
    for offset in range(min(size, _HEADER_SEARCH)):
        if frame_at(fd, offset, size):
            return offset
    return next_valid_frame(fd, _HEADER_SEARCH - 1, size, 0, within=_FRAME_SEARCH)


def _refuse_damaged_header(file: BinaryIO, size: int, path: str, fmt: FileFormat | None) -> None:
    start = v3_records_start(file, size)
    if start is not None:
        head = os.pread(file.fileno(), min(start, 16), 0)
        said = f"reads as {fmt.description}" if fmt is not None else "is in no known format"
        raise CorruptStoreError(
            f"{path} is damaged at byte 0: its header {head!r} {said}, but version-3 "
            f"records with valid checksums start at byte {start}. Nothing was changed; "
            "`ystore verify --repair` rewrites the header (after a backup copy).",
            path=path,
            offset=0,
        )


def _read_header(file: BinaryIO, size: int, path: str) -> FileFormat | None:
    if size == 0:
        return None
    head = os.pread(file.fileno(), min(size, 64), 0)
    if any(len(head) < len(h) and h.startswith(head) for h in _HEADERS):
        return None  # a header cut short (legacy ones too): the file holds no record
    if head.startswith(b"VERSION:"):
        newline = head.find(b"\n")
        digits = head[8:newline] if newline > 0 else b""
        if not digits.isdigit():
            raise UnknownFormatError(
                f"{path} starts with 'VERSION:' but has no valid version number; "
                "it is not a store file ystores can read.",
                path=path,
            )
        version = int(digits)
        if version not in (1, 2, 3, 4, 5):
            raise UnknownFormatError(
                f"{path} is in store file format version {version}, which this ystores "
                "does not know (it reads versions 0 to 5); a newer ystores may read it.",
                path=path,
            )
        return FileFormat(version, newline + 1)
    if _looks_like_v0(file, size):
        return FileFormat(0, 0)
    raise UnknownFormatError(
        f"{path} is not a store file: it has no VERSION header and its bytes do not "
        "parse as ypy-websocket's headerless update/metadata records.",
        path=path,
    )


def _looks_like_v0(file: BinaryIO, size: int) -> bool:
    """Whether the file starts with a whole (update, metadata) pair holding exactly a Yjs update."""
    update = _first_legacy_update(file, size, 0, fields=2)
    if not update:
        return False
    try:
        validate_update(update)
    except InvalidUpdateError:
        return False
    return _whole_update(update)


def _whole_update(update: bytes) -> bool:
    if len(update) > _PARSE_AT_MOST:
        return True  # too long to parse here; the engine checks it when it is applied
    try:
        parse_update(update)  # whole: ypy-websocket never left bytes after an update
    except ValueError:
        return False
    return True


def _first_legacy_update(file: BinaryIO, size: int, start: int, *, fields: int) -> bytes | None:
    """The update of the legacy record at `start` (b"" if it cannot be one), or None
    if the record runs past the end of the file. Only the update is read."""
    fd = file.fileno()
    end = start
    update: tuple[int, int] | None = None
    for _field in range(fields):  # find where the first record ends, however large it is
        prefix = os.pread(fd, min(size - end, 10), end)
        try:
            length, used = decode_varuint(prefix)
        except IndexError:
            return None
        except ValueError:
            return b""
        if update is None:
            update = (end + used, length)
        end += used + length
        if end > size:
            return None
    assert update is not None
    return os.pread(fd, update[1], update[0])


def _refuse_damaged_first_record(file: BinaryIO, size: int, path: str, fmt: FileFormat) -> None:
    """A headed legacy file whose first record, whole, holds no Yjs update is damaged.

    (The damage a header and a version 3 record over it would both need to be read
    as a legacy record.)
    """
    fields = 3 if fmt.version == 2 else 2
    update = _first_legacy_update(file, size, fmt.data_offset, fields=fields)
    if update is not None and not (update and _whole_update(update)):
        raise CorruptStoreError(
            f"{path} is damaged at byte {fmt.data_offset}: it reads as {fmt.description}, "
            "but its first record does not hold a Yjs update. Nothing was changed; "
            "restore it from a backup.",
            path=path,
            offset=fmt.data_offset,
        )


def header_of(version: int) -> bytes:
    """The header a checksummed file of `version` starts with."""
    return b"VERSION:%d\n" % version


def open_scanner(
    file: BinaryIO, fmt: FileFormat, end: int, *, path: str, last_seq: int = 0, start: int = 0
) -> Scanner:
    """A scanner over the records of `file` from `start` (default: the first record) to `end`."""
    begin = max(start, fmt.data_offset)
    scanner: Scanner
    if fmt.checksummed:
        scanner = V3Scanner(file, begin, end, path=path, kinds=fmt.kinds)
    else:
        scanner = LegacyScanner(file, begin, end, fields=3 if fmt.version == 2 else 2, path=path)
    scanner.last_seq = last_seq
    return scanner
