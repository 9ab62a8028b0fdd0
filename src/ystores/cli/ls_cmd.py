"""`ystore ls`: a store's documents with their sizes and last activity."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from ..operations import list_store
from .app import app
from .inspect_cmd import document_progress, run_operation
from .render import format_bytes, format_time, print_json


@app.command("ls")
def ls_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A file store directory or file:///dir/, a store file, a SQLite file or "
            "sqlite:///file.db, or postgresql://user@host/dbname."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List a store's documents: records, bytes of updates, last activity; never changes it.

    Documents whose records do not read back whole (damage, a torn tail) are
    marked; `ystore verify` checks them in depth.
    """
    with document_progress("Listing") as progress:
        docs = run_operation(lambda: list_store(target, progress=progress))
    if as_json:
        print_json(
            [
                {
                    "name": d.name,
                    "records": d.records,
                    "bytes": d.bytes,
                    "last_activity": d.last_activity,
                    "healthy": d.healthy,
                }
                for d in docs
            ]
        )
        return
    table = Table(
        Column("document", overflow="fold"), "records", "bytes", "last activity", "health"
    )
    for d in docs:
        table.add_row(
            escape(d.name),
            str(d.records),
            format_bytes(d.bytes),
            format_time(d.last_activity),
            "[green]ok[/green]" if d.healthy else "[yellow]see ystore verify[/yellow]",
        )
    Console(emoji=False).print(table)
