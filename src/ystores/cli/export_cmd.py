"""`ystore export`: a document's merged state as one Yjs update, or its content as JSON."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .common import STORE_HELP, call, fail, resolve, run_operation
from .times import TIME_HELP, option_time


class ExportFormat(str, enum.Enum):
    """What `ystore export` writes."""

    update = "update"
    json = "json"


@app.command("export")
def export_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    doc: Annotated[
        str, typer.Option("--doc", metavar="NAME", help="The document to export (its name).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to this file instead of stdout."
        ),
    ] = None,
    format: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            metavar="update|json",
            help="update (the default): one Yjs v1 update holding the whole state (load it "
            "with Y.applyUpdate in any Yjs client); json: each root's type and value.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help=f"The document as it was then (every record written by then): {TIME_HELP}.",
        ),
    ] = None,
) -> None:
    """Export a document: its merged state as one Yjs update, or its content as JSON.

    Reads without changing the store. Prints nothing else on success. A binary
    update is not written to a terminal: redirect stdout or use -o FILE. With
    --at, the state as of that time (`ystore log` lists the times); a time older
    than the history kept is an error naming the oldest one.
    """
    from ..operations import export_document

    if as_json and format is ExportFormat.update:
        fail("--json asks for JSON, --format update for a binary update; give one.", code=2)
    chosen = ExportFormat.json if as_json else (format or ExportFormat.update)
    if output is None and chosen is ExportFormat.update and sys.stdout.isatty():
        fail("a Yjs update is binary; write it with -o FILE or redirect stdout.", code=2)
    when = option_time(at, "--at")
    resolve(target)
    data = run_operation(lambda: export_document(target, doc, format=chosen.value, at=when))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        destination = output
        call(lambda: destination.write_bytes(data))
