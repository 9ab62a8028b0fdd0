"""A TCP proxy on 127.0.0.1 that can cut the network the way partitions do.

Put between a store and the real Postgres, it forwards bytes (`pass`), or:

- `blackhole`: accepts connections and forwards nothing either way (the bytes
  are lost, as on a partition that drops packets);
- `answers-lost`: forwards what the client sends, drops what the server answers
  (the statement runs and commits; the client never hears of it);
- `hold`: keeps what the client sends and delivers it late, when the network
  heals (a retransmission after the partition), dropping the server's answers;
- `reset`: aborts every connection (RST), and every new one at once.

A connection that lost bytes never forwards again (its stream is broken, as a
real one would be after its peer gave up); new connections do once healed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

MODES = ("pass", "blackhole", "answers-lost", "hold", "reset")


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    broken: bool = False
    held: list[bytes] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


class PartitionProxy:
    """A proxy to `host:port` listening on a free port of 127.0.0.1 (asyncio)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.mode = "pass"
        self.port = 0
        self.accepted = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> PartitionProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for link in list(self._links):
            link.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    def set(self, mode: str) -> None:
        """Change what the network does, for open connections and new ones."""
        assert mode in MODES, mode
        self.mode = mode
        if mode == "reset":
            for link in list(self._links):
                link.abort()

    def heal(self, *, release: bool = True) -> None:
        """Back to `pass`; `release` delivers what `hold` kept now (else see `release`)."""
        self.set("pass")
        if release:
            self.release()

    def release(self) -> int:
        """Deliver what `hold` kept to the server (late); return the bytes delivered."""
        delivered = 0
        for link in list(self._links):
            if link.held and link.server is not None:
                for chunk in link.held:
                    link.server.write(chunk)
                    delivered += len(chunk)
                link.held.clear()
        return delivered

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        self.accepted += 1
        try:
            if self.mode == "reset":
                link.abort()
                return
            while self.mode == "blackhole":  # accepted, never answered
                if await _drain_some(reader, 0.05) is None:
                    return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            link.server = up_writer
            forward = asyncio.ensure_future(self._pump(reader, link, to_server=True))
            back = asyncio.ensure_future(self._pump(up_reader, link, to_server=False))
            self._tasks.update((forward, back))
            await asyncio.wait({forward, back}, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not link.held:
                link.abort()
                self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, link: _Link, *, to_server: bool) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                mode = self.mode
                deliver = mode == "pass" or (to_server and mode == "answers-lost")
                if to_server and mode == "hold":
                    link.broken = True
                    link.held.append(chunk)
                    continue
                if not deliver or (link.broken and mode != "pass"):
                    link.broken = True
                    continue
                if link.broken:
                    continue  # a broken stream stays broken
                target = link.server if to_server else link.client
                assert target is not None
                target.write(chunk)
                await target.drain()
        except (OSError, asyncio.CancelledError):
            return


async def _drain_some(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """Read and drop what arrives within `seconds` (None once the peer closed)."""
    try:
        chunk = await asyncio.wait_for(reader.read(65536), seconds)
    except asyncio.TimeoutError:
        return b""
    return chunk or None
