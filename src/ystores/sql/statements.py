"""The hot-path statements, compiled once per dialect by SQLAlchemy.

Writes and reads run on the driver's own connection (aiosqlite or asyncpg),
which keeps them close to the driver's speed; SQLAlchemy only compiles the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from ..records import RecordKind
from .tables import documents, not_update, records

__all__ = [
    "CODEC_SHIFT",
    "MAX_SEQ",
    "NOTIFY_CHANNEL",
    "Compiled",
    "Statements",
    "compile_for",
    "number_rows",
    "pack_kind",
    "statements_for",
]

NOTIFY_CHANNEL = "ystore_records"
"""Postgres: the channel every append notifies, in the append's own transaction, with
the payload `<last seq>:<md5 of the document name>` (see `sql.listening`)."""

CODEC_SHIFT = 4
"""A write entry's kind field carries the record's codec above its kind:
`kind | codec << CODEC_SHIFT` (see `pack_kind`); the insert statements split it
into the `kind` and `codec` columns, so the writers pass entries through untouched."""

_KIND_MASK = (1 << CODEC_SHIFT) - 1
MAX_SEQ = (1 << 63) - 1
"""The highest seq a BIGINT holds: the open upper bound of a range."""


def pack_kind(kind: int, codec: int) -> int:
    """The kind field of a write entry for a record of `kind` stored with `codec`."""
    return int(kind) | int(codec) << CODEC_SHIFT


@dataclass(frozen=True)
class Compiled:
    """A statement as driver SQL, with its parameters in positional order."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    def args(self, **values: Any) -> tuple[Any, ...]:
        """The positional arguments for `values` (by parameter name)."""
        return tuple(values[n] if n in values else self.defaults[n] for n in self.names)


def _compile(stmt: ClauseElement, dialect: Dialect) -> Compiled:
    compiled = stmt.compile(dialect=dialect)
    return Compiled(
        compiled.string, tuple(getattr(compiled, "positiontup", None) or ()), dict(compiled.params)
    )


@dataclass(frozen=True)
class Statements:
    """Every hot-path statement for one dialect.

    Attributes:
        bump: Upsert a document's counter row by `n` and return the new `last_seq`.
        insert: Insert one record.
        last_write: The time of a document's last write (no row for a new document).
        page: Up to `limit` records of `doc` with seq > `after`, from its latest
            snapshot on, in seq order, checkpoints left out: `(seq, kind,
            update, metadata, timestamp, codec)`.
        page_all: The same with checkpoints.
        read_page: The records of `page` as `read()` takes them: `(seq, packed,
            update, metadata, timestamp)`, `packed` being the kind and codec in
            one small integer (`kind | codec << CODEC_SHIFT`, 0 for a raw update).
        update_page: The seqs, updates and codecs of the records of `page`
            with seq <= `until` (restoring a document, replaying a range), and
            the header of a block row (NULL for other rows: see `sql.blocks`).
        read_window: SQLite only: the raw updates (kind update, codec raw) among
            the records of `page` with `after < seq <= until`, as `(update,
            metadata, timestamp)`, then one trailer row `(NULL, expected, highest)`:
            the number of seqs from the window's lowest to its highest (the seq of
            any row, NULL for none) less its checkpoints, which are as many as its
            raw updates only when it holds nothing else. Its rows carry no seq:
            `read()` pages by seq windows.
        read_window_all: SQLite only: the same window as `read_page` rows (no trailer).
        next_seq: SQLite only: `(seq, kind)` of the row of `doc` with the lowest
            seq after `after`, from its latest snapshot on (no row: none).
        counters: SQLite only: `(doc, last_seq)` of the documents named in the JSON
            array `docs` that have a counter row (one query for a whole batch).
        stored_seq: SQLite only: a document's highest stored seq (0 without records).
        set_counter: SQLite only: upsert a document's counter row to `last_seq`
            and `ts` (run with `executemany` for a batch).
        append: Postgres only: bump the counter and insert a document's records
            (arrays `kinds`, `updates`, `metas`, `stamps`) in one statement, one
            round trip; returns the new records' seqs.
        append_many: Postgres only: the same for a batch of several documents
            (arrays `docs`, `kinds`, `updates`, `metas`, `stamps`, one element per
            record, each document's records in write order); returns each
            document's new `last_seq`.
    """

    bump: Compiled
    insert: Compiled
    last_write: Compiled
    page: Compiled
    page_all: Compiled
    read_page: Compiled
    update_page: Compiled
    append: Compiled | None = None
    append_many: Compiled | None = None
    read_window: Compiled | None = None
    read_window_all: Compiled | None = None
    next_seq: Compiled | None = None
    counters: Compiled | None = None
    stored_seq: Compiled | None = None
    set_counter: Compiled | None = None


