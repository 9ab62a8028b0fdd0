"""`ystore pack`: a store's covered history packed into blocks, old checkpoints thinned."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .common import STORE_HELP, library_errors, progress_bar, resolve, run_operation, warn_strays
from .render import format_bytes, print_document_reports

_DOC_HELP = "Only this document (default: every document of the store)."


@app.command("pack")
def pack_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help=STORE_HELP)],
    doc: Annotated[str | None, typer.Option("--doc", metavar="NAME", help=_DOC_HELP)] = None,
    keep_recent: Annotated[
        int,
        typer.Option(
            "--keep-recent",
            min=1,
            metavar="N",
            help="Checkpoints always kept, the newest first (a restore uses the latest).",
        ),
    ] = 1,
    spacing: Annotated[
        int,
        typer.Option(
            "--spacing",
            min=1,
            metavar="N",
            help="Further back, keep one checkpoint per N records (what time travel replays "
            "at most after one).",
        ),
    ] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Pack the history each document's latest checkpoint covers into compressed blocks.

    Old updates are packed a thousand to a block and compressed together, and
    old checkpoints are thinned (the newest --keep-recent, then one per
    --spacing records). Loading, time travel, `ystore log` and copies see the
    same records as before; the records after the latest checkpoint are left as
    they are (write a checkpoint first to pack them too). Crash-safe and safe
    while servers keep writing; servers do it after each checkpoint on their own
    (`ystore serve --pack`, the default).
    """
    from ..history.thinning import ThinningPolicy
    from ..operations.packing import pack_target

    with library_errors():
        thinning = ThinningPolicy(keep_recent=keep_recent, spacing=spacing)
    resolve(target)
    warn_strays(target)
    with progress_bar("Packing") as bar:
        results = run_operation(
            lambda: pack_target(target, doc=doc, thinning=thinning, progress=bar.steps)
        )
    print_document_reports(
        results,
        as_json=as_json,
        header={"target": target, "documents": len(results)},
        key="packed",
        fields=lambda r: {
            "blocks": r.blocks,
            "records_packed": r.records_packed,
            "checkpoints_dropped": r.checkpoints_dropped,
            "bytes_before": r.bytes_before,
            "bytes_after": r.bytes_after,
            "seconds": round(r.seconds, 6),
        },
        line=lambda name, r: (
            f"packed {name}: {r.records_packed} records into {r.blocks} blocks, "
            f"{r.checkpoints_dropped} checkpoints dropped, "
            f"{format_bytes(r.bytes_before)} -> {format_bytes(r.bytes_after)}"
        ),
        summary=lambda packed: (
            f"Packed {packed} of {len(results)} documents of {target}; "
            f"{len(results) - packed} had nothing a checkpoint covers left to pack."
        ),
    )
