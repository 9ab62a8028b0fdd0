"""`ystore export`: a document's merged state as one Yjs update, or its content as JSON."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..operations import export_document
from .app import app, call
from .inspect_cmd import run_operation


class ExportFormat(str, enum.Enum):
    """What `ystore export` writes."""

    update = "update"
    json = "json"


@app.command("export")
def export_command(
    target: Annotated[
        str,
        typer.Argument(
            help="The store: a store file, a file store directory, a SQLite file or a database URL."
        ),
    ],
    doc: Annotated[str, typer.Option("--doc", help="The document to export (its name).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="update: one Yjs v1 update holding the whole state (load it with "
            "Y.applyUpdate in any Yjs client); json: each root's type and value.",
        ),
    ] = ExportFormat.update,
) -> None:
    """Export a document: its merged state as one Yjs update, or its content as JSON.

    Reads without changing the store. Prints nothing else on success. A binary
    update is not written to a terminal: redirect stdout or use -o FILE.
    """
    if output is None and format is ExportFormat.update and sys.stdout.isatty():
        typer.echo(
            "Error: a Yjs update is binary; write it with -o FILE or redirect stdout.", err=True
        )
        raise typer.Exit(2)
    data = run_operation(lambda: export_document(target, doc, format=format.value))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        destination = output
        call(lambda: destination.write_bytes(data))
