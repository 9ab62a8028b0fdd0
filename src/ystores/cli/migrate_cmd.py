"""`ystore migrate`: bring a store (file, directory of files, database) up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from ..filestore.inspection import upgrade_file
from ..sql import migrate_database, schema_status
from ..sql.migrate import SchemaReport
from ..targets import Target, resolve_target
from .app import app, call, library_errors
from .render import print_json

DEFAULT_DATABASE = "ystore.db"


@app.command("migrate")
def migrate_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A database URL or SQLite file, a store file, or a directory of store files."
        ),
    ] = DEFAULT_DATABASE,
    to: Annotated[str, typer.Option("--to", help="Schema revision to upgrade to.")] = "head",
    downgrade: Annotated[
        str | None,
        typer.Option(
            "--downgrade", help="Downgrade the schema to this revision ('base' drops it)."
        ),
    ] = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it (databases).")
    ] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status", help="Show the current revision and pending ones; change nothing."
        ),
    ] = False,
    history: Annotated[
        bool, typer.Option("--history", help="List every schema revision; change nothing.")
    ] = False,
    backup: Annotated[
        bool,
        typer.Option("--backup/--no-backup", help="Copy a SQLite file before changing it."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --status).")] = False,
) -> None:
    """Upgrade a store to the current format or schema, atomically; never drops data.

    A database (sqlite:///file.db, a .db file, postgresql://...) is brought to a
    schema revision with the migrations shipped in ystores; a SQLite database
    written by ypy-websocket or pycrdt-store is converted in one transaction,
    after a backup copy. A store file written by ypy-websocket (versions 0, 1, 2),
    or every such file in a directory, is rewritten in the current format: new file,
    fsync, rename over the old one. Current stores are left as they are.
    """
    resolved = call(lambda: resolve_target(target))
    if resolved.kind == "database":
        _migrate_database(resolved, to, downgrade, sql, status, history, backup, as_json)
    elif status or history or sql or downgrade is not None or to != "head":
        typer.echo(
            "Error: --to, --downgrade, --sql, --status and --history apply to databases only.",
            err=True,
        )
        raise typer.Exit(2)
    else:
        files = [resolved.path] if resolved.kind == "file" else _store_files(resolved.path)
        for file in files:
            _upgrade_one(file)


def _store_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _upgrade_one(path: Path) -> None:
    before = call(lambda: upgrade_file(path))
    if before is None:
        typer.echo(f"{path} holds no record yet; nothing to do.")
    elif before == 3:
        typer.echo(f"{path} is already in the current format (version 3).")
    else:
        typer.echo(f"{path} upgraded from version {before} to version 3.")


def _migrate_database(
    target: Target,
    to: str,
    downgrade: str | None,
    sql: bool,
    status: bool,
    history: bool,
    backup: bool,
    as_json: bool,
) -> None:
    with library_errors():
        if status or history:
            report = anyio.run(schema_status, target.location)
            _print_status(report, history, as_json)
            return
        result = anyio.run(
            lambda: migrate_database(
                target.location, to=to, downgrade=downgrade, sql=sql, backup=backup
            )
        )
    typer.echo(result.sql if sql and result.sql is not None else result.summary())


def _print_status(report: SchemaReport, history: bool, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "url": report.url,
                "status": report.status,
                "current": report.current,
                "head": report.head,
                "pending": [r.revision for r in report.pending],
                "history": [
                    {"revision": r.revision, "down_revision": r.down_revision, "message": r.message}
                    for r in report.history
                ],
            }
        )
        return
    typer.echo(
        f"{report.url}: {report.status} (revision {report.current or 'none'}, head {report.head})"
    )
    if report.pending:
        typer.echo("Pending: " + ", ".join(r.revision for r in report.pending))
    if history:
        for revision in report.history:
            marker = "*" if revision.revision == report.current else " "
            typer.echo(f"{marker} {revision.revision}  {revision.message}")
