"""Django processes (the example site under daphne) kept in step by their store alone.

Each process has its own in-memory channel layer, so the store is the only link
between them: what one process's client types reaches the other's clients
through the consumers' shared followers, as between `ystore serve` processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from room.conftest import node_clients
from room.kit import read_json_line, start_node, stop_process
from room.test_django_server import django_site

from .conftest import store_url
from .test_servers import PATIENCE, check_markers, patient_clients, server, stored_text

__all__ = ["node_clients", "patient_clients"]

pytestmark = pytest.mark.timeout(400)

DOC = "today"
TOKEN = "?token=let-me-in"  # the example site's consumer wants it; y-websocket keeps it as is


def edit_together(urls: list[tuple[str, str]], names: tuple[str, ...], edits: int) -> list[str]:
    """Node clients named `names`, the i-th on `urls[i]` (ws URL, room), each typing `edits`
    markers; returns each one's text once every client's markers reached it."""
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


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_clients_of_two_django_processes_converge_live(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    names = ("ana", "bob", "cy")
    edits = 15
    with (
        django_site(url, tmp_path / "a.log") as (ws_a, _),
        django_site(url, tmp_path / "b.log") as (ws_b, _),
    ):
        # ana and cy on process A, bob on process B: each finishes only once every
        # client's markers reached it, so B's edits reach A through the store and back.
        room = DOC + TOKEN
        texts = edit_together([(ws_a, room), (ws_b, room), (ws_a, room)], names, edits)
    assert len(set(texts)) == 1
    check_markers(texts[0], names, edits)
    assert anyio.run(stored_text, url, DOC) == texts[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ystore_import_reaches_a_connected_django_client(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    with django_site(url, tmp_path / "daphne.log") as (ws, _):
        watcher = start_node("follow.mjs", "wait", ws, DOC + TOKEN, "imported!")
        try:
            assert read_json_line(watcher, PATIENCE) == {"synced": True}
            update: pycrdt.Doc[Any] = pycrdt.Doc()
            update.get("text", type=pycrdt.Text).insert(0, "imported!")
            source = tmp_path / "update.bin"
            source.write_bytes(update.get_update())
            result = subprocess.run(
                [sys.executable, "-m", "ystores", "import", str(source), url, "--doc", DOC],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr.decode()
            assert "imported!" in read_json_line(watcher, PATIENCE)["text"]
        finally:
            stop_process(watcher, grace=10)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_ystore_serve_process_and_a_django_process_converge(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    names = ("ana", "bob")
    edits = 15
    with (
        server(url, tmp_path / "serve.log") as (port, _proc),
        django_site(url, tmp_path / "daphne.log") as (ws, _),
    ):
        texts = edit_together([(f"ws://127.0.0.1:{port}", DOC), (ws, DOC + TOKEN)], names, edits)
    assert len(set(texts)) == 1
    check_markers(texts[0], names, edits)
    assert anyio.run(stored_text, url, DOC) == texts[0]
