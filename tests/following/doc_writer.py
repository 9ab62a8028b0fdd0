"""A writer process: `count` updates to each of several documents, all documents at once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ydocs import typing_updates
from ystores import open_store


async def write(url: str, docs: list[str], count: int) -> None:
    """Write one update to every document at a time (concurrently), `count` times."""
    stores = [open_store(url, doc) for doc in docs]
    updates = typing_updates("x" * count)
    for update in updates:
        await asyncio.gather(*(store.write(update) for store in stores))
    for store in stores:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])))
