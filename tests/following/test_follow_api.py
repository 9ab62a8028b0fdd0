"""`store.follow(after=seq)`: every record appended by anyone, once each, in seq order."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from ydocs import text_of, typing_updates
from ystores import BaseYStore, following, open_store
from ystores.records import Record, RecordKind
from ystores.sql import PostgresYStore
from ystores.sql.engines import dispose_databases
from ystores.sql.listening import APPLICATION_NAME

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parents[1]
WAIT = 60.0


async def write_in_processes(url: str, doc: str, workers: int, count: int) -> None:
    """`workers` processes append `count` updates each to `doc`, concurrently."""
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); from sql import writer; "
        "writer.main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, url, doc, str(w), str(count)
        )
        for w in range(workers)
    ]
    codes = [await asyncio.wait_for(proc.wait(), WAIT) for proc in procs]
    assert codes == [0] * workers


async def collect(follower: AsyncGenerator[list[Record], None], count: int) -> list[Record]:
    """Records from `follower` until `count` arrived (fails after `WAIT` seconds)."""
    got: list[Record] = []

    async def run() -> None:
        async for records in follower:
            got.extend(records)
            if len(got) >= count:
                return

    try:
        await asyncio.wait_for(run(), WAIT)
    finally:
        await follower.aclose()
    return got


async def test_followers_see_every_record_of_concurrent_processes_once_in_order(
    any_url: str,
) -> None:
    workers, count = 3, 150
    total = workers * count
    store = open_store(any_url, "shared")
    others = [open_store(any_url, "shared") for _ in range(2)]
    followers = [asyncio.create_task(collect(s.follow(after=0), total)) for s in [store, *others]]
    await asyncio.sleep(0.2)  # the followers wait for a first record
    await write_in_processes(any_url, "shared", workers, count)
    for got in await asyncio.gather(*followers):
        assert [r.seq for r in got] == list(range(1, total + 1))  # once each, in order
        assert all(r.kind is RecordKind.UPDATE for r in got)
        for worker in range(workers):
            mine = [r.update for r in got if r.metadata == str(worker).encode()]
            assert text_of(mine) == chr(ord("a") + worker) * count
    assert await store.last_seq() == total
    for s in (store, *others):
        await s.aclose()
    await dispose_databases()


async def test_following_from_the_last_seq_sees_only_later_records(any_url: str) -> None:
    store = open_store(any_url, "doc")
    updates = typing_updates("abcdef")
    assert await store.last_seq() == 0
    for update in updates[:3]:
        await store.write(update)
    after = await store.last_seq()
    assert after == 3
    follower = asyncio.create_task(collect(open_store(any_url, "doc").follow(after=after), 3))
    for update in updates[3:]:
        await store.write(update)
    got = await follower
    assert [r.seq for r in got] == [4, 5, 6]
    assert [r.update for r in got] == updates[3:]
    await store.aclose()
    await dispose_databases()


async def test_a_follower_behind_a_squash_gets_the_snapshot_then_what_follows(
    any_url: str,
) -> None:
    store = open_store(any_url, "doc")
    updates = typing_updates("hello world")
    for update in updates[:8]:
        await store.write(update)
    report = await store.squash()
    assert report is not None
    assert report.cut_seq == 8
    for update in updates[8:]:
        await store.write(update)
    # Behind the cut: the snapshot replaces records 4..8, applied over 1..3 (idempotent).
    got = await collect(store.follow(after=3), 4)
    assert [(r.seq, r.kind) for r in got] == [
        (8, RecordKind.SNAPSHOT),
        (9, RecordKind.UPDATE),
        (10, RecordKind.UPDATE),
        (11, RecordKind.UPDATE),
    ]
    assert text_of(updates[:3] + [r.update for r in got]) == "hello world"
    # Past the cut: the snapshot is never seen.
    got = await collect(store.follow(after=9), 2)
    assert [r.seq for r in got] == [10, 11]
    await store.aclose()
    await dispose_databases()


async def test_a_follower_survives_a_failed_read_by_following_again_from_its_seq(
    tmp_path: Path,
) -> None:
    # The contract: a follower that fails resumes with follow(after=last seen); nothing lost.
    url = f"sqlite:///{tmp_path / 'y.db'}"
    store = open_store(url, "doc")
    updates = typing_updates("abcd")
    for update in updates[:2]:
        await store.write(update)
    first = await collect(store.follow(after=0), 2)
    for update in updates[2:]:
        await store.write(update)
    rest = await collect(store.follow(after=first[-1].seq), 2)
    assert [r.seq for r in first + rest] == [1, 2, 3, 4]
    await store.aclose()
    await dispose_databases()


def _admin(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


async def _listeners(url: str) -> list[int]:
    conn = await asyncpg.connect(_admin(url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = $1 AND pid <> pg_backend_pid()",
            APPLICATION_NAME,
        )
        return [row["pid"] for row in rows]
    finally:
        await conn.close()


async def listeners_once_listening(url: str) -> list[int]:
    """The listening connections, once there is one (polled, at most `WAIT` seconds)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not (pids := await _listeners(url)):
        assert asyncio.get_running_loop().time() < deadline, "nothing listens"
        await asyncio.sleep(0.05)
    return pids


