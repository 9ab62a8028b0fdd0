"""`ystore inspect`: what a store holds and whether it is healthy; never changes it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .app import app
from .common import fail, progress_bar, resolve, run_operation, warn_strays
from .render import print_json
from .reports import print_report, report_as_dict


@app.command("inspect")
def inspect_cli(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A store file (any format version, ypy-websocket's too), a file store "
            "directory or file:///dir/, a SQLite file or sqlite:///file.db (ystores, "
            "ypy-websocket or pycrdt-store), or postgresql://user@host/dbname.",
        ),
    ],
    doc: Annotated[
        str | None, typer.Option("--doc", metavar="NAME", help="Only this document (its name).")
    ] = None,
    content: Annotated[
        bool,
        typer.Option(
            "--content",
            help="Print the document's content: each root with its type and value "
            "(needs --doc unless the store holds one document).",
        ),
    ] = False,
    records: Annotated[
        bool,
        typer.Option(
            "--records",
            help="List every record: seq, kind, time, size, metadata, and the client ids "
            "and clock ranges its update writes and deletes.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show what a store holds and whether it is healthy; never changes it.

    For the store: its format or schema version and size. For each document:
    records and snapshots, bytes, first and last write, metadata values with their
    counts, and health (checksums and framing, torn tail, updates that do not
    decode). SQLite files are opened read-only; nothing is created or cut.

    Exits with 1 when the store, or a document in it, cannot be read (damage,
    unknown format); a torn tail alone is reported but exits with 0.
    """
    from ..operations import inspect_store

    resolve(target)
    warn_strays(target)
    if content:
        _content(target, doc, as_json)
        return
    with progress_bar("Inspecting") as bar:
        report = run_operation(
            lambda: inspect_store(target, doc=doc, records=records, progress=bar)
        )
    if as_json:
        print_json(report_as_dict(report))
    else:
        print_report(report)
    if report.problem is not None or any(d.problem is not None for d in report.documents):
        raise typer.Exit(1)


def _content(target: str, doc: str | None, as_json: bool) -> None:
    from ..operations import content_as_json, document_content, list_store

    if doc is None:
        names = [d.name for d in run_operation(lambda: list_store(target))]
        if len(names) != 1:
            fail(
                f"{target} holds {len(names)} documents; choose one with --doc NAME "
                "(`ystore ls` lists them).",
                code=2,
            )
        doc = names[0]
    name = doc
    roots = run_operation(lambda: document_content(target, name))
    if as_json:
        print_json(content_as_json(roots))
        return
    # Plain lines, never wrapped: the content is the user's text, often redirected to a file.
    if not roots:
        typer.echo("(the document is empty)")
    for root_name, root in roots.items():
        typer.echo(f"{root_name} ({root.type})")
        if isinstance(root.value, str):
            typer.echo(root.value)
        else:
            typer.echo(json.dumps(root.value, indent=2, ensure_ascii=False))
