"""`ystore migrate`: bring a store (file, directory of files, database) up to date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from ..errors import YStoreError
from ..targets import Target
from .app import app
from .common import fail, library_errors, progress_bar, quiet_upgrade_log, resolve, warn
from .render import print_json

if TYPE_CHECKING:
    from ..sql.migrate import SchemaReport

DEFAULT_DATABASE = "ystore.db"


@app.command("migrate")
def migrate_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A database URL or SQLite file, a store file, or a directory of store files.",
        ),
    ] = DEFAULT_DATABASE,
    to: Annotated[
        str, typer.Option("--to", metavar="REVISION", help="Schema revision to upgrade to.")
    ] = "head",
    downgrade: Annotated[
        str | None,
        typer.Option(
            "--downgrade",
            metavar="REVISION",
            help="Downgrade the schema to this revision ('base' drops it).",
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
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Upgrade a store to the current format or schema, atomically; never drops data.

    A database (sqlite:///file.db, a .db file, postgresql://...) is brought to a
    schema revision with the migrations shipped in ystores; a SQLite database
    written by ypy-websocket or pycrdt-store is converted in one transaction,
    after a backup copy. A store file written by ypy-websocket (versions 0, 1, 2),
    or every such file in a directory, is rewritten in the current format: new file,
    fsync, rename over the old one. Current stores are left as they are. In a
    directory, the store's side files (NAME.torn-N, NAME.bak-TIME, temporary files)
    and files that are not store files are skipped with one warning line each.
    Prints one line per file upgraded and a summary line. Never creates a store:
    a SQLite file must exist (`ystore copy` or `serve` make new ones).
    """
    from ..rootdir import walk_root

    resolved = resolve(target, existing=not sql)  # --sql prints, and changes nothing
    if resolved.kind == "database":
        _migrate_database(resolved, to, downgrade, sql, status, history, backup, as_json)
        return
    if status or history or sql or downgrade is not None or to != "head":
        fail("--to, --downgrade, --sql, --status and --history apply to databases only.", code=2)
    if resolved.kind == "file":
        files, skipped_sides = [resolved.path], []
    else:
        listing = walk_root(resolved.path)
        files = [resolved.path / name for name in listing.documents]
        skipped_sides = [side.name for side in listing.side_files]
        if skipped_sides:
            shown = ", ".join(skipped_sides[:5]) + (" and more" if len(skipped_sides) > 5 else "")
            warn(f"Skipped {len(skipped_sides)} side files of the store (torn tails, backups, "
                 f"temporary files), which are not documents: {shown}.")  # fmt: skip
        strays = listing.strays_warning()
        if strays is not None:
            warn(strays)
    _upgrade_files(target, files, single=resolved.kind == "file", as_json=as_json)


def _upgrade_files(target: str, files: list[Path], *, single: bool, as_json: bool) -> None:
    from ..filestore.inspection import upgrade_file

    results: list[dict[str, object]] = []
    failures: list[str] = []
    with quiet_upgrade_log(), progress_bar("Migrating") as bar:
        for done, path in enumerate(files, 1):
            try:
                before = upgrade_file(path)
            except (YStoreError, OSError) as exc:
                failures.append(f"{path}: {exc}")
                results.append({"path": str(path), "action": "failed", "error": str(exc)})
            else:
                action = "empty" if before is None else "current" if before >= 3 else "upgraded"
                results.append({"path": str(path), "action": action, "from_version": before})
                if action == "upgraded" and not as_json:
                    typer.echo(f"{path} upgraded from version {before} to version 4.")
            bar(path.name, done, len(files))
    if as_json:
        print_json({"target": target, "files": results})
    elif single and results and results[0]["action"] == "current":
        typer.echo(
            f"{files[0]} is already in the current format (version {results[0]['from_version']})."
        )
    elif single and results and results[0]["action"] == "empty":
        typer.echo(f"{files[0]} holds no record yet; nothing to do.")
    elif not single:
        upgraded = sum(r["action"] == "upgraded" for r in results)
        current = sum(r["action"] in ("current", "empty") for r in results)
        if upgraded:
            typer.echo(f"Upgraded {upgraded} of {len(files)} files of {target} to version 4; "
                       f"{current} already current.")  # fmt: skip
        elif not failures:
            typer.echo(f"Nothing to migrate: the {len(files)} files of {target} are current.")
    if failures:
        fail(f"{len(failures)} of {len(files)} files could not be upgraded: " + "; ".join(failures))


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
        from ..sql import migrate_database, schema_status  # the SQL extra, checked here

        if status or history:
            report = anyio.run(schema_status, target.location)
            _print_status(report, history, as_json)
            return
        result = anyio.run(
            lambda: migrate_database(
                target.location, to=to, downgrade=downgrade, sql=sql, backup=backup
            )
        )
    if as_json:
        print_json(
            {
                "url": result.url,
                "action": result.action,
                "from_revision": result.from_revision,
                "to_revision": result.to_revision,
                "backup": None if result.backup is None else str(result.backup),
                "sql": result.sql,
            }
        )
        return
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
