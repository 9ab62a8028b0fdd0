"""The one SQLAlchemy Core schema shared by the SQLite and Postgres stores.

Every table name starts with `ystore_`, so the schema can live in an
application's own database beside its tables.

`ystore_records` is the log: one row per record, ordered by `seq` (never by
the clock). `ystore_documents` holds one row per document with its last `seq`
and the time of its last write. That small table does two jobs:

- seq assignment: a write upserts the document's row (`last_seq = last_seq + n`)
  and uses the returned value; the row lock serializes writers of one document
  across processes and servers without retries, and the primary key of
  `ystore_records` stays the final guard (a new counter row starts after the
  document's highest stored seq, so a lost row cannot cause collisions);
- "documents idle since T" (for compaction policies) is an index range scan on
  `ystore_documents.last_write`, one row per document instead of one per update.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "KIND_INDEX",
    "VERSION_TABLE",
    "documents",
    "include_object",
    "metadata",
    "not_update",
    "records",
]

VERSION_TABLE = "ystore_alembic_version"
"""Alembic's version table for the ystores schema (never the application's `alembic_version`)."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""The `MetaData` holding every ystores table (target of the Alembic migrations)."""

records = sa.Table(
    "ystore_records",
    metadata,
    sa.Column("doc", sa.String(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("kind", sa.SmallInteger(), nullable=False),
    sa.Column("update", sa.LargeBinary(), nullable=False),
    sa.Column("metadata", sa.LargeBinary(), nullable=False),
    sa.Column("timestamp", sa.Double(), nullable=False),
    sa.Column("codec", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
    sa.PrimaryKeyConstraint("doc", "seq"),
)
"""One row per record of a document's log; primary key `(doc, seq)`.

`kind` is a `RecordKind` (update, snapshot, checkpoint, block); `codec` a
`ystores.history.Codec`: how `update` is stored (0 raw, 1 zlib). The partial
index `KIND_INDEX` on `(doc, kind, seq)` of the rows that are not updates finds
a document's latest snapshot in one lookup, and its checkpoints and blocks (a
few rows, one per thousand records or so) in one range scan.
"""


def not_update(kind: sa.ColumnElement[int] = records.c.kind) -> sa.ColumnElement[bool]:
    """`kind <> 0`, with the 0 written into the SQL: the predicate of `KIND_INDEX`.

    A query reaches that index only when its WHERE clause holds this very term
    (beside its `kind = ...`): SQLite uses a partial index only for a query whose
    terms include the index's own, and a Postgres generic plan cannot prove
    `kind = $1` excludes 0. `kind` is the column of an alias, where there is one.
    """
    return kind != sa.literal_column("0", sa.SmallInteger())


KIND_INDEX = sa.Index(
    "ix_ystore_records_doc_kind_seq_not_update",
    records.c.doc,
    records.c.kind,
    records.c.seq,
    postgresql_where=not_update(),
    sqlite_where=not_update(),
)
"""Snapshots, checkpoints and blocks by `(doc, kind, seq)`; updates are left out.

Updates are nearly every row, and none is looked up by kind: indexing them
only made the index as large as the primary key, and left its pages behind
(nearly empty, never merged back) when packing folded the updates into blocks.
"""

documents = sa.Table(
    "ystore_documents",
    metadata,
    sa.Column("doc", sa.String(), nullable=False),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.Column("last_write", sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint("doc"),
    sa.Index(None, "last_write"),
)
"""One row per document: the seq counter and the time of the last write."""


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic autogenerate filter: only ystores' own tables (not the version table).

    An application whose own Alembic environment shares the database passes the
    negation of this to its `include_object`, so its autogenerate leaves ours alone.
    """
    if type_ == "table":
        return bool(name) and name != VERSION_TABLE and str(name).startswith("ystore_")
    return True
