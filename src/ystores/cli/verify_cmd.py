"""`ystore verify`: check every record of a store; `--repair` cuts torn tails."""

from __future__ import annotations

from typing import Annotated

import typer

from ..operations import verify_store
from .app import app
from .inspect_cmd import document_progress, run_operation
from .render import print_json


@app.command("verify")
def verify_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A store file, a file store directory or file:///dir/, a SQLite file or "
            "sqlite:///file.db, or postgresql://user@host/dbname."
        ),
    ],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Cut torn tails off store files, after copying each to FILE.bak-TIME.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every record: framing and checksums, seq order, that each update decodes.

    Exits with 0 when the store is healthy, 1 when not, listing the problems (one
    line each, on stderr). Without --repair nothing is changed. With it, a torn
    tail (a write cut short at the end of a store file) is cut off after a backup
    copy; damage in the middle of a file and undecodable updates are only
    reported: restore those from a backup.
    """
    with document_progress("Verifying") as progress:
        report = run_operation(lambda: verify_store(target, repair=repair, progress=progress))
    repaired = {r.document for r in report.repairs}
    if as_json:
        print_json(
            {
                "target": report.target,
                "healthy": report.healthy,
                "documents": report.documents,
                "records": report.records,
                "problems": [
                    {
                        "document": p.document,
                        "kind": p.kind,
                        "message": p.message,
                        "repaired": p.kind == "torn-tail" and p.document in repaired,
                    }
                    for p in report.problems
                ],
                "repairs": [
                    {
                        "document": r.document,
                        "path": r.path,
                        "backup": r.backup,
                        "offset": r.offset,
                        "removed": r.removed,
                    }
                    for r in report.repairs
                ],
            }
        )
    else:
        for r in report.repairs:
            typer.echo(
                f"{r.document}: cut {r.removed} bytes of torn tail at byte {r.offset}; "
                f"the file as it was is in {r.backup}."
            )
        for p in report.problems:
            if not (p.kind == "torn-tail" and p.document in repaired):
                typer.echo(f"{p.document}: {p.kind}: {p.message}", err=True)
        if report.healthy:
            typer.echo(
                f"{target}: {report.documents} documents, {report.records} records, no problem."
            )
    if not report.healthy:
        raise typer.Exit(1)
