"""Followers' reads, batched: the records of every document woken at once, in one query.

One notification or change check wakes the followers of several documents of
one database at the same moment (a server following twenty busy documents is
woken hundreds of times a second). Each of them reading on its own would take
a pooled connection (opening a new one when the pool is busy) or a worker-thread
hop per document. Instead the woken followers queue their reads, let the
others woken with them queue theirs, and one of them reads for all: on Postgres
one query on the listening connection (no pool checkout), on SQLite one
worker-thread hop. Reads arriving while one runs go together into the next.

Checkpoint records are filtered out by the query itself: followers never get
them (see `ystores.following`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..errors import StoreStateError
from ..history.compression import decompress
from ..records import Record, RecordKind
from .blocks import expand_rows
from .statements import Compiled, compile_for
from .tables import not_update, records

__all__ = ["ReadBatcher", "Request", "postgres_reads", "rows_to_records", "sqlite_reads"]


@dataclass(eq=False)
class Request:
    """One follower's read: up to `limit` records of `doc` after seq `after`."""

    doc: str
    after: int
    limit: int
    result: list[Record] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False
    yielded: bool = False


Reader = Callable[[Sequence[Request]], Awaitable[None]]
"""Reads a batch of requests, setting each one's `result` (or raising for all)."""


class ReadBatcher:
    """Serves concurrent followers' reads with one read of `reader` per batch.

    A reader that finds no read in progress lets the other ready tasks run once
    (the followers woken with it queue their requests meanwhile), then reads for
    everyone queued; requests made while a read runs wait for it and go in the
    next. The read itself is shielded: a follower that leaves meanwhile does not
    cut it off half-way for the others.

    Args:
        reader: Reads a batch, filling in each request's `result`.
    """

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._queue: list[Request] = []
        self._busy: anyio.Event | None = None
        self.reads = 0
        """How many batched reads ran."""

    async def read(self, doc: str, after: int, limit: int) -> list[Record]:
        """Up to `limit` followable records of `doc` after seq `after` (read with others)."""
        request = Request(doc, after, limit)
        self._queue.append(request)
        try:
            while not request.done:
                if self._busy is not None:
                    await self._busy.wait()
                elif not request.yielded:
                    request.yielded = True
                    await anyio.lowlevel.checkpoint()
                else:
                    await self._lead()
        finally:
            if not request.done and request in self._queue:
                self._queue.remove(request)  # cancelled while waiting: nobody reads for it
        if request.error is not None:
            raise request.error
        return request.result

    async def _lead(self) -> None:
        batch, self._queue = self._queue, []
        busy = self._busy = anyio.Event()
        error: BaseException | None = StoreStateError("The read was interrupted.")
        try:
            with anyio.CancelScope(shield=True):
                await self._reader(batch)
            error = None
        except Exception as exc:
            error = exc
        finally:
            self.reads += 1
            for request in batch:
                request.error, request.done = error, True
            self._busy = None
            busy.set()


def rows_to_records(rows: Sequence[Sequence[Any]], doc: str, after: int = 0) -> list[Record]:
    """Records from `(seq, kind, update, metadata, timestamp, codec)` rows, decompressed;
    a block row gives its records after seq `after` (see `sql.blocks`)."""
    if any(int(row[1]) == RecordKind.BLOCK for row in rows):
        rows = expand_rows(rows, after)
    out = []
    for seq, kind, stored, meta, ts, codec in rows:
        update = bytes(stored)
        if codec:
            update = decompress(int(codec), update, where=f"record {seq} of {doc!r}")
        out.append(Record(int(seq), update, bytes(meta), float(ts), RecordKind(kind)))
    return out


def _postgres_batch() -> Compiled:
    # One lateral page per requested (doc, after, limit): the rows of `Statements.page`
    # (from the latest snapshot on, checkpoints left out) for several documents at once.
    wanted = (
        sa.func.unnest(
            sa.bindparam("docs", type_=postgresql.ARRAY(sa.String())),
            sa.bindparam("afters", type_=postgresql.ARRAY(sa.BigInteger())),
            sa.bindparam("limits", type_=postgresql.ARRAY(sa.Integer())),
        )
        .table_valued("doc", "after", "lim", with_ordinality="i")
        .render_derived(name="f")
    )
    s = records.alias("s")
    latest_snapshot = (
        sa.select(sa.func.coalesce(sa.func.max(s.c.seq), 0))
        .where(s.c.doc == wanted.c.doc, s.c.kind == RecordKind.SNAPSHOT.value, not_update(s.c.kind))
        .correlate_except(s)
        .scalar_subquery()
    )
    c = records.c
    page = (
        sa.select(c.seq, c.kind, c["update"], c.metadata, c["timestamp"], c.codec)
        .where(
            c.doc == wanted.c.doc,
            c.seq > wanted.c.after,
            c.seq >= latest_snapshot,
            c.kind != RecordKind.CHECKPOINT.value,
        )
        .order_by(c.seq)
        .limit(wanted.c.lim)
        .lateral("r")
    )
    stmt = (
        sa.select(wanted.c.i, *page.c)
        .select_from(wanted.join(page, sa.true()))
        .order_by(wanted.c.i, page.c.seq)
    )
    return compile_for(stmt, "postgresql")


_POSTGRES_BATCH = _postgres_batch()


def _distinct(batch: Sequence[Request]) -> dict[tuple[str, int, int], list[Request]]:
    by_key: dict[tuple[str, int, int], list[Request]] = {}
    for request in batch:
        by_key.setdefault((request.doc, request.after, request.limit), []).append(request)
    return by_key


def sqlite_reads(
    page: Compiled,
    fetch_each: Callable[[list[tuple[str, tuple[Any, ...]]]], Awaitable[list[list[Any]]]],
) -> Reader:
    """A reader running `page` (`Statements.page`) once per distinct request, all in one
    `fetch_each`."""

    async def read(batch: Sequence[Request]) -> None:
        by_key = _distinct(batch)
        queries = [
            (page.sql, page.args(doc=doc, after=after, limit=limit)) for doc, after, limit in by_key
        ]
        for (key, requests), rows in zip(by_key.items(), await fetch_each(queries), strict=True):
            found = rows_to_records(rows, key[0], key[1])
            for request in requests:
                request.result = found

    return read


def postgres_reads(
    fetch: Callable[[str, tuple[Any, ...]], Awaitable[Sequence[Sequence[Any]]]],
) -> Reader:
    """A reader running one query (a lateral join over the requests) for the whole batch."""

    async def read(batch: Sequence[Request]) -> None:
        by_key = _distinct(batch)
        keys = list(by_key)
        args = _POSTGRES_BATCH.args(
            docs=[k[0] for k in keys], afters=[k[1] for k in keys], limits=[k[2] for k in keys]
        )
        rows: dict[int, list[Sequence[Any]]] = {}
        for row in await fetch(_POSTGRES_BATCH.sql, args):
            rows.setdefault(int(row[0]), []).append(row[1:])
        for index, (key, requests) in enumerate(by_key.items(), start=1):
            found = rows_to_records(rows.get(index, []), key[0], key[1])
            for request in requests:
                request.result = found

    return read
