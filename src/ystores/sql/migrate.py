"""The library side of `ystore migrate` for databases, and `schema_status` for its report.

`migrate_database` brings a database to a schema revision: it converts a SQLite
database written by ypy-websocket or pycrdt-store (see `ystores.sql.legacy`),
creates the schema in an empty database, upgrades an older one, or downgrades
on request. `sql=True` prints the SQL instead of running anything.

asyncio only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio
from sqlalchemy.engine import URL

from ..errors import InvalidStoreURLError, SchemaError
from . import legacy, schema
from .alembic_setup import check_revision
from .legacy import ConversionReport
from .schema import RevisionInfo
from .urls import database_url, safe_url, sqlite_url

__all__ = ["MigrationReport", "SchemaReport", "migrate_database", "schema_status"]


@dataclass
class MigrationReport:
    """What `migrate_database` did.

    Attributes:
        url: The database, its password hidden.
        action: `created` (empty database, schema made), `converted` (legacy
            ypy-websocket / pycrdt-store database), `upgraded`, `downgraded`,
            `unchanged` (already there) or `sql` (nothing run; see `sql`).
        from_revision: The revision before (None: no ystores schema).
        to_revision: The revision after (None: no ystores schema, or `sql`).
        backup: The copy made before changing a SQLite file, if any.
        conversion: Details of a legacy conversion.
        sql: The SQL script, with `sql=True`.
    """

    url: str
    action: str
    from_revision: str | None
    to_revision: str | None
    backup: Path | None = None
    conversion: ConversionReport | None = None
    sql: str | None = None

    def summary(self) -> str:
        """One sentence saying what happened, for the CLI."""
        was = self.from_revision or "no ystores schema"
        if self.action == "sql":
            return f"SQL for {self.url} written; nothing was run."
        if self.action == "unchanged":
            return f"{self.url} is already at revision {self.to_revision}; nothing to do."
        if self.action == "converted" and self.conversion is not None:
            c = self.conversion
            text = (
                f"Converted {self.url} from {c.source.producer} (user_version "
                f"{c.source.user_version}): {c.documents} documents, {c.records} records, "
                f"now at revision {self.to_revision}."
            )
        else:
            text = f"{self.action.capitalize()} {self.url}: {was} -> {self.to_revision}."
        if self.backup is not None:
            text += f" The original is kept in {self.backup}."
        return text


@dataclass
class SchemaReport:
    """Where a database's schema stands, and the revisions this ystores knows.

    Attributes:
        url: The database, its password hidden.
        status: See `ystores.sql.schema.SchemaState.status`.
        current: The database's revision (None: no ystores schema).
        head: The newest revision this ystores knows.
        history: Every revision, oldest first.
        pending: The revisions an upgrade to head would apply, oldest first.
        legacy: The legacy layout found (a SQLite file from ypy-websocket / pycrdt-store).
    """

    url: str
    status: str
    current: str | None
    head: str
    history: list[RevisionInfo] = field(default_factory=list)
    pending: list[RevisionInfo] = field(default_factory=list)
    legacy: legacy.LegacyDatabase | None = None


def _resolve(url_or_path: str | Path | URL) -> URL:
    if isinstance(url_or_path, Path):
        return sqlite_url(url_or_path)
    if isinstance(url_or_path, str) and "://" not in url_or_path:
        if not url_or_path:
            raise InvalidStoreURLError("A database URL or path must not be empty.")
        return sqlite_url(url_or_path)
    return database_url(url_or_path)


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database)


async def schema_status(url_or_path: str | Path | URL) -> SchemaReport:
    """Where the database's ystores schema stands (`ystore migrate --status`).

    Args:
        url_or_path: A database URL, or the path of a SQLite file.

    Raises:
        InvalidStoreURLError: Not a SQLite or Postgres URL.
        StoreConnectionError: The database cannot be reached.
    """
    url = _resolve(url_or_path)
    file = _sqlite_file(url)
    found_legacy = await anyio.to_thread.run_sync(legacy.detect, file) if file else None
    state = await schema.state(url)
    revisions = schema.history()
    ids = [r.revision for r in revisions]
    start = ids.index(state.revision) + 1 if state.revision in ids else 0
    pending = revisions[start:] if state.status != "newer" else []
    return SchemaReport(
        url=safe_url(url),
        status=state.status,
        current=state.revision,
        head=state.head,
        history=revisions,
        pending=pending,
        legacy=found_legacy,
    )


def _refuse_backwards(url: str, current: str | None, to: str) -> None:
    """An upgrade never goes back: name `--downgrade` instead of doing nothing."""
    ids = [r.revision for r in schema.history()]
    behind = to == "base" or (current in ids and to in ids and ids.index(to) < ids.index(current))
    if behind:
        raise SchemaError(
            f"{url} is at revision {current or 'none'}; an upgrade cannot go back to {to!r}. "
            f"Downgrade instead: `ystore migrate --downgrade {to} {url}`.",
            url=url,
        )


async def migrate_database(
    url_or_path: str | Path | URL,
    *,
    to: str = "head",
    downgrade: str | None = None,
    sql: bool = False,
    backup: bool = True,
) -> MigrationReport:
    """Bring a database to a ystores schema revision (`ystore migrate URL`).

    - A SQLite database written by ypy-websocket (user_version 0, 1, 2) or
      pycrdt-store is converted in one transaction (see `ystores.sql.legacy`),
      after a backup copy `<db>.bak-<UTC time>`.
    - An empty database (or a SQLite file that does not exist) gets the schema.
    - An older schema is upgraded to `to`, in one transaction; a SQLite file is
      copied first.
    - With `downgrade`, the schema goes down to that revision (`base` drops the
      ystores tables and their data); a SQLite file is copied first.

    Postgres databases are never copied: back them up with `pg_dump` first.

    Args:
        url_or_path: A database URL, or the path of a SQLite file.
        to: The revision to upgrade to.
        downgrade: A revision to downgrade to instead.
        sql: Return the SQL Alembic would run (from `base`, or from head for a
            downgrade) without connecting; legacy conversion has no SQL form.
        backup: Copy a SQLite file before changing it.

    Raises:
        InvalidStoreURLError: Not a SQLite or Postgres URL.
        StoreConnectionError: The database cannot be reached.
        ForeignSchemaError: Tables with ystores' names that ystores did not create.
        SchemaError: A revision newer than this ystores, a revision ystores does
            not know (`to`, `downgrade`), an Alembic error, or a failed conversion.
        StoreFormatError: A legacy row that cannot be converted (nothing changed).
    """
    url = _resolve(url_or_path)
    shown = safe_url(url)
    # A revision ystores does not know is refused before anything is opened or created.
    check_revision(to)
    if downgrade is not None:
        check_revision(downgrade)
    if sql:
        script = schema.sql_script(
            url, downgrade if downgrade is not None else to, downgrade=downgrade is not None
        )
        return MigrationReport(shown, "sql", None, None, sql=script)
    file = _sqlite_file(url)
    if file is not None and await anyio.to_thread.run_sync(legacy.detect, file) is not None:
        conversion = await anyio.to_thread.run_sync(lambda: legacy.convert(file, backup=backup))
        if to != "head" and to != schema.head_revision():
            await schema.downgrade(url, to)
        report = MigrationReport(shown, "converted", None, await schema.current(url))
        report.conversion, report.backup = conversion, conversion.backup
        return report
    before = await schema.state(url)
    target = downgrade if downgrade is not None else to
    resolved = schema.head_revision() if target == "head" else target
    if before.revision == resolved or (before.status == "empty" and target == "base"):
        return MigrationReport(shown, "unchanged", before.revision, before.revision)
    if downgrade is None:
        _refuse_backwards(shown, before.revision, to)
    copy = None
    if backup and file is not None and before.revision is not None:
        copy = await anyio.to_thread.run_sync(legacy.backup_database, file)
    if downgrade is not None:
        await schema.downgrade(url, downgrade)
        action = "downgraded"
    else:
        await schema.upgrade(url, to)
        action = "created" if before.status == "empty" else "upgraded"
    return MigrationReport(shown, action, before.revision, await schema.current(url), copy)