async def test_postgres_listens_on_one_connection_per_process_for_all_documents() -> None:
    from backends import new_postgres_database

    url = new_postgres_database()
    names = [f"doc{i}" for i in range(5)]
    stores = [PostgresYStore(name, url=url) for name in names]
    followers = [asyncio.create_task(collect(s.follow(after=0), 1)) for s in stores]
    await listeners_once_listening(url)
    await asyncio.sleep(0.3)  # every follower is waiting by now
    assert len(await _listeners(url)) == 1
    await write_in_processes(url, "doc3", 1, 1)
    done, _pending = await asyncio.wait(followers, timeout=WAIT, return_when="FIRST_COMPLETED")
    assert [followers.index(t) for t in done] == [3]
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    await dispose_databases()


async def test_a_postgres_follower_whose_listen_connection_is_terminated_catches_up() -> None:
    from backends import new_postgres_database

    url = new_postgres_database()
    store = PostgresYStore("doc", url=url)
    await store.write(typing_updates("x")[0])
    follower = store.follow(after=1)
    got: list[Record] = []
    events: list[Any] = []

    async def run() -> None:
        async for records in follower:
            got.extend(records)
            events.append(len(got))

    task = asyncio.create_task(run())
    (pid,) = await listeners_once_listening(url)
    conn = await asyncpg.connect(_admin(url))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    # Written by another process while this one's listener is gone or coming back.
    await write_in_processes(url, "doc", 2, 40)
    deadline = asyncio.get_running_loop().time() + WAIT
    while len(got) < 80 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert [r.seq for r in got] == list(range(2, 82))
    # The listener came back on a new connection and keeps waking the follower.
    new_pids = await listeners_once_listening(url)
    assert len(new_pids) == 1
    assert new_pids != [pid]
    await write_in_processes(url, "doc", 1, 5)
    while len(got) < 85 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert [r.seq for r in got] == list(range(2, 87))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await follower.aclose()
    await dispose_databases()


async def test_a_store_without_seqs_says_it_cannot_be_followed() -> None:
    class Bare(BaseYStore):
        async def write(self, data: bytes) -> None:
            pass

        async def read(self) -> AsyncGenerator[tuple[bytes, bytes, float], None]:
            yield b"", b"", 0.0

    store = Bare("doc")
    with pytest.raises(NotImplementedError):
        await store.last_seq()
    follower = store.follow()
    with pytest.raises(NotImplementedError):
        async with aclosing(follower):
            await follower.__anext__()


