"""`ystore ls`: a store's documents with their sizes and last activity."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from .app import app
from .common import STORE_HELP, call, progress_bar, resolve, run_operation, warn_strays
from .render import Col, format_bytes, format_time, print_json, print_table


@app.command("ls")
def ls_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List a store's documents: records, bytes of updates, last activity; never changes it.

    Only documents are listed. Documents whose records do not read back whole
    (damage, a torn tail) are marked; `ystore verify` checks them in depth. In a
    file store, the store's own side files (a torn tail saved as NAME.torn-N, a
    backup NAME.bak-TIME, a temporary file left by a crash) follow, marked as
    such; files that are not store files are skipped with one warning line.
    """
    from ..operations.listing import list_side_files, list_store

    resolve(target)
    warn_strays(target)
    with progress_bar("Listing") as bar:
        docs = run_operation(lambda: list_store(target, progress=bar))
    sides = call(lambda: list_side_files(target))
    if as_json:
        listed: list[dict[str, Any]] = [
            {
                "name": d.name,
                "records": d.records,
                "bytes": d.bytes,
                "last_activity": d.last_activity,
                "healthy": d.healthy,
            }
            for d in docs
        ]
        listed += [{"name": s.name, "side_file": s.kind, "bytes": s.size} for s in sides]
        print_json(listed)
        return
    columns = [
        Col("document", keep=100, fold=True),
        Col("records", keep=90, justify="right"),
        Col("bytes", keep=80, justify="right"),
        Col("last activity", keep=50),
        Col("health", keep=95),
    ]
    rows = [
        [
            escape(d.name),
            str(d.records),
            format_bytes(d.bytes),
            format_time(d.last_activity),
            "[green]ok[/green]" if d.healthy else "[yellow]see ystore verify[/yellow]",
        ]
        for d in docs
    ]
    rows += [
        [escape(s.name), "-", format_bytes(s.size), "-", f"[dim]{s.kind} side file[/dim]"]
        for s in sides
    ]
    print_table(columns, rows)
