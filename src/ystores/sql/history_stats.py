"""`HistoryStats` of a document on the SQL stores: a few aggregate queries.

Raw sizes of compressed rows are measured by decompressing them (zlib does not
record the size), page by page in a worker thread; raw rows are measured in SQL.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import CorruptStoreError
from ..history.compression import decompress
from ..history.stats import HistoryStats
from ..records import RecordKind
from ..threads import run_in_worker
from .history import find_base, landmarks
from .statements import compile_for
from .tables import records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["history_stats"]

PAGE = 256
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
    _bytes(records.c.codec == 0),
).where(records.c.doc == _doc)
_COMPRESSED = (
    sa.select(records.c.seq, records.c.codec, records.c.update, records.c.kind)
    .where(records.c.doc == _doc, records.c.codec != 0, records.c.seq > sa.bindparam("after"))
    .order_by(records.c.seq)
    .limit(PAGE)
)


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
    kept, checkpoints, since, since_bytes, oldest, newest, last_seq, stored, raw_rows = row
    if not kept and not checkpoints:
        return None
    return HistoryStats(
        records=int(kept),
        checkpoints=int(checkpoints),
        records_since=int(since),
        bytes_since=int(since_bytes),
        base_covers=covers,
        oldest=None if oldest is None else float(oldest),
        newest=None if newest is None else float(newest),
        last_seq=int(last_seq),
        stored_bytes=int(stored),
        raw_bytes=int(raw_rows) + await _raw_compressed(db, doc),
    )


async def _raw_compressed(db: Database, doc: str) -> int:
    stmt = compile_for(_COMPRESSED, db.backend)
    total = after = 0
    while True:
        rows = await db.fetch(stmt.sql, stmt.args(doc=doc, after=after))
        if not rows:
            return total
        total += await run_in_worker(functools.partial(_sizes, doc, rows))
        after = int(rows[-1][0])
        if len(rows) < PAGE:
            return total


def _sizes(doc: str, rows: list[tuple[Any, ...]]) -> int:
    total = 0
    for seq, codec, stored, kind in rows:
        try:
            total += len(decompress(int(codec), bytes(stored), where=f"record {seq} of {doc!r}"))
        except CorruptStoreError:
            if kind != _CHECKPOINT:
                raise
            total += len(stored)  # a damaged checkpoint: restores skip it, sizes count it as is
    return total
