"""`ystore serve` keeping history: checkpoints written while clients edit, nothing squashed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from backends import new_postgres_database
from room.kit import node
from ystores import RecordKind
from ystores.urls import open_store

from .kit import serve


async def stored(url: str, name: str) -> tuple[str, list[RecordKind]]:
    """The document's text and the kinds of its records (checkpoints included)."""
    store = open_store(url, name)
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await store.apply_updates(doc)
        kinds = [r.kind async for r in store.read_records(checkpoints=True)]  # type: ignore[call-arg]
    finally:
        await store.aclose()
    return str(doc.get("text", type=pycrdt.Text)), kinds


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_served_documents_keep_history_with_checkpoints(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}" if backend == "sqlite" else new_postgres_database()
    args = ["--retain", "30d", "--checkpoint-every", "5", "--compress"]
    with serve("--store", url, *args, cwd=tmp_path, log=tmp_path / "serve.log") as served:
        text = node("client.mjs", "edit", served.ws, "notes/a", "ana", "40", "ana")["text"]
        deadline = time.monotonic() + 60
        while RecordKind.CHECKPOINT not in anyio.run(stored, url, "notes/a")[1]:
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.2)
    final, kinds = anyio.run(stored, url, "notes/a")
    assert final == text
    assert RecordKind.SNAPSHOT not in kinds  # history kept: nothing squashed
    assert kinds.count(RecordKind.UPDATE) > 5  # the room batches keystrokes; none dropped


def test_a_restore_reaches_the_clients_of_a_running_server(
    node_clients: None, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with serve("--store", url, "--retain", "all", cwd=tmp_path, log=tmp_path / "serve.log") as sv:
        node("client.mjs", "edit", sv.ws, "notes/a", "ana", "10", "ana")
        time.sleep(1.5)  # the room has stored every edit it received by then
        before = node("client.mjs", "read", sv.ws, "notes/a")["text"]
        assert "<ana:0>" in before
        moment = time.time()
        time.sleep(1.5)
        node("client.mjs", "edit", sv.ws, "notes/a", "bob", "10", "bob")
        assert "<bob:" in node("client.mjs", "read", sv.ws, "notes/a")["text"]
        restored = subprocess.run(
            [sys.executable, "-m", "ystores", "restore", url, "--doc", "notes/a",
             "--at", str(moment)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        assert "one update" in restored.stdout
        deadline = time.monotonic() + 60
        while node("client.mjs", "read", sv.ws, "notes/a")["text"] != before:
            assert time.monotonic() < deadline, "the restore never reached the room"
            time.sleep(0.2)
    assert anyio.run(stored, url, "notes/a")[0] == before
