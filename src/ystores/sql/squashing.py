"""Folding a document's history into a snapshot row: squashes and retention.

A fold up to seq `cut` replaces every record up to `cut` by one snapshot row
with seq `cut` (the records after it stay, record by record):

1. Read the log up to `cut` from the trusted checkpoint covering most (or the
   snapshot, or the first record), merge it in a worker thread and verify the
   merge (`history_merge`); no lock is held meanwhile.
2. In one short transaction (`BEGIN IMMEDIATE` on SQLite; the document's counter
   row locked `FOR UPDATE` on Postgres): check that no other fold ran meanwhile
   (the latest snapshot is the one read), delete the rows up to `cut` and the
   checkpoints the snapshot supersedes (those covering no more than `cut`), and
   insert the snapshot. Records written after the cut keep their seqs.

A squash folds up to the last record; retention up to the last record its
policy drops. Writers wait only for the second phase, never for the merge, and
a crash at any moment leaves either the old rows or the new ones.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..compaction.policy import LogStats, SquashReport
from ..history.checkpoints import decode_header
from ..history.packing import decode_block_header, pack_block, unpack_block
from ..records import RecordKind
from ..threads import run_in_worker
from .blocks import BLOCK, block_headers, straddling_block
from .history_merge import merge_and_verify, merge_range, stored_form
from .statements import MAX_SEQ, compile_for
from .tables import documents, not_update, records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["document_stats", "fold_document", "squash_document"]

_SNAPSHOT = RecordKind.SNAPSHOT.value
_UPDATE = RecordKind.UPDATE.value
_CHECKPOINT = RecordKind.CHECKPOINT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_cut: sa.BindParameter[int] = sa.bindparam("cut", type_=sa.BigInteger())
_latest = (
    sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
    .where(records.c.doc == _doc, records.c.kind == _SNAPSHOT, not_update())
    .scalar_subquery()
)
_logged = records.c.kind != _CHECKPOINT
# The tail is what follows the latest snapshot: the snapshot's own bytes are not
# in it (a policy's `max_bytes` measures the tail, as on the file store), and
# checkpoints are not part of the log a policy measures.
_tail_length = sa.case((records.c.kind == _SNAPSHOT, 0), else_=sa.func.length(records.c.update))
_STATS = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(_tail_length), 0),
    sa.func.coalesce(sa.func.max(records.c.seq), 0),
    sa.func.coalesce(sa.func.max(records.c.timestamp), 0),
    _latest,
).where(records.c.doc == _doc, records.c.seq >= _latest, _logged)
_SNAPSHOT_NOW = sa.select(_latest)
_CHECK = sa.select(
    sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(records.c.update)), 0)
).where(records.c.doc == _doc, records.c.seq <= _cut, _logged)
_DELETE = records.delete().where(records.c.doc == _doc, records.c.seq <= _cut)
_LATER_CHECKPOINTS = sa.select(records.c.seq, records.c.metadata).where(
    records.c.doc == _doc, records.c.kind == _CHECKPOINT, not_update(), records.c.seq > _cut
)
_DELETE_ONE = records.delete().where(records.c.doc == _doc, records.c.seq == sa.bindparam("seq"))
_BLOCKS_UP_TO = sa.select(records.c.metadata).where(
    records.c.doc == _doc, records.c.kind == BLOCK, not_update(), records.c.seq <= _cut
)
_NEXT_BLOCK = (
    sa.select(records.c.seq, records.c.metadata)
    .where(records.c.doc == _doc, records.c.kind == BLOCK, not_update(), records.c.seq > _cut)
    .order_by(records.c.seq)
    .limit(1)
)
_LOCK = sa.select(documents.c.last_seq).where(documents.c.doc == _doc).with_for_update()
_INSERT = records.insert()


async def document_stats(db: Database, doc: str) -> LogStats | None:
    """The shape of a document's log, checkpoints left out (None when it has no record)."""
    stmt = compile_for(_STATS, db.backend)
    count, size, last_seq, last_write, snapshot = (await db.fetch(stmt.sql, stmt.args(doc=doc)))[0]
    if not count:
        return None
    has_snapshot = int(snapshot) > 0
    packed = await block_headers(db, doc, since=int(snapshot))  # each row holds `count`
    count = int(count) + sum(header.count - 1 for _seq, header in packed)
    return LogStats(
        tail_records=count - has_snapshot,
        tail_bytes=int(size),
        has_snapshot=has_snapshot,
        last_write=float(last_write),
        last_seq=int(last_seq),
    )


