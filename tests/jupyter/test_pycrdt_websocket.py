"""pycrdt-websocket's `WebsocketServer` + `YRoom` with each `ystores.jupyter` store: a Node
Yjs client (y-websocket) edits, the server restarts, the content comes back."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backends import new_postgres_database
from jupyter.server import wait_for_text
from room.kit import free_port, node, stop_process, wait_for_port

pytestmark = pytest.mark.usefixtures("node_clients")

SERVER = Path(__file__).with_name("pycrdt_server.py")


@contextmanager
def pycrdt_server(backend: str, location: str, log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), backend, location, str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc, limit=60)
            yield f"ws://127.0.0.1:{port}"
        finally:
            stop_process(proc)
    assert proc.returncode == 0, log.read_text()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "file"])
def test_an_edit_survives_a_restart(tmp_path: Path, backend: str) -> None:
    if backend == "sqlite":
        location = str(tmp_path / "rooms.db")
        url = f"sqlite:///{location}"
    elif backend == "postgres":
        location = url = new_postgres_database()
    else:
        location = str(tmp_path / "docs")
        url = f"file://{location}/"
    log = tmp_path / "server.log"

    with pycrdt_server(backend, location, log) as ws:
        edited = node("client.mjs", "edit", ws, "notes", "A", "4", "A")["text"]
        assert all(f"<A:{i}>" in edited for i in range(4))
        wait_for_text(url, "notes", "text", edited)
    assert "new /notes" in log.read_text()

    with pycrdt_server(backend, location, log) as ws:
        assert node("client.mjs", "read", ws, "notes")["text"] == edited
        more = node("client.mjs", "edit", ws, "notes", "B", "2", "B")["text"]
        wait_for_text(url, "notes", "text", more)
    assert "loaded /notes" in log.read_text()
    assert all(marker in more for marker in ("<A:0>", "<A:3>", "<B:0>", "<B:1>"))
