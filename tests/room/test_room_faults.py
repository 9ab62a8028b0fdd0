"""Rooms under `ystore serve` facing poisoned updates and failing stores (issue 11).

Real sockets, real Yjs clients (y-websocket in Node), real files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt

from faults.disk import fill, release, small_disk
from faults.poison import ISSUE_UPDATE, POISON, victim_state
from ystores import FileYStore
from ystores.room.protocol import encode_update

from .kit import node, read_json_line, serve_cli, start_node, stop_process, stored_text

VICTIM_TEXT = "x" * 60


async def _seed(root: Path, name: str, *updates: bytes) -> None:
    async with FileYStore(name, root=root) as store:
        for update in updates:
            await store.write(update)


def test_a_poisoned_update_over_a_websocket_closes_only_its_sender(
    node_clients: None, tmp_path: Path
) -> None:
    """Into a room whose content makes the engine panic on them, the bytes close their
    sender with 1007; the room, its document and the other clients carry on."""
    root = tmp_path / "store"
    anyio.run(_seed, root, "doc", victim_state(VICTIM_TEXT))
    log = tmp_path / "serve.log"
    with serve_cli(f"file://{root}/", log) as ws:
        bystander = start_node("client.mjs", "present", ws, "doc", "bob")
        try:
            read_json_line(bystander)
            closed = node("raw.mjs", f"{ws}/doc", encode_update(POISON).hex())
            assert closed["code"] == 1007, closed
            assert "panic" in closed["reason"], closed
            # The issue's bytes do not make this engine version fail here: they are kept
            # pending like any update whose dependencies are missing, and the connection
            # stays up (the client closes it itself after the step 1 and bob's awareness).
            kept = node("raw.mjs", "--expect=2", f"{ws}/doc", encode_update(ISSUE_UPDATE).hex())
            assert kept["code"] == 1000, kept
            assert bystander.poll() is None
            text = node("client.mjs", "edit", ws, "doc", "ana", "3", "ana")["text"]
            assert VICTIM_TEXT in text
            assert node("client.mjs", "read", ws, "doc") == {"text": text}
        finally:
            stop_process(bystander)
    assert "Traceback" not in log.read_text()
    assert anyio.run(stored_text, FileYStore("doc", root=root)) == text


def test_a_stored_poisoned_record_closes_only_its_room(node_clients: None, tmp_path: Path) -> None:
    """A document whose log holds a poisoned record refuses its clients with 4500 and a
    reason; other rooms serve before and after, and the server shuts down cleanly."""
    root = tmp_path / "store"
    anyio.run(_seed, root, "bad", victim_state(VICTIM_TEXT), POISON)
    anyio.run(_seed, root, "good", victim_state("good"))
    log = tmp_path / "serve.log"
    with serve_cli(f"file://{root}/", log) as ws:
        for _ in range(2):
            refused = node("raw.mjs", f"{ws}/bad", "0000")
            assert refused["code"] == 4500, refused
            assert "could not be loaded" in refused["reason"], refused
            text = node("client.mjs", "edit", ws, "good", "ana", "2", "ana")["text"]
            assert text.startswith("<ana:") or "good" in text
        assert "good" in node("client.mjs", "read", ws, "good")["text"]
    logged = log.read_text()
    assert "Exception in 'lifespan'" not in logged
    assert "could not be loaded" in logged


def test_serve_on_a_full_disk_closes_clients_with_4500_and_recovers(
    node_clients: None, tmp_path: Path
) -> None:
    """`ystore serve` over a store on a real tmpfs: once the disk is full, a client whose
    change cannot be stored is closed with 4500, newcomers are refused, and the room serves
    again (with the change stored) once space is back."""
    with small_disk(tmp_path / "disk") as disk:
        root = disk / "store"
        root.mkdir()
        log = tmp_path / "serve.log"
        with serve_cli(f"file://{root}/", log) as ws:
            text = node("client.mjs", "edit", ws, "doc", "ana", "2", "ana")["text"]
            fill(disk)
            kept = "+kept" * 4000  # more than a page: it cannot fit in the file's last page
            change = encode_update(edit_from_elsewhere(kept))
            closed = node("raw.mjs", f"{ws}/doc", change.hex())
            assert closed["code"] == 4500, closed
            assert "could not be saved" in closed["reason"], closed
            refused = node("raw.mjs", f"{ws}/doc", "0000")
            assert refused["code"] == 4500, refused
            release(disk)
            deadline = time.monotonic() + 30
            while node("raw.mjs", "--expect=1", f"{ws}/doc", "0000")["code"] != 1000:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            served = node("client.mjs", "read", ws, "doc")["text"]
            assert sorted(served) == sorted(text + kept)
        assert "works again" in log.read_text()
        assert anyio.run(stored_text, FileYStore("doc", root=root)) == served


def edit_from_elsewhere(suffix: str) -> bytes:
    """An update appending to the shared text from a client that joined earlier (a Python one)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += suffix
    return doc.get_update()
