"""Operating a store: inspect, list, export, import, copy and verify, on every backend.

The library side of the `ystore` commands. Read-only operations never change
what they read (see `sources`).
"""

from __future__ import annotations

from .content import RootContent, content_as_json, content_from_json, document_content
from .copying import CopyReport, DocumentCopy, copy_store
from .exporting import export_document, import_document
from .inspecting import DocumentReport, RecordInfo, StoreReport, inspect_store
from .listing import DocumentSummary, list_store
from .roots import infer_root_types
from .sources import open_source
from .verifying import Problem, Repair, VerifyReport, verify_store

__all__ = [
    "CopyReport",
    "DocumentCopy",
    "DocumentReport",
    "DocumentSummary",
    "Problem",
    "RecordInfo",
    "Repair",
    "RootContent",
    "StoreReport",
    "VerifyReport",
    "content_as_json",
    "content_from_json",
    "copy_store",
    "document_content",
    "export_document",
    "import_document",
    "infer_root_types",
    "inspect_store",
    "list_store",
    "open_source",
    "verify_store",
]