def _append_many() -> ClauseElement:
    # Counter rows are upserted in document order, so concurrent batches lock
    # them in one order (no deadlock). A new row starts after the document's
    # highest stored seq, as in `bump`.
    r, d = records.c, documents.c
    sql = f"""
WITH batch AS (
    SELECT b.doc, b.kind, b.body, b.meta, b.stamp, b.ord
    FROM unnest(:docs, :kinds, :updates, :metas, :stamps)
        WITH ORDINALITY AS b(doc, kind, body, meta, stamp, ord)
),
counts AS (SELECT doc, count(*) AS n, max(stamp) AS ts FROM batch GROUP BY doc),
bumped AS (
    INSERT INTO {documents.name} ({d.doc.name}, {d.last_seq.name}, {d.last_write.name})
    SELECT c.doc, (
        SELECT coalesce(max(s.{r.seq.name}), 0) FROM {records.name} AS s
        WHERE s.{r.doc.name} = c.doc
    ) + c.n, c.ts
    FROM counts AS c ORDER BY c.doc
    ON CONFLICT ({d.doc.name}) DO UPDATE SET
        {d.last_seq.name} = {documents.name}.{d.last_seq.name}
            + (SELECT n FROM counts WHERE counts.doc = excluded.{d.doc.name}),
        {d.last_write.name} = excluded.{d.last_write.name}
    RETURNING {d.doc.name} AS doc, {d.last_seq.name} AS last_seq
),
inserted AS (
    INSERT INTO {records.name} (
        {r.doc.name}, {r.seq.name}, {r.kind.name}, "{r.update.name}",
        {r.metadata.name}, "{r.timestamp.name}", {r.codec.name}
    )
    SELECT b.doc, k.last_seq - c.n + row_number() OVER (PARTITION BY b.doc ORDER BY b.ord),
        b.kind & {_KIND_MASK}, b.body, b.meta, b.stamp, b.kind >> {CODEC_SHIFT}
    FROM batch AS b JOIN bumped AS k ON k.doc = b.doc JOIN counts AS c ON c.doc = b.doc
)
SELECT doc, last_seq, pg_notify('{NOTIFY_CHANNEL}', last_seq || ':' || md5(doc)) FROM bumped
"""
    return sa.text(sql).bindparams(
        sa.bindparam("docs", type_=postgresql.ARRAY(sa.String())),
        sa.bindparam("kinds", type_=postgresql.ARRAY(sa.SmallInteger())),
        sa.bindparam("updates", type_=postgresql.ARRAY(sa.LargeBinary())),
        sa.bindparam("metas", type_=postgresql.ARRAY(sa.LargeBinary())),
        sa.bindparam("stamps", type_=postgresql.ARRAY(sa.Double())),
    )


def _append(bump: Any) -> ClauseElement:
    bumped = bump.cte("bumped")
    rows = (
        sa.func.unnest(
            sa.bindparam("kinds", type_=postgresql.ARRAY(sa.SmallInteger())),
            sa.bindparam("updates", type_=postgresql.ARRAY(sa.LargeBinary())),
            sa.bindparam("metas", type_=postgresql.ARRAY(sa.LargeBinary())),
            sa.bindparam("stamps", type_=postgresql.ARRAY(sa.Double())),
        )
        .table_valued("kind", "update", "metadata", "timestamp", with_ordinality="ord")
        .render_derived()
    )
    select = sa.select(
        sa.bindparam("doc_", type_=sa.String()),
        bumped.c.last_seq - sa.bindparam("n_", type_=sa.BigInteger()) + rows.c.ord,
        rows.c.kind.bitwise_and(_KIND_MASK),
        rows.c.update,
        rows.c.metadata,
        rows.c.timestamp,
        rows.c.kind.bitwise_rshift(CODEC_SHIFT),
    ).select_from(bumped.join(rows, sa.true()))
    columns = ["doc", "seq", "kind", "update", "metadata", "timestamp", "codec"]
    # One notification per statement: every row's payload is the same (the new
    # last seq), and Postgres delivers identical notifications of a transaction once.
    last = sa.select(bumped.c.last_seq).scalar_subquery()
    payload = sa.cast(last, sa.Text) + ":" + sa.func.md5(records.c.doc)
    notify = sa.func.pg_notify(NOTIFY_CHANNEL, payload)
    return records.insert().from_select(columns, select).returning(records.c.seq, notify)


