"""Where a document's restore starts on the SQL stores: its latest trusted checkpoint.

A document's rows, from its latest snapshot on, are updates and checkpoints.
A checkpoint's header (its `metadata`) says which seqs it merges (`covers`);
a restore starts from the checkpoint that covers most (never less than the
snapshot) and replays the updates after it.

Finding it costs two index lookups on `(doc, kind, seq)`: the headers of the
document's checkpoints (a few small rows, one per thousand records or so:
their `covers` lives in the header, so they are picked in Python, no other
index is needed), then the chosen checkpoint's update. A checkpoint is trusted
only when its header decodes, its update decompresses and matches the header's
digest; otherwise it is skipped with a warning and the next one tried, down to
a replay from the snapshot (or the first record). Never a wrong document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import CorruptStoreError
from ..history.checkpoints import CheckpointHeader, decode_header
from ..history.compression import decompress
from ..records import RecordKind
from .database import Meanwhile
from .statements import MAX_SEQ, compile_for
from .tables import not_update, records

if TYPE_CHECKING:
    from .database import Database, Reads
    from .statements import Statements

__all__ = [
    "WINDOW",
    "Base",
    "Landmarks",
    "RestoreStart",
    "find_base",
    "landmarks",
    "latest_base",
    "restore_start",
]

log = logging.getLogger("ystores.sql")

_SNAPSHOT = RecordKind.SNAPSHOT.value
_CHECKPOINT = RecordKind.CHECKPOINT.value
_doc: sa.BindParameter[str] = sa.bindparam("doc")
_latest_snapshot = (
    sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
    .where(records.c.doc == _doc, records.c.kind == _SNAPSHOT, not_update())
    .scalar_subquery()
)
# The latest snapshot and every checkpoint after it, headers only. Each part is an
# equality on `kind` beside `not_update()`, so both are range scans of the partial
# `(doc, kind, seq)` index (`kind > 0` alone would let SQLite scan the whole
# document through the primary key).
_columns = (records.c.seq, records.c.kind, records.c.metadata, records.c.timestamp)
_snapshot_row = (
    sa.select(*_columns)
    .where(records.c.doc == _doc, records.c.kind == _SNAPSHOT, not_update())
    .order_by(records.c.seq.desc())
    .limit(1)
    .subquery()
)
_LANDMARKS = sa.union_all(
    sa.select(*_columns).where(
        records.c.doc == _doc,
        records.c.kind == _CHECKPOINT,
        not_update(),
        records.c.seq >= _latest_snapshot,
    ),
    sa.select(_snapshot_row),
)


def _newest_checkpoint(*columns: Any) -> sa.Select[Any]:
    """`columns` of the newest checkpoint after the latest snapshot (one row or none)."""
    return (
        sa.select(*columns)
        .where(
            records.c.doc == _doc,
            records.c.kind == _CHECKPOINT,
            not_update(),
            records.c.seq >= _latest_snapshot,
        )
        .order_by(records.c.seq.desc())
        .limit(1)
    )


# The newest checkpoint after the latest snapshot, whole, with that snapshot's seq:
# a restore's base in one lookup of the partial `(doc, kind, seq)` index (`latest_base`).
_NEWEST = _newest_checkpoint(
    records.c.seq,
    records.c.metadata,
    records.c.update,
    records.c.codec,
    _latest_snapshot.label("snapshot"),
)
WINDOW = 16
"""Rows before the newest checkpoint's own seq that `_RESTORE` fetches with its tail.

