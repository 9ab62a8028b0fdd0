"""The ystores exception tree.

Every error ystores raises on purpose derives from `YStoreError`, so callers can
catch one class. Messages are full sentences that name the cause and, where there
is one, the fix.

```
YStoreError
├── YDocNotFound              the document has no records
├── InvalidUpdateError        bytes given to write() are not a Yjs v1 update
├── InvalidDocumentNameError  a document name that would escape the store's root
├── StoreStateError           lifecycle misuse (also a RuntimeError, as before)
├── StoreIOError              the operating system refused a read or a write
└── StoreFormatError          what is stored cannot be used as it is
    ├── UnknownFormatError    a file in none of the known formats
    ├── CorruptStoreError     checksum mismatch or broken framing before the end
    └── LegacyFormatError     an older format that must be migrated before writing
```
"""

from __future__ import annotations

__all__ = [
    "CorruptStoreError",
    "InvalidDocumentNameError",
    "InvalidUpdateError",
    "LegacyFormatError",
    "StoreFormatError",
    "StoreIOError",
    "StoreStateError",
    "UnknownFormatError",
    "YDocNotFound",
    "YStoreError",
]


class YStoreError(Exception):
    """Base class of every error raised by ystores."""


class YDocNotFound(YStoreError):
    """The document has no records in the store.

    Raised only when the store is healthy and simply holds nothing for the
    document; a damaged store raises a `StoreFormatError` instead.
    """


class InvalidUpdateError(YStoreError, ValueError):
    """The bytes given to `write()` are not a decodable Yjs v1 update."""


class InvalidDocumentNameError(YStoreError, ValueError):
    """A document name is empty, absolute, contains NUL or would escape the root."""


class StoreStateError(YStoreError, RuntimeError):
    """A lifecycle call that does not fit the store's state (e.g. stop before start)."""


class StoreIOError(YStoreError, OSError):
    """The operating system refused a read or a write (disk full, permissions...)."""


class StoreFormatError(YStoreError):
    """What is stored cannot be used as it is.

    Attributes:
        path: The file or database concerned, when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnknownFormatError(StoreFormatError):
    """A file that is in none of the formats ystores knows."""


class CorruptStoreError(StoreFormatError):
    """Stored records fail their checksum or framing somewhere before the end.

    Attributes:
        offset: Byte offset of the first bad record, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None) -> None:
        super().__init__(message, path=path)
        self.offset = offset


class LegacyFormatError(StoreFormatError):
    """A store in an older format: readable, but it must be migrated before writing."""
