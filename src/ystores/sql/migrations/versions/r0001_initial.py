"""The initial ystores schema: ystore_records and ystore_documents.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ystore_records",
        sa.Column("doc", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("update", sa.LargeBinary(), nullable=False),
        sa.Column("metadata", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("doc", "seq", name="pk_ystore_records"),
    )
    op.create_table(
        "ystore_documents",
        sa.Column("doc", sa.String(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_write", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("doc", name="pk_ystore_documents"),
    )
    op.create_index(
        "ix_ystore_documents_last_write", "ystore_documents", ["last_write"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ystore_documents_last_write", table_name="ystore_documents")
    op.drop_table("ystore_documents")
    op.drop_table("ystore_records")
