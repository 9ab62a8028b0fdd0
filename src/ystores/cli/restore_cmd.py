"""`ystore restore`: revert a document's content to an earlier time with one new update."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .common import STORE_HELP, resolve, run_operation
from .render import format_precise_time, print_json
from .times import TIME_HELP, option_time


@app.command("restore")
def restore_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    doc: Annotated[
        str, typer.Option("--doc", metavar="NAME", help="The document to restore (its name).")
    ],
    at: Annotated[
        str,
        typer.Option("--at", metavar="TIME", help=f"The time to return to: {TIME_HELP}."),
    ],
    metadata: Annotated[
        str,
        typer.Option(
            "--metadata",
            metavar="TEXT",
            help="Stored with the new record, as the application's own writes store "
            "theirs (e.g. who restored).",
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Make a document's content what it was at a time, by appending ONE new update.

    Nothing is rewritten or deleted: the new record holds the operations that
    turn today's content into the old one (text, map keys, lists and XML,
    nested types too), written by a new client. Connected clients receive it
    like any edit; their concurrent edits still merge. The restore is history
    itself: restoring to a time just before it undoes it. `ystore log` lists
    the times; a time older than the history kept is an error naming the
    oldest one.
    """
    from ..operations.history import restore_document

    when = option_time(at, "--at")
    assert when is not None
    resolve(target)
    report = run_operation(
        lambda: restore_document(target, doc, when, metadata=metadata.encode("utf-8"))
    )
    if as_json:
        print_json(
            {"doc": report.doc, "at": report.at, "seq": report.seq, "update_bytes": report.size}
        )
    elif report.seq is None:
        typer.echo(
            f"{doc} already holds its content of {format_precise_time(report.at)} UTC; "
            "nothing was written."
        )
    else:
        typer.echo(
            f"Restored {doc} to its content of {format_precise_time(report.at)} UTC: "
            f"one update of {report.size} bytes appended as seq {report.seq}."
        )
