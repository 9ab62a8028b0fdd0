"""Checkpoints, retention and time travel on the SQL stores.

- `write_checkpoint`: merge the log from the latest trusted checkpoint (or
  snapshot) up to the last record, verify the merge, and append it as a
  checkpoint record through the ordinary write path (its seq comes from the
  document's counter, so concurrent writers and other servers go on writing;
  nothing is locked while merging).
- `retention_cut`: the last record a retention policy drops (the records up to
  it are then folded into a snapshot row by `squashing.fold_document`).
- `state_at`: the nearest trusted checkpoint at or before a point, plus the
  records up to that point.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import crdt
from ..errors import HistoryNotKeptError, YDocNotFound
from ..history.checkpoints import CheckpointReport, encode_header
from ..history.policy import RetentionPolicy
from ..records import RecordKind
from ..threads import run_in_worker
from .blocks import BLOCK, block_records
from .history import find_base, landmarks
from .history_merge import merge_and_verify, merge_onto, merge_range, stored_form
from .statements import compile_for
from .tables import not_update, records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["retention_cut", "state_at", "write_checkpoint"]

PAGE = 4096
_SNAPSHOT = RecordKind.SNAPSHOT.value
_CHECKPOINT = RecordKind.CHECKPOINT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_latest = (
    sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
    .where(records.c.doc == _doc, records.c.kind == _SNAPSHOT, not_update())
    .scalar_subquery()
)
_in_log = (records.c.doc == _doc, records.c.kind != _CHECKPOINT, records.c.seq >= _latest)
# "At time t": the records before the first one written after t (in seq order): a
# scan of the primary key from the snapshot on that stops at that record.
# A block row's timestamp is its latest record's: the first row after t may be a block
# holding that record, and then only its records tell which (`first_after`).
_row = (records.c.seq, records.c.kind, records.c.metadata, records.c.update)
_FIRST_AFTER = (
    sa.select(*_row)
    .where(*_in_log, records.c.timestamp > sa.bindparam("at"))
    .order_by(records.c.seq)
    .limit(1)
)
_LAST_IN_LOG = sa.select(sa.func.max(records.c.seq)).where(*_in_log)
_after_latest = (records.c.doc == _doc, records.c.kind != _CHECKPOINT, records.c.seq > _latest)
_FIRST_KEPT = (
    sa.select(*_row)
    .where(*_after_latest, records.c.timestamp > sa.bindparam("cutoff"))
    .order_by(records.c.seq)
    .limit(1)
)

_LAST = sa.select(sa.func.max(records.c.seq)).where(*_after_latest)
_kept_bytes = (
    sa.func.sum(sa.func.length(records.c.update)).over(order_by=records.c.seq.desc()).label("kept")
)
_suffix = sa.select(records.c.seq, _kept_bytes).where(*_after_latest).subquery()
_OVER_BUDGET = sa.select(sa.func.max(_suffix.c.seq)).where(_suffix.c.kept > sa.bindparam("budget"))
_EXISTS = sa.select(sa.func.count()).where(records.c.doc == _doc)


async def write_checkpoint(
    db: Database, doc: str, *, compressed: bool, now: float
) -> CheckpointReport | None:
    """Append a checkpoint of everything stored now (see the module docstring).

    Returns:
        What was written, or None when the latest trusted checkpoint (or the
        snapshot) already covers every record, or the document has none.
    """
    started = time.perf_counter()
    merged = await merge_range(db, doc)
    if merged.count == 0:
        return None  # covered already (or no record at all)
    if merged.base is None and merged.count == 1 and merged.first == merged.marks.snapshot:
        return None  # the snapshot alone: it covers everything already
    update = await merge_and_verify(merged, strict=True)
    codec, stored = stored_form(update, compressed)
    header = encode_header(merged.covers, merged.covers_timestamp, update)
    seq = await db.write(doc, RecordKind.CHECKPOINT, stored, header, now, int(codec))
    return CheckpointReport(
        doc=doc,
        seq=seq,
        covers=merged.covers,
        raw_bytes=len(update),
        stored_bytes=len(stored),
        seconds=time.perf_counter() - started,
    )


async def retention_cut(db: Database, doc: str, policy: RetentionPolicy, now: float) -> int | None:
    """The last seq `policy` drops (None: it drops nothing).

    A window drops the records before the first one younger than it; a budget
    drops the oldest records until the rest fit it. The latest snapshot is
    never counted: it is what the dropped records become.
    """
    if policy.window is not None:
        cutoff = now - policy.window
        stmt = compile_for(_FIRST_KEPT, db.backend)
        rows = await db.fetch(stmt.sql, stmt.args(doc=doc, cutoff=cutoff))
        if rows:
            return _first_after(rows[0], cutoff) - 1 or None
        stmt = compile_for(_LAST, db.backend)
        last = (await db.fetch(stmt.sql, stmt.args(doc=doc)))[0][0]
        return None if last is None else int(last)
    if policy.budget is not None:
        # Rows' stored bytes: a block is stored whole, so one that does not fit goes whole.
        stmt = compile_for(_OVER_BUDGET, db.backend)
        over = (await db.fetch(stmt.sql, stmt.args(doc=doc, budget=policy.budget)))[0][0]
        return None if over is None else int(over)
    return None


def _first_after(row: tuple[Any, ...], at: float) -> int:
    """The seq of the first record written after `at`, from the first row written after it
    (a block: the first of its records after `at`)."""
    seq, kind, metadata, update = row
    if int(kind) != BLOCK:
        return int(seq)
    return int(next(r.seq for r in block_records(metadata, update) if r.timestamp > at))


async def state_at(db: Database, doc: str, at: float | None, seq: int | None) -> bytes:
    """The document at time `at` or just after record `seq`, as one update.

    Raises:
        YDocNotFound: The document has no record.
        HistoryNotKeptError: That point is older than the latest snapshot.
    """
    marks = await landmarks(db, doc)
    if at is not None:
        stmt = compile_for(_FIRST_AFTER, db.backend)
        first_after = await db.fetch(stmt.sql, stmt.args(doc=doc, at=at))
        if first_after:
            target = _first_after(first_after[0], at) - 1
        else:
            stmt = compile_for(_LAST_IN_LOG, db.backend)
            last = (await db.fetch(stmt.sql, stmt.args(doc=doc)))[0][0]
            if last is None:
                raise YDocNotFound(f"The database holds no record for the document {doc!r}.")
            target = int(last)
    else:
        assert seq is not None
        target = seq
    if marks.snapshot and (
        (at is not None and at < marks.snapshot_timestamp) or target < marks.snapshot
    ):
        raise HistoryNotKeptError(
            f"The history of {doc!r} before seq {marks.snapshot} (time "
            f"{marks.snapshot_timestamp:.3f}) is no longer kept; the earliest state kept "
            "is the one at that point.",
            oldest=marks.snapshot_timestamp,
        )
    base = await find_base(db, doc, until=target, marks=marks)
    after = base.covers if base is not None else 0
    updates = [base.update] if base is not None else []
    while after < target:
        rows = await db.update_page(doc, after, PAGE, target)
        updates.extend(update for _seq, update in rows)
        if len(rows) < PAGE:
            break
        after = int(rows[-1][0])
    if base is None and not updates:
        stmt = compile_for(_EXISTS, db.backend)
        if not (await db.fetch(stmt.sql, stmt.args(doc=doc)))[0][0]:
            raise YDocNotFound(f"The database holds no record for the document {doc!r}.")
    if base is None:
        return await run_in_worker(lambda: crdt.merge_updates(updates))
    if len(updates) == 1:
        return base.update
    return await run_in_worker(lambda: merge_onto(base.update, updates[1:]))
