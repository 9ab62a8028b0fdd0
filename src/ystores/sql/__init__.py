"""The SQL backends: SQLite and Postgres stores on one schema, migrated with Alembic.

asyncio only: aiosqlite, asyncpg and SQLAlchemy's async layer do not run on trio.
"""

from __future__ import annotations

from .engines import dispose_databases
from .store import PostgresYStore, SQLiteYStore, SQLYStore

__all__ = ["PostgresYStore", "SQLYStore", "SQLiteYStore", "dispose_databases"]
