"""A process that checkpoints and applies retention in a loop (for the crash tests; not a test).

Usage: python historian.py URL DOC

Forever, over document DOC: writes a checkpoint, packs what it covers into
small blocks and thins old checkpoints (stores that pack), then drops the
history older than a fraction of a second (a window retention policy) every
other round, now and then all of it (a squash); prints "ready" once, before
the first.
"""

from __future__ import annotations

import contextlib
import sys

import anyio

from ystores import YDocNotFound, open_store
from ystores.history import RetentionPolicy, ThinningPolicy


async def main(url: str, name: str) -> None:
    store = open_store(url, name)
    print("ready", flush=True)
    rounds = 0
    while True:
        rounds += 1
        try:
            await store.checkpoint()
            with contextlib.suppress(NotImplementedError):  # stores that do not pack
                await store.pack(
                    thinning=ThinningPolicy(keep_recent=1, spacing=40), block_records=16
                )
            policy = RetentionPolicy.none() if rounds % 7 == 0 else RetentionPolicy(window=0.2)
            if rounds % 2 == 0 or rounds % 7 == 0:
                await store.retain(policy)
        except YDocNotFound:
            pass
        await anyio.sleep(0.01)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
