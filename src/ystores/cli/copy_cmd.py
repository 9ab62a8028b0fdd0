"""`ystore copy`: copy every document between two stores of any backends."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, TextColumn

from ..operations import copy_store
from .app import app
from .inspect_cmd import run_operation
from .render import print_json


@app.command("copy")
def copy_command(
    source: Annotated[
        str,
        typer.Argument(
            help="The store to read: a file store directory or file:///dir/, a store file, "
            "a SQLite file or sqlite:///file.db (ystores, ypy-websocket or pycrdt-store), "
            "or postgresql://user@host/dbname."
        ),
    ],
    target: Annotated[
        str,
        typer.Argument(
            help="The store to write: a directory (made if missing), a SQLite file or URL, "
            "or a Postgres URL (the schema is created in an empty database)."
        ),
    ],
    squash: Annotated[
        bool,
        typer.Option("--squash", help="Copy each document as one merged update."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what happened to each document as JSON.")
    ] = False,
) -> None:
    """Copy every document from SOURCE to TARGET, keeping records, metadata and timestamps.

    Idempotent and resumable: a document the target already holds identically is
    skipped; one the target holds the first records of (an interrupted copy) gets
    the rest; one the target holds other records for is left alone and reported,
    and the command exits with 1. Never overwrites. Quiet on success; a progress
    bar shows on a terminal.
    """
    console = Console(stderr=True, emoji=False)
    columns = (*Progress.get_default_columns(), TextColumn("{task.fields[records]} records"))
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("Copying", total=None, records=0)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"Copying {name}")

        def on_records(count: int) -> None:
            bar.update(task, records=bar.tasks[0].fields["records"] + count)

        report = run_operation(
            lambda: copy_store(
                source, target, squash=squash, progress=progress, on_records=on_records
            )
        )
    if as_json:
        print_json(
            {
                "source": report.source,
                "target": report.target,
                "documents": [
                    {"name": d.name, "action": d.action, "written": d.written}
                    for d in report.documents
                ],
            }
        )
    if report.conflicts:
        names = ", ".join(repr(name) for name in report.conflicts)
        typer.echo(
            f"Error: {len(report.conflicts)} documents already hold other records in {target} "
            f"and were not copied: {names}. Copy to an empty store, or remove them there first.",
            err=True,
        )
        raise typer.Exit(1)
