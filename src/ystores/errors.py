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
├── InvalidStoreURLError      a store URL with an unknown scheme or a malformed body
├── StoreConnectionError      a database that cannot be reached or refuses the login
├── StoreDatabaseError        a database that refused a statement (disk full, lost link...)
├── ProtocolError             a websocket message that breaks the y-protocols format
│   └── MessageTooLargeError  a message over the room's size limit
├── HistoryNotKeptError       a time older than the history the store still keeps
├── AccessDenied              an authentication hook refusing a client (with a close code)
├── SchemaError               a database whose schema ystores cannot use as it is
│   ├── SchemaOutdatedError   behind the current schema: run `ystore migrate URL`
│   └── ForeignSchemaError    tables with ystores' names that ystores did not make
└── StoreFormatError          what is stored cannot be used as it is
    ├── UnknownFormatError    a file in none of the known formats
    ├── CorruptStoreError     checksum mismatch or broken framing before the end
    └── LegacyFormatError     an older format that must be migrated before writing
```
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CorruptStoreError",
    "ForeignSchemaError",
    "HistoryNotKeptError",
    "InvalidDocumentNameError",
    "InvalidStoreURLError",
    "InvalidUpdateError",
    "LegacyFormatError",
    "MessageTooLargeError",
    "MissingExtraError",
    "ProtocolError",
    "SchemaError",
    "SchemaOutdatedError",
    "StoreConnectionError",
    "StoreDatabaseError",
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


class HistoryNotKeptError(YStoreError, LookupError):
    """The history asked for is older than what the store keeps (retention or a squash removed it).

    Attributes:
        oldest: The earliest time (seconds since the epoch) the store can still
            show, or None when it keeps no history at all.
    """

    def __init__(self, message: str, *, oldest: float | None = None) -> None:
        super().__init__(message)
        self.oldest = oldest


class LegacyFormatError(StoreFormatError):
    """A store in an older format: readable, but it must be migrated before writing."""


class MissingExtraError(YStoreError, ImportError):
    """A feature needs packages of an extra that is not installed.

    The message names the extra and the `pip install` that adds it.

    Attributes:
        extra: The extra's name, such as `sqlite` or `server`.
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class InvalidStoreURLError(YStoreError, ValueError):
    """A store URL with an unknown scheme, or one whose body cannot be parsed."""


class StoreConnectionError(YStoreError, ConnectionError):
    """The database cannot be reached, or refuses the login (server down, bad password).

    Also raised when a database operation did not finish within its timeout.

    Attributes:
        url: The database URL, its password hidden.
        commit_unknown: A write's statement was sent but no answer came (a timeout
            or a connection lost mid-commit): whether it committed is not known
            yet. The store resolves it (see the SQL stores' "write outcomes").
            False means nothing of the failed write was stored.
    """

    def __init__(
        self, message: str, *, url: str | None = None, commit_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.url = url
        self.commit_unknown = commit_unknown


class StoreDatabaseError(YStoreError):
    """The database refused a statement (disk full, connection lost mid-transaction...).

    Attributes:
        url: The database URL, its password hidden.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class SchemaError(YStoreError):
    """The database's schema is not one ystores can use as it is.

    Attributes:
        url: The database URL, its password hidden.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class SchemaOutdatedError(SchemaError):
    """The database's schema is behind this version of ystores (or has none yet).

    The message names the fix, `ystore migrate URL`; ystores never migrates a
    database behind its owner's back.
    """


class ForeignSchemaError(SchemaError):
    """The database holds tables with ystores' names that ystores did not create."""


class ProtocolError(YStoreError, ValueError):
    """A message that does not follow the y-protocols format (cut short, unknown type...)."""


class MessageTooLargeError(ProtocolError):
    """A client sent a message larger than the room's `max_message_size`."""


class AccessDenied(YStoreError):
    """Raised by an `authenticate` hook to refuse a client with a chosen close code and reason.

    Attributes:
        code: The websocket close code: 4401 (who are you?) by default, or 4403.
        reason: Sent to the client as the close reason.
    """

    def __init__(self, reason: str = "Unauthorized.", *, code: int = 4401) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
