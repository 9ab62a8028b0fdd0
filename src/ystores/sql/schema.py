"""The ystores database schema over Alembic: upgrade, downgrade, current, check, history.

The Alembic script directory ships inside the package
(`ystores/sql/migrations`); its `Config` is built here in code, and the revision
lives in its own version table, `ystore_alembic_version`, so an application's
own Alembic history in the same database is never touched.

Alembic is synchronous: online commands run on an async connection through
`AsyncConnection.run_sync`, under a lock (Alembic's `context` is process-wide).
asyncio only, like every SQL store.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import ForeignSchemaError, SchemaError, SchemaOutdatedError
from .alembic_setup import (
    RevisionInfo,
    alembic_config,
    alembic_errors,
    alembic_lock,
    alembic_thread_lock,
    check_revision,
    head_revision,
    history,
)
from .engines import create_engine
from .errors import translate_errors
from .tables import VERSION_TABLE, include_object, metadata
from .urls import database_url, safe_url

__all__ = [
    "RevisionInfo",
    "SchemaState",
    "check",
    "current",
    "diff",
    "downgrade",
    "head_revision",
    "history",
    "sql_script",
    "state",
    "upgrade",
]

T = TypeVar("T")

SchemaStatus = Literal["empty", "current", "outdated", "newer", "foreign", "legacy"]

_OUR_TABLES = frozenset(t.name for t in metadata.sorted_tables)
_PG_LOCK_KEY = 0x7973746F7265  # "ystore": serializes schema work across servers


@dataclass(frozen=True)
class SchemaState:
    """Where a database's ystores schema stands.

    Attributes:
        status: `empty` (no ystores table), `current` (at head), `outdated`
            (behind head), `newer` (a revision this ystores does not know),
            `foreign` (tables with our names but no version) or `legacy`
            (a ypy-websocket / pycrdt-store `yupdates` table and no ystores schema).
        revision: The revision in `ystore_alembic_version`, or None.
        head: The newest revision this ystores knows.
        tables: Every table name in the database.
    """

    status: SchemaStatus
    revision: str | None
    head: str
    tables: frozenset[str]


# -- inspection and the open-time check -----------------------------------------


def _state_sync(conn: Connection) -> SchemaState:
    tables = frozenset(sa.inspect(conn).get_table_names())
    head = head_revision()
    revision: str | None = None
    if VERSION_TABLE in tables:
        revision = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    status: SchemaStatus
    if revision is not None:
        if revision == head:
            status = "current"
        elif revision in {r.revision for r in history()}:
            status = "outdated"
        else:
            status = "newer"
    elif tables & _OUR_TABLES:
        status = "foreign"
    elif "yupdates" in tables:
        status = "legacy"
    else:
        status = "empty"
    return SchemaState(status, revision, head, tables)


def _lock_sync(conn: Connection) -> None:
    """Open the transaction a schema change runs in, holding the schema lock.

    Postgres: an advisory lock for the transaction. SQLite: the transaction
    begins at once (`BEGIN IMMEDIATE`, the write lock). Alembic then runs every
    step inside it: a migration over several revisions is committed whole or
    not at all (without it, Alembic commits each SQLite step on its own).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"))
    elif not conn.in_transaction():
        conn.begin()


def _raise_unusable(found: SchemaState, url: str) -> None:
    fix = f"`ystore migrate {url}`"
    if found.status == "outdated":
        raise SchemaOutdatedError(
            f"The database {url} has ystores schema revision {found.revision}, older than "
            f"this version's {found.head}; upgrade it with {fix}.",
            url=url,
        )
    if found.status == "legacy":
        raise SchemaOutdatedError(
            f"The database {url} was written by ypy-websocket or pycrdt-store (it has a "
            f"'yupdates' table); convert it with {fix}.",
            url=url,
        )
    if found.status == "empty":
        raise SchemaOutdatedError(
            f"The database {url} has no ystores schema yet; create it with {fix} "
            "or open the store with create_schema=True.",
            url=url,
        )
    if found.status == "newer":
        raise SchemaError(
            f"The database {url} has ystores schema revision {found.revision}, which this "
            f"version of ystores does not know (its newest is {found.head}); upgrade ystores.",
            url=url,
        )
    if found.status == "foreign":
        ours = ", ".join(sorted(found.tables & _OUR_TABLES))
        raise ForeignSchemaError(
            f"The database {url} holds tables named like ystores' ({ours}) but no "
            f"{VERSION_TABLE} table: ystores did not create them and will not touch them. "
            "Use another database, or rename those tables.",
            url=url,
        )


def _ensure_sync(conn: Connection, create: bool, url: str) -> None:
    _lock_sync(conn)
    found = _state_sync(conn)
    if found.status == "current":
        return
    if found.status == "empty" and create:
        command.upgrade(alembic_config(connection=conn), "head")
        return
    _raise_unusable(found, url)


