"""Real Yjs updates for tests, made with y-py and pycrdt."""

from __future__ import annotations

from typing import Any

import pycrdt
import y_py as Y


def transaction(doc: Any) -> Any:
    """A y-py transaction (typed loosely: y-py's stubs mistype it as a context manager)."""
    return doc.begin_transaction()


def typing_updates(text: str, *, client_id: int | None = None) -> list[bytes]:
    """One y-py update per character typed at the end of the root text "t"."""
    doc = Y.YDoc(client_id) if client_id is not None else Y.YDoc()
    root = doc.get_text("t")
    updates: list[bytes] = []
    doc.observe_after_transaction(lambda event: updates.append(bytes(event.get_update())))
    for i, char in enumerate(text):
        with transaction(doc) as txn:
            root.insert(txn, i, char)
    return updates


def text_of(updates: list[bytes], name: str = "t") -> str:
    """The content of root text `name` after applying `updates` to a pycrdt document."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get(name, type=pycrdt.Text))
