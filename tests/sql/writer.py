"""A writer process for the multi-process tests: N updates from its own client."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ydocs import typing_updates
from ystores import open_store

BATCH = 25


def updates_for(worker: int, count: int) -> list[bytes]:
    """The updates worker `worker` writes: `count` characters typed by client `worker + 1`."""
    return typing_updates(chr(ord("a") + worker) * count, client_id=worker + 1)


async def write(url: str, doc: str, worker: int, count: int) -> None:
    """Write the worker's updates, `BATCH` at a time concurrently (group commit)."""
    store = open_store(url, doc, metadata_callback=lambda: str(worker).encode())
    updates = updates_for(worker, count)
    for start in range(0, count, BATCH):
        await asyncio.gather(*(store.write(u) for u in updates[start : start + BATCH]))
    await store.aclose()


def main(url: str, doc: str, worker: int, count: int) -> None:
    """Process entry point."""
    asyncio.run(write(url, doc, worker, count))
