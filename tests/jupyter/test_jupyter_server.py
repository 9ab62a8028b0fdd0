"""ystores' stores inside a real Jupyter server (jupyter_server + jupyter-collaboration).

Each test starts `jupyter server` in a subprocess on a free port, opens a text file through
the collaboration API (`PUT /api/collaboration/session/{path}`, then the room websocket)
with y-websocket's client under Node, edits, restarts the server and reads the edit back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backends import new_postgres_database
from jupyter.server import JupyterServer, jupyter_server, stored_text, wait_for, wait_for_text

pytestmark = [pytest.mark.jupyter_server, pytest.mark.usefixtures("node_clients")]

SERVER_TIMEOUT = 600  # two server starts on a busy machine
ORIGINAL = "first line\n"


def ystore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ystores", *args], capture_output=True, text=True, timeout=120
    )


def edit_and_wait_until_saved(
    server: JupyterServer, root: Path, store_url: str | None, name: str
) -> tuple[str, str]:
    """Edit `notes.txt` through the room; wait for the file (and the store) to hold the edit.

    Returns the room id and the text the client saw.
    """
    room, session = server.open_text_file("notes.txt")
    text = server.client("edit", room, session, name, "3", name)["text"]
    for i in range(3):
        assert f"<{name}:{i}>" in text
    assert ORIGINAL in text
    wait_for(lambda: (root / "notes.txt").read_text() == text, "the file is saved")
    if store_url is not None:
        doc = f".file:{room.split(':')[-1]}.y"
        wait_for_text(store_url, doc, "source", text)
    return room, text


def loaded_from_store_lines(log: Path, room: str) -> list[str]:
    return [
        line
        for line in log.read_text().splitlines()
        if f"Content in room {room} loaded from the ystore" in line
    ]


def restart_and_read(root: Path, home: Path, options: list[str], room: str) -> str:
    with jupyter_server(root, home, *options) as server:
        again, session = server.open_text_file("notes.txt")
        assert again == room  # the same file id, so the same store document
        text: str = server.client("read", room, session)["text"]
    return text


@pytest.mark.timeout(SERVER_TIMEOUT)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_edit_survives_a_restart_through_ystores_store(tmp_path: Path, backend: str) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    (root / "notes.txt").write_text(ORIGINAL)
    if backend == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'collab.db'}"
        options = [
            "--YDocExtension.ystore_class=ystores.jupyter.SQLiteYStore",
            f"--SQLiteYStore.db_path={tmp_path / 'collab.db'}",
        ]
    else:
        store_url = new_postgres_database()
        options = [
            "--YDocExtension.ystore_class=ystores.jupyter.PostgresYStore",
            f"--PostgresYStore.db_url={store_url}",
        ]

    with jupyter_server(root, home, *options) as server:
        room, edited = edit_and_wait_until_saved(server, root, store_url, "A")
    log = home / "jupyter.log"
    assert "loaded from file notes.txt" in log.read_text()  # first open: from disk
    assert not loaded_from_store_lines(log, room)

    assert restart_and_read(root, home, options, room) == edited
    loaded = loaded_from_store_lines(log, room)
    assert loaded, log.read_text()
    assert re.search(r"ystore (SQLite|Postgres)YStore", loaded[0])
    assert "Traceback" not in log.read_text()

    inspected = ystore("inspect", store_url, "--json")
    assert inspected.returncode == 0, inspected.stderr
    document = f".file:{room.split(':')[-1]}.y"
    assert document in inspected.stdout
    content = ystore("inspect", store_url, "--doc", document, "--content", "--json")
    assert content.returncode == 0, content.stderr
    assert json.loads(content.stdout)["source"]["value"] == edited


@pytest.mark.timeout(SERVER_TIMEOUT)
def test_a_database_written_by_jupyter_collaboration_migrates_and_serves(tmp_path: Path) -> None:
    """jupyter-collaboration's own default store (pycrdt-store's SQLiteYStore) writes
    `.jupyter_ystore.db`; `ystore migrate` converts it; ystores' class serves its content."""
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    (root / "notes.txt").write_text(ORIGINAL)
    database = root / ".jupyter_ystore.db"

    with jupyter_server(root, home) as server:  # jupyter-collaboration's default store
        room, edited = edit_and_wait_until_saved(server, root, None, "P")
    assert database.exists()

    before = ystore("inspect", str(database))
    assert before.returncode == 0, before.stderr
    assert "pycrdt-store" in before.stdout

    migrated = ystore("migrate", str(database))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    document = f".file:{room.split(':')[-1]}.y"
    assert stored_text(f"sqlite:///{database}", document, "source") == edited

    options = ["--YDocExtension.ystore_class=ystores.jupyter.SQLiteYStore"]  # the one line
    assert restart_and_read(root, home, options, room) == edited
    assert loaded_from_store_lines(home / "jupyter.log", room)