async def squash_document(
    db: Database, doc: str, *, compressed: bool = False
) -> SquashReport | None:
    """Replace a document's whole history by one snapshot row (see the module docstring).

    Returns:
        What was done, or None when there was nothing to squash (fewer than two
        records, or another squash changed the document meanwhile).
    """
    return await fold_document(db, doc, MAX_SEQ, compressed=compressed)


async def fold_document(
    db: Database, doc: str, cut: int, *, compressed: bool = False
) -> SquashReport | None:
    """Replace the records up to `cut` by one snapshot row with seq `cut`.

    Args:
        db: The database.
        doc: The document.
        cut: The last seq folded (`MAX_SEQ`: every record stored now).
        compressed: Store the snapshot compressed (when that shrinks it).

    Returns:
        What was done, or None when nothing was folded (fewer than two records
        up to the cut, or another fold changed the document meanwhile).
    """
    started = time.perf_counter()
    merged = await merge_range(db, doc, cut)
    snapshot = merged.marks.snapshot
    if merged.covers <= snapshot or (merged.base is None and merged.count < 2):
        return None
    update = await merge_and_verify(merged)
    codec, stored = stored_form(update, compressed)
    cut = merged.covers
    values = {
        "doc": doc,
        "seq": cut,
        "kind": _SNAPSHOT,
        "update": stored,
        "metadata": b"",
        "timestamp": merged.covers_timestamp,
        "codec": int(codec),
    }
    swap = _Swap(db, doc, cut, snapshot, values, await _split(db, doc, cut))
    writer = db.sqlite_writer
    if writer is not None:
        folded = await run_in_worker(lambda: writer.transaction(swap.sqlite))
    else:
        folded = await swap.postgres()
    if folded is None:
        return None
    if writer is not None:
        await run_in_worker(writer.shrink)
    count, size = folded
    stats = await document_stats(db, doc)
    # Written since the cut: the records after the new snapshot (its bytes not among them).
    later_records = stats.tail_records if stats else 0
    later_bytes = stats.tail_bytes if stats else 0
    return SquashReport(
        doc=doc,
        records_before=count + later_records,
        records_after=1 + later_records,
        bytes_before=size + later_bytes,
        bytes_after=len(stored) + later_bytes,
        cut_seq=cut,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Split:
    """A block the cut falls inside: its records up to the cut are folded, the rest
    stay (as a smaller block, or a row when one is left)."""

    seq: int
    header: bytes
    folded: int
    rest: dict[str, Any]


async def _split(db: Database, doc: str, cut: int) -> _Split | None:
    """How the block straddling `cut` is split (None: no block straddles it)."""
    block = await straddling_block(db, doc, cut)
    if block is None:
        return None
    seq, header, payload = block
    inner = unpack_block(header, payload)
    later = [record for record in inner if record.seq > cut]
    if len(later) == 1:
        kind, metadata, update, stamp = (
            _UPDATE,
            later[0].metadata,
            later[0].update,
            later[0].timestamp,
        )
    else:
        metadata, update = pack_block(later)
        kind, stamp = BLOCK, max(record.timestamp for record in later)
    rest = {
        "doc": doc, "seq": later[-1].seq, "kind": kind, "update": update,
        "metadata": metadata, "timestamp": stamp, "codec": 0,
    }  # fmt: skip
    return _Split(seq, header, len(inner) - len(later), rest)


class _Swap:
    """The fold's one transaction, on either backend; returns the folded records'
    count and bytes, or None when another fold ran meanwhile."""

    def __init__(
        self,
        db: Database,
        doc: str,
        cut: int,
        snapshot: int,
        values: dict[str, Any],
        split: _Split | None,
    ):
        self.doc, self.cut, self.snapshot, self.values = doc, cut, snapshot, values
        self.split = split
        self.stmts = {
            name: compile_for(stmt, db.backend)
            for name, stmt in (
                ("snapshot", _SNAPSHOT_NOW),
                ("check", _CHECK),
                ("delete", _DELETE),
                ("later", _LATER_CHECKPOINTS),
                ("delete_one", _DELETE_ONE),
                ("insert", _INSERT),
                ("lock", _LOCK),
                ("blocks", _BLOCKS_UP_TO),
                ("next_block", _NEXT_BLOCK),
            )
        }
        self.db = db

    def _superseded(self, rows: list[Any]) -> list[int]:
        """Checkpoints after the cut that cover no more than it (or whose header is damaged)."""
        found = []
        for seq, metadata in rows:
            header = decode_header(bytes(metadata))
            if header is None or header.covers <= self.cut:
                found.append(int(seq))
        return found

    def _changed(self, rows: list[Any]) -> bool:
        """Whether the block straddling the cut is not the one split (a pack ran
        meanwhile): the fold would drop part of a block, so it gives up."""
        straddles = bool(rows) and decode_block_header(bytes(rows[0][1])).first_seq <= self.cut
        if self.split is None:
            return straddles
        return not straddles or (int(rows[0][0]), bytes(rows[0][1])) != (
            self.split.seq,
            self.split.header,
        )

    @staticmethod
    def _packed(rows: list[Any]) -> int:
        """Records beyond one row per block among the folded rows."""
        return sum(decode_block_header(bytes(row[0])).count - 1 for row in rows)

    def sqlite(self, conn: sqlite3.Connection) -> tuple[int, int] | None:
        s, doc, cut = self.stmts, self.doc, self.cut
        if conn.execute(s["snapshot"].sql, s["snapshot"].args(doc=doc)).fetchone()[0] != (
            self.snapshot
        ):
            return None
        count, size = conn.execute(s["check"].sql, s["check"].args(doc=doc, cut=cut)).fetchone()
        if self._changed(
            conn.execute(s["next_block"].sql, s["next_block"].args(doc=doc, cut=cut)).fetchall()
        ):
            return None
        blocks = conn.execute(s["blocks"].sql, s["blocks"].args(doc=doc, cut=cut)).fetchall()
        count += self._packed(blocks) + (self.split.folded if self.split is not None else 0)
        if count < 2 and self.snapshot == 0:
            return None
        conn.execute(s["delete"].sql, s["delete"].args(doc=doc, cut=cut))
        if self.split is not None:
            conn.execute(s["delete_one"].sql, s["delete_one"].args(doc=doc, seq=self.split.seq))
            conn.execute(s["insert"].sql, s["insert"].args(**self.split.rest))
        later = conn.execute(s["later"].sql, s["later"].args(doc=doc, cut=cut)).fetchall()
        for seq in self._superseded(later):
            conn.execute(s["delete_one"].sql, s["delete_one"].args(doc=doc, seq=seq))
        conn.execute(s["insert"].sql, s["insert"].args(**self.values))
        return int(count), int(size)

    async def postgres(self) -> tuple[int, int] | None:
        s, doc, cut = self.stmts, self.doc, self.cut
        wait = self.db.timeouts.statement
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(s["lock"].sql, *s["lock"].args(doc=doc), timeout=wait)
            now = await conn.fetchval(s["snapshot"].sql, *s["snapshot"].args(doc=doc), timeout=wait)
            if int(now) != self.snapshot:
                return None
            count, size = await conn.fetchrow(
                s["check"].sql, *s["check"].args(doc=doc, cut=cut), timeout=wait
            )
            following = await conn.fetch(
                s["next_block"].sql, *s["next_block"].args(doc=doc, cut=cut), timeout=wait
            )
            if self._changed([tuple(r) for r in following]):
                return None
            blocks = await conn.fetch(
                s["blocks"].sql, *s["blocks"].args(doc=doc, cut=cut), timeout=wait
            )
            count += self._packed([tuple(r) for r in blocks])
            count += self.split.folded if self.split is not None else 0
            if count < 2 and self.snapshot == 0:
                return None
            await conn.execute(s["delete"].sql, *s["delete"].args(doc=doc, cut=cut), timeout=wait)
            if self.split is not None:
                await conn.execute(
                    s["delete_one"].sql,
                    *s["delete_one"].args(doc=doc, seq=self.split.seq),
                    timeout=wait,
                )
                await conn.execute(
                    s["insert"].sql, *s["insert"].args(**self.split.rest), timeout=wait
                )
            later = await conn.fetch(
                s["later"].sql, *s["later"].args(doc=doc, cut=cut), timeout=wait
            )
            for seq in self._superseded([tuple(r) for r in later]):
                await conn.execute(
                    s["delete_one"].sql, *s["delete_one"].args(doc=doc, seq=seq), timeout=wait
                )
            await conn.execute(s["insert"].sql, *s["insert"].args(**self.values), timeout=wait)
        return int(count), int(size)
