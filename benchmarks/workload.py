"""Benchmark workloads: real Yjs updates, generated once and cached on disk.

- `typing`: one update per keystroke into a Y.Text. The cursor jumps to a random
  position, types a run of 1 to 20 characters there, and now and then deletes a
  character, as a person editing a document does.
- `structured`: a map/array-heavy document: map keys set and overwritten, array
  items pushed and deleted, one update per change.

Every implementation is fed the same bytes. `expected_content` gives what a
document must contain after the updates, to check each store read back all of them.
"""

from __future__ import annotations

import random
import string
import struct
from pathlib import Path
from typing import Any

import pycrdt

CACHE = Path(__file__).resolve().parent / ".cache"
_LEN = struct.Struct("<I")


def _typing(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=seed + 1)
    text = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    length = cursor = run = 0
    alphabet = string.ascii_letters + "      .,"
    while len(updates) < count:
        if run == 0:
            cursor, run = rng.randint(0, length), rng.randint(1, 20)
        if length > 10 and rng.random() < 0.08:
            position = rng.randrange(length)
            del text[position]
            length -= 1
            cursor = min(cursor, length)
        else:
            text.insert(cursor, rng.choice(alphabet))
            cursor += 1
            length += 1
            run -= 1
    return updates


def _structured(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=seed + 2)
    cells = doc.get("cells", type=pycrdt.Array)
    meta = doc.get("meta", type=pycrdt.Map)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    while len(updates) < count:
        choice = rng.random()
        if choice < 0.4:
            meta[f"k{rng.randrange(200)}"] = rng.choice(
                [rng.random(), "v" * rng.randint(1, 9), True]
            )
        elif choice < 0.8 or len(cells) < 5:
            cells.append({"id": len(updates), "source": "x" * rng.randint(1, 30)})
        else:
            del cells[rng.randrange(len(cells))]
    return updates


GENERATORS = {"typing": _typing, "structured": _structured}


def load(kind: str, count: int, seed: int = 7) -> list[bytes]:
    """The cached workload, generated on first use."""
    path = CACHE / f"{kind}-{count}-{seed}.bin"
    if path.exists():
        data = path.read_bytes()
        updates, i = [], 0
        while i < len(data):
            (n,) = _LEN.unpack_from(data, i)
            updates.append(data[i + 4 : i + 4 + n])
            i += 4 + n
        return updates
    updates = GENERATORS[kind](count, seed)
    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(_LEN.pack(len(u)) + u for u in updates))
    tmp.replace(path)
    return updates


def content(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    """The roots the workloads use, as plain values."""
    return {
        "text": str(doc.get("text", type=pycrdt.Text)),
        "cells": doc.get("cells", type=pycrdt.Array).to_py(),
        "meta": doc.get("meta", type=pycrdt.Map).to_py(),
    }


def replay(updates: list[bytes]) -> pycrdt.Doc[Any]:
    """Apply updates to a new document with no store around it (the bare replay)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def expected_content(updates: list[bytes]) -> dict[str, Any]:
    """What a document holds after all of `updates`."""
    return content(replay(updates))
