"""Postgres writes: one held asyncpg connection, one statement per flush, bounded in time.

Flushes never overlap (the group committer runs one at a time), so one
connection serves them all, without a pool checkout per flush. A connection
that breaks, or is interrupted mid-statement, is discarded and the next flush
opens another. Each statement waits at most `statement_timeout`; opening the
connection at most `connect_timeout`. The writer remembers which server
connection (`Fence`) the last statement went out on, so that a write whose
outcome is unknown can be resolved (see `outcomes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import StoreConnectionError
from . import pg_errors as asyncpg
from .errors import translate_errors
from .outcomes import Fence, who_postgres
from .statements import Statements
from .timeouts import Timeouts

__all__ = ["BROKEN", "PostgresWriter", "connect_deadline", "known_closed"]

Entry = tuple[str, int, bytes, bytes, float]
Plan = list[tuple[str, list[int]]]

BROKEN = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
"""Errors after which a connection is not used again."""


def closed_while_idle(exc: StoreConnectionError) -> bool:
    """Whether a pooled or held connection turned out closed by the server before
    anything was sent on it (asyncpg then fails to start the operation): safe to
    retry on a new connection."""
    return isinstance(exc.__cause__, asyncpg.InternalClientError)


def known_closed(driver_connection: Any) -> bool:
    """Whether asyncpg already knows the server closed this connection."""
    is_closed = getattr(driver_connection, "is_closed", None)  # aiosqlite has none
    return bool(is_closed()) if is_closed is not None else False


@contextlib.contextmanager
def connect_deadline(timeouts: Timeouts, url: str) -> Iterator[None]:
    """Bound opening a connection by `connect_timeout` (a pool checkout included)."""
    with anyio.move_on_after(timeouts.connect) as scope:
        yield
    if scope.cancelled_caught:
        raise StoreConnectionError(
            f"Could not connect to the database {url} within {timeouts.connect:g} s "
            "(connect_timeout); check the network and the server.",
            url=url,
        )


class PostgresWriter:
    """The write path of one Postgres database in one event loop.

    Args:
        engine: The database's engine (its pool lends the held connection).
        statements: The Postgres statements.
        url: The database URL for messages, password hidden.
        timeouts: The database's timeouts.
    """

    def __init__(
        self, engine: AsyncEngine, statements: Statements, url: str, timeouts: Timeouts
    ) -> None:
        self.engine = engine
        self.statements = statements
        self.url = url
        self.timeouts = timeouts
        self.who: Fence | None = None  # the server connection held
        self.sent_on: Fence | None = None  # where the last flush's statement went, if unanswered
        self._held: tuple[Any, Any] | None = None  # (pooled, driver)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """The held asyncpg connection, opened if needed, errors translated."""
        if self._held is not None and known_closed(self._held[1]):
            await self.drop(invalidate=True)
        if self._held is None:
            with (
                translate_errors(self.url, connecting=True),
                connect_deadline(self.timeouts, self.url),
            ):
                conn = await self.engine.connect()
                raw = await conn.get_raw_connection()
                try:
                    who = await who_postgres(raw.driver_connection, self.timeouts.statement)
                except BaseException:
                    await conn.invalidate()
                    raise
            self._held, self.who = (conn, raw.driver_connection), who
        try:
            with translate_errors(self.url):
                yield self._held[1]
        except Exception as exc:
            if isinstance(exc, BROKEN) or isinstance(exc.__cause__, BROKEN):
                await self.drop(invalidate=True)
            raise
        except BaseException:  # interrupted mid-statement: the connection's state is unknown
            await self.drop(invalidate=True)
            raise

    async def drop(self, *, invalidate: bool) -> None:
        """Give the held connection back (`invalidate`: close it for good)."""
        held, self._held = self._held, None
        if held is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                if invalidate:
                    await held[0].invalidate()
                await held[0].close()

    async def flush(self, entries: Sequence[Entry], plan: Plan) -> list[int]:
        """Write a batch (see `Database._store`); return the seqs in `entries` order.

        `sent_on` names the server connection while a statement is unanswered,
        and is None again once its answer came (or nothing was sent).
        """
        seqs = [0] * len(entries)
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    self.sent_on = self.who
                    if len(plan) == 1:  # one document: its own statement, one round trip
                        await self._append(conn, entries, *plan[0], seqs)
                    else:  # several: one statement for all, one round trip
                        await self._append_many(conn, entries, plan, seqs)
                self.sent_on = None
                return seqs
            except StoreConnectionError as exc:
                # after a server restart or failover: retry once on a new connection
                if attempt == 2 or not closed_while_idle(exc):
                    raise
                self.sent_on = None  # asyncpg could not start the statement: nothing sent
        raise AssertionError("unreachable")

    async def _append_many(
        self, conn: Any, entries: Sequence[Entry], plan: Plan, seqs: list[int]
    ) -> None:
        append = self.statements.append_many
        assert append is not None
        ordered = [entries[i] for _doc, indexes in plan for i in indexes]
        args = append.args(
            docs=[e[0] for e in ordered],
            kinds=[e[1] for e in ordered],
            updates=[e[2] for e in ordered],
            metas=[e[3] for e in ordered],
            stamps=[e[4] for e in ordered],
        )
        fetched = await conn.fetch(append.sql, *args, timeout=self.timeouts.statement)
        last = {row[0]: int(row[1]) for row in fetched}
        for doc, indexes in plan:
            first = last[doc] - len(indexes) + 1
            for offset, index in enumerate(indexes):
                seqs[index] = first + offset

    async def _append(
        self, conn: Any, entries: Sequence[Entry], doc: str, indexes: list[int], seqs: list[int]
    ) -> None:
        append = self.statements.append
        assert append is not None
        mine = [entries[i] for i in indexes]
        args = append.args(
            doc=doc,
            doc_=doc,
            n=len(mine),
            n_=len(mine),
            ts=mine[-1][4],
            kinds=[e[1] for e in mine],
            updates=[e[2] for e in mine],
            metas=[e[3] for e in mine],
            stamps=[e[4] for e in mine],
        )
        rows = await conn.fetch(append.sql, *args, timeout=self.timeouts.statement)
        first = min(int(row[0]) for row in rows)
        for offset, index in enumerate(indexes):
            seqs[index] = first + offset
