"""`ystore migrate`: bring a store up to the current format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..filestore.inspection import upgrade_file
from .app import app, call


@app.command("migrate")
def migrate_command(
    target: Annotated[
        Path, typer.Argument(help="A store file written by ypy-websocket or ystores.")
    ],
) -> None:
    """Upgrade a store file to the current format, atomically and in place.

    Every record keeps its update, metadata and timestamp. The new file is written
    beside the old one, fsynced and renamed over it, so a crash leaves one or the
    other. A file already in the current format is left as it is.
    """
    before = call(lambda: upgrade_file(target))
    if before is None:
        typer.echo(f"{target} holds no record yet; nothing to do.")
    elif before == 3:
        typer.echo(f"{target} is already in the current format (version 3).")
    else:
        typer.echo(f"{target} upgraded from version {before} to version 3.")
