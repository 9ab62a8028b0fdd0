"""`ystore import`: append a Yjs update (or JSON content) to a document of a store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .common import call, resolve, run_operation
from .render import print_json


@app.command("import")
def import_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A file holding one Yjs v1 update (as `ystore export` writes), or JSON "
            "content ({root: {type, value}}, as `ystore export --format json` writes); "
            "- reads stdin.",
        ),
    ],
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="The store to write to: a file store directory or file:///dir/ (made if "
            "missing), an existing store file, a SQLite file or sqlite:///file.db (made if "
            "missing), or postgresql://user@host/dbname.",
        ),
    ],
    doc: Annotated[
        str, typer.Option("--doc", metavar="NAME", help="The document to append to (its name).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was imported as JSON.")
    ] = False,
) -> None:
    """Append a Yjs update, or JSON content, to a document; quiet on success.

    An update is appended as one record whatever the document holds (applying an
    update twice is harmless). JSON content is turned into an update: Y.Text,
    Y.Map and Y.Array roots map cleanly, XML does not; it is accepted only for a
    document with no records yet, since it would duplicate text and lists.
    """
    from ..operations import import_document

    resolve(target, existing=False)
    data = sys.stdin.buffer.read() if source == "-" else call(lambda: Path(source).read_bytes())
    from_json = run_operation(lambda: import_document(target, doc, data))
    if as_json:
        print_json(
            {"document": doc, "input": "json" if from_json else "update", "bytes": len(data)}
        )
