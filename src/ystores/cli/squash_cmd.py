"""`ystore squash`: compact the documents of a store by policy."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..compaction import CompactionPolicy
from ..compaction.sweep import SweepResult, squash_target
from .app import app, library_errors
from .render import format_bytes, print_json


@app.command("squash")
def squash_command(
    target: Annotated[
        str,
        typer.Argument(help="A store file, a directory of store files, or a database URL / file."),
    ] = "ystore.db",
    doc: Annotated[str | None, typer.Option("--doc", help="Only this document.")] = None,
    ttl: Annotated[
        float | None, typer.Option("--ttl", help="Squash documents idle for this many seconds.")
    ] = None,
    max_updates: Annotated[
        int | None,
        typer.Option("--max-updates", help="Squash documents with more records than this."),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option("--max-bytes", help="Squash documents whose records hold more bytes."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be squashed; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Merge each due document's history into one snapshot; the content never changes.

    A document is due when any given condition holds (--ttl, --max-updates,
    --max-bytes); with none given, every document with more than one record is
    squashed. Safe while servers keep writing: records written meanwhile stay.
    Files are replaced atomically; a SQLite file is vacuumed afterwards.
    """
    policy = CompactionPolicy(ttl=ttl, max_updates=max_updates, max_bytes=max_bytes)
    with library_errors():
        if as_json:
            result = anyio.run(lambda: squash_target(target, policy, doc=doc, dry_run=dry_run))
        else:
            console = Console(stderr=True)
            with Progress(transient=True, console=console, disable=not console.is_terminal) as bar:
                task = bar.add_task("Squashing", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = anyio.run(
                    lambda: squash_target(
                        target, policy, doc=doc, dry_run=dry_run, progress=advance
                    )
                )
    if as_json:
        print_json(_as_dict(result, dry_run))
    else:
        _print_summary(result, dry_run)


def _as_dict(result: SweepResult, dry_run: bool) -> dict[str, object]:
    return {
        "target": result.target,
        "dry_run": dry_run,
        "documents": result.documents,
        "squashed": [
            {
                "doc": r.doc,
                "records_before": r.records_before,
                "records_after": r.records_after,
                "bytes_before": r.bytes_before,
                "bytes_after": r.bytes_after,
                "cut_seq": r.cut_seq,
                "seconds": round(r.seconds, 6),
            }
            for r in result.squashed
        ],
        "skipped": [name for name, _ in result.skipped],
        "seconds": round(result.seconds, 6),
        "vacuumed": result.vacuumed,
    }


def _print_summary(result: SweepResult, dry_run: bool) -> None:
    reports = result.squashed
    table = Table(title=f"{'Would squash' if dry_run else 'Squashed'}: {result.target}")
    for column in (
        "documents",
        "squashed",
        "records before",
        "records after",
        "bytes before",
        "bytes after",
        "time",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(result.documents),
        str(len(reports)),
        str(sum(r.records_before for r in reports)),
        str(sum(r.records_after for r in reports)),
        format_bytes(sum(r.bytes_before for r in reports)),
        format_bytes(sum(r.bytes_after for r in reports)),
        f"{result.seconds:.2f} s",
    )
    Console().print(table)
