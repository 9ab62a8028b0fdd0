"""A room's store fails and comes back while the room keeps changing (issue 11, case 2)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pycrdt
import pytest

from ystores import FileYStore
from ystores.room import YRoom

from .waits import until

pytestmark = pytest.mark.anyio


def break_store(root: Path) -> None:
    shutil.rmtree(root)
    root.write_text("a file where the store's directory was\n")


def mend_store(root: Path) -> None:
    root.unlink()
    root.mkdir()


async def test_every_change_made_while_the_store_fails_is_stored_once_it_works(
    tmp_path: Path,
) -> None:
    """Server-side edits keep coming while the store fails, more than the write buffer
    holds: once the store works, the room stores its whole document (again if edits came
    in meanwhile), counts nothing as unsaved, and the store holds every edit."""
    root = tmp_path / "store"
    root.mkdir()
    room = YRoom(ystore=FileYStore("doc", root=root), write_buffer=2, store_retry_delay=0.05)
    async with room:
        text = room.ydoc.get("text", type=pycrdt.Text)
        text += "start;"
        await until(lambda: room.unsaved == 0)
        await anyio.to_thread.run_sync(break_store, root)
        text += "fails;"
        await until(lambda: room.write_error is not None)
        for n in range(50):
            text += f"{n};"
            await anyio.lowlevel.checkpoint()
        await anyio.to_thread.run_sync(mend_store, root)
        for n in range(50, 100):  # edits keep coming while it recovers
            text += f"{n};"
            await anyio.lowlevel.checkpoint()
        await until(lambda: room.write_error is None and room.unsaved == 0)
        expected = str(text)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await FileYStore("doc", root=root).apply_updates(doc)
    assert str(doc.get("text", type=pycrdt.Text)) == expected
    assert expected.endswith("99;")
