"""Django processes (the example site under daphne) kept in step by their store alone.

Each process has its own in-memory channel layer, so the store is the only link
between them: what one process's client types reaches the other's clients
through the consumers' shared followers, as between `ystore serve` processes.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from room.conftest import node_clients
from room.test_django_server import django_site

from .conftest import store_url
from .test_servers import (
    check_markers,
    edit_with,
    import_reaches,
    patient_clients,
    server,
    stored_text,
)

__all__ = ["node_clients", "patient_clients"]

pytestmark = pytest.mark.timeout(400)

DOC = "today"
TOKEN = "?token=let-me-in"  # the example site's consumer wants it; y-websocket keeps it as is


def converged(texts: list[str], names: tuple[str, ...], edits: int, url: str) -> None:
    """Every client ended with the same text, holding each marker once, as stored."""
    assert len(set(texts)) == 1
    check_markers(texts[0], names, edits)
    assert anyio.run(stored_text, url, DOC) == texts[0]


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
        texts = edit_with([(ws_a, room), (ws_b, room), (ws_a, room)], names, edits)
    converged(texts, names, edits, url)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ystore_import_reaches_a_connected_django_client(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    with django_site(url, tmp_path / "daphne.log") as (ws, _):
        import_reaches(ws, DOC + TOKEN, url, DOC, tmp_path)


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
        texts = edit_with([(f"ws://127.0.0.1:{port}", DOC), (ws, DOC + TOKEN)], names, edits)
    converged(texts, names, edits, url)
