"""`HistoryStats` of a document on the SQL stores: a few aggregate queries.

Raw sizes of compressed rows are measured by decompressing them once (zlib does
not record the size) and remembered by row, so that a background task asking
every few seconds decompresses only new rows; raw rows are measured in SQL.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import CorruptStoreError
from ..history.compression import decompress
from ..history.packing import BlockHeader
from ..history.stats import HistoryStats
from ..records import RecordKind
from ..threads import run_in_worker
from .blocks import BLOCK, block_headers, block_records, straddling_block
from .history import find_base, landmarks
from .statements import compile_for
from .tables import records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["history_stats"]

_CHECKPOINT = RecordKind.CHECKPOINT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_logged = records.c.kind != _CHECKPOINT
_length = sa.func.length(records.c.update)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _bytes(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, _length), else_=0)), 0)


_since = sa.and_(_logged, records.c.seq > sa.bindparam("covers", type_=sa.BigInteger()))
_oldest = (
    sa.select(records.c.timestamp)
    .where(records.c.doc == _doc, _logged)
    .order_by(records.c.seq)
    .limit(1)
    .scalar_subquery()
)
_TOTALS = sa.select(
    _count(_logged),
    _count(records.c.kind == _CHECKPOINT),
    _count(_since),
    _bytes(_since),
    _oldest,
    sa.func.max(sa.case((_logged, records.c.timestamp))),
    sa.func.coalesce(sa.func.max(records.c.seq), 0),
    _bytes(sa.true()),
    _bytes(sa.and_(records.c.codec == 0, records.c.kind != BLOCK)),
    sa.func.min(sa.case((_logged, records.c.seq))),
).where(records.c.doc == _doc)
# Compressed rows: their seqs and stored sizes first; bytes only for those not measured yet.
_COMPRESSED_SIZES = sa.select(
    records.c.seq, records.c.kind, sa.func.length(records.c.update)
).where(records.c.doc == _doc, sa.or_(records.c.codec != 0, records.c.kind == BLOCK))
_COMPRESSED_ROW = sa.select(records.c.codec, records.c.update, records.c.metadata).where(
    records.c.doc == _doc, records.c.seq == sa.bindparam("seq")
)
_RAW_SIZES: OrderedDict[tuple[str, str, int, int, int], int] = OrderedDict()
"""Raw sizes of compressed rows already measured, by (database, doc, seq, kind, stored
size): a row never changes under one key (a fold reuses a seq with another kind)."""
_RAW_SIZES_KEPT = 65536


async def history_stats(db: Database, doc: str) -> HistoryStats | None:
    """What the document's history holds (None when it has no record).

    Raises:
        CorruptStoreError: A compressed update record does not decompress.
    """
    marks = await landmarks(db, doc)
    base = await find_base(db, doc, marks=marks)
    covers = base.covers if base is not None else marks.snapshot
    stmt = compile_for(_TOTALS, db.backend)
    row = (await db.fetch(stmt.sql, stmt.args(doc=doc, covers=covers)))[0]
    kept, checkpoints, since, since_bytes, oldest, newest, last_seq, stored, raw_rows, first = row
    if not kept and not checkpoints:
        return None
    kept, since = int(kept), int(since)
    # A block row holds `count` records (`sql.blocks`); its timestamp is its latest one's.
    for seq, header in await block_headers(db, doc):
        kept += header.count - 1
        if seq == first:
            oldest = header.first_timestamp
        if seq > covers:
            since += await _records_after(db, doc, header, covers) - 1
    return HistoryStats(
        records=kept,
        checkpoints=int(checkpoints),
        records_since=since,
        bytes_since=int(since_bytes),
        base_covers=covers,
        oldest=None if oldest is None else float(oldest),
        newest=None if newest is None else float(newest),
        last_seq=int(last_seq),
        stored_bytes=int(stored),
        raw_bytes=int(raw_rows) + await _raw_compressed(db, doc),
    )


async def _raw_compressed(db: Database, doc: str) -> int:
    """Raw bytes of the document's compressed rows (decompressing those not measured yet)."""
    stmt = compile_for(_COMPRESSED_SIZES, db.backend)
    row_stmt = compile_for(_COMPRESSED_ROW, db.backend)
    total = 0
    for seq, kind, size in await db.fetch(stmt.sql, stmt.args(doc=doc)):
        key = (db.safe_url, doc, int(seq), int(kind), int(size))
        raw = _RAW_SIZES.get(key)
        if raw is None:
            rows = await db.fetch(row_stmt.sql, row_stmt.args(doc=doc, seq=seq))
            if not rows:  # folded away meanwhile
                continue
            raw = await run_in_worker(functools.partial(_size, doc, int(seq), int(kind), rows[0]))
            _RAW_SIZES[key] = raw
            if len(_RAW_SIZES) > _RAW_SIZES_KEPT:
                _RAW_SIZES.popitem(last=False)
        total += raw
    return total


async def _records_after(db: Database, doc: str, header: BlockHeader, covers: int) -> int:
    """How many of a block's records follow seq `covers` (a block after the checkpoint
    a restore starts from: only when a later one is damaged)."""
    if header.first_seq > covers:
        return header.count
    block = await straddling_block(db, doc, covers)
    return 0 if block is None else len(block_records(block[1], block[2], covers))


def _size(doc: str, seq: int, kind: int, row: tuple[Any, ...]) -> int:
    codec, stored = int(row[0]), bytes(row[1])
    if kind == BLOCK:  # the raw bytes of the updates it holds
        return sum(len(r.update) for r in block_records(row[2], stored))
    try:
        return len(decompress(codec, stored, where=f"record {seq} of {doc!r}"))
    except CorruptStoreError:
        if kind != _CHECKPOINT:
            raise
        return len(stored)  # a damaged checkpoint: restores skip it, sizes count it as is
