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

from ..yupdate import Item as _Item
from ..yupdate import update_items

__all__ = ["infer_root_types"]

_STRING, _EMBED, _FORMAT, _TYPE = 4, 5, 6, 7
_XML_ELEMENT, _XML_TEXT = 3, 6
_TEXT_CONTENT = (_STRING, _EMBED, _FORMAT)


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
        items = update_items(update)
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
