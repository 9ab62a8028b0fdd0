"""Index only the rows that are not updates by (doc, kind, seq): a partial index.

Queries look up snapshots, checkpoints and blocks by kind, never updates, yet
every update had an entry: the index grew as large as the primary key, and
kept its pages (nearly empty) after packing folded the updates into blocks.
The new index holds the rows where `kind <> 0`; it is built before the old one
is dropped, in the same transaction.

Revision ID: 0005_partial_kind_index
Revises: 0004_blocks
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_partial_kind_index"
down_revision: str | None = "0004_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "ix_ystore_records_doc_kind_seq"
_NEW = "ix_ystore_records_doc_kind_seq_not_update"
_NOT_UPDATE = sa.text("kind != 0")


def upgrade() -> None:
    op.create_index(
        _NEW,
        "ystore_records",
        ["doc", "kind", "seq"],
        unique=False,
        postgresql_where=_NOT_UPDATE,
        sqlite_where=_NOT_UPDATE,
    )
    op.drop_index(_OLD, table_name="ystore_records")


def downgrade() -> None:
    op.create_index(_OLD, "ystore_records", ["doc", "kind", "seq"], unique=False)
    op.drop_index(_NEW, table_name="ystore_records")
