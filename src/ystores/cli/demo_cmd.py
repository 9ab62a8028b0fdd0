"""`ystore demo`: write a document to a file store, read it back and inspect it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
import pycrdt
import typer

from ..filestore.store import FileYStore
from .app import app, library_errors
from .inspect_cmd import inspect_command

DEMO_TEXT = "Hello from ystores: every keystroke is one durable update."


async def _write_and_read(store: FileYStore, text: str) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    root = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for char in text:
        root += char
    doc.unobserve(subscription)
    async with store:
        for update in updates:
            await store.write(update)
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(restored)
    return str(restored.get("text", type=pycrdt.Text))


@app.command("demo")
def demo_command(
    store_dir: Annotated[
        Path, typer.Option("--store", help="Directory of the demo file store.")
    ] = Path("ystore-data"),
    text: Annotated[str, typer.Option(help="Text to type into the document.")] = DEMO_TEXT,
) -> None:
    """Type a text into a document one update per keystroke, read it back, inspect the file."""
    store = FileYStore("demo.y", root=store_dir, metadata_callback=lambda: b"demo")
    with library_errors():
        content = anyio.run(_write_and_read, store, text)
    typer.echo(f"Read back from {store.path}: {content!r}")
    inspect_command(store.file_path, as_json=False)
