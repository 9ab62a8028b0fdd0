"""Reverting a document's content to an earlier state with one new update.

A restore never rewrites history: it appends one update, made by a new client,
whose operations turn the current content into the old content. Clients that
hold the current document apply it like any edit, and edits made concurrently
by others still merge (CRDT operations, not a replacement of the document).

The operations are computed root by root, recursively:

- Text and XmlText: the characters that differ (a diff of the strings, after
  the common prefix and suffix), then formatting and embeds if they still differ;
- Map: keys deleted, set, or synced in place when both sides hold a shared type
  of the same kind;
- Array and XML children: a diff of the items by content; unchanged items are
  kept, replaced shared types of the same kind are synced in place, others are
  deleted and inserted afresh;
- XmlElement: attributes set or removed, children as above.

A root that exists now but not in the old state is emptied (Yjs cannot remove a root).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pycrdt

from .. import crdt
from ..errors import InvalidUpdateError
from ..operations.roots import infer_root_types
from .diffing import opcodes

__all__ = ["revert_update"]

_ROOT_TYPES: dict[str, type[Any]] = {
    "Y.Text": pycrdt.Text,
    "Y.Map": pycrdt.Map,
    "Y.Array": pycrdt.Array,
    "Y.XmlFragment": pycrdt.XmlFragment,
}
_FALLBACK = "Y.Array"  # what `infer_root_types` says of a root holding only deleted items


def revert_update(current: bytes, old: bytes) -> bytes | None:
    """The update that, applied after `current`, makes every root's content that of `old`.

    Args:
        current: The document's state now (one merged update).
        old: The state to return to (one merged update, e.g. from `state_at`).

    Returns:
        One Yjs v1 update by a new client, or None when the contents are already equal.

    Raises:
        InvalidUpdateError: A state does not decode or cannot be applied.
    """
    kinds = _root_kinds(current, old)
    before = _load(old)
    doc = _load(current, client_id=_fresh_client(old, current))
    changes: list[bytes] = []
    subscription = doc.observe(lambda event: changes.append(event.update))
    try:
        with (
            crdt.engine_call("The revert of the document could not be computed"),
            doc.transaction(),
        ):
            for name, kind in sorted(kinds.items()):
                cls = _ROOT_TYPES[kind]
                _sync(doc.get(name, type=cls), before.get(name, type=cls))
    finally:
        doc.unobserve(subscription)
    update = crdt.merge_updates(changes) if changes else None
    if update is None or not _writes_anything(update):
        return None
    return update


def _root_kinds(current: bytes, old: bytes) -> dict[str, str]:
    """Each root's type: seen in the current state unless only the old one tells it."""
    try:
        now, then = infer_root_types(current), infer_root_types(old)
    except ValueError as exc:
        raise InvalidUpdateError(f"A state of the document does not decode: {exc}.") from exc
    kinds = dict(then)
    for name, kind in now.items():
        if name not in kinds or kinds[name] == _FALLBACK:
            kinds[name] = kind
    return kinds


def _load(update: bytes, *, client_id: int | None = None) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc() if client_id is None else pycrdt.Doc(client_id=client_id)
    crdt.apply_update(doc, update)
    return doc


def _fresh_client(*states: bytes) -> int:
    """A client id no state has used, so the revert's items never clash with theirs."""
    used = {client for state in states for client in _clients(pycrdt.get_state(state))}
    while True:
        candidate = random.getrandbits(31) + 1
        if candidate not in used:
            return candidate


def _clients(state_vector: bytes) -> list[int]:
    from ..records import decode_varuint

    count, offset = decode_varuint(state_vector)
    clients = []
    for _ in range(count):
        client, offset = decode_varuint(state_vector, offset)
        _clock, offset = decode_varuint(state_vector, offset)
        clients.append(client)
    return clients


def _writes_anything(update: bytes) -> bool:
    """Whether an update holds an item or a deletion (an empty one is `0x00 0x00`)."""
    return update not in (b"\x00\x00", b"")


# -- syncing one shared type onto another ------------------------------------


def _sync(target: Any, source: Any) -> None:
    """Make `target` (in the current document) hold what `source` (old document) holds."""
    if isinstance(target, pycrdt.XmlText):
        _sync_attributes(target, source)
        _sync_text(target, source)
    elif isinstance(target, pycrdt.Text):
        _sync_text(target, source)
    elif isinstance(target, pycrdt.Map):
        _sync_map(target, source)
    elif isinstance(target, pycrdt.Array):
        _sync_sequence(target, list(source), _array_insert)
    elif isinstance(target, pycrdt.XmlElement):
        _sync_attributes(target, source)
        _sync_sequence(target.children, list(source.children), _xml_insert)
    elif isinstance(target, pycrdt.XmlFragment):
        _sync_sequence(target.children, list(source.children), _xml_insert)


def _sync_text(target: Any, source: Any) -> None:
    old = str(source)
    now = str(target)
    if now != old:
        at = _offsets(now, len(target))
        for tag, i1, i2, j1, j2 in reversed(opcodes(now, old)):
            if tag in ("replace", "delete"):
                del target[at(i1) : at(i2)]
            if tag in ("replace", "insert"):
                target.insert(at(i1), old[j1:j2])
    if _chunks(target) != _chunks(source):
        # Formatting or embeds differ: rewrite the text as its chunks (rare: rich text).
        chunks = source.diff()
        names = {name for _c, found in [*chunks, *target.diff()] for name in found or {}}
        del target[0 : len(target)]
        for content, found in chunks:
            # Every attribute named, None where unset: no chunk inherits its neighbour's.
            attributes = {name: (found or {}).get(name) for name in names} or None
            if isinstance(content, str):
                target.insert(len(target), content, attributes)
            else:
                target.insert_embed(len(target), content, attributes)