def _sqlite_counter_statements() -> tuple[ClauseElement, ClauseElement, ClauseElement]:
    # Under BEGIN IMMEDIATE nobody else writes, so a batch reads its documents'
    # counters in one query and sets them in one executemany, instead of one
    # upsert statement per document.
    listed = sa.func.json_each(sa.bindparam("docs"))
    named: sa.Select[Any] = sa.select(sa.column("value")).select_from(listed)
    counters = sa.select(documents.c.doc, documents.c.last_seq).where(documents.c.doc.in_(named))
    stored_seq = sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0)).where(
        records.c.doc == sa.bindparam("doc")
    )
    upsert = sqlite.insert(documents).values(
        doc=sa.bindparam("doc"),
        last_seq=sa.bindparam("last_seq", type_=sa.BigInteger()),
        last_write=sa.bindparam("ts"),
    )
    set_counter = upsert.on_conflict_do_update(
        index_elements=[documents.c.doc],
        set_={"last_seq": upsert.excluded.last_seq, "last_write": upsert.excluded.last_write},
    )
    return counters, stored_seq, set_counter


def _sqlite_read_windows() -> dict[str, Compiled]:
    # Written out rather than built with SQLAlchemy: compiling these compound
    # statements took about 20 million instructions at import. `?1`, `?2`, `?3`
    # are `doc`, `after` and `until`; the latest snapshot bounds each seek once
    # (not a test on every row).
    r, c = records.name, records.c
    kind, codec, seq = c.kind.name, c.codec.name, c.seq.name
    snapshot = (
        f"(SELECT coalesce(max({seq}), 0) FROM {r} WHERE {c.doc.name} = ?1"
        f" AND {kind} = {RecordKind.SNAPSHOT.value} AND {kind} != 0)"
    )
    window = f"{c.doc.name} = ?1 AND {seq} > max(?2, {snapshot} - 1) AND {seq} <= ?3"
    rows = f'"{c.update.name}", {c.metadata.name}, {c.timestamp.name}'
    checkpoint = f"{kind} = {RecordKind.CHECKPOINT.value} AND {kind} != 0"
    # Every seq from the lowest to the highest a raw update or a checkpoint: then
    # `expected` is the number of raw updates, index lookups alone tell it.
    expected = (
        f"(SELECT max({seq}) FROM {r} WHERE {window})"
        f" - (SELECT min({seq}) FROM {r} WHERE {window}) + 1"
        f" - (SELECT count(*) FROM {r} WHERE {window} AND {checkpoint})"
    )
    read_window = (
        f"SELECT * FROM (SELECT {rows} FROM {r} WHERE {window} AND {kind} + {codec} = 0"
        f" ORDER BY {seq}) UNION ALL SELECT NULL, {expected},"
        f" (SELECT max({seq}) FROM {r} WHERE {window})"
    )
    read_window_all = (
        f"SELECT {seq}, {kind} | ({codec} << {CODEC_SHIFT}), {rows} FROM {r}"
        f" WHERE {window} AND {kind} != {RecordKind.CHECKPOINT.value} ORDER BY {seq}"
    )
    next_seq = (
        f"SELECT {seq}, {kind} FROM {r} WHERE {c.doc.name} = ?1"
        f" AND {seq} > max(?2, {snapshot} - 1) ORDER BY {seq} LIMIT 1"
    )
    names = ("doc", "after", "until")
    return {
        "read_window": Compiled(read_window, names, {}),
        "read_window_all": Compiled(read_window_all, names, {}),
        "next_seq": Compiled(next_seq, names[:2], {}),
    }


