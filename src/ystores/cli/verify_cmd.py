"""`ystore verify`: check every record of a store; `--repair` cuts torn tails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import STORE_HELP, call, progress_bar, resolve, run_operation, warn_strays
from .render import format_bytes, print_json

if TYPE_CHECKING:
    from ..operations import Problem


def _problem(problem: Problem) -> dict[str, str]:
    return {"document": problem.document, "kind": problem.kind, "message": problem.message}


@app.command("verify")
def verify_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Repair store files (cut a torn tail, or rewrite without damaged records), "
            "after copying each to FILE.bak-TIME.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every record: framing and checksums, seq order, that each update decodes,
    and that each checkpoint's header matches its digest.

    Exits with 0 when the store is healthy, 1 when not, listing the problems (one
    line each, on stderr). Without --repair nothing is changed. With it, a store
    file is first copied to FILE.bak-TIME, then a torn tail (a write cut short at
    its end) is cut off, or damaged records in its middle (failing their checksum)
    are left out of a rewritten file; their updates are lost from the document
    (they stay in the backup). Undecodable updates and databases are only
    reported: restore those from a backup. The store's side files (torn tails
    saved as NAME.torn-N, backups, temporary files) are listed after the report.
    """
    from ..operations import verify_store
    from ..operations.listing import list_side_files

    resolve(target)
    warn_strays(target)
    with progress_bar("Verifying") as bar:
        report = run_operation(lambda: verify_store(target, repair=repair, progress=bar))
    sides = call(lambda: list_side_files(target))
    if as_json:
        print_json(
            {
                "target": report.target,
                "healthy": report.healthy,
                "documents": report.documents,
                "records": report.records,
                "problems": [_problem(p) for p in report.problems],
                "remaining": [_problem(p) for p in report.remaining],
                "repairs": [
                    {
                        "document": r.document,
                        "kind": r.kind,
                        "path": r.path,
                        "backup": r.backup,
                        "offset": r.offset,
                        "removed": r.removed,
                    }
                    for r in report.repairs
                ],
                "side_files": [{"name": s.name, "kind": s.kind, "bytes": s.size} for s in sides],
            }
        )
    else:
        for r in report.repairs:
            what = "torn tail" if r.kind == "torn-tail" else "damaged records"
            typer.echo(
                f"{r.document}: cut {r.removed} bytes of {what} from byte {r.offset}; "
                f"the file as it was is in {r.backup}."
            )
        for p in report.remaining:
            typer.echo(f"{p.document}: {p.kind}: {p.message}", err=True)
        if report.healthy:
            typer.echo(
                f"{target}: {report.documents} documents, {report.records} records, no problem."
            )
        for s in sides:
            typer.echo(f"{s.name}: {s.kind} side file of the store, {format_bytes(s.size)}.")
    if not report.healthy:
        raise typer.Exit(1)
