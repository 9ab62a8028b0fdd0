"""Exporting a document (one merged Yjs update, or its content as JSON) and importing one."""

from __future__ import annotations

import json
from pathlib import Path

from ..base import BaseYStore
from ..crdt import Replay, validate_update
from ..errors import InvalidUpdateError, StoreStateError, YDocNotFound, YStoreError
from ..filestore.store import FileYStore
from ..targets import resolve_target
from ..urls import open_store
from .content import content_as_json, content_from_json, describe_update, document_state
from .sources import ScanState, open_source

__all__ = ["export_document", "import_document"]


async def export_document(
    target: str, doc: str, *, format: str = "update", at: float | None = None
) -> bytes:
    """The document as bytes: its merged state as one Yjs v1 update, or its content as JSON.

    Args:
        target: The store (file, directory, SQLite file, database URL).
        doc: The document's name.
        format: `update` (loadable by any Yjs client with `Y.applyUpdate`) or
            `json` (`{root: {"type": ..., "value": ...}}`, UTF-8).
        at: The document as it was at this time (seconds since the epoch) instead
            of now: every record written by then (see `BaseYStore.state_at`).

    Raises:
        YDocNotFound: No such document.
        HistoryNotKeptError: `at` is older than the history kept.
        ValueError: An unknown format.
    """
    if format not in ("update", "json"):
        raise ValueError(f"Unknown export format {format!r}; use 'update' or 'json'.")
    if at is None:
        state = await document_state(target, doc)
    else:
        from .history import state_at_time

        state = await state_at_time(target, doc, at)
    if format == "update":
        return state
    content = content_as_json(describe_update(state))
    return (json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode()


def _decode_input(data: bytes) -> tuple[bytes, bool]:
    """The update to write, and whether it came from JSON content."""
    try:
        validate_update(data)
        return data, False
    except InvalidUpdateError as not_update:
        stripped = data.lstrip()
        if stripped[:1] != b"{":
            raise InvalidUpdateError(
                f"The input ({len(data)} bytes) is neither a Yjs v1 update nor JSON content; "
                "nothing was written."
            ) from not_update
        return content_from_json(data.decode("utf-8", "replace")), True


async def _check_against_content(target: str, doc: str, update: bytes) -> None:
    """Refuse an update the CRDT engine fails on once applied after the document's content.

    `write()` checks an update against an empty document only; some updates fail
    (even panic the engine) only against content. Importing is rare enough to
    afford loading the document first.
    """
    try:
        state = await document_state(target, doc)
    except (YDocNotFound, StoreStateError):
        return
    except YStoreError as exc:
        if not await _has_records(target, doc):
            return
        raise InvalidUpdateError(
            f"The document {doc!r} cannot be loaded ({exc}); nothing was written."
        ) from exc
    replay = Replay()
    replay.apply(state)
    failure = replay.apply(update)
    if failure is not None:
        raise InvalidUpdateError(
            f"The update makes the CRDT engine fail against the content of {doc!r} "
            f"({failure}); nothing was written."
        )


async def _has_records(target: str, doc: str) -> bool:
    try:
        source = open_source(target)
    except YStoreError:  # a store that cannot be read yet (a new one) holds nothing
        return False
    try:
        if doc not in await source.names():
            return False
        async for batch in source.batches(doc, ScanState()):
            if batch:
                return True
        return False
    finally:
        await source.aclose()


def _store_for(target: str, doc: str) -> BaseYStore:
    resolved = resolve_target(target)
    if resolved.kind == "file" and Path(resolved.location).exists():
        return FileYStore(resolved.location)
    if resolved.kind in ("file", "directory"):  # a new path becomes a directory, as for copy
        return FileYStore(doc, root=resolved.location)
    return open_store(resolved.location, doc)


async def import_document(target: str, doc: str, data: bytes) -> bool:
    """Append a Yjs update (or JSON content) to a document of a store.

    TARGET is a store (see `open_source`); an existing store file is that one
    document; a path that does not exist yet (and does not end in `.db`,
    `.sqlite`, `.sqlite3`) becomes a file store directory.

    A Yjs update is appended as one record, whatever the document holds (applying
    an update twice is harmless). JSON content (`{root: {"type", "value"}}`, as
    `export_document(format="json")` gives) is turned into an update made by a new
    client, which would duplicate text and arrays already there: it is accepted
    only for a document that has no records yet.

    Returns:
        Whether the input was JSON content.

    Raises:
        InvalidUpdateError: The input is neither an update nor usable JSON content.
        StoreStateError: JSON content for a document that already has records.
        LegacyFormatError: The target is a legacy file: migrate it first.
        SchemaOutdatedError: The target database needs `ystore migrate URL`.
    """
    update, from_json = _decode_input(data)
    if from_json and await _has_records(target, doc):
        raise StoreStateError(
            f"The document {doc!r} already has records: JSON content would duplicate its "
            "text and lists. Import a Yjs update instead (`ystore export --format update`)."
        )
    if not from_json:
        await _check_against_content(target, doc, update)
    store = _store_for(target, doc)
    try:
        await store.write(update)
    finally:
        await store.aclose()
    return from_json