def _offsets(text: str, length: int) -> Callable[[int], int]:
    """Maps a character index of `text` to the shared text's index (UTF-8 bytes in pycrdt)."""
    if length == len(text):
        return lambda index: index
    sizes = [0]
    for char in text:
        sizes.append(sizes[-1] + len(char.encode("utf-8")))
    return sizes.__getitem__


def _chunks(text: Any) -> str:
    return _canonical([[content, attributes] for content, attributes in text.diff()])


def _sync_map(target: Any, source: Any) -> None:
    old = {key: source[key] for key in _keys(source)}
    for key in _keys(target):
        if key not in old:
            del target[key]
    for key, value in old.items():
        here = target.get(key, _MISSING)
        if _is_shared(value):
            if here is not _MISSING and _same_kind(here, value):
                _sync(here, value)
            else:
                target[key] = _prelim(value)
                _sync(target[key], value)
        elif here is _MISSING or _is_shared(here) or _canonical(here) != _canonical(value):
            target[key] = value


def _sync_attributes(target: Any, source: Any) -> None:
    old = _attributes(source)
    for key in _attributes(target):
        if key not in old:
            del target.attributes[key]
    for key, value in old.items():
        if key not in target.attributes or _canonical(target.attributes[key]) != _canonical(value):
            target.attributes[key] = value


def _attributes(value: Any) -> dict[str, Any]:
    attributes: Any = value.attributes  # pycrdt types its iterator as a plain Iterable
    return dict(attributes)


def _keys(value: Any) -> list[str]:
    keys: Any = value.keys()
    return list(keys)


def _array_insert(sequence: Any, index: int, value: Any) -> None:
    if _is_shared(value):
        sequence.insert(index, _prelim(value))
        _sync(sequence[index], value)
    else:
        sequence.insert(index, value)


def _xml_insert(children: Any, index: int, value: Any) -> None:
    children.insert(index, _prelim(value))
    _sync(children[index], value)


def _sync_sequence(target: Any, old: list[Any], insert: Callable[[Any, int, Any], None]) -> None:
    """Make a sequence (Array, XML children) hold `old`'s items, keeping the equal ones."""
    now = [target[i] for i in range(len(target))]
    now_keys = [_fingerprint(item) for item in now]
    old_keys = [_fingerprint(item) for item in old]
    if now_keys == old_keys:
        return
    for tag, i1, i2, j1, j2 in reversed(opcodes(now_keys, old_keys)):
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        # Pairs of shared types of one kind are synced in place (kept, not recreated).
        in_place = [k for k in range(paired) if _same_kind(now[i1 + k], old[j1 + k])]
        if len(in_place) == paired and paired:
            for k in range(paired):
                _sync(now[i1 + k], old[j1 + k])
            i1, j1 = i1 + paired, j1 + paired
        if i2 > i1:
            del target[i1:i2]
        for offset, value in enumerate(old[j1:j2]):
            insert(target, i1 + offset, value)


# -- what a value is ------------------------------------------------------------

_MISSING = object()
_SHARED = (
    pycrdt.XmlText,
    pycrdt.Text,
    pycrdt.Map,
    pycrdt.Array,
    pycrdt.XmlElement,
    pycrdt.XmlFragment,
)


def _is_shared(value: Any) -> bool:
    return isinstance(value, _SHARED)


def _kind(value: Any) -> Any:
    for cls in _SHARED:  # XmlText before Text: the first match is the precise kind
        if isinstance(value, cls):
            return (cls, value.tag) if isinstance(value, pycrdt.XmlElement) else cls
    return None


def _same_kind(a: Any, b: Any) -> bool:
    return _is_shared(a) and _kind(a) == _kind(b)


def _prelim(value: Any) -> Any:
    """An empty shared type of `value`'s kind, to insert and then sync."""
    if isinstance(value, pycrdt.XmlText):
        return pycrdt.XmlText()
    if isinstance(value, pycrdt.Text):
        return pycrdt.Text()
    if isinstance(value, pycrdt.Map):
        return pycrdt.Map()
    if isinstance(value, pycrdt.Array):
        return pycrdt.Array()
    if isinstance(value, pycrdt.XmlElement):
        return pycrdt.XmlElement(value.tag)
    return pycrdt.XmlFragment()


def _fingerprint(value: Any) -> str:
    """A string equal for two values exactly when their contents are equal."""
    return _canonical(_shape(value))


def _shape(value: Any) -> Any:
    if isinstance(value, pycrdt.XmlText):
        return ["XmlText", _attributes(value), list(map(list, value.diff()))]
    if isinstance(value, pycrdt.Text):
        return ["Text", list(map(list, value.diff()))]
    if isinstance(value, pycrdt.Map):
        return ["Map", {key: _shape(value[key]) for key in _keys(value)}]
    if isinstance(value, pycrdt.Array):
        return ["Array", [_shape(item) for item in value]]
    if isinstance(value, pycrdt.XmlElement):
        children = [_shape(child) for child in value.children]
        return ["XmlElement", value.tag, _attributes(value), children]
    if isinstance(value, pycrdt.XmlFragment):
        return ["XmlFragment", [_shape(child) for child in value.children]]
    return ["value", value]


def _canonical(value: Any) -> str:
    """JSON with sorted keys, telling `1`, `1.0` and `true` apart (they differ in Yjs)."""
    return json.dumps(_tagged(value), sort_keys=True, ensure_ascii=False, default=_other)


def _tagged(value: Any) -> Any:
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, dict):
        return {str(key): _tagged(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    return value


def _other(value: Any) -> str:
    if isinstance(value, bytes):
        return "bytes:" + value.hex()
    if _is_shared(value):
        return _fingerprint(value)
    return repr(value)
