"""SQL stores beyond the contract: many documents, many processes, sharing, squashing."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from sql import writer
from ydocs import text_of, typing_updates
from ystores import (
    FileYStore,
    InvalidStoreURLError,
    PostgresYStore,
    RecordKind,
    SQLiteYStore,
    open_store,
)
from ystores.sql import dispose_databases, list_documents, schema
from ystores.sql.database import Database
from ystores.sql.engines import shared
from ystores.sql.store import PAGE_SIZE, next_page_size

pytestmark = pytest.mark.anyio


async def records(store: Any) -> list[Any]:
    return [r async for r in store.read_records()]


async def test_twenty_documents_written_concurrently(db_url: str) -> None:
    texts = {f"docs/{i:02d}": f"document {i} " * 3 for i in range(20)}
    stores = {name: open_store(db_url, name) for name in texts}

    async def fill(name: str) -> None:
        for update in typing_updates(texts[name]):
            await stores[name].write(update)

    await asyncio.gather(*(fill(name) for name in texts))
    for name, text in texts.items():
        got = await records(open_store(db_url, name))
        assert [r.seq for r in got] == list(range(1, len(text) + 1))
        assert text_of([r.update for r in got]) == text
    await dispose_databases()


def run_writers(url: str, doc: str, workers: int, count: int) -> float:
    # forkserver: children fork from a clean process that imported ystores once
    # (plain fork would copy this process's worker threads' state without them).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ystores", "sql.writer"])
    procs = [ctx.Process(target=writer.main, args=(url, doc, w, count)) for w in range(workers)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(90)
    elapsed = time.perf_counter() - start
    assert [proc.exitcode for proc in procs] == [0] * workers
    return elapsed


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_four_processes_write_one_document(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "postgres_db")
    workers, count = 4, 1000
    # One process first, so the schema exists before the race (its creation is
    # serialized too, but this keeps the timing about writes).
    asyncio.run(writer.write(url, "warmup", 0, 1))
    elapsed = run_writers(url, "shared", workers, count)

    async def check() -> None:
        got = await records(open_store(url, "shared"))
        assert [r.seq for r in got] == list(range(1, workers * count + 1))
        for worker in range(workers):
            mine = [r.update for r in got if r.metadata == str(worker).encode()]
            assert mine == writer.updates_for(worker, count)  # each in its own order
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for r in got:
            doc.apply_update(r.update)
        text = str(doc.get("t", type=pycrdt.Text))
        assert sorted(text) == sorted("".join(chr(97 + w) * count for w in range(workers)))
        await dispose_databases()

    asyncio.run(check())
    print(f"{backend}: {workers} processes x {count} updates in {elapsed:.2f} s")


@pytest.mark.parametrize("backend", ["sqlite", "sqlite-fast", "postgres"])
def test_processes_racing_to_create_the_schema(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Processes opening one empty database at once: one creates the schema, the
    others wait for it (SQLite's switch to WAL is retried while another process
    makes it: SQLite answers "database is locked" there without waiting)."""
    url = request.getfixturevalue("postgres_db" if backend == "postgres" else "sqlite_db")
    if backend == "sqlite-fast":
        url += "?synchronous=normal"
    run_writers(url, "raced", 4, 20)  # every process finds the database empty

    async def check() -> None:
        got = await records(open_store(url, "raced"))
        assert [r.seq for r in got] == list(range(1, 81))
        assert await schema.diff(url) == []
        await dispose_databases()

    asyncio.run(check())


async def test_writes_share_a_few_pooled_connections(postgres_db: str) -> None:
    stores = [open_store(postgres_db, f"doc-{i}") for i in range(20)]
    await asyncio.gather(*(s.write(b"\x00\x00") for s in stores for _ in range(25)))
    db = await stores[0].database()  # type: ignore[attr-defined]
    async with db.connection() as conn:
        backends = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
    assert backends <= 3  # 500 writes, never a connection per write
    await dispose_databases()


