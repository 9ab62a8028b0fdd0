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
from .records import Record, RecordKind
from .sql import PostgresYStore, SQLiteYStore, SQLYStore
from .urls import open_store

__version__ = "0.1.0.dev0"

__all__ = [
    "BaseYStore",
    "Clock",
    "CorruptStoreError",
    "FileYStore",
    "ForeignSchemaError",
    "InvalidDocumentNameError",
    "InvalidStoreURLError",
    "InvalidUpdateError",
    "LegacyFormatError",
    "MetadataCallback",
    "PostgresYStore",
    "Record",
    "RecordKind",
    "SQLYStore",
    "SQLiteYStore",
    "SchemaError",
    "SchemaOutdatedError",
    "StoreConnectionError",
    "StoreDatabaseError",
    "StoreFormatError",
    "StoreIOError",
    "StoreStateError",
    "TempFileYStore",
    "TornTail",
    "UnknownFormatError",
    "YDocNotFound",
    "YStoreError",
    "open_store",
    "system_clock",
]
