"""Writes whose outcome is unknown, and how a `Database` resolves them.

A write's outcome is *unknown* when its statement was sent to the database but
no answer came back: the write timed out (`write_timeout`), the connection broke
mid-commit, or the caller was cancelled while its record was on its way. The
database may have committed it or not.

Each record carries an identity: its document, its timestamp and its bytes. A
record whose outcome is unknown is kept "in doubt" in memory, and the store
resolves it as soon as the database answers again (before the next flush, and
in a background task when no write comes):

1. Postgres: the server connection that carried the write is fenced first:
   it is terminated (`pg_terminate_backend`, matched by pid and start time)
   and the store waits until it is gone, so a statement still in flight (say,
   retransmitted after a partition heals) can no longer commit behind its back.
   SQLite: the lookup waits for the writer's lock, so a transaction still
   running in its thread has finished.
2. The identity is looked up. Found: the write had committed. Not found: it is
   written now, once. A record committed and then moved into a block by a
   `pack()` before the lookup is no longer a row of its own: when the row is
   not found, the document's blocks that could hold the record are searched
   too (those whose latest timestamp is not before the record's, the block
   whose header's time range holds it first). A write that was never in doubt
   costs nothing more, nor does one whose row is found.

Every record given to `write()` is then stored exactly once while the process
lives, whatever happened to the connection. A `write()` of the same bytes to the
same document while a record is in doubt joins it instead of storing a copy.
A record merged into a snapshot by another server's squash before it is looked
up is not found by its identity and is written again: applying a Yjs update
twice changes nothing, so the document's content is the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from ..errors import CorruptStoreError
from ..history.packing import decode_block_header, unpack_block
from ..records import RecordKind
from .statements import compile_for
from .tables import not_update, records

__all__ = [
    "Fence",
    "Identity",
    "InDoubt",
    "identity",
    "lookup_postgres",
    "lookup_sqlite",
    "seq_in_blocks",
]

Entry = tuple[str, int, bytes, bytes, float]
Identity = tuple[str, float, bytes]
"""A record's identity: `(doc, timestamp, update)`."""

Fence = tuple[int, Any]
"""A Postgres server connection: `(pid, backend_start)`."""

_LOOKUP = (
    sa.select(records.c.seq)
    .where(
        records.c.doc == sa.bindparam("doc"),
        records.c.timestamp == sa.bindparam("ts"),
        records.c.update == sa.bindparam("update"),
    )
    .order_by(records.c.seq)
    .limit(1)
)
_IN_BLOCKS = (
    sa.select(records.c.seq, records.c.metadata, records.c.update)
    .where(
        records.c.doc == sa.bindparam("doc"),
        records.c.kind == RecordKind.BLOCK.value,
        not_update(),
        # a block row's timestamp is the latest of its records'
        records.c.timestamp >= sa.bindparam("ts"),
    )
    .order_by(records.c.seq)
)
_TERMINATE = sa.text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE pid = :pid AND backend_start = :started"
)
_ALIVE = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND backend_start = :started"
)
_WHO = sa.text("SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")


def identity(entry: Entry) -> Identity:
    """The identity of a record to write."""
    return entry[0], entry[4], entry[2]


class InDoubt:
    """The records whose outcome is unknown, and the connections that carried them."""

    def __init__(self) -> None:
        self._entries: dict[Identity, Entry] = {}
        self._by_content: dict[tuple[str, bytes], Entry] = {}
        self.fences: set[Fence] = set()

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entries: Iterable[Entry], fence: Fence | None) -> None:
        """Hold `entries` in doubt; `fence` is the connection that may have sent them."""
        for entry in entries:
            self._entries[identity(entry)] = entry
            self._by_content[(entry[0], entry[2])] = entry
        if fence is not None:
            self.fences.add(fence)

    def entries(self) -> list[Entry]:
        """The records in doubt, in the order they were written."""
        return list(self._entries.values())

    def match(self, doc: str, update: bytes) -> Entry | None:
        """The record in doubt with these bytes for this document, if any."""
        return self._by_content.get((doc, update))

    def settle(self, entries: Iterable[Entry]) -> None:
        """Forget `entries` (resolved); the fences go once nothing is in doubt."""
        for entry in entries:
            self._entries.pop(identity(entry), None)
            self._by_content.pop((entry[0], entry[2]), None)
        if not self._entries:
            self.fences.clear()


