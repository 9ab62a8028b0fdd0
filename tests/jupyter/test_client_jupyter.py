"""`ystores.client` in a jupyter-collaboration room of a real Jupyter server, beside y-websocket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from jupyter.server import jupyter_server, wait_for
from ystores.client import connect

pytestmark = [pytest.mark.jupyter_server, pytest.mark.usefixtures("node_clients")]


@pytest.mark.timeout(300)
def test_the_python_client_edits_a_text_file_in_a_collaboration_room(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("first line\n")
    with jupyter_server(root, tmp_path / "home") as server:
        room, session = server.open_text_file("notes.txt")
        url = server.url.replace("http://", "ws://") + f"/api/collaboration/room/{room}"
        params = {"sessionId": session, "token": server.token}

        async def edit() -> str:
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            source = doc.get("source", type=pycrdt.Text)
            async with connect(url, doc=doc, params=params) as client:
                with anyio.fail_after(60):
                    await client.wait_synced()
                    while str(source) != "first line\n":  # the room loads the file first
                        await anyio.sleep(0.05)
                source += "from Python\n"
                # A y-websocket client in Node sees the edit and adds its own.
                text = await anyio.to_thread.run_sync(
                    lambda: server.client("edit", room, session, "ana", "2", "ana")["text"]
                )
                with anyio.fail_after(60):
                    while str(source) != text:
                        await anyio.sleep(0.05)
                return str(source)

        text = anyio.run(edit)
        assert "first line\nfrom Python\n" in text.replace("<ana:0>", "").replace("<ana:1>", "")
        assert text.count("<ana:") == 2
        wait_for(lambda: (root / "notes.txt").read_text() == text, "the file is saved")
