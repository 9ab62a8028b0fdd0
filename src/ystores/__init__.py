"""ystores: persistence for Y-CRDT (Yjs) documents.

The public API is re-exported here; implementation lives in the submodules.
Names are imported on first use, so `import ystores` stays fast and a backend's
dependencies load only when that backend is used (each is an extra: a missing
one raises `MissingExtraError` naming the `pip install` that adds it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptStoreError,
    ForeignSchemaError,
    HistoryNotKeptError,
    InvalidDocumentNameError,
    InvalidStoreURLError,
    InvalidUpdateError,
    LegacyFormatError,
    MissingExtraError,
    SchemaError,
    SchemaOutdatedError,
    StoreConnectionError,
    StoreDatabaseError,
    StoreFormatError,
    StoreIOError,
    StoreStateError,
    UnknownFormatError,
    YDocNotFound,
    YStoreError,
)

if TYPE_CHECKING:
    from .base import (
        BaseYStore,
        MetadataCallback,
    )
    from .clock import (
        Clock,
        system_clock,
    )
    from .filestore.scanning import (
        TornTail,
    )
    from .filestore.store import (
        FileYStore,
        TempFileYStore,
    )
    from .history import (
        CheckpointPolicy,
        RetentionPolicy,
    )
    from .operations import (
        CopyReport,
        DocumentCopy,
        DocumentReport,
        DocumentSummary,
        RootContent,
        StoreReport,
        VerifyReport,
        copy_store,
        document_content,
        export_document,
        import_document,
        inspect_store,
        list_store,
        verify_store,
    )
    from .records import (
        Record,
        RecordKind,
    )
    from .room import (
        AccessDenied,
        Channel,
        MessageTooLargeError,
        ProtocolError,
        RoomManager,
        YRoom,
        YStoreApp,
    )
    from .sql import (
        DocumentInfo,
        MigrationReport,
        PostgresYStore,
        SchemaReport,
        SQLiteYStore,
        SQLYStore,
        dispose_databases,
        list_documents,
        migrate_database,
        schema_status,
    )
    from .urls import (
        open_store,
    )

__version__ = "0.1.0.dev0"

# Where each lazily imported name lives.
_LAZY: dict[str, str] = {
    "BaseYStore": ".base",
    "MetadataCallback": ".base",
    "Clock": ".clock",
    "system_clock": ".clock",
    "TornTail": ".filestore.scanning",
    "FileYStore": ".filestore.store",
    "TempFileYStore": ".filestore.store",
    "CheckpointPolicy": ".history",
    "RetentionPolicy": ".history",
    "CopyReport": ".operations",
    "DocumentCopy": ".operations",
    "DocumentReport": ".operations",
    "DocumentSummary": ".operations",
    "RootContent": ".operations",
    "StoreReport": ".operations",
    "VerifyReport": ".operations",
    "copy_store": ".operations",
    "document_content": ".operations",
    "export_document": ".operations",
    "import_document": ".operations",
    "inspect_store": ".operations",
    "list_store": ".operations",
    "verify_store": ".operations",
    "Record": ".records",
    "RecordKind": ".records",
    "AccessDenied": ".room",
    "Channel": ".room",
    "MessageTooLargeError": ".room",
    "ProtocolError": ".room",
    "RoomManager": ".room",
    "YRoom": ".room",
    "YStoreApp": ".room",
    "DocumentInfo": ".sql",
    "MigrationReport": ".sql",
    "PostgresYStore": ".sql",
    "SQLYStore": ".sql",
    "SQLiteYStore": ".sql",
    "SchemaReport": ".sql",
    "dispose_databases": ".sql",
    "list_documents": ".sql",
    "migrate_database": ".sql",
    "schema_status": ".sql",
    "open_store": ".urls",
}


# Names whose backend is an extra: checked first, for an error naming the extra.
_EXTRA_OF = {
    "SQLiteYStore": ("sqlite", "SQLite stores"),
    "PostgresYStore": ("postgres", "Postgres stores"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ystores' has no attribute {name!r}")
    if name in _EXTRA_OF:
        from .extras import require

        require(*_EXTRA_OF[name])
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AccessDenied",
    "BaseYStore",
    "Channel",
    "CheckpointPolicy",
    "Clock",
    "CopyReport",
    "CorruptStoreError",
    "DocumentCopy",
    "DocumentInfo",
    "DocumentReport",
    "DocumentSummary",
    "FileYStore",
    "ForeignSchemaError",
    "HistoryNotKeptError",
    "InvalidDocumentNameError",
    "InvalidStoreURLError",
    "InvalidUpdateError",
    "LegacyFormatError",
    "MessageTooLargeError",
    "MetadataCallback",
    "MigrationReport",
    "MissingExtraError",
    "PostgresYStore",
    "ProtocolError",
    "Record",
    "RecordKind",
    "RetentionPolicy",
    "RoomManager",
    "RootContent",
    "SQLYStore",
    "SQLiteYStore",
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaReport",
    "StoreConnectionError",
    "StoreDatabaseError",
    "StoreFormatError",
    "StoreIOError",
    "StoreReport",
    "StoreStateError",
    "TempFileYStore",
    "TornTail",
    "UnknownFormatError",
    "VerifyReport",
    "YDocNotFound",
    "YRoom",
    "YStoreApp",
    "YStoreError",
    "copy_store",
    "dispose_databases",
    "document_content",
    "export_document",
    "import_document",
    "inspect_store",
    "list_documents",
    "list_store",
    "migrate_database",
    "open_store",
    "schema_status",
    "system_clock",
    "verify_store",
]
