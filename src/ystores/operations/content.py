"""A document's content: each root with its type and value, as Python data or JSON.

A root's type is not stored in Yjs; it is inferred from the update structure
(see `ystores.operations.roots` for the rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pycrdt

from .. import crdt
from ..errors import InvalidUpdateError, YDocNotFound
from ..records import Record
from .roots import infer_root_types
from .sources import ScanState, Source, open_source

__all__ = [
    "RootContent",
    "content_as_json",
    "content_from_json",
    "describe_update",
    "document_content",
    "document_state",
    "merged_state",
]

_TYPES: dict[str, type[Any]] = {
    "Y.Text": pycrdt.Text,
    "Y.Map": pycrdt.Map,
    "Y.Array": pycrdt.Array,
    "Y.XmlFragment": pycrdt.XmlFragment,
}


@dataclass(frozen=True)
class RootContent:
    """One root of a document.

    Attributes:
        type: `Y.Text`, `Y.Map`, `Y.Array` or `Y.XmlFragment` (inferred).
        value: A string (text, and XML as markup), a dict (map) or a list (array).
    """

    type: str
    value: Any


async def merged_state(source: Source, name: str) -> tuple[bytes, float]:
    """A document's records merged into one update, streaming, and its last timestamp.

    Raises:
        YDocNotFound: The source holds no record for the document.
        InvalidUpdateError: A stored update does not decode or cannot be applied
            (the message names the record by its seq).
        StoreFormatError: The document's data is damaged.
    """
    state: bytes | None = None
    last: Record | None = None
    async for batch in source.batches(name, ScanState()):
        if batch:
            state = _merge(name, state, batch)
            last = batch[-1]
    extra = await source.trailing(name, last)
    if extra is not None and state is not None:
        state, last = _merge(name, state, [extra]), extra
    if state is None or last is None:
        raise YDocNotFound(f"{source.location} holds no document named {name!r}.")
    return state, last.timestamp


def _merge(name: str, state: bytes | None, batch: list[Record]) -> bytes:
    """`state` with the batch's updates merged in; a failing record is named by its seq."""
    updates = [record.update for record in batch]
    try:
        return crdt.merge_updates(updates if state is None else [state, *updates])
    except InvalidUpdateError as exc:
        raise InvalidUpdateError(
            f"Document {name!r}: {_culprit(state, batch) or 'an update'} cannot be applied "
            f"({exc}); restore it from a backup, or export the records before it."
        ) from exc


def _culprit(state: bytes | None, batch: list[Record]) -> str | None:
    """Which record of the batch the engine fails on, replayed one at a time."""
    replay = crdt.Replay()
    if state is not None:
        replay.apply(state)
    for record in batch:
        if replay.apply(record.update) is not None:
            return f"the record with seq {record.seq}"
    return None


async def document_state(target: str, doc: str) -> bytes:
    """The document's whole state as one Yjs v1 update (loadable by any Yjs client).

    Reads the document's records in batches: memory holds one batch and the state.

    Raises:
        YDocNotFound: The store holds no such document.
        InvalidUpdateError: A stored update does not decode.
        YStoreError: The store cannot be read.
    """
    source = open_source(target)
    try:
        if doc not in await source.names():
            raise YDocNotFound(f"{target} holds no document named {doc!r}.")
        state, _last = await merged_state(source, doc)
    finally:
        await source.aclose()
    return state


def describe_update(update: bytes) -> dict[str, RootContent]:
    """The roots of the document an update (a whole state) makes, with types and values.

    Raises:
        InvalidUpdateError: The update does not decode.
    """
    try:
        types = infer_root_types(update)
    except ValueError as exc:
        raise InvalidUpdateError(f"The document's state does not decode: {exc}.") from exc
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    crdt.apply_update(doc, update)
    with crdt.engine_call("The document's content could not be read"):
        return {name: _root(doc, name, kind) for name, kind in sorted(types.items())}


def _root(doc: pycrdt.Doc[Any], name: str, kind: str) -> RootContent:
    root = doc.get(name, type=_TYPES[kind])
    if isinstance(root, pycrdt.Text | pycrdt.XmlFragment):
        return RootContent(kind, str(root))
    return RootContent(kind, root.to_py())


async def document_content(target: str, doc: str) -> dict[str, RootContent]:
    """The document's roots with their types and values.

    Raises:
        YDocNotFound: The store holds no such document.
        InvalidUpdateError: A stored update does not decode.
        YStoreError: The store cannot be read.
    """
    return describe_update(await document_state(target, doc))


def content_as_json(content: dict[str, RootContent]) -> dict[str, Any]:
    """`{root: {"type": ..., "value": ...}}`, ready for `json.dumps`."""
    return {name: {"type": root.type, "value": root.value} for name, root in content.items()}


def content_from_json(data: Any) -> bytes:
    """A Yjs update that creates the roots described by JSON content.

    Accepts what `content_as_json` gives (`{root: {"type": "Y.Text", "value": "..."}}`).
    Text, Map and Array roots map cleanly; XML does not (its markup would have to
    be parsed back into elements) and is refused.

    Raises:
        InvalidUpdateError: The data is not such a mapping, or holds an XML root.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidUpdateError(f"The content is not JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise InvalidUpdateError(
            'JSON content must be an object {"root": {"type": "Y.Text", "value": "..."}}.'
        )
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    with doc.transaction():
        for name, entry in data.items():
            if not isinstance(entry, dict) or "type" not in entry or "value" not in entry:
                raise InvalidUpdateError(
                    f'The root {name!r} must be {{"type": "Y.Text|Y.Map|Y.Array", "value": ...}}.'
                )
            kind, value = entry["type"], entry["value"]
            if kind == "Y.Text" and isinstance(value, str):
                doc[name] = pycrdt.Text(value)
            elif kind == "Y.Map" and isinstance(value, dict):
                doc[name] = pycrdt.Map(value)
            elif kind == "Y.Array" and isinstance(value, list):
                doc[name] = pycrdt.Array(value)
            else:
                raise InvalidUpdateError(
                    f"The root {name!r} of type {kind!r} with a {type(value).__name__} value "
                    "cannot be imported from JSON: only Y.Text (a string), Y.Map (an object) "
                    "and Y.Array (a list) can; import a Yjs update instead."
                )
    return doc.get_update()
