"""Several `ystore serve` processes on one store, with real Yjs clients (y-websocket in Node)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from room.conftest import node_clients
from room.kit import free_port, read_json_line, start_node, stop_process, wait_for_port
from ystores import YDocNotFound, open_store
from ystores.sql.engines import dispose_databases

from .balancer import balancer
from .conftest import store_url

__all__ = ["node_clients"]

NAMES = ("ana", "bob", "cy")
PATIENCE = 150.0
"""Seconds a client may take (generous: CI machines are slow and shared)."""

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(autouse=True)
def patient_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node clients give up after `PATIENCE` seconds instead of 30."""
    monkeypatch.setenv("CLIENT_TIMEOUT_MS", str(int(PATIENCE * 1000)))


SERVER_START = 120.0
"""Seconds a server may take to listen (imports alone take seconds on a loaded machine)."""


@contextmanager
def server(url: str, log_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`ystore serve` on a free port; yields the port and the process."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ystores", "serve", "--store", url, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc, limit=SERVER_START)
            yield port, proc
        finally:
            stop_process(proc, signal.SIGINT)


@contextmanager
def servers(url: str, count: int, tmp_path: Path) -> Iterator[list[tuple[int, Any]]]:
    with ExitStack() as stack:
        yield [stack.enter_context(server(url, tmp_path / f"serve{i}.log")) for i in range(count)]


async def stored_text(url: str, doc: str) -> str:
    ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
    store = open_store(url, doc)
    await store.apply_updates(ydoc)
    await store.aclose()
    await dispose_databases()
    return str(ydoc.get("text", type=pycrdt.Text))


def typing_began(url: str, names: tuple[str, ...]) -> None:
    """Wait until the store holds a few markers of every client in `names`."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            text = anyio.run(stored_text, url, "doc")
        except YDocNotFound:
            text = ""
        if all(text.count(f"<{name}:") >= 3 for name in names):
            return
        time.sleep(0.02)
    raise AssertionError(f"The clients' typing did not reach the store within {PATIENCE} s.")


def check_markers(text: str, names: tuple[str, ...], edits: int) -> None:
    for name in names:
        for i in range(edits):
            assert text.count(f"<{name}:{i}>") == 1, (name, i)
    assert len(text) == sum(len(f"<{n}:{i}>") for n in names for i in range(edits))


def edit_together(ports: list[int], doc: str, names: tuple[str, ...], edits: int) -> list[str]:
    """Node clients named `names`, the i-th on `ports[i % len(ports)]`, each typing
    `edits` markers; returns each one's text once every client's markers reached it."""
    urls = [(f"ws://127.0.0.1:{ports[i % len(ports)]}", doc) for i in range(len(names))]
    return edit_with(urls, names, edits)


def edit_with(urls: list[tuple[str, str]], names: tuple[str, ...], edits: int) -> list[str]:
    """Node clients named `names`, the i-th on `urls[i]` (a ws:// URL and a room), each
    typing `edits` markers; returns each one's text once every client's markers reached it."""
    editors = [
        start_node("client.mjs", "edit", url, room, name, str(edits), ",".join(names))
        for (url, room), name in zip(urls, names, strict=True)
    ]
    try:
        return [read_json_line(editor, PATIENCE)["text"] for editor in editors]
    except AssertionError as exc:
        for editor in editors:
            editor.kill()
        errors = [editor.stderr.read() if editor.stderr else "" for editor in editors]
        raise AssertionError(f"{exc} Clients said: {errors}") from exc
    finally:
        for editor in editors:
            stop_process(editor, grace=10)


def import_reaches(ws: str, room: str, url: str, doc: str, tmp_path: Path) -> None:
    """A client of room `room` at `ws` sees the text `ystore import` adds to `doc` in `url`."""
    watcher = start_node("follow.mjs", "wait", ws, room, "imported!")
    try:
        assert read_json_line(watcher, PATIENCE) == {"synced": True}
        update: pycrdt.Doc[Any] = pycrdt.Doc()
        update.get("text", type=pycrdt.Text).insert(0, "imported!")
        source = tmp_path / "update.bin"
        source.write_bytes(update.get_update())
        result = subprocess.run(
            [sys.executable, "-m", "ystores", "import", str(source), url, "--doc", doc],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert "imported!" in read_json_line(watcher, PATIENCE)["text"]
    finally:
        stop_process(watcher, grace=10)


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_clients_of_different_servers_converge_live(
    node_clients: None, tmp_path: Path, backend: str, count: int
) -> None:
    url = store_url(backend, tmp_path)
    names = NAMES[:count]
    edits = 20
    with servers(url, count, tmp_path) as running:
        # Each client on its own server; each finishes only once every client's
        # markers reached it, so it must get the others' edits live.
        texts = edit_together([port for port, _proc in running], "live", names, edits)
    assert len(set(texts)) == 1
    check_markers(texts[0], names, edits)
    assert anyio.run(stored_text, url, "live") == texts[0]


@pytest.mark.parametrize("backend", ["file", "sqlite", "postgres"])
def test_ystore_import_reaches_a_connected_client(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    with server(url, tmp_path / "serve.log") as (port, _proc):
        import_reaches(f"ws://127.0.0.1:{port}", "doc", url, "doc", tmp_path)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_killed_server_loses_nothing_and_its_clients_converge_on_another(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    edits = 300
    names = ("ana", "bob")
    with (
        server(url, tmp_path / "a.log") as (port_a, proc_a),
        server(url, tmp_path / "b.log") as (port_b, _proc_b),
        balancer([port_a, port_b]) as front,
    ):
        # The clients wait as long as the test: a connection the kill leaves
        # half-open is only given up by y-websocket after 30 s without a message.
        env = {**os.environ, "CLIENT_TIMEOUT_MS": str(int(PATIENCE * 1000))}
        # ana reaches server A through the balancer; bob is on server B.
        ana, bob = (
            subprocess.Popen(
                ["node", "client.mjs", "edit", f"ws://127.0.0.1:{port}", "doc", name, str(edits),
                 ",".join(names)],
                cwd=Path(__file__).resolve().parents[1] / "room" / "js",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for name, port in (("ana", front), ("bob", port_b))
        )  # fmt: skip
        try:
            # Kill while both are typing (about 1.5 s of edits): a client that had
            # finished, and so left, before the kill could not send its last edits
            # again, and a server may always be killed between reading an update and
            # storing it (the Yjs protocol has no acknowledgement to wait for).
            typing_began(url, names)
            proc_a.kill()  # SIGKILL: server A cannot flush or say goodbye
            proc_a.wait(10)
            # ana's provider reconnects through the balancer, now to server B.
            texts = [read_json_line(ana, PATIENCE)["text"], read_json_line(bob, PATIENCE)["text"]]
        finally:
            stop_process(ana, grace=10)
            stop_process(bob, grace=10)
    assert texts[0] == texts[1]
    check_markers(texts[0], names, edits)
    # Server B stopped cleanly: the store holds everything, including what A never wrote.
    assert anyio.run(stored_text, url, "doc") == texts[0]
