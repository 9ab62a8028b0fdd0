"""`ystore log`: a document's history, record by record; never changes the store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .app import app
from .common import STORE_HELP, resolve, run_operation
from .render import Col, format_precise_time, print_json, print_table
from .times import TIME_HELP, option_time

if TYPE_CHECKING:
    from ..operations.history import LogEntry


@app.command("log")
def log_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    doc: Annotated[str, typer.Option("--doc", metavar="NAME", help="The document (its name).")],
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help=f"Only records written since: {TIME_HELP}."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help="Only records written until then."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List a document's history: each record's time, seq, size, kind and metadata.

    Oldest first, checkpoints included (their metadata says which seq they
    cover). Metadata is shown decoded: JSON as JSON, UTF-8 as text, anything
    else in hex; it is whatever the application stored with each update,
    typically who made the change. Pick a time from this list for
    `ystore export --at` or `ystore restore --at`. Times are UTC.
    """
    from ..operations.history import document_log

    start = option_time(since, "--since")
    end = option_time(until, "--until")
    resolve(target)
    entries = run_operation(lambda: document_log(target, doc, since=start, until=end))
    if as_json:
        print_json([_as_dict(entry) for entry in entries])
        return
    if not entries:
        typer.echo(f"No record of {doc} in that time range.")
        return
    columns = [
        Col("time (UTC)", keep=100),
        Col("seq", keep=90, justify="right"),
        Col("size", keep=70, justify="right"),
        Col("kind", keep=60),
        Col("metadata", keep=80, fold=True),
    ]
    rows = [
        [
            format_precise_time(e.timestamp),
            str(e.seq),
            str(e.size),
            e.kind,
            escape(_shown(e.metadata_value())),
        ]
        for e in entries
    ]
    print_table(columns, rows)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _as_dict(entry: LogEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "timestamp": entry.timestamp,
        "time": format_precise_time(entry.timestamp),
        "kind": entry.kind,
        "size": entry.size,
        "metadata": entry.metadata_value(),
    }
