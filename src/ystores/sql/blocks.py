"""Block rows on the SQL stores: reading them back as the records they hold.

A block (`ystores.history.packing`) is a row of `ystore_records` of kind
`RecordKind.BLOCK` whose seq is the last seq it holds, whose metadata is its
header and whose update its compressed payload (codec raw), and whose timestamp
is the latest timestamp among its records (so "the first row written after t"
is still found by one index scan: a block whose timestamp is after t holds
that record). Ordering rows by seq then keeps every record in its place:

- a lower-bound read (`seq > after`) meets a block whose last seq is after
  `after`, and keeps only its records after `after` (`expand_rows`);
- an upper-bound read (`seq <= until`) must also take the one block that
  straddles the bound (`straddling_block`), keeping its records up to `until`.

Nothing above the backend sees a block: every read path of `ystores.sql`
passes its rows through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..history.packing import BlockHeader, decode_block_header, unpack_block
from ..records import RecordKind
from .statements import MAX_SEQ, compile_for
from .tables import not_update, records

if TYPE_CHECKING:
    from .database import Database

__all__ = [
    "BLOCK",
    "BlockRow",
    "block_headers",
    "block_records",
    "expand_rows",
    "straddling_block",
]

BLOCK = RecordKind.BLOCK.value

BlockRow = tuple[int, bytes, bytes]
"""A block row: `(seq, metadata, update)`."""

_doc: sa.BindParameter[str] = sa.bindparam("doc")
_STRADDLER = (
    sa.select(records.c.seq, records.c.metadata, records.c.update)
    .where(
        records.c.doc == _doc,
        records.c.kind == BLOCK,
        not_update(),
        records.c.seq > sa.bindparam("until", type_=sa.BigInteger()),
    )
    .order_by(records.c.seq)
    .limit(1)
)
_HEADERS = (
    sa.select(records.c.seq, records.c.metadata)
    .where(
        records.c.doc == _doc,
        records.c.kind == BLOCK,
        not_update(),
        records.c.seq >= sa.bindparam("since", type_=sa.BigInteger()),
        records.c.seq <= sa.bindparam("until", type_=sa.BigInteger()),
    )
    .order_by(records.c.seq)
)


def block_records(metadata: Any, update: Any, after: int = 0, until: int = MAX_SEQ) -> list[Any]:
    """The records a block row holds with `after < seq <= until` (`Record`s, kind update).

    Raises:
        CorruptStoreError: The block is damaged (none of its records is trusted).
    """
    return [r for r in unpack_block(bytes(metadata), bytes(update)) if after < r.seq <= until]


def expand_rows(
    rows: Iterable[Sequence[Any]], after: int = 0, until: int = MAX_SEQ
) -> list[tuple[Any, ...]]:
    """`(seq, kind, update, metadata, timestamp, codec)` rows with each block row
    replaced by the records it holds within `after < seq <= until` (kind update, codec raw).

    Raises:
        CorruptStoreError: A block is damaged.
    """
    out: list[tuple[Any, ...]] = []
    for row in rows:
        if int(row[1]) != BLOCK:
            out.append(tuple(row))
            continue
        for record in block_records(row[3], row[2], after, until):
            out.append((record.seq, 0, record.update, record.metadata, record.timestamp, 0))
    return out


async def straddling_block(db: Database, doc: str, until: int) -> BlockRow | None:
    """The block holding record `until + 1` and records up to `until` (None: no block
    straddles `until`).

    Raises:
        CorruptStoreError: The header of the next block is damaged.
    """
    stmt = compile_for(_STRADDLER, db.backend)
    rows = await db.fetch(stmt.sql, stmt.args(doc=doc, until=until))
    if not rows:
        return None
    seq, metadata, update = int(rows[0][0]), bytes(rows[0][1]), bytes(rows[0][2])
    if decode_block_header(metadata).first_seq > until:
        return None
    return seq, metadata, update


async def block_headers(
    db: Database, doc: str, since: int = 0, until: int = MAX_SEQ
) -> list[tuple[int, BlockHeader]]:
    """`(seq, header)` of the document's blocks with `since <= seq <= until`, in seq order.

    Raises:
        CorruptStoreError: A header is damaged.
    """
    stmt = compile_for(_HEADERS, db.backend)
    rows = await db.fetch(stmt.sql, stmt.args(doc=doc, since=since, until=until))
    return [(int(seq), decode_block_header(bytes(meta))) for seq, meta in rows]
