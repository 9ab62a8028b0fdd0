"""Store each record's codec: `ystore_records.codec` (0 raw, 1 zlib), default 0.

Existing rows are raw: the server default gives them codec 0 without rewriting
their updates. Downgrading loses no record: compressed rows are stored raw
again and checkpoint rows (kind 2, which the older schema does not know) are
deleted; they only repeat what the records before them hold, and
`checkpoint()` writes them again after an upgrade. A `--sql` script cannot
decompress, and stops where a compressed row exists.

Revision ID: 0003_history
Revises: 0002_snapshot_index
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from ystores.history.compression import decompress

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


_CHECKPOINT = 2
_PAGE = 500
_records = sa.table(
    "ystore_records",
    sa.column("doc", sa.String()),
    sa.column("seq", sa.BigInteger()),
    sa.column("kind", sa.SmallInteger()),
    sa.column("update", sa.LargeBinary()),
    sa.column("codec", sa.SmallInteger()),
)


def downgrade() -> None:
    r = _records.c
    if context.is_offline_mode():
        _refuse_compressed_in_script()
    else:
        bind = op.get_bind()
        while rows := bind.execute(
            sa.select(r.doc, r.seq, r.codec, r.update)
            .where(r.codec != 0, r.kind != _CHECKPOINT)
            .order_by(r.doc, r.seq)
            .limit(_PAGE)
        ).all():
            for doc, seq, codec, stored in rows:
                where = f"the record {seq} of {doc!r}"
                raw = decompress(codec, bytes(stored), where=where)  # damaged: nothing changed
                bind.execute(
                    _records.update().where(r.doc == doc, r.seq == seq).values(update=raw, codec=0)
                )
    op.execute(_records.delete().where(r.kind == _CHECKPOINT))
    op.drop_column("ystore_records", "codec")


def _refuse_compressed_in_script() -> None:
    """A --sql script cannot decompress: it stops where the database holds a compressed row."""
    if context.get_context().dialect.name == "postgresql":
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM ystore_records WHERE codec <> 0 AND kind <> 2) "
            "THEN RAISE EXCEPTION 'ystore_records holds compressed rows: downgrade below "
            "0003_history with ystore migrate against the database, which stores them raw'; "
            "END IF; END $$"
        )
        return
    # SQLite has no procedural guard: a NULL primary key fails the script where they exist
    op.execute(
        "-- compressed rows must be stored raw by `ystore migrate` against the database\n"
        "UPDATE ystore_alembic_version SET version_num = NULL "
        "WHERE EXISTS (SELECT 1 FROM ystore_records WHERE codec <> 0 AND kind <> 2)"
    )
