"""The SQL backends: SQLite and Postgres stores on one schema, migrated with Alembic.

asyncio only: aiosqlite, asyncpg and SQLAlchemy's async layer do not run on trio.
"""

from __future__ import annotations

from .documents import DocumentInfo, list_documents
from .engines import dispose_databases
from .migrate import MigrationReport, SchemaReport, migrate_database, schema_status
from .store import PostgresYStore, SQLiteYStore, SQLYStore

__all__ = [
    "DocumentInfo",
    "MigrationReport",
    "PostgresYStore",
    "SQLYStore",
    "SQLiteYStore",
    "SchemaReport",
    "dispose_databases",
    "list_documents",
    "migrate_database",
    "schema_status",
]