async def test_followers_never_get_checkpoints(any_url: str) -> None:
    store = open_store(any_url, "doc")
    updates = typing_updates("hello")
    live = asyncio.create_task(collect(open_store(any_url, "doc").follow(after=0), 5))
    for update in updates[:3]:
        await store.write(update)
    report = await store.checkpoint()
    assert report is not None
    assert (report.seq, report.covers) == (4, 3)
    for update in updates[3:]:
        await store.write(update)
    every = store.read_records(checkpoints=True)  # type: ignore[call-arg]
    stored = [(r.seq, r.kind) async for r in every]
    assert (4, RecordKind.CHECKPOINT) in stored
    late = await collect(store.follow(after=0), 5)
    for got in (await live, late):
        assert [(r.seq, r.kind) for r in got] == [(s, RecordKind.UPDATE) for s in (1, 2, 3, 5, 6)]
        assert text_of([r.update for r in got]) == "hello"
    # Just before the checkpoint, or at it: the records after it, then what is written next.
    for after in (3, 4):
        follower = asyncio.create_task(collect(store.follow(after=after), 3))
        await asyncio.sleep(0.05)
        await store.write(typing_updates("hello!")[-1])
        assert [r.seq for r in await follower][:2] == [5, 6]
    await store.aclose()
    await dispose_databases()


async def test_a_custom_store_follower_skips_checkpoints() -> None:
    # The generic path (a backend that only implements read_records) filters them too.
    updates = typing_updates("ab")
    log = [
        Record(1, updates[0], b"", 0.0),
        Record(2, b"\x00\x00", b"header", 0.0, RecordKind.CHECKPOINT),
        Record(3, updates[1], b"", 0.0),
    ]

    class Listed(BaseYStore):
        async def write(self, data: bytes) -> None:
            raise NotImplementedError

        async def read(self) -> AsyncGenerator[tuple[bytes, bytes, float], None]:
            for record in log:
                yield record.as_tuple()

        async def read_records(self) -> AsyncGenerator[Record, None]:
            for record in log:
                yield record

    got = await collect(Listed("doc").follow(after=0), 2)
    assert [r.seq for r in got] == [1, 3]


async def test_followers_are_woken_by_the_backend_not_by_the_safety_interval(
    any_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the safety fetch pushed out of reach, only the backend's own signal
    # (NOTIFY, the SQLite change check, the file's stat) can deliver these.
    monkeypatch.setattr(following, "FOLLOW_SAFETY_INTERVAL", 3600.0)
    stores = [open_store(any_url, f"doc{i}") for i in range(3)]
    followers = [asyncio.create_task(collect(s.follow(after=0), 20)) for s in stores]
    await asyncio.sleep(0.2)  # the followers wait for a first record
    await asyncio.gather(*(write_in_processes(any_url, f"doc{i}", 1, 20) for i in range(3)))
    for got in await asyncio.gather(*followers):
        assert [r.seq for r in got] == list(range(1, 21))
    for s in stores:
        await s.aclose()
    await dispose_databases()


async def test_a_follower_notified_while_its_batch_is_read_gets_each_record_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records committed (and signalled) between the batched query and its answer
    # reaching the follower are fetched by the next read, never twice, never skipped.
    monkeypatch.setattr(following, "FOLLOW_SAFETY_INTERVAL", 3600.0)  # signals only
    store = open_store(db_url, "doc")
    follower = store.follow(after=0)
    first = asyncio.create_task(follower.__anext__())
    await asyncio.sleep(0.2)  # the follower waits for a first record
    db = await store.database()  # type: ignore[attr-defined]
    batcher = db.change_hub().batcher
    read, answered, release = batcher._reader, asyncio.Event(), asyncio.Event()

    async def held_after_the_query(batch: Any) -> None:
        await read(batch)
        if not answered.is_set() and any(request.result for request in batch):
            answered.set()  # the first read that found records only
            await release.wait()

    batcher._reader = held_after_the_query
    await write_in_processes(db_url, "doc", 1, 30)  # worker 0: seqs 1-30
    await asyncio.wait_for(answered.wait(), WAIT)
    await write_in_processes(db_url, "doc", 1, 30)  # signalled while the read is held
    await asyncio.sleep(0.2)  # the signals of those commits arrive meanwhile
    release.set()
    got = list(await asyncio.wait_for(first, WAIT))
    assert got
    assert got[-1].seq <= 30  # the held read's answer: none of the later records
    got += await collect(follower, 60 - len(got))
    assert [r.seq for r in got] == list(range(1, 61))  # each record once, in order
    assert await store.last_seq() == 60
    await store.aclose()
    await dispose_databases()


async def test_followers_woken_together_read_together(db_url: str) -> None:
    docs = 6
    stores = [open_store(db_url, f"doc{i}") for i in range(docs)]
    followers = [asyncio.create_task(collect(s.follow(after=0), 30)) for s in stores]
    await asyncio.sleep(0.2)
    db = await stores[0].database()  # type: ignore[attr-defined]
    before = db.change_hub().batcher.reads
    # Another process writes 30 records to each document, all documents at once.
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        str(TESTS / "following" / "doc_writer.py"),
        db_url,
        ",".join(f"doc{i}" for i in range(docs)),
        "30",
    )
    assert await asyncio.wait_for(writer.wait(), WAIT) == 0
    for got in await asyncio.gather(*followers):
        assert [r.seq for r in got] == list(range(1, 31))
    reads = db.change_hub().batcher.reads - before
    assert reads < docs * 30 / 2  # one read per document per record would be 180
    for s in stores:
        await s.aclose()
    await dispose_databases()


