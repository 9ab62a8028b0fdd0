"""Store each record's codec: `ystore_records.codec` (0 raw, 1 zlib), default 0.

Existing rows are raw: the server default gives them codec 0 without rewriting
their updates. Downgrading is refused while any record is compressed (the
older schema could not read it).

Revision ID: 0003_history
Revises: 0002_snapshot_index
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from ystores.errors import SchemaError

revision: str = "0003_history"
down_revision: str | None = "0002_snapshot_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no table copy on SQLite): existing rows
    # take the server default without being rewritten.
    op.add_column(
        "ystore_records",
        sa.Column("codec", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    newer = 0
    if not context.is_offline_mode():  # a --sql script cannot look
        found = op.get_bind().execute(
            sa.text("SELECT count(*) FROM ystore_records WHERE codec <> 0 OR kind = 2")
        )
        newer = int(found.scalar() or 0)
    if newer:
        raise SchemaError(
            f"{newer} records are compressed or are checkpoints, which the schema before "
            "0003_history cannot hold; squash the documents with compression off first. "
            "Nothing was changed."
        )
    op.drop_column("ystore_records", "codec")
