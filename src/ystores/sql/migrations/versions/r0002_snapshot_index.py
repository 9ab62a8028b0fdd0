"""Index records by (doc, kind, seq): finding a document's latest snapshot is one lookup.

Revision ID: 0002_snapshot_index
Revises: 0001_initial
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_snapshot_index"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ystore_records_doc_kind_seq", "ystore_records", ["doc", "kind", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ystore_records_doc_kind_seq", table_name="ystore_records")
