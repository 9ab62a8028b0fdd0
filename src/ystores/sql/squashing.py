"""Squashing a document in a database: its history merged into one snapshot row.

1. Read the document from its latest snapshot on (streaming, no write lock) up
   to the current last record, the cut point, and merge the updates in a worker
   thread (`crdt.merge_updates`).
2. In one short transaction (`BEGIN IMMEDIATE` on SQLite; the document's counter
   row locked `FOR UPDATE` on Postgres): check that exactly the merged records are
   still there (no other squash ran meanwhile), delete them and insert the
   snapshot with the cut's seq. Records written after the cut keep their seqs and
   stay after the snapshot.

Writers wait only for the second phase, never for the merge.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..compaction.policy import LogStats, SquashReport
from ..crdt import merge_updates
from ..records import RecordKind
from ..threads import run_in_worker
from .statements import compile_for
from .tables import documents, records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["document_stats", "squash_document"]

_SNAPSHOT = RecordKind.SNAPSHOT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_latest = (
    sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
    .where(records.c.doc == _doc, records.c.kind == _SNAPSHOT)
    .scalar_subquery()
)
# The tail is what follows the latest snapshot: the snapshot's own bytes are not
# in it (a policy's `max_bytes` measures the tail, as on the file store).
_tail_length = sa.case((records.c.kind == _SNAPSHOT, 0), else_=sa.func.length(records.c.update))
_STATS = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(_tail_length), 0),
    sa.func.coalesce(sa.func.max(records.c.seq), 0),
    sa.func.coalesce(sa.func.max(records.c.timestamp), 0),
    _latest,
).where(records.c.doc == _doc, records.c.seq >= _latest)
_CHECK = sa.select(sa.func.min(records.c.seq), sa.func.count()).where(
    records.c.doc == _doc, records.c.seq <= sa.bindparam("cut")
)
_DELETE = records.delete().where(records.c.doc == _doc, records.c.seq <= sa.bindparam("cut"))
_LOCK = sa.select(documents.c.last_seq).where(documents.c.doc == _doc).with_for_update()
_INSERT = records.insert()
_TIMESTAMP = sa.select(records.c.timestamp).where(
    records.c.doc == _doc, records.c.seq == sa.bindparam("seq")
)


@dataclass
class _Merged:
    base: int
    cut: int
    count: int
    update_bytes: int
    last_timestamp: float
    update: bytes


async def document_stats(db: Database, doc: str) -> LogStats | None:
    """The shape of a document's log (None when it has no record)."""
    stmt = compile_for(_STATS, db.backend)
    count, size, last_seq, last_write, snapshot = (await db.fetch(stmt.sql, stmt.args(doc=doc)))[0]
    if not count:
        return None
    has_snapshot = int(snapshot) > 0
    return LogStats(
        tail_records=int(count) - has_snapshot,
        tail_bytes=int(size),
        has_snapshot=has_snapshot,
        last_write=float(last_write),
        last_seq=int(last_seq),
    )


async def _read_and_merge(db: Database, doc: str) -> _Merged | None:
    updates: list[bytes] = []
    base = cut = 0
    after = 0
    while True:
        rows = await db.update_page(doc, after, 4096)
        if rows:
            base = base or rows[0][0]
            cut = rows[-1][0]
            updates.extend(update for _seq, update in rows)
        if len(rows) < 4096:
            break
        after = cut
    if len(updates) < 2:
        return None
    stamp = compile_for(_TIMESTAMP, db.backend)
    found = await db.fetch(stamp.sql, stamp.args(doc=doc, seq=cut))
    last_timestamp = float(found[0][0]) if found else 0.0
    size = sum(map(len, updates))
    merged = await run_in_worker(lambda: merge_updates(updates))
    return _Merged(base, cut, len(updates), size, last_timestamp, merged)


async def squash_document(db: Database, doc: str) -> SquashReport | None:
    """Replace a document's history by one snapshot row (see the module docstring).

    Returns:
        What was done, or None when there was nothing to squash (fewer than two
        records, or another squash changed the document meanwhile).
    """
    started = time.perf_counter()
    merged = await _read_and_merge(db, doc)
    if merged is None:
        return None
    values = {
        "doc": doc,
        "seq": merged.cut,
        "kind": _SNAPSHOT,
        "update": merged.update,
        "metadata": b"",
        "timestamp": merged.last_timestamp,
    }
    check, delete, insert = (compile_for(s, db.backend) for s in (_CHECK, _DELETE, _INSERT))
    writer = db.sqlite_writer
    if writer is not None:

        def swap(conn: sqlite3.Connection) -> bool:
            found = conn.execute(check.sql, check.args(doc=doc, cut=merged.cut)).fetchone()
            if tuple(found) != (merged.base, merged.count):
                return False
            conn.execute(delete.sql, delete.args(doc=doc, cut=merged.cut))
            conn.execute(insert.sql, insert.args(**values))
            return True

        done = await run_in_worker(lambda: writer.transaction(swap))
    else:
        lock = compile_for(_LOCK, db.backend)
        wait = db.timeouts.statement
        async with db.connection() as conn, conn.transaction():
            await conn.execute(lock.sql, *lock.args(doc=doc), timeout=wait)
            found = await conn.fetchrow(
                check.sql, *check.args(doc=doc, cut=merged.cut), timeout=wait
            )
            done = tuple(found) == (merged.base, merged.count)
            if done:
                await conn.execute(delete.sql, *delete.args(doc=doc, cut=merged.cut), timeout=wait)
                await conn.execute(insert.sql, *insert.args(**values), timeout=wait)
    if not done:
        return None
    if writer is not None:
        await run_in_worker(writer.shrink)
    stats = await document_stats(db, doc)
    # Written since the cut: the records after the new snapshot (its bytes not among them).
    later_records = stats.tail_records if stats else 0
    later_bytes = stats.tail_bytes if stats else 0
    return SquashReport(
        doc=doc,
        records_before=merged.count + later_records,
        records_after=1 + later_records,
        bytes_before=merged.update_bytes + later_bytes,
        bytes_after=len(merged.update) + later_bytes,
        cut_seq=merged.cut,
        seconds=time.perf_counter() - started,
    )