async def ensure_schema(engine: AsyncEngine, *, create: bool, url: str) -> None:
    """Check the schema of an open database; create it at head if empty and `create`.

    Raises:
        SchemaOutdatedError: The schema is behind head (or absent, without `create`).
        ForeignSchemaError: Tables with ystores' names that ystores did not create.
        SchemaError: A revision newer than this ystores knows.
        StoreConnectionError: The database cannot be reached.
    """
    async with _connect(engine, url) as conn, alembic_lock():
        with translate_errors(url):
            await conn.run_sync(_ensure_sync, create, url)
            await conn.commit()


@asynccontextmanager
async def _connect(engine: AsyncEngine, url: str) -> AsyncIterator[AsyncConnection]:
    with translate_errors(url, connecting=True):
        conn = await engine.connect()
    try:
        yield conn
    finally:
        with translate_errors(url):
            await conn.close()


async def _with_connection(url: str | URL, work: Callable[[Connection], T]) -> T:
    db_url = database_url(url)
    safe = safe_url(db_url)
    engine = create_engine(db_url)
    try:
        async with _connect(engine, safe) as conn, alembic_lock():
            with translate_errors(safe):
                result = await conn.run_sync(work)
                await conn.commit()
                return result
    finally:
        await engine.dispose()


# -- the public commands ---------------------------------------------------------


async def state(url: str | URL) -> SchemaState:
    """Where the ystores schema of the database at `url` stands (nothing is changed).

    Raises:
        InvalidStoreURLError: The URL is not a SQLite or Postgres URL.
        StoreConnectionError: The database cannot be reached.
    """
    db_url = database_url(url)
    file = db_url.database or "" if db_url.get_backend_name() == "sqlite" else None
    if file is not None and not await anyio.Path(file).exists():
        # Looking must not create the file.
        return SchemaState("empty", None, head_revision(), frozenset())
    return await _with_connection(db_url, _state_sync)


async def current(url: str | URL) -> str | None:
    """The schema revision of the database at `url`, or None without a ystores schema.

    Raises:
        InvalidStoreURLError: The URL is not a SQLite or Postgres URL.
        StoreConnectionError: The database cannot be reached.
    """
    return (await state(url)).revision


async def check(url: str | URL) -> bool:
    """Whether the database at `url` is at the newest ystores schema revision.

    Raises:
        InvalidStoreURLError: The URL is not a SQLite or Postgres URL.
        StoreConnectionError: The database cannot be reached.
    """
    return (await state(url)).status == "current"


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Upgrade the ystores schema of the database at `url` to `revision`, in one transaction.

    An empty database gets the whole schema. Tables of other applications are
    left alone.

    Raises:
        ForeignSchemaError: Tables with ystores' names that ystores did not create.
        SchemaOutdatedError: A ypy-websocket database (convert it with
            `ystores.sql.migrate.migrate_database`).
        StoreConnectionError: The database cannot be reached.
    """

    def work(conn: Connection) -> None:
        _lock_sync(conn)
        found = _state_sync(conn)
        if found.status in ("foreign", "legacy", "newer"):
            _raise_unusable(found, safe_url(database_url(url)))
        with alembic_errors(found_url):
            command.upgrade(alembic_config(connection=conn), revision)

    check_revision(revision)
    found_url = safe_url(database_url(url))
    await _with_connection(url, work)


async def downgrade(url: str | URL, revision: str) -> None:
    """Downgrade the ystores schema of the database at `url` to `revision` (`base` drops it).

    Downgrading below the first revision drops the ystores tables and their data.

    Raises:
        StoreConnectionError: The database cannot be reached.
    """

    def work(conn: Connection) -> None:
        _lock_sync(conn)
        with alembic_errors(found_url):
            command.downgrade(alembic_config(connection=conn), revision)

    check_revision(revision)
    found_url = safe_url(database_url(url))
    await _with_connection(url, work)


async def diff(url: str | URL) -> list[Any]:
    """Differences between the database's ystores tables and the code's (Alembic autogenerate).

    An empty list means the database matches `ystores.sql.tables.metadata`.
    """

    def work(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": include_object,
                "compare_type": True,
                "version_table": VERSION_TABLE,
            },
        )
        return list(compare_metadata(context, metadata))

    return await _with_connection(url, work)


def sql_script(
    url: str | URL,
    revision: str = "head",
    *,
    from_revision: str | None = None,
    downgrade: bool = False,
) -> str:
    """The SQL that an upgrade (or downgrade) would run, without a connection (`--sql`).

    Args:
        url: Names the database dialect (nothing connects to it).
        revision: The target revision.
        from_revision: The revision the database is at (`base` / head by default).
        downgrade: Produce a downgrade script from `from_revision` to `revision`.
    """
    check_revision(revision)
    if from_revision is not None:
        check_revision(from_revision)
    db_url = database_url(url)
    output = io.StringIO()
    config = alembic_config(db_url, output=output)
    with alembic_thread_lock, alembic_errors(safe_url(db_url)):
        if downgrade:
            start = from_revision or head_revision()
            command.downgrade(config, f"{start}:{revision}", sql=True)
        else:
            target = f"{from_revision}:{revision}" if from_revision else revision
            command.upgrade(config, target, sql=True)
    return output.getvalue()
