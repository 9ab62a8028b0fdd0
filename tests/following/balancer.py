"""A tiny TCP load balancer for the tests: each connection goes to the first live backend."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from room.kit import free_port, wait_for_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(port: int, backends: list[int], stop: asyncio.Event) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        for backend in backends:  # fail over in order, as a health-checking balancer would
            try:
                server_r, server_w = await asyncio.open_connection("127.0.0.1", backend)
            except OSError:
                continue
            await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
            return
        client_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await stop.wait()


@contextmanager
def balancer(backends: list[int]) -> Iterator[int]:
    """A balancer on a free port (yielded), run in a thread, failing over in `backends` order."""
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(_serve(port, backends, stop)), daemon=True
    )
    thread.start()
    try:
        wait_for_port(port)
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
