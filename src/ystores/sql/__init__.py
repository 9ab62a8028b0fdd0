"""The SQL backends: SQLite and Postgres stores on one schema, migrated with Alembic.

asyncio only: aiosqlite, asyncpg and SQLAlchemy's async layer do not run on trio.
"""

from __future__ import annotations

from ..extras import require

require("sql", "SQL stores")  # a clear error naming the extra, not an ImportError

from .documents import DocumentInfo, list_documents  # noqa: E402
from .engines import dispose_databases  # noqa: E402
from .migrate import MigrationReport, SchemaReport, migrate_database, schema_status  # noqa: E402
from .store import PostgresYStore, SQLiteYStore, SQLYStore  # noqa: E402

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
