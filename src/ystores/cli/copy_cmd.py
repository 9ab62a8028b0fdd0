"""`ystore copy`: copy every document between two stores of any backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import STORE_HELP, fail, progress_bar, resolve, run_operation, warn_strays
from .render import print_json

if TYPE_CHECKING:
    from ..operations import CopyReport


@app.command("copy")
def copy_command(
    source: Annotated[
        str, typer.Argument(help=STORE_HELP.replace("The store", "The store to read"))
    ],
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="The store to write: a directory (made when the first document is written), "
            "a SQLite file or URL, or a Postgres URL (the schema is created in an empty "
            "database).",
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
    and the command exits with 1, as it does for a document whose name a file
    store refuses (hidden, or shaped like one of its side files). Never overwrites.
    Prints one line per document copied or resumed, then a summary line (only the
    summary when nothing was copied); a progress bar shows on a terminal. Files
    in a SOURCE directory that are not store files are skipped with one warning.
    """
    from ..operations import copy_store

    resolve(source)
    resolve(target, existing=False)
    warn_strays(source)
    with progress_bar("Copying", records=True) as bar:
        report = run_operation(
            lambda: copy_store(
                source, target, squash=squash, progress=bar, on_records=bar.add_records
            )
        )
    if as_json:
        print_json(
            {
                "source": report.source,
                "target": report.target,
                "documents": [
                    {"name": d.name, "action": d.action, "written": d.written}
                    | ({"reason": d.reason} if d.reason is not None else {})
                    for d in report.documents
                ],
            }
        )
    else:
        _print_summary(report)
    problems = [f"{d.name!r}: {d.reason}" for d in report.refused]
    if report.conflicts:
        names = ", ".join(repr(name) for name in report.conflicts)
        problems.insert(
            0,
            f"{len(report.conflicts)} documents already hold other records in {target} and "
            f"were not copied: {names}. Copy to an empty store, or remove them there first",
        )
    if problems:
        fail(
            f"{len(problems)} of {len(report.documents)} documents not copied. "
            + "; ".join(problems)
        )


def _print_summary(report: CopyReport) -> None:
    for d in report.documents:
        if d.action in ("copied", "resumed"):
            typer.echo(f"{d.action} {d.name}: {d.written} records")
    copied, resumed = report.count("copied"), report.count("resumed")
    skipped = report.count("skipped")
    total = len(report.documents)
    if not copied and not resumed:
        if skipped == total:
            typer.echo(
                f"Nothing to copy: the {total} documents of {report.source} are already "
                f"in {report.target}."
            )
        return
    records = sum(d.written for d in report.documents)
    line = f"Copied {copied} of {total} documents ({records} records) to {report.target}"
    if resumed:
        line += f", resumed {resumed}"
    if skipped:
        line += f"; {skipped} already there"
    typer.echo(line + ".")
