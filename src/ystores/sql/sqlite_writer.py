"""SQLite on stdlib connections: one worker-thread hop per transaction or query.

aiosqlite hops to its thread for every statement (about 100 µs each here), so a
write transaction (BEGIN, counter upsert, insert, COMMIT) paid five hops and a
pool checkout besides its fsync. The writer keeps one stdlib `sqlite3`
connection and runs a whole transaction in one call on ystores' worker threads
(`ystores.threads`), with the statements SQLAlchemy compiled once. Calls are
serialized by a lock: the connection is used by one thread at a time.
`SQLiteReaders` does the same for reads, on a few pooled connections.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .engines import AUTO_VACUUM, enable_wal
from .errors import translate_errors
from .statements import Statements, number_rows
from .timeouts import Timeouts

__all__ = ["SQLiteReaders", "SQLiteWriter", "open_sqlite"]

Plan = list[tuple[str, list[int]]]


def open_sqlite(
    path: str, url: str, synchronous: str = "FULL", timeouts: Timeouts | None = None
) -> sqlite3.Connection:
    """A stdlib connection in autocommit mode, with WAL, busy_timeout and `synchronous`.

    Args:
        path: The database file.
        url: The database URL for messages.
        synchronous: The `PRAGMA synchronous` setting.
        timeouts: `statement` is the busy timeout, `connect` bounds the switch to WAL.

    Raises:
        StoreConnectionError: The file cannot be opened as a SQLite database.
    """
    timeouts = timeouts or Timeouts()
    with translate_errors(url, connecting=True):
        conn = sqlite3.connect(
            path, isolation_level=None, timeout=timeouts.statement, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeouts.statement * 1000)}")
            conn.execute(AUTO_VACUUM)
            enable_wal(conn.cursor(), timeouts.connect)
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        except BaseException:
            conn.close()
            raise
    return conn


class SQLiteReaders:
    """Blocking reads on a few pooled SQLite connections (call from worker threads).

    WAL lets them read while a writer commits. Each `fetch` is one statement,
    consistent on its own.

    Args:
        path: The database file.
        url: The database URL for messages.
        keep: Idle connections kept open.
    """

    def __init__(
        self, path: str, url: str, keep: int = 4, timeouts: Timeouts | None = None
    ) -> None:
        self._path = path
        self._url = url
        self._keep = keep
        self._timeouts = timeouts
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one query and return its rows."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = open_sqlite(self._path, self._url, timeouts=self._timeouts)
        try:
            with translate_errors(self._url):
                return conn.execute(sql, args).fetchall()
        finally:
            with self._lock:
                if self._closed or len(self._idle) >= self._keep:
                    conn.close()
                else:
                    self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections; connections in use close when returned."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class SQLiteWriter:
    """Blocking write transactions on one SQLite connection (call from a worker thread).

    Args:
        path: The database file.
        statements: The SQLite statements.
        url: The database URL for messages.
    """

    def __init__(
        self,
        path: str,
        statements: Statements,
        url: str,
        synchronous: str = "FULL",
        timeouts: Timeouts | None = None,
    ) -> None:
        self._timeouts = timeouts
        self._path = path
        self._statements = statements
        self._url = url
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_sqlite(self._path, self._url, self._synchronous, self._timeouts)
        return self._conn

    def transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work(connection)` in one `BEGIN IMMEDIATE` transaction and commit it."""
        return self._transaction(work)

    def _transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock, translate_errors(self._url):
            conn = self._connection()
            # BEGIN IMMEDIATE takes the write lock up front (waiting on busy_timeout)
            # instead of failing to upgrade a read lock half-way: no "database is locked".
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def flush(self, entries: Sequence[Any], plan: Plan) -> list[int]:
        """Write a batch of entries in one transaction; return their seqs in order.

        The transaction holds SQLite's write lock from its start, so the batch's
        counters are read in one query, advanced in Python and written back in one
        `executemany`, whatever the number of documents. A document without a
        counter row starts after its highest stored seq.
        """
        stmts = self._statements
        counters, stored_seq, set_counter = stmts.counters, stmts.stored_seq, stmts.set_counter
        assert counters is not None
        assert stored_seq is not None
        assert set_counter is not None

        def work(conn: sqlite3.Connection) -> list[int]:
            docs = [doc for doc, _ in plan]
            found = dict(conn.execute(counters.sql, counters.args(docs=json.dumps(docs))))
            lasts: list[int] = []
            updates = []
            for doc, indexes in plan:
                last = found.get(doc)
                if last is None:
                    last = conn.execute(stored_seq.sql, stored_seq.args(doc=doc)).fetchone()[0]
                last = int(last) + len(indexes)
                lasts.append(last)
                ts = entries[indexes[-1]][4]
                updates.append(set_counter.args(doc=doc, last_seq=last, ts=ts))
            conn.executemany(set_counter.sql, updates)
            seqs, rows = number_rows(stmts, entries, plan, lasts)
            conn.executemany(stmts.insert.sql, rows)
            return seqs

        result: list[int] = self._transaction(work)
        return result

    def shrink(self) -> None:
        """Give free pages back to the file system and empty the WAL (after a squash).

        A database ystores created uses incremental auto-vacuum: the pages a
        squash freed are cut from the end of the file. The WAL is then
        checkpointed into the database and truncated. Both are best effort: a
        reader still in the WAL keeps it (SQLite truncates it at a later checkpoint).
        """
        with self._lock, translate_errors(self._url):
            conn = self._connection()
            conn.execute("PRAGMA incremental_vacuum").fetchall()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        """Close the connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