async def test_a_follower_takes_what_its_own_process_wrote_without_reading_it(
    db_url: str,
) -> None:
    store = open_store(db_url, "doc")
    follower = store.follow(after=0)
    updates = typing_updates("abcdefghijklmnopqrstuvwxyz" * 2)
    await store.write(updates[0])
    got = list(await follower.__anext__())
    db = await store.database()  # type: ignore[attr-defined]
    before = db.change_hub().batcher.reads
    for update in updates[1:]:
        await store.write(update)
        got += await asyncio.wait_for(follower.__anext__(), WAIT)
    await follower.aclose()
    assert [r.update for r in got] == updates
    reads = db.change_hub().batcher.reads - before
    assert reads < len(updates) / 2  # reading back each record would be 51
    await store.aclose()
    await dispose_databases()


async def test_a_record_whose_writer_left_is_handed_to_followers_once_committed(
    tmp_path: Path,
) -> None:
    # The flush hands each committed record to this process's followers itself, before
    # any writer wakes: a writer cancelled mid-flush does not make the follower read
    # back a record that was stored.
    url = f"sqlite:///{tmp_path / 'ystore.db'}"
    store = open_store(url, "doc")
    follower = store.follow(after=0)
    updates = typing_updates("abcdef")
    await store.write(updates[0])
    got = list(await follower.__anext__())
    db = await store.database()  # type: ignore[attr-defined]
    hub = db.change_hub()
    hub.interval = 3600.0  # no change check from now on: only the hand-over can deliver
    await asyncio.sleep(0.2)  # the check already under way passes
    before = hub.batcher.reads
    for update in updates[1:]:
        writing = asyncio.create_task(store.write(update))
        await asyncio.sleep(0)  # the write's flush starts
        writing.cancel()
        got += await asyncio.wait_for(follower.__anext__(), WAIT)
    await follower.aclose()
    assert [r.update for r in got] == updates  # every record stored, delivered once
    assert hub.batcher.reads == before  # taken as committed, none read back
    assert await store.last_seq() == len(updates)
    await store.aclose()
    await dispose_databases()


async def test_a_follower_stopped_while_its_listener_connects_leaves_nothing_half_open() -> None:
    # Stopping a follower (a room closing) at any moment, even during the listening
    # connection's handshake, must not abandon that connection half-open (asyncpg
    # would report a lost connection to the event loop, failing this test).
    from backends import new_postgres_database

    url = new_postgres_database()
    rng = random.Random(12)
    for _ in range(40):
        store = open_store(url, "doc")
        await store.last_seq()  # loaded first, as a room is: following opens the listener next
        task = asyncio.create_task(collect(store.follow(after=0), 1))
        await asyncio.sleep(rng.uniform(0, 0.01))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.aclose()
        await dispose_databases()
    # And the store still works: a follower gets what is written.
    store = open_store(url, "doc")
    follower = asyncio.create_task(collect(store.follow(after=0), 1))
    await store.write(typing_updates("x")[0])
    assert [r.seq for r in await follower] == [1]
    await store.aclose()
    await dispose_databases()