async def test_list_documents_and_those_idle_since(db_url: str) -> None:
    now = [1000.0]
    for name, at in (("b", 1000.0), ("a", 2000.0), ("c", 3000.0)):
        now[0] = at
        store = open_store(db_url, name, clock=lambda: now[0])
        await store.write(b"\x00\x00")
        await store.write(b"\x00\x00")
    docs = await list_documents(db_url)
    assert [(d.name, d.last_seq, d.last_write) for d in docs] == [
        ("a", 2, 2000.0),
        ("b", 2, 1000.0),
        ("c", 2, 3000.0),
    ]
    assert [d.name for d in await list_documents(db_url, idle_since=2500.0)] == ["a", "b"]
    await dispose_databases()


async def test_stores_of_one_database_share_one_engine(tmp_path: Path) -> None:
    a = SQLiteYStore("a", db_path=tmp_path / "x.db")
    b = SQLiteYStore("b", db_path=str(tmp_path / "x.db"))
    c = open_store(f"sqlite:///{tmp_path / 'x.db'}", "c")
    assert isinstance(c, SQLiteYStore)
    dbs = {id(await s.database()) for s in (a, b, c)}
    assert len(dbs) == 1
    other = SQLiteYStore("a", db_path=tmp_path / "y.db")
    assert id(await other.database()) not in dbs
    await dispose_databases()


async def test_class_attributes_are_honoured(tmp_path: Path) -> None:
    class MyStore(SQLiteYStore):
        db_path = str(tmp_path / "class.db")
        document_ttl = 60

    store = MyStore("doc")
    await store.write(b"\x00\x00")
    assert store.db_path == str(tmp_path / "class.db")
    assert store.document_ttl == 60
    assert (tmp_path / "class.db").exists()
    assert MyStore("doc", document_ttl=5).document_ttl == 5


async def test_squash_keeps_the_content_and_later_writes(db_url: str) -> None:
    store = open_store(db_url, "doc", metadata_callback=lambda: b"m")
    assert isinstance(store, SQLiteYStore | PostgresYStore)
    updates = typing_updates("hello, world")
    for update in updates[:7]:
        await store.write(update)
    report = await store.squash()
    assert report is not None
    assert (report.cut_seq, report.records_before, report.records_after) == (7, 7, 1)
    for update in updates[7:]:
        await store.write(update)
    got = await records(store)
    assert [r.kind for r in got] == [RecordKind.SNAPSHOT] + [RecordKind.UPDATE] * 5
    assert [r.seq for r in got] == list(range(7, 13))
    assert text_of([r.update for r in got]) == "hello, world"
    assert await open_store(db_url, "empty").squash() is None


async def test_document_ttl_squashes_in_the_background(tmp_path: Path) -> None:
    now = [1000.0]
    store = SQLiteYStore("doc", db_path=tmp_path / "t.db", document_ttl=10, clock=lambda: now[0])
    store.compaction_interval = 0.02
    updates = typing_updates("abcdef")
    async with store:
        for update in updates[:4]:
            await store.write(update)
        await asyncio.sleep(0.1)
        assert (await records(store))[0].kind == RecordKind.UPDATE  # not idle for 10 s yet
        now[0] += 60  # idle for 60 s > 10: squashed in the background
        for _ in range(200):
            if (await records(store))[0].kind == RecordKind.SNAPSHOT:
                break
            await asyncio.sleep(0.01)
        for update in updates[4:]:
            await store.write(update)
    got = await records(store)
    assert got[0].kind == RecordKind.SNAPSHOT
    assert len(got) < len(updates)
    assert text_of([r.update for r in got]) == "abcdef"


