"""Block rows: `ystore_records` may hold rows of kind 3, packed runs of old updates.

No table changes: the revision marks a database whose documents may hold
blocks (`ystores.history.packing`), so that an older ystores, which would
read a block as one unknown record, refuses it (its newest revision is older)
instead of misreading it. Downgrading expands every block back into the
update rows it holds, in the same transaction.

Revision ID: 0004_blocks
Revises: 0003_history
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from ystores.history.packing import unpack_block

revision: str = "0004_blocks"
down_revision: str | None = "0003_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BLOCK = 3
_records = sa.table(
    "ystore_records",
    sa.column("doc", sa.String()),
    sa.column("seq", sa.BigInteger()),
    sa.column("kind", sa.SmallInteger()),
    sa.column("update", sa.LargeBinary()),
    sa.column("metadata", sa.LargeBinary()),
    sa.column("timestamp", sa.Double()),
    sa.column("codec", sa.SmallInteger()),
)


def upgrade() -> None:
    pass  # the revision itself is the change: older versions refuse the database


def downgrade() -> None:
    if context.is_offline_mode():
        _refuse_blocks_in_script()
        return
    bind = op.get_bind()
    r = _records.c
    blocks = bind.execute(
        sa.select(r.doc, r.seq, r.metadata, r.update).where(r.kind == _BLOCK).order_by(r.doc, r.seq)
    ).all()
    for doc, seq, metadata, payload in blocks:
        inner = unpack_block(bytes(metadata), bytes(payload))  # damaged: refused, nothing changed
        bind.execute(_records.delete().where(r.doc == doc, r.seq == seq, r.kind == _BLOCK))
        bind.execute(
            _records.insert(),
            [
                {"doc": doc, "seq": record.seq, "kind": 0, "update": record.update,
                 "metadata": record.metadata, "timestamp": record.timestamp, "codec": 0}
                for record in inner
            ],
        )  # fmt: skip


def _refuse_blocks_in_script() -> None:
    """A --sql script cannot expand blocks: it stops where the database holds any."""
    if context.get_context().dialect.name == "postgresql":
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM ystore_records WHERE kind = 3) THEN "
            "RAISE EXCEPTION 'ystore_records holds packed blocks: downgrade below "
            "0004_blocks with ystore migrate against the database, which expands them'; "
            "END IF; END $$"
        )
        return
    # SQLite has no procedural guard: a NULL primary key fails the script where blocks exist
    op.execute(
        "-- packed blocks (kind 3) must be expanded by `ystore migrate` against the database\n"
        "UPDATE ystore_alembic_version SET version_num = NULL "
        "WHERE EXISTS (SELECT 1 FROM ystore_records WHERE kind = 3)"
    )
