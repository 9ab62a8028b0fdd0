"""Poisoned updates: bytes that decode as Yjs updates but make the CRDT engine fail or panic."""

from __future__ import annotations

from typing import Any

import pycrdt

ISSUE_UPDATE = bytes.fromhex("01010105286e6b30017c0000dd0000")
"""The 15 bytes from the issue: they decode, and were reported to make pycrdt panic."""

POISON = bytes.fromhex("010105280101050131017c3f000000")
"""Decodes, applies to an empty document (it waits for client 5's clock 40), and makes
pycrdt panic (`pyo3_runtime.PanicException`) once client 5 has 40 structs: found by
mutating real updates."""

POISONED_CLIENT = 5


def victim_state(text: str = "x" * 60) -> bytes:
    """An update from client 5 with enough structs for `POISON` to integrate (and panic)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=POISONED_CLIENT)
    doc.get("text", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


def text_of(update: bytes) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    return str(doc.get("text", type=pycrdt.Text))