def _build(dialect: Dialect) -> Statements:
    insert_fn = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
    # A new counter row starts from the document's highest stored seq, not from 0:
    # should a counter row ever be lost, numbering resumes after what is stored
    # instead of colliding with it (one primary-key lookup).
    stored = (
        sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
        .where(records.c.doc == sa.bindparam("doc"))
        .scalar_subquery()
    )
    upsert = insert_fn(documents).values(
        doc=sa.bindparam("doc"),
        last_seq=stored + sa.bindparam("n", type_=sa.BigInteger()),
        last_write=sa.bindparam("ts"),
    )
    bump = upsert.on_conflict_do_update(
        index_elements=[documents.c.doc],
        set_={
            "last_seq": documents.c.last_seq + sa.bindparam("n", type_=sa.BigInteger()),
            "last_write": upsert.excluded.last_write,
        },
    ).returning(documents.c.last_seq)
    latest_snapshot = (
        sa.select(sa.func.coalesce(sa.func.max(records.c.seq), 0))
        .where(
            records.c.doc == sa.bindparam("doc"),
            records.c.kind == RecordKind.SNAPSHOT.value,
            not_update(),
        )
        .scalar_subquery()
    )
    last_write = sa.select(documents.c.last_write).where(documents.c.doc == sa.bindparam("doc"))

    def page_of(*columns: Any, checkpoints: bool = False, until: bool = False) -> ClauseElement:
        where = [
            records.c.doc == sa.bindparam("doc"),
            records.c.seq > sa.bindparam("after"),
            records.c.seq >= latest_snapshot,
        ]
        if not checkpoints:
            where.append(records.c.kind != RecordKind.CHECKPOINT.value)
        if until:
            where.append(records.c.seq <= sa.bindparam("until", type_=sa.BigInteger()))
        return (
            sa.select(*columns).where(*where).order_by(records.c.seq).limit(sa.bindparam("limit"))
        )

    c = records.c
    row = (c.seq, c.kind, c.update, c.metadata, c.timestamp, c.codec)
    packed = c.kind.bitwise_or(c.codec.bitwise_lshift(CODEC_SHIFT))
    block_header = sa.case((c.kind == RecordKind.BLOCK.value, c.metadata))
    sqlite_only: dict[str, Compiled] = {}
    if dialect.name == "sqlite":
        counters, stored_seq, set_counter = _sqlite_counter_statements()
        sqlite_only = {
            **_sqlite_read_windows(),
            "counters": _compile(counters, dialect),
            "stored_seq": _compile(stored_seq, dialect),
            "set_counter": _compile(set_counter, dialect),
        }
    return Statements(
        **sqlite_only,
        append=_compile(_append(bump), dialect) if dialect.name == "postgresql" else None,
        append_many=_compile(_append_many(), dialect) if dialect.name == "postgresql" else None,
        bump=_compile(bump, dialect),
        insert=_compile(records.insert(), dialect),
        last_write=_compile(last_write, dialect),
        page=_compile(page_of(*row), dialect),
        page_all=_compile(page_of(*row, checkpoints=True), dialect),
        read_page=_compile(page_of(c.seq, packed, c.update, c.metadata, c.timestamp), dialect),
        update_page=_compile(page_of(c.seq, c.update, c.codec, block_header, until=True), dialect),
    )


_SQLITE_DIALECT = sqlite.dialect(paramstyle="qmark")
_POSTGRES_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_SQLITE = _build(_SQLITE_DIALECT)
_POSTGRES = _build(_POSTGRES_DIALECT)


_compiled: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}


def compile_for(stmt: ClauseElement, backend: str) -> Compiled:
    """Compile a statement for the driver of `sqlite` or `postgresql`.

    A statement object is compiled once (compiling costs about a millisecond;
    reads on a restore path run a few): the result is kept by the object's identity.
    """
    key = (id(stmt), backend)
    found = _compiled.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    compiled = _compile_now(stmt, backend)
    if len(_compiled) >= 1024:  # statements built per call (listings) would pile up
        _compiled.clear()
    _compiled[key] = (stmt, compiled)
    return compiled


def _compile_now(stmt: ClauseElement, backend: str) -> Compiled:
    return _compile(stmt, _SQLITE_DIALECT if backend == "sqlite" else _POSTGRES_DIALECT)


def statements_for(backend: str) -> Statements:
    """The compiled statements for `sqlite` or `postgresql`."""
    return _SQLITE if backend == "sqlite" else _POSTGRES


def number_rows(
    stmts: Statements,
    entries: Sequence[Any],
    plan: list[tuple[str, list[int]]],
    lasts: list[int],
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Give each entry its seq and build the insert arguments.

    Args:
        stmts: The dialect's statements.
        entries: `(doc, kind, update, metadata, timestamp)` entries (kind packed
            with the codec, see `pack_kind`).
        plan: Per document, the indexes of its entries, in write order.
        lasts: Per document in `plan`, its `last_seq` after the counter upsert.

    Returns:
        The seq of each entry (in `entries` order) and the insert arguments.
    """
    seqs = [0] * len(entries)
    rows: list[tuple[Any, ...]] = []
    for (doc, indexes), last in zip(plan, lasts, strict=True):
        first = last - len(indexes) + 1
        for offset, index in enumerate(indexes):
            _doc, packed, update, meta, ts = entries[index]
            seqs[index] = first + offset
            rows.append(
                stmts.insert.args(
                    doc=doc, seq=first + offset, kind=packed & _KIND_MASK, update=update,
                    metadata=meta, timestamp=ts, codec=packed >> CODEC_SHIFT,
                )
            )  # fmt: skip
    return seqs, rows
