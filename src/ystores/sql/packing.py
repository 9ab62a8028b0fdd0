"""Packing a document's covered history into block rows, and thinning its checkpoints.

`pack_document` (`SQLYStore.pack`):

1. Find the latest trusted checkpoint (the one a restore starts from) and the
   document's checkpoints; `checkpoints_to_drop` names the old ones thinning
   lets go.
2. Read the update rows after the latest snapshot that this checkpoint covers,
   and plan runs of at most `block_records` consecutive ones: a run never
   crosses another row that stays (a kept checkpoint, an existing block) nor
   the `covers` of a kept checkpoint, so time travel from any kept checkpoint
   expands only blocks after it. Each run is packed (`pack_block`) in a worker
   thread, outside any transaction; writers keep writing (their seqs are above
   the checkpoint).
3. A few short transactions (`BEGIN IMMEDIATE` on SQLite; the document's
   counter row locked `FOR UPDATE` on Postgres, as a fold does), each atomic:
   the first deletes the dropped checkpoints; each checks that its runs' rows
   are still exactly there (a squash or retention may have folded them
   meanwhile: then it stops), inserts the blocks and deletes the rows. A crash
   at any moment leaves each run either as rows or as its block, never both.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..history.compression import decompress
from ..history.packing import PackReport, pack_block
from ..history.thinning import CheckpointMark, ThinningPolicy, checkpoints_to_drop
from ..records import Record, RecordKind
from ..threads import run_in_worker
from .blocks import BLOCK, block_headers
from .history import find_base, landmarks
from .statements import compile_for
from .tables import documents, not_update, records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["BLOCKS_PER_TRANSACTION", "pack_document"]

BLOCKS_PER_TRANSACTION = 16
"""Blocks swapped in per transaction: writers of the document wait for each, briefly."""

_UPDATE = RecordKind.UPDATE.value
_CHECKPOINT = RecordKind.CHECKPOINT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_first: sa.BindParameter[int] = sa.bindparam("first", type_=sa.BigInteger())
_last: sa.BindParameter[int] = sa.bindparam("last", type_=sa.BigInteger())
_UPDATES = (
    sa.select(
        records.c.seq, records.c.update, records.c.metadata, records.c.timestamp, records.c.codec
    )
    .where(
        records.c.doc == _doc,
        records.c.kind == _UPDATE,
        records.c.seq > _first,
        records.c.seq <= _last,
    )
    .order_by(records.c.seq)
)
_OTHERS = sa.select(records.c.seq).where(
    records.c.doc == _doc,
    not_update(),
    records.c.seq > _first,
    records.c.seq <= _last,
)
_RANGE = sa.select(
    sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((records.c.kind == _UPDATE, 1))), 0)
).where(records.c.doc == _doc, records.c.seq >= _first, records.c.seq <= _last)
_DELETE_RANGE = records.delete().where(
    records.c.doc == _doc, records.c.seq >= _first, records.c.seq <= _last
)
_DELETE_CHECKPOINT = records.delete().where(
    records.c.doc == _doc, records.c.seq == sa.bindparam("seq"), records.c.kind == _CHECKPOINT
)
_SIZE = sa.select(
    sa.func.coalesce(
        sa.func.sum(sa.func.length(records.c.update) + sa.func.length(records.c.metadata)), 0
    )
).where(records.c.doc == _doc)
_LOCK = sa.select(documents.c.last_seq).where(documents.c.doc == _doc).with_for_update()
_INSERT = records.insert()

Block = tuple[dict[str, Any], tuple[int, int], int]
"""A block to swap in: its row's values, the seq range of its records, their count."""


async def pack_document(
    db: Database, doc: str, *, thinning: ThinningPolicy, block_records: int
) -> PackReport | None:
    """Pack the document's covered history into blocks and thin its checkpoints.

    Returns:
        What was done, or None when nothing was packed or dropped.

    Raises:
        ValueError: `block_records` is below 2.
        CorruptStoreError: A compressed update to pack does not decompress
            (nothing of its run is changed).
    """
    if block_records < 2:
        raise ValueError(f"A block holds at least 2 records, not {block_records}.")
    started = time.perf_counter()
    marks = await landmarks(db, doc)
    base = await find_base(db, doc, marks=marks)
    if base is None:
        return None  # no trusted checkpoint: nothing is covered
    usable = [
        CheckpointMark(seq, header.covers)
        for seq, header in marks.checkpoints
        if header is not None and marks.snapshot <= header.covers <= base.covers
    ]
    start = marks.snapshot + 1 if marks.snapshot else 1
    drop = set(checkpoints_to_drop(usable, history_start=start, policy=thinning))
    kept_covers = sorted({mark.covers for mark in usable if mark.seq not in drop})
    stays = await _rows_staying(db, doc, marks.snapshot, base.covers, drop)
    runs = await _plan(db, doc, marks.snapshot, base.covers, stays, kept_covers, block_records)
    if not runs and not drop:
        return None
    size = compile_for(_SIZE, db.backend)
    before = int((await db.fetch(size.sql, size.args(doc=doc)))[0][0])
    blocks = await run_in_worker(lambda: [_block(doc, run) for run in runs])
    swap = _Swap(db, doc)
    packed = written = 0
    dropped: Sequence[int] = sorted(drop)
    for index in range(0, max(len(blocks), 1), BLOCKS_PER_TRANSACTION):
        chunk = blocks[index : index + BLOCKS_PER_TRANSACTION]
        done = await swap.run(chunk, dropped)
        dropped = []  # deleted by the first transaction
        written += done
        packed += sum(block[2] for block in chunk[:done])
        if done < len(chunk):
            break
    after = int((await db.fetch(size.sql, size.args(doc=doc)))[0][0])
    writer = db.sqlite_writer
    if writer is not None:
        await run_in_worker(writer.shrink)
    return PackReport(
        doc=doc,
        blocks=written,
        records_packed=packed,
        checkpoints_dropped=len(drop) if swap.dropped else 0,
        bytes_before=before,
        bytes_after=after,
        seconds=time.perf_counter() - started,
    )


