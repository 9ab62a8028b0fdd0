"""The Django example site (examples/django_site) under daphne, driven by real Node Yjs clients."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from ystores import SQLiteYStore

from .kit import free_port, node, read_json_line, start_node, stop_process, wait_for_port
from .live import text_of

SITE = Path(__file__).resolve().parents[2] / "examples" / "django_site"
ROOM = "notes/today?token=let-me-in"  # y-websocket appends the room name to the URL as is
NAMES = ("ana", "bob", "cy")
EDITS = 10


@contextmanager
def django_site(store: str, log: Path) -> Iterator[tuple[str, str]]:
    """daphne serving the example site on a free port; yields its ws:// and http:// URLs."""
    port = free_port()
    env = {**os.environ, "YSTORES_URL": store}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "asgi:application",
            ],
            cwd=SITE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc)
            yield f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as response:
        return str(response.read().decode())


def test_node_clients_converge_and_the_document_survives_a_restart(
    node_clients: None, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path}/y.db"
    with django_site(store, tmp_path / "daphne.log") as (ws, _):
        editors = [
            start_node("client.mjs", "edit", ws, ROOM, name, str(EDITS), ",".join(NAMES))
            for name in NAMES
        ]
        try:
            texts = [read_json_line(editor)["text"] for editor in editors]
        finally:
            for editor in editors:
                stop_process(editor, grace=10)
    assert texts[0] == texts[1] == texts[2]
    assert all(texts[0].count(f"<{n}:{i}>") == 1 for n in NAMES for i in range(EDITS))
    with django_site(store, tmp_path / "daphne.log") as (ws, _):
        assert node("client.mjs", "read", ws, ROOM) == {"text": texts[0]}

    async def stored() -> str:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        async with SQLiteYStore("notes/today", db_path=str(tmp_path / "y.db")) as ystore:
            await ystore.apply_updates(doc)
        return text_of(doc)

    assert anyio.run(stored) == texts[0]


def test_a_synchronous_view_edits_the_live_document(node_clients: None, tmp_path: Path) -> None:
    with django_site(f"sqlite:///{tmp_path}/y.db", tmp_path / "daphne.log") as (ws, http):
        node("client.mjs", "edit", ws, ROOM, "ana", "2", "ana")
        watcher = start_node("peer.mjs", "until", ws, ROOM, "from a view")
        try:
            # The watcher is connected once the read below (a later client) has synced.
            node("client.mjs", "read", ws, ROOM)
            line = urllib.parse.quote("from a view")
            assert get(f"{http}/append/notes/today?line={line}") == "sent\n"
            seen = read_json_line(watcher)
        finally:
            stop_process(watcher, grace=10)
        assert seen["text"].endswith("from a view\n")
        assert seen["text"].count("<ana:") == 2
        # A later client loads the view's edit from the store.
        assert node("client.mjs", "read", ws, ROOM)["text"] == seen["text"]
        # A ready-made update sent with send_doc_update (into another root type).
        assert get(f"{http}/banner/notes/today?line=hello") == "sent\n"
        banner = node("peer.mjs", "until", ws, ROOM, "hello", env={"CLIENT_TEXT": "banner"})
        assert banner["text"] == "hello"


def test_the_consumer_refuses_clients_without_the_token(node_clients: None, tmp_path: Path) -> None:
    with django_site(f"sqlite:///{tmp_path}/y.db", tmp_path / "daphne.log") as (ws, _):
        result = subprocess.run(
            ["node", "client.mjs", "read", ws, "notes/today"],
            cwd=Path(__file__).parent / "js",
            capture_output=True,
            timeout=40,
            check=False,
        )
    assert result.returncode == 2
    assert b"closed by the server: 4403" in result.stderr
