"""`ystore demo`: type a text into the document `demo` of a store, read it back, inspect it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import app
from .common import resolve, run_operation
from .render import print_json
from .reports import print_report, report_as_dict

if TYPE_CHECKING:
    from ..base import BaseYStore

DEMO_TEXT = "Hello from ystores: every keystroke is one durable update."
DEMO_DOCUMENT = "demo"
"""The document's name: the room a Yjs client joins at ws://HOST:PORT/demo."""


async def _write_and_read(store: BaseYStore, text: str) -> str:
    import pycrdt

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
    store: Annotated[
        str,
        typer.Option(
            "--store",
            metavar="STORE",
            help="The store to write to (made if missing): a directory, a SQLite file or "
            "a database URL, named as for every other command.",
        ),
    ] = "ystore-data",
    text: Annotated[
        str, typer.Option(metavar="TEXT", help="Text to type into the document.")
    ] = DEMO_TEXT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the text read back and the report as JSON.")
    ] = False,
) -> None:
    """Type a text into the document `demo`, one update per keystroke, read it back, inspect it.

    The document is the one a Yjs client (or the browser page) edits in the room
    `demo` of `ystore serve --store STORE`: the same name in the same store.
    """
    from ..operations import inspect_store
    from ..urls import open_store

    target = resolve(store, existing=False)

    async def demo() -> str:
        written = open_store(target.url, DEMO_DOCUMENT, metadata_callback=lambda: b"demo")
        return await _write_and_read(written, text)

    content = run_operation(demo)
    report = run_operation(lambda: inspect_store(store, doc=DEMO_DOCUMENT))
    if as_json:
        print_json(
            {
                "store": store,
                "document": DEMO_DOCUMENT,
                "text": content,
                "report": report_as_dict(report),
            }
        )
        return
    typer.echo(f"Read back document {DEMO_DOCUMENT!r} from {store}: {content!r}")
    print_report(report)
    typer.echo(f"Serve it with `ystore serve --store {store}`; its room is {DEMO_DOCUMENT!r}.")
