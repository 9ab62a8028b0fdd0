"""A writer process for the crash and multi-process tests (not a test module).

Usage: python writer.py PATH NAME COUNT FSYNC [TASKS]

Appends COUNT updates (0: until killed) to the FileYStore at PATH (opened with
upgrade=True: a legacy file is rewritten to version 3 first) from each of
TASKS concurrent tasks (default 1) sharing one store, so their writes are group
committed. Task t's writer is named NAME (one task) or NAME.t; its update i types
one character into root text "t" of its own document (client id from the writer
name), with metadata b"WRITER:i". Prints "ready" once the store is open, waits
for a line on stdin (the go signal), then prints "WRITER:i" after each
`await write()` returns, flushing every line, so the parent knows which writes
were acknowledged.
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


async def main(path: str, name: str, count: int, fsync: bool, tasks: int) -> None:
    metadata = b""
    store = FileYStore(path, fsync=fsync, upgrade=True, metadata_callback=lambda: metadata)

    async def writer(writer_name: str) -> None:
        nonlocal metadata
        doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id(writer_name))
        text = doc.get("t", type=pycrdt.Text)
        index = 0
        while count == 0 or index < count:
            state = doc.get_state()
            text += "abcdefghij"[index % 10]
            # write() calls the metadata callback before its first suspension point
            metadata = f"{writer_name}:{index}".encode()
            await store.write(doc.get_update(state))
            print(f"{writer_name}:{index}", flush=True)
            index += 1

    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)
    async with anyio.create_task_group() as tg:
        for t in range(tasks):
            tg.start_soon(writer, name if tasks == 1 else f"{name}.{t}")
    await store.aclose()


if __name__ == "__main__":
    tasks = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", tasks)
