"""Propagation between servers: how fast an edit on one `ystore serve` reaches a client of another.

Each document has a writer client on server A and reader clients; with two
servers the readers sit on server B (the edit travels A's room, the store, B's
follower, B's room), with one server they sit on A too (the baseline: a plain
broadcast). Writers append numbered tokens at a fixed total rate spread over the
documents; a reader notes when each token arrives. Reported: latency p50/p99,
delivered updates/s, and each server's CPU time per update.

"Read back complete" is checked on the store itself once the servers have
stopped: every document must hold exactly the tokens its writer sent, in order.
Updates still on their way to a reader when the run ends are a delivery lag,
reported apart in the note ("delivered n of m"), not a lost write.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrdt
from websockets.asyncio.client import ClientConnection, connect

from ystores.room.protocol import (
    MessageType,
    SyncType,
    decode_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

__all__ = ["Case", "Result", "run_case"]


@dataclass
class Case:
    """One run: `servers` processes on `url`, `docs` documents, `rate` updates/s in all."""

    url: str
    servers: int
    docs: int
    rate: float
    seconds: float
    readers: int = 1
    client_processes: int = 1


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    delivered: int = 0
    cpu_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    sent_by_doc: dict[str, int] = field(default_factory=dict)
    stored_complete: bool = False
    """Every document read back from the store holds every token its writer sent."""

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def cpu_ms_per_update(self) -> list[float]:
        return [1000 * cpu / max(self.sent, 1) for cpu in self.cpu_seconds]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(url: str, log: Path) -> tuple[int, subprocess.Popen[bytes]]:
    port = _free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ystores", "serve", "--store", url, "--port", str(port),
             "--no-compaction", "--log-level", "warning"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 120  # imports alone take seconds on a loaded machine
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return port, proc
        if proc.poll() is not None:
            raise RuntimeError(f"ystore serve exited: {log.read_text()}")
        time.sleep(0.05)
    raise TimeoutError("ystore serve did not listen")


async def _synced(ws: ClientConnection, doc: pycrdt.Doc[Any]) -> None:
    await ws.send(encode_sync_step1(doc.get_state()))
    while True:
        message = decode_message(await ws.recv())
        if message.type is MessageType.SYNC and message.sync_type is SyncType.STEP1:
            await ws.send(encode_sync_step2(doc.get_update(message.payload)))
        elif message.type is MessageType.SYNC:
            doc.apply_update(message.payload)
            if message.sync_type is SyncType.STEP2:
                return


async def _reader(
    uri: str, sent_at: dict[int, float], result: Result, ready: asyncio.Event, done: asyncio.Event
) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    seen = 0
    async with connect(uri, max_size=None) as ws:
        await _synced(ws, doc)
        ready.set()
        # No timeout per message (on Python 3.11 `wait_for` makes a task for each): the
        # connection is closed once `done` is set, which ends the loop.
        closer = asyncio.create_task(_close_when(done, ws))
        try:
            async for raw in ws:
                now = time.perf_counter()  # on arrival, before decoding and applying
                message = decode_message(raw)
                if message.type is not MessageType.SYNC or message.sync_type is SyncType.STEP1:
                    continue
                doc.apply_update(message.payload)
                tokens = str(text).count(";")
                for token in range(seen, tokens):
                    result.latencies_ms.append(1000 * (now - sent_at[token]))
                result.delivered += tokens - seen
                seen = tokens
        finally:
            closer.cancel()


async def _close_when(done: asyncio.Event, ws: ClientConnection) -> None:
    await done.wait()
    await ws.close()


async def _writer(uri: str, interval: float, seconds: float, sent_at: dict[int, float],
                  result: Result, name: str) -> None:  # fmt: skip
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    async with connect(uri, max_size=None) as ws:
        await _synced(ws, doc)
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < seconds:
            text.insert(len(text), f"{count};")
            sent_at[count] = time.perf_counter()
            await ws.send(encode_update(updates.pop()))
            count += 1
            result.sent += 1
            result.sent_by_doc[name] = count
            delay = start + count * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.sleep(1.0)  # let the last updates arrive


async def _run(case: Case, ports: list[int], result: Result, docs: range, tag: str) -> None:
    interval = case.docs / case.rate
    tasks = []
    readers_ready: list[asyncio.Event] = []
    done = asyncio.Event()
    writers = []
    for d in docs:
        name = f"bench-{tag}-{d}"
        sent_at: dict[int, float] = {}
        read_port = ports[-1]  # the other server, or the same one alone
        for _ in range(case.readers):
            ready = asyncio.Event()
            readers_ready.append(ready)
            tasks.append(asyncio.create_task(
                _reader(f"ws://127.0.0.1:{read_port}/{name}", sent_at, result, ready, done)
            ))  # fmt: skip
        writers.append((f"ws://127.0.0.1:{ports[0]}/{name}", sent_at, name))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readers_ready)), 60)
    start = time.perf_counter()
    await asyncio.gather(*(
        _writer(uri, interval, case.seconds, sent_at, result, name)
        for uri, sent_at, name in writers
    ))  # fmt: skip
    result.seconds = time.perf_counter() - start
    # What is still on its way: wait while it keeps arriving (a stall of 10 s ends the wait).
    last, stalled = result.delivered, time.perf_counter()
    while result.delivered < result.sent * case.readers and time.perf_counter() - stalled < 10:
        await asyncio.sleep(0.05)
        if result.delivered != last:
            last, stalled = result.delivered, time.perf_counter()
    done.set()
    await asyncio.gather(*tasks)


def _clients(case: Case, ports: list[int], docs: range, tag: str) -> Result:
    """One client process: the writers and readers of `docs`."""
    result = Result()
    asyncio.run(_run(case, ports, result, docs, tag))
    return result


async def _stored_complete(url: str, sent_by_doc: dict[str, int]) -> bool:
    """Whether each document, read back from the store, holds exactly the tokens sent to it."""
    from ystores import open_store
    from ystores.sql.engines import dispose_databases

    complete = True
    for name, count in sent_by_doc.items():
        store = open_store(url, name)
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        try:
            await store.apply_updates(doc)
        finally:
            await store.aclose()
        text = str(doc.get("text", type=pycrdt.Text))
        complete = complete and text == "".join(f"{i};" for i in range(count))
    if url.startswith(("sqlite", "postgresql")):
        await dispose_databases()
    return complete


def run_case(case: Case, log_dir: Path) -> Result:
    """Start the servers, run the clients, stop the servers, read the store back."""
    servers = [_start_server(case.url, log_dir / f"serve{i}.log") for i in range(case.servers)]
    result = Result()
    try:
        ports = [port for port, _proc in servers]
        tag = os.urandom(4).hex()
        slices = [range(i, case.docs, case.client_processes) for i in range(case.client_processes)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(case.client_processes, mp_context=context) as pool:
            before = [_cpu_seconds(proc.pid) for _port, proc in servers]
            futures = [pool.submit(_clients, case, ports, part, tag) for part in slices]
            parts = [future.result() for future in futures]
            after = [_cpu_seconds(proc.pid) for _port, proc in servers]
        result.cpu_seconds = [b - a for a, b in zip(before, after, strict=True)]
        for part in parts:
            result.latencies_ms += part.latencies_ms
            result.sent += part.sent
            result.delivered += part.delivered
            result.seconds = max(result.seconds, part.seconds)
            result.sent_by_doc.update(part.sent_by_doc)
    finally:
        for _port, proc in servers:
            proc.send_signal(signal.SIGINT)
        for _port, proc in servers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # The servers stored everything they acknowledged before exiting: read it back.
    result.stored_complete = asyncio.run(_stored_complete(case.url, result.sent_by_doc))
    return result


async def _new_postgres_database() -> tuple[str, str]:
    import asyncpg  # type: ignore[import-untyped]

    name = f"ystores_bench_prop_{os.getpid()}_{time.monotonic_ns()}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


async def _drop_postgres_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def propagation(size: dict[str, Any], backends: set[str]) -> list[Any]:
    """The scenario's rows: latency and CPU at a fixed rate, then throughput, 1 vs 2 servers."""
    import anyio
    from scenarios import Row, scratch

    rows: list[Any] = []
    docs, rate, seconds = size["docs"], size["rate"], size["seconds"]
    for backend in ("sqlite", "postgres"):
        if backend not in backends:
            continue
        for label, readers, case_rate, latency in (
            (f"latency at {rate:g} updates/s", 1, rate, True),
            (f"throughput, {size['clients']} clients per document", size["clients"] - 1,
             size["flood_rate"], False),
        ):  # fmt: skip
            for servers in (1, 2):
                with scratch() as directory:
                    name = ""
                    if backend == "sqlite":
                        url = f"sqlite:///{directory / 'ystore.db'}"
                    else:
                        name, url = await _new_postgres_database()
                    case = Case(
                        url, servers, docs, case_rate, seconds, readers, size["client_processes"]
                    )
                    try:
                        result = await anyio.to_thread.run_sync(run_case, case, directory)
                    finally:
                        if name:
                            await _drop_postgres_database(name)
                impl = f"{servers} server{'s' if servers > 1 else ''}, {backend}"
                complete = result.stored_complete
                scenario = f"propagation {label} ({docs} documents)"
                cpu = ", ".join(f"{v:.2f}" for v in result.cpu_ms_per_update())
                note = f"p50 {result.p50:.1f} ms; CPU ms/update per server: {cpu}"
                expected = result.sent * readers
                if result.delivered < expected:  # a lag at the end of the run, not a lost write
                    note += f"; delivered {result.delivered} of {expected} by the end"
                if latency:
                    rows.append(
                        Row(scenario, impl, "ystores", result.p99, "ms p99", complete, note)
                    )
                else:
                    delivered = result.delivered / max(result.seconds, 1e-9)
                    rows.append(
                        Row(scenario, impl, "ystores", delivered, "updates/s", complete, note)
                    )
    return rows
