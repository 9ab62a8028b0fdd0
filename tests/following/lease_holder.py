"""A process that takes a document's compaction lease, says so, and holds it until killed."""

from __future__ import annotations

import asyncio
import sys

from ystores import open_store


async def hold(url: str, doc: str) -> None:
    store = open_store(url, doc)
    async with store.compaction_lease() as held:
        print("held" if held else "refused", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1], sys.argv[2]))
