"""A writer process for the crash and multi-process tests (not a test module).

Usage: python writer.py PATH NAME COUNT FSYNC

Appends COUNT updates (0: until killed) to the FileYStore at PATH. Update i types
one character into root text "t" of a document whose client id comes from NAME,
with metadata b"NAME:i". Prints "ready" once the store is open, waits for a line
on stdin (the go signal), then prints "NAME:i" after each `await write()` returns,
flushing every line, so the parent knows which writes were acknowledged.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

import anyio
import pycrdt

from ystores import FileYStore


def client_id(name: str) -> int:
    """A stable client id per writer name (so no two writers share one)."""
    return zlib.crc32(name.encode()) & 0x3FFFFFFF or 1


async def main(path: str, name: str, count: int, fsync: bool) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id(name))
    text = doc.get("t", type=pycrdt.Text)
    index = 0
    store = FileYStore(path, fsync=fsync, metadata_callback=lambda: f"{name}:{index}".encode())
    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)
    while count == 0 or index < count:
        state = doc.get_state()
        text += "abcdefghij"[index % 10]
        await store.write(doc.get_update(state))
        print(f"{name}:{index}", flush=True)
        index += 1
    await store.aclose()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
