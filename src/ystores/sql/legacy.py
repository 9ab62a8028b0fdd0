"""Converting SQLite databases written by ypy-websocket or pycrdt-store to the ystores schema.

Recognized layouts (see the fixtures' README):

- ypy-websocket, `PRAGMA user_version` 0, 1 or 2: a `yupdates(path, yupdate,
  metadata, timestamp)` table, a document being its rows in rowid order. Version 0
  stored `str(datetime.utcnow())` text timestamps: they become epoch seconds, read
  as UTC.
- pycrdt-store: the same table, plus `ycheckpoints(path, checkpoint, timestamp)`.

The conversion runs in ONE transaction (the write lock is taken first, with
`BEGIN IMMEDIATE`): create the ystores schema at head, copy every row into
`ystore_records` (per document, seq 1..n in rowid order, update, metadata and
timestamp kept; a NULL metadata becomes `b""`), fill `ystore_documents`, then
drop `yupdates` and `ycheckpoints`. Either all of it happens or none. Before it,
a copy of the database is made with SQLite's backup API, `<db>.bak-<UTC time>`,
unless `backup=False`: the original tables live on there.

Checkpoints: `yupdates` holds the history and is taken as the truth. A
checkpoint is dropped only when it is proven redundant: applying it on top of the
document's whole history changes nothing (the encoded state is byte-identical).
A checkpoint that would add something (its history was lost) is kept, appended as
the document's last record (an update, empty metadata, the checkpoint's
timestamp): applying a Yjs update twice is harmless, so nothing it holds is lost.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrdt
import sqlalchemy as sa
from alembic import command
from sqlalchemy.pool import StaticPool

from ..errors import SchemaError, StoreFormatError
from ..records import RecordKind
from .alembic_setup import alembic_config, alembic_thread_lock
from .engines import SQLITE_BUSY_TIMEOUT
from .tables import documents, metadata, records
from .urls import sqlite_uri

__all__ = ["ConversionReport", "LegacyDatabase", "backup_database", "convert", "detect"]


@dataclass(frozen=True)
class LegacyDatabase:
    """A SQLite database in a layout of ypy-websocket or pycrdt-store.

    Attributes:
        path: The database file.
        producer: `ypy-websocket` or `pycrdt-store` (it has a `ycheckpoints` table).
        user_version: Its `PRAGMA user_version` (0, 1 or 2).
        rows: Rows in `yupdates`.
        documents: Distinct document paths in `yupdates`.
        checkpoints: Rows in `ycheckpoints`.
    """

    path: Path
    producer: str
    user_version: int
    rows: int
    documents: int
    checkpoints: int


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        source: The legacy layout that was converted.
        backup: The backup copy made first, or None with `backup=False`.
        documents: Documents converted.
        records: Records written to `ystore_records` (checkpoints kept included).
        checkpoints_dropped: Checkpoints proven redundant with their history.
        checkpoints_kept: Documents whose checkpoint was kept as a last record.
    """

    source: LegacyDatabase
    backup: Path | None
    documents: int = 0
    records: int = 0
    checkpoints_dropped: int = 0
    checkpoints_kept: list[str] = field(default_factory=list)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def detect(path: str | Path) -> LegacyDatabase | None:
    """The legacy layout of the SQLite file at `path`, or None if it is not one.

    A database that already holds ystores tables is not legacy, even with a
    `yupdates` table beside them.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
    except sqlite3.DatabaseError:
        return None
    with closing(conn):
        try:
            tables = _tables(conn)
        except sqlite3.DatabaseError:
            return None
        if "yupdates" not in tables or tables & {t.name for t in metadata.sorted_tables}:
            return None
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        rows, docs = conn.execute("SELECT count(*), count(DISTINCT path) FROM yupdates").fetchone()
        checkpoints = 0
        if "ycheckpoints" in tables:
            checkpoints = conn.execute("SELECT count(*) FROM ycheckpoints").fetchone()[0]
    producer = "pycrdt-store" if "ycheckpoints" in tables else "ypy-websocket"
    return LegacyDatabase(path, producer, version, int(rows), int(docs), int(checkpoints))


def backup_database(path: Path, *, now: dt.datetime | None = None) -> Path:
    """Copy the SQLite database at `path` with SQLite's backup API (consistent while in use).

    Returns:
        The copy, `<path>.bak-<YYYYmmddTHHMMSSZ>` (with a counter if that exists).
    """
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bak-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bak-{stamp}-{counter}")
        counter += 1
    with closing(sqlite3.connect(path)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


def _timestamp(value: Any, rowid: int) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
        else:
            if parsed.tzinfo is None:  # ypy-websocket 0.6 wrote str(datetime.utcnow())
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            return parsed.timestamp()
    raise StoreFormatError(
        f"Row {rowid} of yupdates has the timestamp {value!r}, which is neither a number "
        "nor a date; nothing was converted."
    )


def _rows(conn: sa.Connection) -> Iterator[tuple[int, str, bytes, bytes, float]]:
    result = conn.exec_driver_sql(
        "SELECT rowid, path, yupdate, metadata, timestamp FROM yupdates ORDER BY rowid"
    )
    for rowid, path, update, meta, stamp in result:
        if path is None or update is None:
            raise StoreFormatError(
                f"Row {rowid} of yupdates has no {'path' if path is None else 'update'}; "
                "nothing was converted."
            )
        yield rowid, str(path), bytes(update), bytes(meta or b""), _timestamp(stamp, rowid)


def _checkpoint_is_redundant(history: list[bytes], checkpoint: bytes) -> bool:
    plain: pycrdt.Doc[Any] = pycrdt.Doc()
    both: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in history:
        plain.apply_update(update)
        both.apply_update(update)
    both.apply_update(checkpoint)
    return plain.get_update() == both.get_update()


def _convert_sync(conn: sa.Connection, report: ConversionReport) -> None:
    command.upgrade(alembic_config(connection=conn), "head")
    insert = records.insert()
    last: dict[str, tuple[int, float]] = {}
    batch: list[dict[str, Any]] = []
    for _rowid, doc, update, meta, stamp in _rows(conn):
        seq = last.get(doc, (0, 0.0))[0] + 1
        last[doc] = (seq, stamp)
        batch.append(
            {"doc": doc, "seq": seq, "kind": int(RecordKind.UPDATE), "update": update,
             "metadata": meta, "timestamp": stamp}
        )  # fmt: skip
        if len(batch) >= 1000:
            conn.execute(insert, batch)
            batch = []
    if batch:
        conn.execute(insert, batch)
    report.records = sum(seq for seq, _ in last.values())
    if "ycheckpoints" in sa.inspect(conn).get_table_names():
        _convert_checkpoints(conn, report, last)
        conn.exec_driver_sql("DROP TABLE ycheckpoints")
    if last:
        conn.execute(
            documents.insert(),
            [{"doc": d, "last_seq": s, "last_write": t} for d, (s, t) in last.items()],
        )
    report.documents = len(last)
    conn.exec_driver_sql("DROP TABLE yupdates")


def _convert_checkpoints(
    conn: sa.Connection, report: ConversionReport, last: dict[str, tuple[int, float]]
) -> None:
    checkpoints = conn.exec_driver_sql(
        "SELECT path, checkpoint, timestamp FROM ycheckpoints ORDER BY rowid"
    ).all()
    for path, checkpoint, stamp in checkpoints:
        doc, data = str(path), bytes(checkpoint)
        history = [
            bytes(row[0])
            for row in conn.execute(
                sa.select(records.c.update).where(records.c.doc == doc).order_by(records.c.seq)
            )
        ]
        if _checkpoint_is_redundant(history, data):
            report.checkpoints_dropped += 1
            continue
        seq = last.get(doc, (0, 0.0))[0] + 1
        when = _timestamp(stamp, 0)
        conn.execute(
            records.insert(),
            {"doc": doc, "seq": seq, "kind": int(RecordKind.UPDATE), "update": data,
             "metadata": b"", "timestamp": when},
        )  # fmt: skip
        last[doc] = (seq, max(when, last.get(doc, (0, 0.0))[1]))
        report.records += 1
        report.checkpoints_kept.append(doc)


def convert(path: str | Path, *, backup: bool = True) -> ConversionReport:
    """Convert a ypy-websocket / pycrdt-store SQLite database in place, in one transaction.

    Synchronous (blocking); see the module docstring for what is kept and how.

    Args:
        path: The database file.
        backup: Copy the database to `<path>.bak-<UTC time>` first.

    Raises:
        SchemaError: The file is not a legacy ypy-websocket / pycrdt-store database.
        StoreFormatError: A row cannot be converted (nothing is changed then).
    """
    path = Path(path)
    source = detect(path)
    if source is None:
        raise SchemaError(
            f"{str(path)!r} is not a SQLite database written by ypy-websocket or pycrdt-store "
            "(no 'yupdates' table without ystores tables beside it); nothing was converted."
        )
    report = ConversionReport(source, backup_database(path) if backup else None)
    raw = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT)
    engine = sa.create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
    sa.event.listen(engine, "begin", lambda c: c.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with alembic_thread_lock, engine.begin() as conn:
            if detect(path) is None:  # another process converted it meanwhile
                raise SchemaError(f"{str(path)!r} was converted by another process meanwhile.")
            _convert_sync(conn, report)
    finally:
        engine.dispose()
        raw.close()
    return report