async def test_open_store_names_every_backend(tmp_path: Path, postgres_db: str) -> None:
    file_store = open_store(f"file://{tmp_path}/docs/", "notes/a")
    assert isinstance(file_store, FileYStore)
    assert file_store.file_path == tmp_path / "docs" / "notes" / "a"
    lite = open_store(str(tmp_path / "bare.db"), "doc")
    assert isinstance(lite, SQLiteYStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/u.db", "doc"), SQLiteYStore)
    pg = open_store(postgres_db.replace("postgresql://", "postgres://"), "doc")
    assert isinstance(pg, PostgresYStore)
    await pg.write(b"\x00\x00")
    assert pg.database_url.drivername == "postgresql+asyncpg"


async def test_a_lost_counter_row_resumes_after_the_stored_records(db_url: str) -> None:
    from .test_schema import run_sql

    store = open_store(db_url, "doc")
    for _ in range(3):
        await store.write(b"\x00\x00")
    await run_sql(db_url, "DELETE FROM ystore_documents")
    await asyncio.gather(store.write(b"\x00\x00"), open_store(db_url, "other").write(b"\x00\x00"))
    assert [r.seq for r in await records(store)] == [1, 2, 3, 4]


async def test_a_closed_pool_is_reopened_on_next_use(db_url: str) -> None:
    store = open_store(db_url, "doc")
    await store.write(b"\x00\x00")
    first: Database = shared(store.database_url, Database)  # type: ignore[attr-defined]
    await dispose_databases()
    await store.write(b"\x00\x00")
    assert shared(store.database_url, Database) is not first  # type: ignore[attr-defined]
    assert len(await records(store)) == 2


async def test_one_batch_across_documents_numbers_each_document_in_write_order(
    db_url: str,
) -> None:
    """Concurrent writes to several documents share one flush (one statement on
    Postgres); each write learns the seq its record got, in write order per document."""
    db = await open_store(db_url, "a").database()  # type: ignore[attr-defined]
    writes = [(doc, bytes([i])) for i in range(4) for doc in ("b", "a", "c")]
    seqs = await asyncio.gather(
        *(db.write(doc, RecordKind.UPDATE, b"\x00\x00", meta, 1.0) for doc, meta in writes)
    )
    for doc in ("a", "b", "c"):
        mine = [seq for (d, _), seq in zip(writes, seqs, strict=True) if d == doc]
        assert mine == [1, 2, 3, 4]
        got = await records(open_store(db_url, doc))
        assert [(r.seq, r.metadata) for r in got] == [(i + 1, bytes([i])) for i in range(4)]
    await dispose_databases()


async def test_reads_page_by_bytes_and_miss_nothing(db_url: str) -> None:
    """Pages shrink for large records (a page holds about PAGE_BYTES) and grow back
    for small ones; every record is read once, in order, through both read paths."""
    assert next_page_size(64, 64 << 20, PAGE_SIZE) == 4  # 1 MiB records: 4 a page
    assert next_page_size(64, 64 * 30, PAGE_SIZE) == PAGE_SIZE  # keystrokes: the most
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    log: list[bytes] = []
    doc.observe(lambda event: log.append(event.update))
    for i in range(300):
        text += ("x" * (600_000 if i % 50 == 7 else 1)) + str(i % 10)
    store = open_store(db_url, "doc")
    for update in log:
        await store.write(update)
    assert [u async for u, _, _ in store.read()] == log
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(restored)
    assert str(restored.get("t", type=pycrdt.Text)) == str(text)
    await dispose_databases()


async def test_sqlite_fast_setting_commits_with_synchronous_normal(tmp_path: Path) -> None:
    """`fsync=False` (or `?synchronous=normal`) is SQLite's fast setting; the default
    commits with synchronous=FULL. Both read back everything they wrote."""
    fast = SQLiteYStore("doc", db_path=tmp_path / "fast.db", fsync=False)
    same = open_store(f"sqlite:///{tmp_path / 'fast.db'}?synchronous=normal", "other")
    durable = SQLiteYStore("doc", db_path=tmp_path / "durable.db")
    updates = typing_updates("hello")
    for store in (fast, same, durable):
        for update in updates:
            await store.write(update)
        assert [u async for u, _, _ in store.read()] == updates
    settings = []
    for store in (fast, same, durable):
        writer = (await store.database()).sqlite_writer  # type: ignore[attr-defined]
        settings.append(writer.transaction(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]))
    assert settings == [1, 1, 2]  # NORMAL, NORMAL, FULL
    with pytest.raises(InvalidStoreURLError, match="bogus"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?bogus=1", "doc")
    with pytest.raises(InvalidStoreURLError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?synchronous=off", "doc")
    await dispose_databases()
