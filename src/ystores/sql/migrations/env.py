"""Alembic environment for the ystores schema.

Run through `ystores.sql.schema`, which builds the Alembic `Config` in code and,
online, hands over a connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import make_url

from ystores.sql.tables import VERSION_TABLE, include_object, metadata

config = context.config


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "render_as_batch": dialect_name == "sqlite",
        "include_object": include_object,
        "compare_type": True,
    }


if context.is_offline_mode():
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    # SQLite runs DDL in transactions too: a script wrapped in BEGIN/COMMIT leaves
    # the database as it was when one of its statements (a downgrade's guard) fails.
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transactional_ddl=True,
        **_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()
