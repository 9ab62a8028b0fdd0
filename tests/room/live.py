"""Helpers for tests with live documents: waiting on a document, Node's y-websocket server."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pycrdt

from ystores import crdt

from .kit import JS_DIR, free_port, stop_process, wait_for_port

WAIT = 30.0


def text_of(doc: Any) -> str:
    """The root text "text" of a pycrdt or y-py document."""
    if isinstance(doc, pycrdt.Doc):
        return str(doc.get("text", type=pycrdt.Text))
    return str(doc.get_text("text"))


async def until(doc: Any, condition: Callable[[], bool], limit: float = WAIT) -> None:
    """Wait until `condition()` holds, checking after each change of `doc`."""
    changed = anyio.Event()

    def wake(_: bytes) -> None:
        changed.set()

    stop = crdt.observe_updates(doc, wake)
    try:
        with anyio.fail_after(limit):
            while not condition():
                await changed.wait()
                changed = anyio.Event()
    finally:
        stop()


def b64(text: str) -> bytes:
    return base64.b64decode(text)


@contextmanager
def node_websocket_server() -> Iterator[str]:
    """Node's reference y-websocket server (npm `@y/websocket-server`) on a free port."""
    port = free_port()
    server = JS_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(
        ["node", str(server)],
        cwd=JS_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc)
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop_process(proc)
