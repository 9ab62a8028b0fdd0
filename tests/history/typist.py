"""A process that types into one document until told to stop (for the crash tests; not a test).

Usage: python typist.py URL DOC STOPFILE

Types one character at a time into root text "t" (the alphabet, over and over),
writes each update and prints the text's new length once `await write()` has
returned. Once STOPFILE exists it closes the store and exits: every update it
wrote was acknowledged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from ystores import open_store

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


async def main(url: str, name: str, stop: Path) -> None:
    store = open_store(url, name)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    print("ready", flush=True)
    while not await anyio.Path(stop).exists():
        state = doc.get_state()
        text += ALPHABET[len(text) % 26]
        await store.write(doc.get_update(state))
        print(len(text), flush=True)
        await anyio.sleep(0.002)
    await store.aclose()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], Path(sys.argv[3]))