def seq_in_blocks(rows: Iterable[Sequence[Any]], ts: float, update: bytes) -> int | None:
    """The seq of the record `(ts, update)` in the block rows `(seq, metadata, update)`,
    or None; the block whose header's time range holds `ts` is unpacked first.

    A damaged block is passed over: its records are refused by every read, so a
    copy written again is what readers will see.
    """
    candidates: list[tuple[bool, int, bytes, bytes]] = []
    for seq, metadata, payload in rows:
        try:
            header = decode_block_header(bytes(metadata))
        except CorruptStoreError:
            continue
        outside = not header.first_timestamp <= ts <= header.last_timestamp
        candidates.append((outside, int(seq), bytes(metadata), bytes(payload)))
    for _outside, _seq, metadata, payload in sorted(candidates, key=lambda c: c[:2]):
        try:
            held = unpack_block(metadata, payload)
        except CorruptStoreError:
            continue
        for record in held:
            if record.timestamp == ts and record.update == update:
                return record.seq
    return None


def lookup_sqlite(conn: sqlite3.Connection, entries: Sequence[Entry]) -> dict[Identity, int]:
    """The seqs of those `entries` that are stored (in the writer's transaction)."""
    stmt = compile_for(_LOOKUP, "sqlite")
    in_blocks = compile_for(_IN_BLOCKS, "sqlite")
    found: dict[Identity, int] = {}
    for doc, _kind, update, _meta, ts in entries:
        row = conn.execute(stmt.sql, stmt.args(doc=doc, ts=ts, update=update)).fetchone()
        seq = None if row is None else int(row[0])
        if seq is None:
            rows = conn.execute(in_blocks.sql, in_blocks.args(doc=doc, ts=ts)).fetchall()
            seq = seq_in_blocks(rows, ts, update)
        if seq is not None:
            found[(doc, ts, update)] = seq
    return found


async def who_postgres(conn: Any, timeout: float) -> Fence:
    """The identity of the server connection behind the asyncpg connection `conn`."""
    stmt = compile_for(_WHO, "postgresql")
    row = await conn.fetchrow(stmt.sql, timeout=timeout)
    return int(row[0]), row[1]


async def fence_postgres(conn: Any, fences: Iterable[Fence], timeout: float) -> None:
    """End the server connections `fences` and wait until they are gone.

    Raises:
        TimeoutError: One is still there after `timeout` seconds.
    """
    import anyio

    terminate = compile_for(_TERMINATE, "postgresql")
    alive = compile_for(_ALIVE, "postgresql")
    with anyio.fail_after(timeout):
        for pid, started in fences:
            await conn.fetch(terminate.sql, *terminate.args(pid=pid, started=started))
            # Polled: the server tells no one when a terminated connection is gone.
            while await conn.fetchval(alive.sql, *alive.args(pid=pid, started=started)):  # noqa: ASYNC110
                await anyio.sleep(0.02)


async def lookup_postgres(
    conn: Any, entries: Sequence[Entry], timeout: float
) -> dict[Identity, int]:
    """The seqs of those `entries` that are stored."""
    stmt = compile_for(_LOOKUP, "postgresql")
    in_blocks = compile_for(_IN_BLOCKS, "postgresql")
    found: dict[Identity, int] = {}
    for doc, _kind, update, _meta, ts in entries:
        seq = await conn.fetchval(
            stmt.sql, *stmt.args(doc=doc, ts=ts, update=update), timeout=timeout
        )
        if seq is None:
            rows = await conn.fetch(in_blocks.sql, *in_blocks.args(doc=doc, ts=ts), timeout=timeout)
            seq = seq_in_blocks(rows, ts, update)
        if seq is not None:
            found[(doc, ts, update)] = int(seq)
    return found
