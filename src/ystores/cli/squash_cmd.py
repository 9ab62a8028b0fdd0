"""`ystore squash`: compact the documents of a store by policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..compaction import CompactionPolicy
from .app import app
from .common import call, progress_bar, resolve, run_operation, warn_strays
from .render import format_bytes, print_json
from .squash_reports import squash_fields, squash_line

if TYPE_CHECKING:
    from ..compaction.sweep import SweepResult


@app.command("squash")
def squash_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="An existing store: a store file, a file store directory, a SQLite file or "
            "a database URL.",
        ),
    ] = "ystore.db",
    doc: Annotated[
        str | None, typer.Option("--doc", metavar="NAME", help="Only this document.")
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(
            "--ttl", min=0, metavar="SECONDS", help="Squash documents idle for this many seconds."
        ),
    ] = None,
    max_updates: Annotated[
        int | None,
        typer.Option(
            "--max-updates",
            min=0,
            metavar="COUNT",
            help="Squash documents with more records than this.",
        ),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            min=0,
            metavar="BYTES",
            help="Squash documents whose records hold more bytes.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be squashed; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Merge each due document's history into one snapshot; the content never changes.

    A document is due when any given condition holds (--ttl, --max-updates,
    --max-bytes); with none given, every document with more than one record is
    squashed. Safe while servers keep writing: records written meanwhile stay.
    Files are replaced atomically; a SQLite file is vacuumed afterwards. Never
    creates a store. Prints one line per document squashed, then a summary line
    (only the summary when nothing was due); a progress bar shows on a terminal.
    """
    from ..compaction.sweep import squash_target

    policy = call(lambda: CompactionPolicy(ttl=ttl, max_updates=max_updates, max_bytes=max_bytes))
    resolve(target)
    warn_strays(target)
    with progress_bar("Squashing") as bar:
        result = run_operation(
            lambda: squash_target(target, policy, doc=doc, dry_run=dry_run, progress=bar.steps)
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
        "squashed": [{"doc": r.doc, **squash_fields(r)} for r in result.squashed],
        "skipped": [name for name, _ in result.skipped],
        "seconds": round(result.seconds, 6),
        "vacuumed": result.vacuumed,
    }


def _print_summary(result: SweepResult, dry_run: bool) -> None:
    verb = "would squash" if dry_run else "squashed"
    for r in result.squashed:
        typer.echo(squash_line(verb, r.doc, r))
    if not result.squashed:
        typer.echo(
            f"Nothing to squash: none of the {result.documents} documents of {result.target} "
            "is due."
        )
        return
    before = sum(r.bytes_before for r in result.squashed)
    after = sum(r.bytes_after for r in result.squashed)
    typer.echo(
        f"{verb.capitalize()} {len(result.squashed)} of {result.documents} documents of "
        f"{result.target} ({format_bytes(before)} -> {format_bytes(after)}) in "
        f"{result.seconds:.2f} s; {len(result.skipped)} not due."
        + (" The SQLite file was vacuumed." if result.vacuumed else "")
    )
