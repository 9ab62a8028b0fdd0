"""Merging part of a document's log on the SQL stores, and checking the merge.

Shared by checkpoints (`history_write`), squashes and retention (`squashing`):
read the updates after a trusted base up to a seq, merge them in a worker
thread, and verify that the merge holds exactly what replaying them holds
before anything is written or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import crdt
from ..errors import CorruptStoreError, InvalidUpdateError
from ..history.compression import Codec, compress
from ..history.packing import decode_block_header
from ..threads import run_in_worker
from ..yupdate import CoverageCheck, decode_state_vector, parse_update
from .blocks import BLOCK, block_records, straddling_block
from .history import Base, Landmarks, find_base, landmarks
from .statements import MAX_SEQ, compile_for
from .tables import records

if TYPE_CHECKING:
    from .database import Database

__all__ = [
    "Merged",
    "merge_and_verify",
    "merge_onto",
    "merge_range",
    "stored_form",
    "timestamp_of",
    "verify_merge",
]

PAGE = 4096
_TIMESTAMP = sa.select(records.c.timestamp, records.c.kind, records.c.metadata).where(
    records.c.doc == sa.bindparam("doc"), records.c.seq == sa.bindparam("seq")
)


@dataclass
class Merged:
    """The merge of a document's log up to `covers`.

    Attributes:
        marks: The snapshot and checkpoints seen when reading.
        base: The trusted checkpoint the merge started from (None: the log's start).
        covers: The highest seq merged (0: nothing).
        covers_timestamp: The timestamp of record `covers`.
        first: The lowest seq read from the log (after the base).
        count: Records read from the log (the snapshot included).
        update_bytes: Their bytes (raw), the base's not included.
        inputs: The base's update and the records', in order (emptied once merged).
        update: The merged update (None until merged).
    """

    marks: Landmarks
    base: Base | None
    covers: int
    covers_timestamp: float
    first: int
    count: int
    update_bytes: int
    inputs: list[bytes]
    update: bytes | None = None


async def merge_range(db: Database, doc: str, until: int = MAX_SEQ) -> Merged:
    """Read the log up to `until` (from the trusted checkpoint covering most) and merge it.

    Raises:
        InvalidUpdateError: A stored update does not decode.
        CorruptStoreError: A compressed update does not decompress, or the merge
            does not replay to the same document (nothing should then be written).
    """
    marks = await landmarks(db, doc)
    base = await find_base(db, doc, until=None if until == MAX_SEQ else until, marks=marks)
    after = base.covers if base is not None else 0
    inputs: list[bytes] = [base.update] if base is not None else []
    first = covers = 0
    count = size = 0
    while True:
        rows = await db.update_page(doc, after, PAGE, until)
        for _seq, update in rows:
            inputs.append(update)
            size += len(update)
        if rows:
            first = first or int(rows[0][0])
            covers = after = int(rows[-1][0])
            count += len(rows)
        if len(rows) < PAGE:
            break
    stamp = 0.0
    if covers:
        stamp = await timestamp_of(db, doc, covers)
    elif base is not None:
        covers, stamp = base.covers, base.covers_timestamp
    return Merged(marks, base, covers, stamp, first, count, size, inputs)


async def timestamp_of(db: Database, doc: str, seq: int) -> float:
    """The timestamp of record `seq` (0.0 when it is gone), in a block or not."""
    stmt = compile_for(_TIMESTAMP, db.backend)
    found = await db.fetch(stmt.sql, stmt.args(doc=doc, seq=seq))
    if found:
        stamp, kind, metadata = found[0]
        if int(kind) == BLOCK:
            return decode_block_header(bytes(metadata)).last_timestamp
        return float(stamp)
    block = await straddling_block(db, doc, seq)
    if block is not None:
        for record in block_records(block[1], block[2], seq - 1, seq):
            return float(record.timestamp)
    return 0.0


async def merge_and_verify(merged: Merged, *, strict: bool = False) -> bytes:
    """Merge `merged.inputs` in a worker thread and verify the result (see `verify_merge`).

    Args:
        merged: What was read.
        strict: Also refuse a merge holding updates the engine held back (their
            dependencies missing from the log): a checkpoint must not hold any,
            since later merges start from it without parsing it.
    """
    inputs = merged.inputs
    base = inputs[0] if merged.base is not None else None
    rest = inputs[1:] if merged.base is not None else inputs

    def work() -> bytes:
        update = merge_onto(base, rest)
        verify_merge(inputs, update, strict=strict)
        return update

    merged.update = await run_in_worker(work)
    merged.inputs = []
    return merged.update


def merge_onto(base: bytes | None, updates: list[bytes]) -> bytes:
    """`crdt.merge_updates([base, *updates])` for a trusted checkpoint's `base`.

    A trusted checkpoint holds no update the engine held back (see
    `merge_and_verify`), so only `updates` need the engine's coverage check: the
    base, the bulk of the bytes, is applied without being parsed in Python.
    Should the check find something held back, the full merge runs instead.

    Raises:
        InvalidUpdateError: An update does not decode.
    """
    if base is None:
        return crdt.merge_updates(updates)
    check = CoverageCheck()
    try:
        for update in updates:
            check.add(update)
        doc: Any = crdt.new_doc("pycrdt")
        crdt.apply_updates(doc, [base, *updates])
    except (ValueError, InvalidUpdateError):
        return crdt.merge_updates([base, *updates])  # raises the error naming the update
    state = crdt.encode_state_as_update(doc)
    if check.missing(decode_state_vector(crdt.encode_state_vector(doc))):
        return crdt.merge_updates([base, *updates])
    return state


def verify_merge(inputs: list[bytes], merged: bytes, *, strict: bool = False) -> None:
    """Check that `merged` applied to a fresh document holds what replaying `inputs` holds.

    Compared: the state vectors, and the clock ranges of the structs and
    deletions of each document's encoded state (the engine's encoding may order
    equal content differently, so bytes are not compared). `strict`: `merged`
    itself must hold nothing more than that state (no update held back).

    Raises:
        CorruptStoreError: The documents differ.
    """
    replay: Any = crdt.new_doc("pycrdt")
    crdt.apply_updates(replay, inputs)
    check: Any = crdt.new_doc("pycrdt")
    crdt.apply_update(check, merged)
    same = decode_state_vector(crdt.encode_state_vector(replay)) == decode_state_vector(
        crdt.encode_state_vector(check)
    )
    if same:
        one = parse_update(crdt.encode_state_as_update(replay))
        other = parse_update(crdt.encode_state_as_update(check))
        same = _spans(one.structs) == _spans(other.structs) and _spans(one.deletes) == _spans(
            other.deletes
        )
        if same and strict:
            held = parse_update(merged)
            same = _spans(held.structs) == _spans(one.structs)
    if not same:
        raise CorruptStoreError(
            f"A merge of {len(inputs)} updates does not replay to the same document; "
            "nothing was written."
        )


def _spans(ranges: dict[int, list[tuple[int, int]]]) -> dict[int, list[tuple[int, int]]]:
    """Clock ranges per client, sorted and joined where they touch."""
    joined: dict[int, list[tuple[int, int]]] = {}
    for client, spans in ranges.items():
        out: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(end, out[-1][1]))
            elif end > start:
                out.append((start, end))
        if out:
            joined[client] = out
    return joined


def stored_form(update: bytes, compressed: bool) -> tuple[Codec, bytes]:
    """The codec and bytes to store for a merged update (compressed when asked and useful)."""
    return compress(update) if compressed else (Codec.RAW, update)
