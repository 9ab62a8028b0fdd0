"""Following documents of a database: the hub that wakes a process's followers.

Every `Database` (one per database per event loop, so one per process in a
server) has at most one `ChangeHub`, made by the first follower: the Postgres
hub listens on one channel through one connection (`listening`), the SQLite hub
polls one cheap change check for every followed document at once (`polling`).
Writes made through the `Database` also hand their records to the followers
of this process directly (`ChangeHub.written`), without waiting for the
database to tell and without a read. Followers woken together read together:
one query for every document (`follow_reads`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..base import BaseYStore
from ..following import ChangeSignal
from ..records import Record, RecordKind
from .follow_reads import ReadBatcher, Request
from .leases import database_lease
from .statements import CODEC_SHIFT, compile_for
from .tables import records

if TYPE_CHECKING:
    from .database import Database

__all__ = ["ChangeHub", "FollowedSQLStore", "doc_key"]

_LAST_SEQ = sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0)).where(
    records.c.doc == sa.bindparam("doc")
)


def doc_key(doc: str) -> str:
    """How a notification names a document: the hex MD5 of its UTF-8 name.

    Fixed-size, so that any name fits Postgres' 8,000-byte payload limit; the
    same as Postgres' `md5(doc)` on a UTF-8 database.
    """
    return hashlib.md5(doc.encode("utf-8"), usedforsecurity=False).hexdigest()


class ChangeHub:
    """The followers of one database in this process, by document.

    Backends subclass it: `_first` runs before the first subscriber is served,
    `aclose` when the database closes.
    """

    def __init__(self) -> None:
        self._signals: dict[str, set[ChangeSignal]] = {}
        self.batcher = ReadBatcher(self._read)
        """Batches the followers' reads (see `follow_reads`)."""

    @property
    def documents(self) -> list[str]:
        """The documents followed in this process."""
        return list(self._signals)

    @asynccontextmanager
    async def subscribe(self, doc: str) -> AsyncIterator[ChangeSignal]:
        """A signal for one follower of `doc`, woken while the block runs."""
        signal = self._make_signal(doc)
        self._signals.setdefault(doc, set()).add(signal)
        try:
            await self._first()
            yield signal
        finally:
            followers = self._signals.get(doc)
            if followers is not None:
                followers.discard(signal)
                if not followers:
                    del self._signals[doc]
                    self._forget(doc)

    def _make_signal(self, doc: str) -> ChangeSignal:
        return ChangeSignal(doc)

    def _forget(self, doc: str) -> None:
        """Drop what the hub keeps for `doc` (its last follower left)."""

    async def _first(self) -> None:
        """Start what the hub needs (a connection, a poller); called per subscriber."""

    def notify(self, doc: str, seq: int | None = None) -> None:
        """Wake the followers of `doc` (`seq`: its highest stored seq, when known)."""
        for signal in list(self._signals.get(doc, ())):
            signal.notify(seq)

    def written(self, seq: int, entry: tuple[str, int, bytes, bytes, float]) -> None:
        """Hand a record this process just stored (as `Database.write` took it) to its
        document's followers; a compressed one only wakes them (they read it)."""
        doc, packed, update, meta, ts = entry
        followers = self._signals.get(doc)
        if not followers:
            return
        kind, codec = packed & ((1 << CODEC_SHIFT) - 1), packed >> CODEC_SHIFT
        record = Record(seq, update, meta, ts, RecordKind(kind))
        for signal in list(followers):
            if codec:
                signal.notify(seq)
            else:
                signal.offer(record)

    async def read(self, doc: str, after: int, limit: int) -> list[Record]:
        """Up to `limit` followable records of `doc` after `after`, read with other followers'."""
        return await self.batcher.read(doc, after, limit)

    async def _read(self, batch: Sequence[Request]) -> None:
        """Read a batch of followers' requests (the backends implement it)."""
        raise NotImplementedError

    def notify_all(self) -> None:
        """Wake every follower (after a lost connection: they catch up)."""
        for followers in list(self._signals.values()):
            for signal in list(followers):
                signal.notify(None)

    async def aclose(self) -> None:
        """Release what the hub holds (the database is closing)."""


def new_hub(db: Database) -> ChangeHub:
    """The hub for `db`'s backend."""
    if db.backend == "sqlite":
        from .polling import SQLitePoller

        return SQLitePoller(db)
    from .listening import PostgresListener

    return PostgresListener(db)


class FollowedSQLStore(BaseYStore):
    """The follow contract and compaction leases of the SQL stores (see `BaseYStore.follow`)."""

    async def database(self) -> Database:
        """The store's `Database` (the SQL stores implement it)."""
        raise NotImplementedError

    async def last_seq(self) -> int:
        """The highest seq stored for the document (0 without records): one index lookup."""
        db = await self.database()
        stmt = compile_for(_LAST_SEQ, db.backend)
        rows = await db.fetch(stmt.sql, stmt.args(doc=self.path))
        return int(rows[0][0]) if rows else 0

    async def records_after(self, after: int, limit: int) -> list[Record]:
        """Up to `limit` records after seq `after`, from the latest snapshot on, checkpoints
        left out: read together with the other followers of the database (`follow_reads`)."""
        db = await self.database()
        return await db.change_hub().read(self.path, after, limit)

    def compaction_lease(self) -> AbstractAsyncContextManager[bool]:
        """The document's compaction lease: an advisory lock (Postgres) or an OFD lock (SQLite)."""
        return self._database_lease()

    @asynccontextmanager
    async def _database_lease(self) -> AsyncIterator[bool]:
        async with database_lease(await self.database(), self.path) as held:
            yield held

    def change_signal(self) -> AbstractAsyncContextManager[ChangeSignal]:
        """A signal from the database's hub (Postgres `NOTIFY` or the SQLite poller)."""
        return self._hub_signal()

    @asynccontextmanager
    async def _hub_signal(self) -> AsyncIterator[ChangeSignal]:
        db = await self.database()
        async with db.change_hub().subscribe(self.path) as signal:
            yield signal
