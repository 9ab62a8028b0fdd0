"""A process that checkpoints and applies retention in a loop (for the crash tests; not a test).

Usage: python historian.py URL DOC

Forever, over document DOC: writes a checkpoint, then drops the history older
than a fraction of a second (a window retention policy), now and then all of
it (a squash); prints "ready" once, before the first.
"""

from __future__ import annotations

import sys

import anyio

from ystores import YDocNotFound, open_store
from ystores.history import RetentionPolicy


async def main(url: str, name: str) -> None:
    store = open_store(url, name)
    print("ready", flush=True)
    rounds = 0
    while True:
        rounds += 1
        try:
            await store.checkpoint()
            policy = RetentionPolicy.none() if rounds % 7 == 0 else RetentionPolicy(window=0.2)
            await store.retain(policy)
        except YDocNotFound:
            pass
        await anyio.sleep(0.01)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