async def _rows_staying(
    db: Database, doc: str, snapshot: int, covers: int, drop: set[int]
) -> list[int]:
    """Seqs of the rows that stay between the snapshot and `covers` and are not updates
    (kept checkpoints, blocks: a run never crosses one), each block as its first seq too."""
    stmt = compile_for(_OTHERS, db.backend)
    found = {
        int(row[0])
        for row in await db.fetch(stmt.sql, stmt.args(doc=doc, first=snapshot, last=covers))
    }
    for seq, header in await block_headers(db, doc, since=snapshot + 1, until=covers):
        found.add(header.first_seq)
        found.add(seq)
    return sorted(found - drop)


async def _plan(
    db: Database,
    doc: str,
    snapshot: int,
    covers: int,
    stays: list[int],
    kept_covers: list[int],
    most: int,
) -> list[list[tuple[Any, ...]]]:
    """Runs of consecutive update rows to pack (each at least 2 rows, at most `most`)."""
    stmt = compile_for(_UPDATES, db.backend)
    rows = await db.fetch(stmt.sql, stmt.args(doc=doc, first=snapshot, last=covers))
    walls = sorted({*stays, *(c + 0.5 for c in kept_covers)})  # a run never crosses one
    runs: list[list[tuple[Any, ...]]] = []
    run: list[tuple[Any, ...]] = []
    wall = 0
    for row in rows:
        seq = int(row[0])
        crossed = False
        while wall < len(walls) and walls[wall] < seq:
            crossed = True
            wall += 1
        if run and (crossed or len(run) >= most):
            runs.append(run)
            run = []
        run.append(row)
    if run:
        runs.append(run)
    return [run for run in runs if len(run) >= 2]


def _block(doc: str, run: list[tuple[Any, ...]]) -> Block:
    """The block row of a run, the run's seq range and its length."""
    packed = []
    for seq, stored, metadata, timestamp, codec in run:
        update = bytes(stored)
        if codec:
            update = decompress(int(codec), update, where=f"record {seq} of {doc!r}")
        packed.append(Record(int(seq), update, bytes(metadata), float(timestamp)))
    header, payload = pack_block(packed)
    first, last = packed[0].seq, packed[-1].seq
    values = {
        "doc": doc,
        "seq": last,
        "kind": BLOCK,
        "update": payload,
        "metadata": header,
        "timestamp": max(record.timestamp for record in packed),
        "codec": 0,
    }
    return values, (first, last), len(packed)


class _Swap:
    """The transactions of a pack, on either backend."""

    def __init__(self, db: Database, doc: str) -> None:
        self.db, self.doc = db, doc
        self.dropped = False
        self.stmts = {
            name: compile_for(stmt, db.backend)
            for name, stmt in (
                ("range", _RANGE),
                ("delete_range", _DELETE_RANGE),
                ("delete_checkpoint", _DELETE_CHECKPOINT),
                ("insert", _INSERT),
                ("lock", _LOCK),
            )
        }

    async def run(self, blocks: Sequence[Block], drop: Sequence[int]) -> int:
        """Drop `drop`, then swap in `blocks` while their rows are all still there.

        Returns:
            How many blocks were swapped in (the first ones).
        """
        writer = self.db.sqlite_writer
        if writer is not None:
            return await run_in_worker(
                lambda: writer.transaction(lambda conn: self._sqlite(conn, blocks, drop))
            )
        return await self._postgres(blocks, drop)

    def _sqlite(
        self, conn: sqlite3.Connection, blocks: Sequence[Block], drop: Sequence[int]
    ) -> int:
        s, doc = self.stmts, self.doc
        for seq in drop:
            conn.execute(s["delete_checkpoint"].sql, s["delete_checkpoint"].args(doc=doc, seq=seq))
        self.dropped = self.dropped or bool(drop)
        done = 0
        for values, (first, last), count in blocks:
            found = conn.execute(
                s["range"].sql, s["range"].args(doc=doc, first=first, last=last)
            ).fetchone()
            if tuple(map(int, found)) != (count, count):
                break  # folded (or packed) by another process meanwhile
            conn.execute(
                s["delete_range"].sql, s["delete_range"].args(doc=doc, first=first, last=last)
            )
            conn.execute(s["insert"].sql, s["insert"].args(**values))
            done += 1
        return done

    async def _postgres(self, blocks: Sequence[Block], drop: Sequence[int]) -> int:
        s, doc = self.stmts, self.doc
        wait = self.db.timeouts.statement
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(s["lock"].sql, *s["lock"].args(doc=doc), timeout=wait)
            for seq in drop:
                await conn.execute(
                    s["delete_checkpoint"].sql,
                    *s["delete_checkpoint"].args(doc=doc, seq=seq),
                    timeout=wait,
                )
            done = 0
            for values, (first, last), count in blocks:
                found = await conn.fetchrow(
                    s["range"].sql, *s["range"].args(doc=doc, first=first, last=last), timeout=wait
                )
                if (int(found[0]), int(found[1])) != (count, count):
                    break
                await conn.execute(
                    s["delete_range"].sql,
                    *s["delete_range"].args(doc=doc, first=first, last=last),
                    timeout=wait,
                )
                await conn.execute(s["insert"].sql, *s["insert"].args(**values), timeout=wait)
                done += 1
        self.dropped = self.dropped or bool(drop)
        return done
