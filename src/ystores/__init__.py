"""ystores: persistence for Y-CRDT (Yjs) documents.

The public API is re-exported here; implementation lives in the submodules.
"""

from __future__ import annotations

from .base import BaseYStore, MetadataCallback
from .clock import Clock, system_clock
from .errors import (
    CorruptStoreError,
    ForeignSchemaError,
    InvalidDocumentNameError,
    InvalidStoreURLError,
    InvalidUpdateError,
    LegacyFormatError,
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
from .filestore.scanning import TornTail
from .filestore.store import FileYStore, TempFileYStore
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
from .records import Record, RecordKind
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
from .urls import open_store

__version__ = "0.1.0.dev0"

__all__ = [
    "AccessDenied",
    "BaseYStore",
    "Channel",
    "Clock",
    "CopyReport",
    "CorruptStoreError",
    "DocumentCopy",
    "DocumentInfo",
    "DocumentReport",
    "DocumentSummary",
    "FileYStore",
    "ForeignSchemaError",
    "InvalidDocumentNameError",
    "InvalidStoreURLError",
    "InvalidUpdateError",
    "LegacyFormatError",
    "MessageTooLargeError",
    "MetadataCallback",
    "MigrationReport",
    "PostgresYStore",
    "ProtocolError",
    "Record",
    "RecordKind",
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
