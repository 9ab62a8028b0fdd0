"""Postgres: followers woken by `LISTEN/NOTIFY`, one listening connection per process.

Every append statement notifies the channel `statements.NOTIFY_CHANNEL` in its own transaction
(so the notification is delivered only once the records are committed), with
the payload `<last seq>:<md5 of the document name>` (see `following.doc_key`):
a few dozen bytes whatever the name, far below Postgres' 8,000-byte limit.

The listener holds one connection from the database's pool, made when the
first follower subscribes. When it drops (a restart, `pg_terminate_backend`, a
network cut), every follower is woken: before fetching, each asks the listener
to be ready, which listens again on a new connection, and then fetches from its
last seq, so the notifications lost meanwhile cost nothing. While the database
cannot be reached, `ready` raises `StoreConnectionError` and the follower's
owner decides when to try again.

The followers' reads run on the listening connection too, batched (see
`follow_reads`): a notification costs no pool checkout, and the pool (with the
new connections it opens when busy) is left to the application's own reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import StoreConnectionError
from ..following import ChangeSignal
from .errors import translate_errors
from .follow_reads import Request, postgres_reads
from .following import ChangeHub, doc_key
from .postgres_writer import connect_deadline
from .statements import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from .database import Database

__all__ = ["APPLICATION_NAME", "PostgresListener"]

APPLICATION_NAME = "ystores listener"
"""How the listening connection names itself (`pg_stat_activity.application_name`)."""


class _ListeningSignal(ChangeSignal):
    def __init__(self, doc: str, listener: PostgresListener) -> None:
        super().__init__(doc)
        self._listener = listener

    async def ready(self) -> None:
        await self._listener.listen()


class PostgresListener(ChangeHub):
    """The followers of one Postgres database in this process, woken by `NOTIFY`.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db
        self._by_key: dict[str, str] = {}
        self._held: tuple[Any, Any] | None = None  # (SQLAlchemy connection, asyncpg connection)
        self._lock = anyio.Lock()
        self._reader = postgres_reads(self._fetch)
        self.connections = 0
        """How many listening connections were opened so far (1 unless one dropped)."""

    async def _read(self, batch: Sequence[Request]) -> None:
        await self._reader(batch)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """Run a followers' query on the listening connection (opened first if need be).

        A query cut off by a lost connection (a restart, a terminated backend) is
        run once more on a new one: reading twice is harmless.
        """
        for attempt in (1, 2):
            await self.listen()
            held = self._held
            assert held is not None
            try:
                with translate_errors(self._db.safe_url):
                    rows: list[Any] = await held[1].fetch(
                        sql, *args, timeout=self._db.timeouts.statement
                    )
                    return rows
            except StoreConnectionError:
                if not held[1].is_closed() or attempt == 2:
                    raise
            finally:
                if held[1].is_closed() and self._held is held:
                    await self._drop()
                    self.notify_all()  # whatever was notified meanwhile is caught up
        raise AssertionError("unreachable")

    def _make_signal(self, doc: str) -> ChangeSignal:
        self._by_key[doc_key(doc)] = doc
        return _ListeningSignal(doc, self)

    @property
    def listening(self) -> bool:
        """Whether the listening connection is open."""
        return self._held is not None and not self._held[1].is_closed()

    async def listen(self) -> None:
        """Listen on a new connection unless the current one is open.

        Opening it is shielded from the caller's cancellation (and bounded by
        `connect_timeout`): it serves every follower of the process, and a
        connection abandoned half-way through its handshake would leak.

        Raises:
            StoreConnectionError: The database cannot be reached.
        """
        if self.listening:
            return
        async with self._lock:
            if self.listening:
                return
            await self._drop()
            with anyio.CancelScope(shield=True):
                self._held = await self._open()
            self.connections += 1

    async def _open(self) -> tuple[Any, Any]:
        with (
            translate_errors(self._db.safe_url, connecting=True),
            connect_deadline(self._db.timeouts, self._db.safe_url),
        ):
            conn = await self._db.engine.connect()
            try:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                driver.add_termination_listener(self._terminated)
                await driver.execute(f"SET application_name = '{APPLICATION_NAME}'")
                await driver.add_listener(NOTIFY_CHANNEL, self._notified)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.invalidate()
                raise
        return conn, driver

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        seq, _, key = payload.partition(":")
        doc = self._by_key.get(key)
        if doc is not None and seq.isdigit():
            self.notify(doc, int(seq))

    def _terminated(self, _conn: Any) -> None:
        self.notify_all()  # they call `listen` again, then catch up

    def _forget(self, doc: str) -> None:
        self._by_key.pop(doc_key(doc), None)

    async def _drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await held[0].invalidate()  # never back to the pool: it still listens

    async def aclose(self) -> None:
        """Stop listening and close the connection."""
        await self._drop()