A checkpoint covers what was stored when it was built; whatever was written
while it was built lies between its `covers` and its own seq. `covers` is in
its header, out of the query's reach, so the tail starts this many seqs before
the checkpoint and Python drops what it covers. A checkpoint built while this
many records or more were written takes one more query (`restore_start`)."""

_newest = _newest_checkpoint(records.c.seq).cte("newest")
_newest_seq = sa.select(_newest.c.seq).scalar_subquery()
# A restore's reads in one statement, one range of the primary key in seq order:
# the newest checkpoint after the latest snapshot and the rows after it (from
# `WINDOW` seqs before it), or the rows from the first record when there is
# none; each as `statements.update_page` has it, with `extra` (the header of a
# block row or of the checkpoint) and, on the checkpoint's row alone, the latest
# snapshot's seq. One statement also sees one state of the document (Postgres:
# one snapshot). Neither a union nor a sort: either made SQLite copy every row's
# body once more (the statement took twice as long as the two queries it replaces).
_RESTORE = (
    sa.select(
        records.c.seq,
        records.c.update,
        records.c.codec,
        sa.case(
            (
                sa.or_(records.c.kind == RecordKind.BLOCK.value, records.c.kind == _CHECKPOINT),
                records.c.metadata,
            )
        ).label("extra"),
        sa.case((records.c.kind == _CHECKPOINT, _latest_snapshot)).label("snapshot"),
    )
    .where(
        records.c.doc == _doc,
        records.c.seq > sa.func.coalesce(_newest_seq - WINDOW, 0),
        records.c.seq >= _latest_snapshot,
        sa.or_(records.c.kind != _CHECKPOINT, records.c.seq == _newest_seq),
    )
    .order_by(records.c.seq)
    .limit(
        sa.case(
            (sa.exists(sa.select(_newest.c.seq)), sa.bindparam("tail", type_=sa.Integer())),
            else_=sa.bindparam("first", type_=sa.Integer()),
        )
    )
)
_ROW = sa.select(records.c.update, records.c.codec).where(
    records.c.doc == _doc, records.c.seq == sa.bindparam("seq")
)


@dataclass(frozen=True)
class Landmarks:
    """A document's latest snapshot and the checkpoints after it.

    Attributes:
        snapshot: The latest snapshot's seq (0 without one).
        snapshot_timestamp: Its timestamp (that of its last merged record).
        checkpoints: `(seq, header)` of each checkpoint, newest first; the
            header is None when it does not decode.
    """

    snapshot: int = 0
    snapshot_timestamp: float = 0.0
    checkpoints: list[tuple[int, CheckpointHeader | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Base:
    """A trusted checkpoint: where a restore starts.

    Attributes:
        seq: The checkpoint record's own seq.
        covers: The highest seq merged into `update`.
        covers_timestamp: The timestamp of record `covers`.
        update: The merged update (raw).
        stored_bytes: Its size as stored.
    """

    seq: int
    covers: int
    covers_timestamp: float
    update: bytes
    stored_bytes: int


async def landmarks(db: Database, doc: str) -> Landmarks:
    """The document's latest snapshot and the headers of the checkpoints after it."""
    stmt = compile_for(_LANDMARKS, db.backend)
    snapshot, stamp = 0, 0.0
    found: list[tuple[int, CheckpointHeader | None]] = []
    for seq, kind, metadata, timestamp in await db.fetch(stmt.sql, stmt.args(doc=doc)):
        if int(kind) == _SNAPSHOT:
            snapshot, stamp = int(seq), float(timestamp)
        else:
            found.append((int(seq), decode_header(bytes(metadata))))
    found.sort(key=lambda checkpoint: checkpoint[0], reverse=True)
    return Landmarks(snapshot, stamp, found)


async def find_base(
    db: Database, doc: str, *, until: int | None = None, marks: Landmarks | None = None
) -> Base | None:
    """The trusted checkpoint covering most, at most `until` and at least the latest
    snapshot; None when there is none (replay from the snapshot or the first record).

    Damaged checkpoints are skipped with a warning.
    """
    marks = marks if marks is not None else await landmarks(db, doc)
    usable = []
    for seq, header in marks.checkpoints:
        if header is None:
            _warn(doc, seq, "its header does not decode")
        elif header.covers >= marks.snapshot and (until is None or header.covers <= until):
            usable.append((header.covers, seq, header))
    usable.sort(reverse=True)
    stmt = compile_for(_ROW, db.backend)
    for covers, seq, header in usable:
        rows = await db.fetch(stmt.sql, stmt.args(doc=doc, seq=seq))
        if not rows:  # removed meanwhile (a squash or retention superseded it)
            continue
        stored, codec = bytes(rows[0][0]), int(rows[0][1])
        try:
            update = decompress(codec, stored, where=f"checkpoint {seq} of {doc!r}")
        except CorruptStoreError as exc:
            _warn(doc, seq, str(exc))
            continue
        if not header.matches(update):
            _warn(doc, seq, "its update does not match its digest")
            continue
        return Base(seq, covers, header.covers_timestamp, update, len(stored))
    return None


