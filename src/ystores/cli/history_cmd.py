"""`ystore checkpoint` and `ystore retain`: a store's history, kept fast and bounded."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .common import STORE_HELP, progress_bar, resolve, run_operation, warn_strays
from .render import format_bytes, print_document_reports
from .squash_reports import squash_fields, squash_line
from .times import option_retention

_DOC_HELP = "Only this document (default: every document of the store)."


@app.command("checkpoint")
def checkpoint_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    doc: Annotated[str | None, typer.Option("--doc", metavar="NAME", help=_DOC_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Write a checkpoint of each document: restores start from it; nothing is deleted.

    A checkpoint is the merged state of every record so far, verified before it
    is written and stored beside the history (which stays record by record).
    Loading a document and time travel then replay only the records after the
    latest checkpoint. Safe while servers keep writing. A document whose latest
    checkpoint already covers everything is left as it is. Servers write
    checkpoints on their own with `ystore serve --checkpoint-every N`.
    """
    from ..operations.history import checkpoint_target

    resolve(target)
    warn_strays(target)
    with progress_bar("Checkpointing") as bar:
        results = run_operation(lambda: checkpoint_target(target, doc=doc, progress=bar.steps))
    print_document_reports(
        results,
        as_json=as_json,
        header={"target": target, "documents": len(results)},
        key="checkpoints",
        fields=lambda r: {
            "seq": r.seq,
            "covers": r.covers,
            "raw_bytes": r.raw_bytes,
            "stored_bytes": r.stored_bytes,
            "seconds": round(r.seconds, 6),
        },
        line=lambda name, r: (
            f"checkpoint of {name}: seq {r.seq} covers seqs up to {r.covers}, "
            f"{format_bytes(r.stored_bytes)} stored ({format_bytes(r.raw_bytes)} raw)"
        ),
        summary=lambda written: (
            f"Wrote {_count(written, 'checkpoint')} for {_count(len(results), 'document')} "
            f"of {target}; {len(results) - written} already covered."
        ),
    )


@app.command("retain")
def retain_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    keep: Annotated[
        str,
        typer.Option(
            "--keep",
            metavar="HISTORY",
            help="How much history to keep: a duration (30d, 12h: records younger than "
            "that), a size (64MiB: the newest records that fit), all, or none (a squash).",
        ),
    ],
    doc: Annotated[str | None, typer.Option("--doc", metavar="NAME", help=_DOC_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Drop the history older than what --keep keeps; the content never changes.

    The records dropped are first merged into a checkpoint, so each document
    loads exactly as before and time travel reaches back to that checkpoint
    (older times are an error naming the oldest one kept). Crash-safe and safe
    while servers keep writing. Servers apply it on their own with
    `ystore serve --retain`.
    """
    from ..operations.history import retain_target

    policy = option_retention(keep, "--keep")
    resolve(target)
    warn_strays(target)
    with progress_bar("Retaining") as bar:
        results = run_operation(lambda: retain_target(target, policy, doc=doc, progress=bar.steps))
    print_document_reports(
        results,
        as_json=as_json,
        header={"target": target, "policy": policy.describe(), "documents": len(results)},
        key="retained",
        fields=squash_fields,
        line=lambda name, r: squash_line("retained", name, r),
        summary=lambda changed: (
            f"Applied '{policy.describe()}' to {_count(len(results), 'document')} of "
            f"{target}: {changed} changed, {len(results) - changed} had nothing older to drop."
        ),
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
