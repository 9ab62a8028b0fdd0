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
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio

from ..following import ChangeSignal
from .errors import translate_errors
from .following import ChangeHub, doc_key
from .statements import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from .database import Database

__all__ = ["PostgresListener"]


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
        self.connections = 0
        """How many listening connections were opened so far (1 unless one dropped)."""

    def _make_signal(self, doc: str) -> ChangeSignal:
        self._by_key[doc_key(doc)] = doc
        return _ListeningSignal(doc, self)

    @property
    def listening(self) -> bool:
        """Whether the listening connection is open."""
        return self._held is not None and not self._held[1].is_closed()

    async def listen(self) -> None:
        """Listen on a new connection unless the current one is open.

        Raises:
            StoreConnectionError: The database cannot be reached.
        """
        if self.listening:
            return
        async with self._lock:
            if self.listening:
                return
            await self._drop()
            with translate_errors(self._db.safe_url, connecting=True):
                conn = await self._db.engine.connect()
                try:
                    raw = await conn.get_raw_connection()
                    driver: Any = raw.driver_connection
                    driver.add_termination_listener(self._terminated)
                    await driver.add_listener(NOTIFY_CHANNEL, self._notified)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await conn.invalidate()
                    raise
            self._held = (conn, driver)
            self.connections += 1

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
