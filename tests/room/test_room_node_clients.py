"""`ystore serve` on a real socket, driven by real Yjs clients (y-websocket in Node)."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio

from ystores import FileYStore

from .kit import node, read_json_line, serve_cli, start_node, stop_process, stored_text

NAMES = ("ana", "bob", "cy")
EDITS = 25


def file_url(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    return f"file://{root}/"


def test_three_clients_converge_and_the_document_survives_a_restart(
    node_clients: None, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    url = file_url(root)
    with serve_cli(url, tmp_path / "serve.log") as ws:
        editors = [
            start_node("client.mjs", "edit", ws, "notes/today", name, str(EDITS), ",".join(NAMES))
            for name in NAMES
        ]
        try:
            texts = [read_json_line(editor)["text"] for editor in editors]
        finally:
            for editor in editors:
                stop_process(editor, grace=10)
    assert texts[0] == texts[1] == texts[2]
    for name in NAMES:
        for i in range(EDITS):
            assert texts[0].count(f"<{name}:{i}>") == 1
    assert len(texts[0]) == sum(len(f"<{n}:{i}>") for n in NAMES for i in range(EDITS))

    # The server has stopped: everything it broadcast is in the store.
    assert anyio.run(stored_text, FileYStore("notes/today", root=root)) == texts[0]

    with serve_cli(url, tmp_path / "serve.log") as ws:
        assert node("client.mjs", "read", ws, "notes/today") == {"text": texts[0]}
        assert node("client.mjs", "read", ws, "notes/other") == {"text": ""}


def test_serve_defaults_to_an_sqlite_file_in_the_working_directory(
    node_clients: None, tmp_path: Path
) -> None:
    with serve_cli(None, tmp_path / "serve.log", cwd=tmp_path) as ws:
        text = node("client.mjs", "edit", ws, "notes/a", "ana", "5", "ana")["text"]
    assert (tmp_path / "ystore.db").is_file()
    with serve_cli(None, tmp_path / "serve.log", cwd=tmp_path) as ws:
        assert node("client.mjs", "read", ws, "notes/a") == {"text": text}


def test_awareness_reaches_other_clients_and_is_cleared_when_one_vanishes(
    node_clients: None, tmp_path: Path
) -> None:
    with serve_cli(file_url(tmp_path / "store"), tmp_path / "serve.log") as ws:
        watcher = start_node("client.mjs", "watch", ws, "room", "zoë")
        presenter = start_node("client.mjs", "present", ws, "room", "zoë")
        try:
            client_id = read_json_line(presenter)["clientID"]
            assert read_json_line(watcher) == {"seen": client_id}
            # SIGKILL: the client cannot say goodbye; the server must announce it.
            stop_process(presenter, signal.SIGKILL)
            assert read_json_line(watcher) == {"removed": client_id}
        finally:
            stop_process(presenter, signal.SIGKILL)
            stop_process(watcher)


BAD_INPUTS = [
    ("05", 1002, "Unknown message type 5"),
    ("0002ff", 1002, "ends or breaks"),
    ("000205ffffffffff", 1007, "does not decode"),
    ("0100", 1002, "ends or breaks"),
    ("0102010a", 1002, "ends or breaks"),
    ("0200", 1002, "may not send AUTH"),
    ("00000201ff", 1002, "state vector"),
]


def test_bad_input_closes_only_that_client_and_leaves_the_document_intact(
    node_clients: None, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    with serve_cli(file_url(root), tmp_path / "serve.log") as ws:
        text = node("client.mjs", "edit", ws, "doc", "ana", "5", "ana")["text"]
        bystander = start_node("client.mjs", "present", ws, "doc", "bob")
        try:
            read_json_line(bystander)
            for message, code, reason in BAD_INPUTS:
                closed = node("raw.mjs", f"{ws}/doc", message)
                assert closed["code"] == code, (message, closed)
                assert reason in closed["reason"], (message, closed)
            assert bystander.poll() is None
            assert node("client.mjs", "read", ws, "doc") == {"text": text}
        finally:
            stop_process(bystander)
    assert anyio.run(stored_text, FileYStore("doc", root=root)) == text
