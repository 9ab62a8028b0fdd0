"""Bounded waits shared by the fault tests (generous limits: the machine may be busy)."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from room.kit import MemoryChannel

WAIT = 30.0


async def until(condition: Callable[[], bool], limit: float = WAIT) -> None:
    """Poll `condition` until it holds; fail after `limit` seconds."""
    with anyio.fail_after(limit):
        while not condition():
            await anyio.sleep(0.02)


async def closed(channel: MemoryChannel) -> tuple[int, str]:
    """The close code and reason the room gave `channel` (waits for the close)."""
    with anyio.fail_after(WAIT):
        await channel.closed_event.wait()
    assert channel.closed is not None
    return channel.closed
