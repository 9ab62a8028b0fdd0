"""A process that types and squashes in a loop, for the squash crash test (not a test module).

Usage: python squasher.py URL DOC

Loads document DOC from the store at URL (if any), then forever: types one
character into root text "t", writes the update, prints the text's new length
once `await write()` has returned (flushing), and squashes the document after
every few writes, so a SIGKILL lands at random points of the squash too.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import anyio
import pycrdt

from ystores import YDocNotFound, open_store

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


async def main(url: str, name: str) -> None:
    store = open_store(url, name)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    with contextlib.suppress(YDocNotFound):
        await store.apply_updates(doc)
    text = doc.get("t", type=pycrdt.Text)
    print("ready", flush=True)
    while True:
        state = doc.get_state()
        text += ALPHABET[len(text) % 26]
        await store.write(doc.get_update(state))
        print(len(text), flush=True)
        if len(text) % 3 == 0:
            await store.squash()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
