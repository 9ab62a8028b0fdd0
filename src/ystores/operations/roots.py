"""Which shared type each root of a document is, read from the structure of an update.

Yjs does not store a root's type: a client names it when it calls `getText`,
`getMap`... So the type is inferred from the items that belong to the root, in
the merged state of the document (one update):

1. an item carrying a map key (`parentSub`) makes the root a **Map**;
2. otherwise string, format or embed content makes it a **Text**;
3. otherwise an `XmlElement` or `XmlText` child makes it an **XmlFragment**;
4. otherwise (JSON values, binaries, nested types, only deleted content) it is an **Array**.

An item names its parent only when it has no origin; an item with an origin
belongs to its origin's parent (Yjs' own rule), so parents are resolved through
origins. Items whose origin is not in the update (garbage-collected, or pending
on a missing update) cannot be placed and are left out, and a root that holds
no item at all (created empty, or emptied and garbage-collected) is not seen.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..records import decode_varuint

__all__ = ["infer_root_types"]

_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC, _SKIP = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
)  # fmt: skip
_XML_ELEMENT, _XML_TEXT, _XML_HOOK = 3, 6, 5
_TEXT_CONTENT = (_STRING, _EMBED, _FORMAT)


@dataclass
class _Item:
    client: int
    clock: int
    length: int
    origin: tuple[int, int] | None
    right: tuple[int, int] | None
    parent: str | tuple[int, int] | None
    keyed: bool
    content: int
    type_ref: int | None


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value, self.pos = decode_varuint(self.data, self.pos)
        return value

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def skip(self, count: int) -> None:
        if self.pos + count > len(self.data):
            raise IndexError("the update ends inside a field")
        self.pos += count

    def buffer(self) -> bytes:
        length = self.uint()
        start = self.pos
        self.skip(length)
        return self.data[start : self.pos]

    def skip_any(self) -> None:
        kind = self.byte()
        if kind in (127, 126, 121, 120):
            return
        if kind == 125:
            self.uint()
        elif kind == 124:
            self.skip(4)
        elif kind in (123, 122):
            self.skip(8)
        elif kind in (119, 116):
            self.buffer()
        elif kind == 118:
            for _ in range(self.uint()):
                self.buffer()
                self.skip_any()
        elif kind == 117:
            for _ in range(self.uint()):
                self.skip_any()
        else:
            raise ValueError(f"unknown lib0 'any' type {kind}")


def _content(reader: _Reader, ref: int) -> tuple[int, int | None]:
    """Skip an item's content; return its length in clock units and its type ref."""
    if ref in (_DELETED, _JSON, _ANY):
        count = reader.uint()
        for _ in range(count if ref != _DELETED else 0):
            reader.buffer() if ref == _JSON else reader.skip_any()
        return count, None
    if ref == _STRING:
        return len(reader.buffer().decode("utf-8").encode("utf-16-le")) // 2, None
    if ref in (_BINARY, _EMBED):
        reader.buffer()
    elif ref == _FORMAT:
        reader.buffer()
        reader.buffer()
    elif ref == _TYPE:
        type_ref = reader.uint()
        if type_ref in (_XML_ELEMENT, _XML_HOOK):
            reader.buffer()
        return 1, type_ref
    elif ref == _DOC:
        reader.buffer()
        reader.skip_any()
    else:
        raise ValueError(f"unknown content type {ref}")
    return 1, None


def _items(update: bytes) -> list[_Item]:
    reader = _Reader(update)
    items: list[_Item] = []
    for _ in range(reader.uint()):
        count, client, clock = reader.uint(), reader.uint(), reader.uint()
        for _ in range(count):
            info = reader.byte()
            ref = info & 0x1F
            if ref in (_GC, _SKIP):
                clock += reader.uint()
                continue
            origin = (reader.uint(), reader.uint()) if info & 0x80 else None
            right = (reader.uint(), reader.uint()) if info & 0x40 else None
            parent: str | tuple[int, int] | None = None
            keyed = False
            if not info & 0xC0:
                if reader.uint() == 1:
                    parent = reader.buffer().decode("utf-8")
                else:
                    parent = (reader.uint(), reader.uint())
                if info & 0x20:
                    reader.buffer()
                    keyed = True
            length, type_ref = _content(reader, ref)
            items.append(_Item(client, clock, length, origin, right, parent, keyed, ref, type_ref))
            clock += length
    return items


class _Index:
    """Finds the item holding an id, and the root (and keyedness) an item belongs to."""

    def __init__(self, items: list[_Item]) -> None:
        self.by_client: dict[int, list[_Item]] = {}
        for item in items:
            self.by_client.setdefault(item.client, []).append(item)
        for spans in self.by_client.values():
            spans.sort(key=lambda item: item.clock)
        self.starts = {c: [i.clock for i in spans] for c, spans in self.by_client.items()}
        self.memo: dict[int, tuple[str | None, bool]] = {}

    def find(self, ref: tuple[int, int]) -> _Item | None:
        client, clock = ref
        spans = self.by_client.get(client)
        if not spans:
            return None
        index = bisect.bisect_right(self.starts[client], clock) - 1
        if index < 0:
            return None
        item = spans[index]
        return item if clock < item.clock + item.length else None

    def root_of(self, item: _Item) -> tuple[str | None, bool]:
        """The root name the item lives in directly (None: nested or unknown), and its keyedness."""
        chain: list[_Item] = []
        current: _Item | None = item
        result: tuple[str | None, bool] = (None, False)
        while current is not None:
            known = self.memo.get(id(current))
            if known is not None:
                result = known
                break
            if current.parent is not None or not (current.origin or current.right):
                parent = current.parent
                result = (parent if isinstance(parent, str) else None, current.keyed)
                chain.append(current)
                break
            chain.append(current)
            ref = current.origin or current.right
            assert ref is not None
            nxt = self.find(ref)
            if nxt is None or any(nxt is seen for seen in chain):
                result = (None, False)
                break
            current = nxt
        for seen in chain:
            self.memo[id(seen)] = result
        return result


def infer_root_types(update: bytes) -> dict[str, str]:
    """The type of every root with content in `update`, by the rule of the module docstring.

    Returns:
        Root name -> `Y.Map`, `Y.Text`, `Y.XmlFragment` or `Y.Array`, in the order
        the roots first appear.

    Raises:
        ValueError: The bytes are not a well-formed Yjs v1 update.
    """
    try:
        items = _items(update)
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a well-formed Yjs v1 update: {exc}") from exc
    index = _Index(items)
    seen: dict[str, set[str]] = {}
    for item in items:
        root, keyed = index.root_of(item)
        if root is None:
            continue
        marks = seen.setdefault(root, set())
        if keyed:
            marks.add("map")
        elif item.content in _TEXT_CONTENT:
            marks.add("text")
        elif item.type_ref in (_XML_ELEMENT, _XML_TEXT):
            marks.add("xml")
    return {root: _decide(marks) for root, marks in seen.items()}


def _decide(marks: set[str]) -> str:
    for mark, name in (("map", "Y.Map"), ("text", "Y.Text"), ("xml", "Y.XmlFragment")):
        if mark in marks:
            return name
    return "Y.Array"