async def latest_base(db: Database, doc: str) -> Base | None:
    """A restore's base: the newest checkpoint when it checks out, else `find_base`'s.

    One query in the common case (the newest checkpoint is the one covering most:
    checkpoints cover what was stored when they were built). When the newest is
    damaged, or covers less than the latest snapshot (built before a squash
    landed), `find_base` looks through every checkpoint and warns of the damaged.
    """
    stmt = compile_for(_NEWEST, db.backend)
    rows = await db.fetch(stmt.sql, stmt.args(doc=doc))
    if not rows:
        return None  # no checkpoint after the latest snapshot
    base = _trusted_newest(rows[0], doc)
    return base if base is not None else await find_base(db, doc)


def _trusted_newest(row: tuple[Any, ...], doc: str) -> Base | None:
    """The base in a row of `_NEWEST` if it checks out (header, snapshot, codec, digest)."""
    seq, metadata, stored, codec, snapshot = row
    header = decode_header(bytes(metadata))
    if header is None or header.covers < int(snapshot):
        return None
    stored = bytes(stored)
    try:
        update = decompress(int(codec), stored, where=f"checkpoint {seq} of {doc!r}")
    except CorruptStoreError:
        return None
    if not header.matches(update):
        return None
    return Base(int(seq), header.covers, header.covers_timestamp, update, len(stored))


@dataclass(frozen=True)
class RestoreStart:
    """`restore_start`'s reads: the trusted base and the first page of updates after it.

    Attributes:
        base: The newest checkpoint, checked (None: the document has none).
        rows: The first page of updates after it (or from the first record),
            as fetched, shaped as `statements.update_page`'s rows (a fifth
            column may follow; `database.update_rows` decodes them).
        applied: Whether `base` was applied already (`restore_start`'s `apply`).
    """

    base: Base | None
    rows: list[Any]
    applied: bool = False


def restore_start(
    backend: str,
    statements: Statements,
    doc: str,
    first: int,
    tail: int,
    apply: Callable[[bytes], None] | None = None,
) -> Reads[RestoreStart | None]:
    """A restore's first reads, for `Database.chain`: the newest checkpoint, checked,
    and the first page of updates after it (`tail` rows; `first` rows from the
    first record when there is no checkpoint).

    One statement in the common case (one round trip on Postgres, and one state
    of the document): it fetches the tail from `WINDOW` seqs before the
    checkpoint's own seq, and the rows its header says it covers are dropped
    here. A checkpoint built while `WINDOW` or more records were written takes
    a second query for the page after it; with `apply`, the checkpoint's update
    is given to it while that query runs (Postgres: hidden behind the round
    trip; see `Meanwhile`). No transaction spans those two reads: what another
    writer commits in between (records, a newer checkpoint, a squash or a pack)
    is in the page or merged in the snapshot it starts from, so the checkpoint
    and the page make the document as of the page's read. None when the newest
    checkpoint does not check out: `latest_base` then looks through the others
    (and warns), as a restore without this shortcut does.
    """
    stmt = compile_for(_RESTORE, backend)
    rows = yield stmt.sql, stmt.args(doc=doc, first=first, tail=tail + WINDOW)
    # The checkpoint's row, if any, is among the first `WINDOW` (seq order).
    at = next((i for i, row in enumerate(rows[:WINDOW]) if row[4] is not None), None)
    if at is None:  # no checkpoint: the page from the first record
        return RestoreStart(None, rows)
    seq, stored, codec, header, snapshot = rows[at]
    base = _trusted_newest((seq, header, stored, codec, snapshot), doc)
    if base is None:
        return None
    if base.seq - WINDOW <= base.covers < base.seq:
        # Dropped: the checkpoint's row and at most WINDOW - 1 rows before it that
        # it covers. A page of fewer than `tail` rows left means that the limit
        # (`tail + WINDOW`) was not reached: the tail is whole.
        covers = base.covers
        return RestoreStart(base, [row for row in rows[:at] if row[0] > covers] + rows[at + 1 :])
    page = statements.update_page
    args = page.args(doc=doc, after=base.covers, limit=tail, until=MAX_SEQ)
    if apply is None:
        return RestoreStart(base, (yield page.sql, args))
    update = base.update
    return RestoreStart(base, (yield Meanwhile(page.sql, args, lambda: apply(update))), True)


def _warn(doc: str, seq: int, why: str) -> None:
    log.warning(
        "Skipping checkpoint %d of %r: %s; restoring from an earlier one or the log.",
        seq,
        doc,
        why,
    )
