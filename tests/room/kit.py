"""Helpers for the room tests: Node clients, servers on real sockets, in-memory channels."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import uvicorn

from ystores import FileYStore
from ystores.room import YStoreApp

JS_DIR = Path(__file__).resolve().parent / "js"
NODE_TIMEOUT = 40.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, limit: float = 20
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"The server exited with {proc.returncode} before listening.")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"Nothing listens on 127.0.0.1:{port} after {limit} s.")


def node(*args: str, timeout: float = NODE_TIMEOUT, env: dict[str, str] | None = None) -> Any:
    """Run a node script in tests/room/js and return the JSON of its last output line.

    `env` adds variables to the script's environment (see client.mjs).
    """
    result = subprocess.run(
        ["node", *args],
        cwd=JS_DIR,
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"node {' '.join(args)} exited with {result.returncode}: {result.stderr.decode()}"
        )
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def start_node(*args: str) -> subprocess.Popen[str]:
    """Start a node script whose stdout is read line by line."""
    return subprocess.Popen(
        ["node", *args],
        cwd=JS_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_json_line(proc: subprocess.Popen[str], timeout: float = NODE_TIMEOUT) -> Any:
    """The next JSON line a node process prints (bounded in time)."""
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        code = proc.poll()
        said = proc.stderr.read().strip() if code is not None and proc.stderr else ""
        ended = f"; it exited with {code}: {said!r}" if code is not None else ""
        raise AssertionError(f"No line from node within {timeout} s{ended}.")
    return json.loads(result[0])


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 0) -> None:
    """Stop a process (after `grace` seconds for it to exit by itself) and close its pipes."""
    if grace:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def serve_cli(store_url: str | None, log_path: Path, cwd: Path | None = None) -> Iterator[str]:
    """`ystore serve` in a subprocess on a free port; yields its ws:// URL; stops it with SIGINT.

    Without `store_url` the command's default store is used (in `cwd`).
    """
    port = free_port()
    store = ["--store", store_url] if store_url is not None else []
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ystores", "serve", *store, "--port", str(port)],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        try:
            wait_for_port(port, proc)
            yield f"ws://127.0.0.1:{port}"
        finally:
            stop_process(proc, signal.SIGINT)
    assert proc.returncode == 0, log_path.read_text()


@contextmanager
def serve_in_thread(app: YStoreApp) -> Iterator[str]:
    """Uvicorn serving `app` in a thread on a free port; yields its ws:// URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws="wsproto", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
    assert not thread.is_alive()


async def stored_text(store: FileYStore, name: str = "text") -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return str(doc.get(name, type=pycrdt.Text))


class MemoryChannel:
    """A `Channel` over in-memory streams; the test holds the other end."""

    def __init__(self, path: str = "/memory", receive_buffer: int = 10_000) -> None:
        self.path = path
        self._to_room, self._room_in = anyio.create_memory_object_stream[bytes](100)
        self._from_room, self.received = anyio.create_memory_object_stream[bytes](receive_buffer)
        self.closed: tuple[int, str] | None = None
        self.closed_event = anyio.Event()

    async def send(self, message: bytes) -> None:
        await self._from_room.send(message)

    def __aiter__(self) -> MemoryChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._room_in.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.closed_event.set()
            self._from_room.close()

    async def put(self, message: bytes) -> None:
        """Send a message to the room as the client."""
        await self._to_room.send(message)

    def hang_up(self) -> None:
        """Disconnect as the client."""
        self._to_room.close()

    def aclose_streams(self) -> None:
        for stream in (self._to_room, self._room_in, self._from_room, self.received):
            stream.close()
