"""History on the SQL stores: checkpoints, restore from them, time travel, retention,
compression, and the schema revision that brought the codec column."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sqlite3
import struct
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest
from typer.testing import CliRunner

from ystores import HistoryNotKeptError, RecordKind, YDocNotFound, open_store
from ystores.cli import app
from ystores.history import CheckpointPolicy, RetentionPolicy, decode_header, encode_header
from ystores.records import encode_varuint
from ystores.sql import dispose_databases, schema
from ystores.sql.database import Database, Meanwhile, update_rows
from ystores.sql.history import WINDOW, RestoreStart, restore_start
from ystores.sql.history_merge import merge_and_verify, merge_range
from ystores.sql.store import FIRST_PAGE, TAIL_PAGE, SQLYStore

from .test_schema import run_sql

pytestmark = pytest.mark.anyio

runner = CliRunner()


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def edits(count: int, seed: int = 3, *, paste_every: int = 0) -> list[bytes]:
    """`count` pycrdt updates: typing at moving cursors with deletions, and pastes."""
    rng = random.Random(seed)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    while len(updates) < count:
        length = len(text)
        if paste_every and len(updates) % paste_every == paste_every - 1:
            text.insert(rng.randint(0, length), "pasted paragraph " * 40)
        elif length > 5 and rng.random() < 0.15:
            del text[rng.randrange(length)]
        else:
            text.insert(rng.randint(0, length), rng.choice("abcdef ."))
    return updates


def text_of(updates: list[bytes]) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


async def restored(store: Any) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return str(doc.get("t", type=pycrdt.Text))


def state_text(update: bytes) -> str:
    return text_of([update])


async def written(
    url: str, updates: list[bytes], every: int, **kwargs: Any
) -> tuple[SQLYStore, list[int]]:
    """A store holding `updates`, a checkpoint after each `every`; the seq of each update."""
    store = open_store(url, "doc", clock=kwargs.pop("clock", Clock()), **kwargs)
    assert isinstance(store, SQLYStore)
    for start in range(0, len(updates), every):
        for update in updates[start : start + every]:
            await store.write(update)
        report = await store.checkpoint()
        assert report is not None
        assert report.covers < report.seq
    seqs = [r.seq async for r in store.read_records()]
    assert len(seqs) == len(updates)
    return store, seqs


@pytest.fixture(params=[False, True], ids=["raw", "compressed"])
def compress(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_restore_from_checkpoints_equals_the_full_replay(db_url: str, compress: bool) -> None:
    updates = edits(420, paste_every=50)
    store, _seqs = await written(db_url, updates[:400], 100, compress=compress)
    for update in updates[400:]:  # a tail after the last checkpoint
        await store.write(update)
    assert await restored(store) == text_of(updates)
    # read() and read_records() yield the log without checkpoints, as written
    assert [u async for u, _m, _t in store.read()] == updates
    with_checkpoints = [r async for r in store.read_records(checkpoints=True)]
    assert [r.kind for r in with_checkpoints].count(RecordKind.CHECKPOINT) == 4
    stats = await store.history_stats()
    assert stats is not None
    assert (stats.records, stats.checkpoints, stats.records_since) == (420, 4, 20)
    assert stats.bytes_since == sum(map(len, updates[400:]))
    if compress:
        assert stats.stored_bytes < stats.raw_bytes
    else:
        assert stats.stored_bytes == stats.raw_bytes
    assert await store.checkpoint() is not None
    assert await store.checkpoint() is None  # nothing after the latest one
    await dispose_databases()


async def test_restore_replays_a_tail_longer_than_its_first_page(db_url: str) -> None:
    """A restore fetches the tail after the newest checkpoint in pages (the first
    holds `TAIL_PAGE` updates): a longer tail is applied whole, in order."""
    from ystores.sql.store import TAIL_PAGE

    updates = edits(TAIL_PAGE + 130)
    store, _seqs = await written(db_url, updates[:50], 50)
    for update in updates[50:]:
        await store.write(update)
    stats = await store.history_stats()
    assert stats is not None
    assert stats.records_since == TAIL_PAGE + 80
    assert await restored(open_store(db_url, "doc")) == text_of(updates)
    await dispose_databases()


async def test_a_newest_checkpoint_covering_less_than_an_older_one_still_restores_exactly(
    db_url: str,
) -> None:
    """Two checkpoints built at once can land out of order: the newest then covers
    less. A restore starting from it replays more of the log, to the same document."""
    updates = edits(180)
    store, _seqs = await written(db_url, updates[:150], 50)
    for update in updates[150:]:
        await store.write(update)
    checkpoints = [r.seq async for r in store.read_records(checkpoints=True) if r.kind == 2]
    last = await store.last_seq()
    await dispose_databases()
    await run_sql(
        db_url,
        'INSERT INTO ystore_records (doc, seq, kind, "update", metadata, timestamp, codec) '
        f'SELECT doc, {last + 1}, kind, "update", metadata, timestamp, codec '
        f"FROM ystore_records WHERE doc = 'doc' AND seq = {checkpoints[0]}",
    )
    reopened = open_store(db_url, "doc")
    assert isinstance(reopened, SQLYStore)
    newest = [r async for r in reopened.read_records(checkpoints=True)][-1]
    assert (newest.kind, newest.seq) == (RecordKind.CHECKPOINT, last + 1)
    assert await restored(reopened) == text_of(updates)
    await dispose_databases()


async def test_compressed_records_mix_with_raw_ones(db_url: str) -> None:
    updates = edits(60, paste_every=10)
    store = open_store(db_url, "doc", compress=True)
    for update in updates[:30]:
        await store.write(update)
    store.compress = False
    for update in updates[30:]:
        await store.write(update)
    assert [u async for u, _m, _t in store.read()] == updates
    assert await restored(open_store(db_url, "doc")) == text_of(updates)
    await dispose_databases()
    codecs = await column_values(db_url, "codec")
    assert 1 in codecs[:30]
    assert set(codecs[30:]) == {0}
    pastes = [i for i in range(30) if len(updates[i]) > 256]
    assert pastes
    assert all(codecs[i] == 1 for i in pastes)


async def test_read_yields_raw_pages_and_compressed_pages_alike(db_url: str) -> None:
    # the first page (FIRST_PAGE records) holds raw updates alone, a later one compressed
    # rows among raw ones: both page paths yield the same triples as read_records()
    from ystores.sql.store import FIRST_PAGE

    updates = edits(FIRST_PAGE + 60, paste_every=10)
    store = open_store(db_url, "doc")
    for update in updates[:FIRST_PAGE]:
        await store.write(update)
    store.compress = True
    for update in updates[FIRST_PAGE:]:
        await store.write(update)
    got = [t async for t in store.read()]
    assert [u for u, _m, _t in got] == updates
    assert got == [(r.update, r.metadata, r.timestamp) async for r in store.read_records()]
    await dispose_databases()
    assert 1 in (await column_values(db_url, "codec"))[FIRST_PAGE:]


async def column_values(url: str, column: str) -> list[Any]:
    from ystores.sql.engines import create_engine
    from ystores.sql.urls import database_url

    engine = create_engine(database_url(url))
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql(
                f"SELECT {column} FROM ystore_records WHERE kind = 0 ORDER BY seq"
            )
            return [row[0] for row in result]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE ystore_records SET metadata = {blob} WHERE kind = 2 AND seq = {seq}",
        "UPDATE ystore_records SET {update} = {blob} WHERE kind = 2 AND seq = {seq}",
        "UPDATE ystore_records SET codec = 1 WHERE kind = 2 AND seq = {seq}",
        "UPDATE ystore_records SET codec = 7 WHERE kind = 2 AND seq = {seq}",
    ],
    ids=["header", "update", "codec", "unknown-codec"],
)
async def test_a_damaged_checkpoint_is_skipped_never_a_wrong_document(
    db_url: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    updates = edits(330)
    store, seqs = await written(db_url, updates[:300], 100)
    for update in updates[300:]:
        await store.write(update)
    seqs = [r.seq async for r in store.read_records()]
    checkpoints = [r.seq async for r in store.read_records(checkpoints=True) if r.kind == 2]
    await dispose_databases()
    blob = "x'0102'" if "sqlite" in db_url else "'\\x0102'::bytea"
    for seq in checkpoints[-2:]:  # the latest two: the restore falls back to the first
        await run_sql(db_url, damage.format(blob=blob, seq=seq, update='"update"'))
    reopened = open_store(db_url, "doc")
    assert isinstance(reopened, SQLYStore)
    store = reopened
    with caplog.at_level(logging.WARNING, logger="ystores.sql"):
        assert await restored(store) == text_of(updates)
    assert "Skipping checkpoint" in caplog.text
    for count in (50, 150, 250, 310):
        assert state_text(await store.state_at(seq=seqs[count - 1])) == text_of(updates[:count])
    stats = await store.history_stats()
    assert stats is not None
    assert stats.records_since == 230
    # a new checkpoint is built from the trusted one and the log: exact again
    report = await store.checkpoint()
    assert report is not None
    assert report.covers == seqs[-1]
    assert await restored(store) == text_of(updates)
    await dispose_databases()


async def test_checkpoints_with_version_1_headers_are_still_restored_from(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store written by a release whose checkpoint headers carried a BLAKE2b digest
    (version 1) keeps restoring from them: none is skipped, none is rewritten."""
    updates = edits(330)
    store, seqs = await written(db_url, updates[:300], 100)
    for update in updates[300:]:
        await store.write(update)
    checkpoints = [r async for r in store.read_records(checkpoints=True) if r.kind == 2]
    await dispose_databases()
    for checkpoint in checkpoints:
        header = decode_header(checkpoint.metadata)
        assert header is not None
        assert header.version == 2
        fields = encode_varuint(header.covers) + struct.pack("<d", header.covers_timestamp)
        digest = hashlib.blake2b(fields + checkpoint.update, digest_size=16).digest()
        old = (b"\x01" + fields + digest).hex()
        blob = f"x'{old}'" if "sqlite" in db_url else f"'\\x{old}'::bytea"
        await run_sql(
            db_url, f"UPDATE ystore_records SET metadata = {blob} WHERE seq = {checkpoint.seq}"
        )
    reopened = open_store(db_url, "doc")
    assert isinstance(reopened, SQLYStore)
    db = await reopened.database()
    start = await db.chain(
        lambda: restore_start(db.backend, db.statements, "doc", FIRST_PAGE, TAIL_PAGE)
    )
    assert start is not None
    assert start.base is not None
    assert (start.base.seq, start.base.covers) == (checkpoints[-1].seq, seqs[299])
    with caplog.at_level(logging.WARNING, logger="ystores.sql"):
        assert await restored(reopened) == text_of(updates)
        assert state_text(await reopened.state_at(seq=seqs[149])) == text_of(updates[:150])
    assert "Skipping checkpoint" not in caplog.text
    await dispose_databases()


async def test_a_restore_reads_its_checked_base_and_tail_together(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A restore reads the newest checkpoint and the page after it together (SQLite:
    one worker-thread hop; Postgres: one pooled connection), the checkpoint checked
    before the page is asked for; a damaged one sends the restore down the path
    that looks through the others."""
    updates = edits(330)
    store, _ = await written(db_url, updates[:300], 100)
    for update in updates[300:]:
        await store.write(update)
    seqs = [r.seq async for r in store.read_records()]
    checkpoints = [r.seq async for r in store.read_records(checkpoints=True) if r.kind == 2]

    async def start(db: Database, doc: str = "doc") -> RestoreStart | None:
        return await db.chain(
            lambda: restore_start(db.backend, db.statements, doc, FIRST_PAGE, TAIL_PAGE)
        )

    found = await start(await store.database())
    assert found is not None
    assert found.base is not None
    assert (found.base.seq, found.base.covers) == (checkpoints[-1], seqs[299])
    assert [seq for seq, _ in update_rows(found.rows, "doc", found.base.covers)] == seqs[300:]
    assert await start(await store.database(), "nothing") == RestoreStart(None, [])
    assert await restored(store) == text_of(updates)
    await dispose_databases()
    blob = "x'0102'" if "sqlite" in db_url else "'\\x0102'::bytea"
    await run_sql(
        db_url, f'UPDATE ystore_records SET "update" = {blob} WHERE seq = {checkpoints[-1]}'
    )
    reopened = open_store(db_url, "doc")
    assert isinstance(reopened, SQLYStore)
    store = reopened
    assert await start(await store.database()) is None
    with caplog.at_level(logging.WARNING, logger="ystores.sql"):
        assert await restored(store) == text_of(updates)
    assert f"Skipping checkpoint {checkpoints[-1]}" in caplog.text
    await dispose_databases()


async def checkpoint_built_while(store: SQLYStore, updates: list[bytes]) -> int:
    """A checkpoint of what `store` holds now, appended once `updates` are written
    (as `checkpoint()` does when another writer stores them while it merges);
    its seq."""
    db = await store.database()
    merged = await merge_range(db, "doc")
    update = await merge_and_verify(merged, strict=True)
    for written_meanwhile in updates:
        await store.write(written_meanwhile)
    header = encode_header(merged.covers, merged.covers_timestamp, update)
    return await db.write("doc", RecordKind.CHECKPOINT, update, header, 3_000_000.0, 0)


async def start_reads(db: Database) -> tuple[RestoreStart | None, int]:
    """`restore_start`'s result and how many queries it took."""
    steps = restore_start(db.backend, db.statements, "doc", FIRST_PAGE, TAIL_PAGE)
    queries, step = 1, next(steps)
    while True:
        assert not isinstance(step, Meanwhile)  # no `apply` given: plain queries
        rows = await db.fetch_rows(*step)
        try:
            step = steps.send(rows)
        except StopIteration as done:
            return done.value, queries
        queries += 1


@pytest.mark.parametrize(
    ("lag", "tail"),
    [
        (0, 0),
        (WINDOW - 1, 0),
        (WINDOW, 0),
        (WINDOW + 40, 5),
        (WINDOW - 1, TAIL_PAGE - WINDOW),
        (WINDOW - 1, TAIL_PAGE - WINDOW + 1),
        (WINDOW - 1, TAIL_PAGE - WINDOW + 2),
        (WINDOW - 1, TAIL_PAGE + 1),
        (0, TAIL_PAGE + WINDOW),
        (WINDOW, TAIL_PAGE - WINDOW + 1),
    ],
)
async def test_a_restore_reads_its_base_and_tail_in_one_statement_whatever_was_written_meanwhile(
    db_url: str, lag: int, tail: int
) -> None:
    """A restore fetches the newest checkpoint and its tail in one statement, the tail
    from `WINDOW` seqs before the checkpoint's own seq (the records written while
    it was built lie there); a checkpoint built while more were written takes a
    second query. Either way, and whether the first page of the tail is full, one
    short or one over, the restore is the full replay."""
    updates = edits(100 + lag + tail)
    store, _ = await written(db_url, updates[:50], 50)
    for update in updates[50:100]:
        await store.write(update)
    seq = await checkpoint_built_while(store, updates[100 : 100 + lag])
    for update in updates[100 + lag :]:
        await store.write(update)
    seqs = [r.seq async for r in store.read_records()]
    found, queries = await start_reads(await store.database())
    assert found is not None
    assert found.base is not None
    assert (found.base.seq, found.base.covers) == (seq, seqs[99])
    assert queries == (1 if lag < WINDOW else 2)
    fetched = [s for s, _ in update_rows(found.rows, "doc", found.base.covers)]
    # a prefix of the tail, whole unless it holds a full page (`_pages` reads on then)
    assert fetched == seqs[100 : 100 + len(fetched)]
    assert len(fetched) >= min(lag + tail, TAIL_PAGE)
    assert await restored(open_store(db_url, "doc")) == text_of(updates)
    await dispose_databases()


@pytest.mark.parametrize("meanwhile", ["checkpoint", "squash"])
async def test_writes_between_a_restores_two_reads_give_the_replay_of_what_the_second_saw(
    db_url: str, meanwhile: str
) -> None:
    """A restore takes two reads after a checkpoint built while `WINDOW` or more
    records were written, and no transaction spans them: another store may write
    records, a newer checkpoint or a squash between them. The checkpoint read
    first and the page read second still make exactly the replay of every record
    stored when the page was read."""
    updates = edits(500)
    store, seqs = await written(db_url, updates[:200], 100)
    await checkpoint_built_while(store, updates[200 : 200 + WINDOW + 10])
    db = await store.database()
    steps = restore_start(db.backend, db.statements, "doc", FIRST_PAGE, TAIL_PAGE)
    step = next(steps)
    assert not isinstance(step, Meanwhile)  # no `apply` given: plain queries
    first = await db.fetch_rows(*step)
    other = open_store(db_url, "doc", clock=Clock(2_000_000.0))
    assert isinstance(other, SQLYStore)
    for update in updates[200 + WINDOW + 10 : 400]:
        await other.write(update)
    if meanwhile == "checkpoint":
        assert await other.checkpoint() is not None
    else:
        assert await other.squash() is not None
    for update in updates[400:]:
        await other.write(update)
    step = steps.send(first)
    assert not isinstance(step, Meanwhile)
    with pytest.raises(StopIteration) as done:
        steps.send(await db.fetch_rows(*step))
    found = done.value.value
    assert isinstance(found, RestoreStart)
    assert found.base is not None
    assert found.base.covers == seqs[-1]  # the checkpoint there was at the first read
    stored = [r.seq async for r in other.read_records()]
    assert found.rows[-1][0] == stored[-1]  # the page: up to the last record written
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(found.base.update)
    for _seq, update in update_rows(found.rows, "doc", found.base.covers):
        doc.apply_update(update)
    assert str(doc.get("t", type=pycrdt.Text)) == text_of(updates)
    assert await restored(store) == text_of(updates)
    await dispose_databases()


async def test_state_at_every_point_equals_the_replay_up_to_it(db_url: str) -> None:
    updates = edits(250)
    clock = Clock()
    store, seqs = await written(db_url, updates, 60, clock=clock, compress=True)
    stamps = [r.timestamp async for r in store.read_records()]
    for count in [0, 1, 2, 59, 60, 61, 119, 120, 121, 200, 239, 240, 241, 249, 250]:
        expected = text_of(updates[:count])
        if count:
            assert state_text(await store.state_at(seq=seqs[count - 1])) == expected
            assert state_text(await store.state_at(stamps[count - 1])) == expected
            assert state_text(await store.state_at(stamps[count - 1] + 0.5)) == expected
        else:
            assert state_text(await store.state_at(stamps[0] - 1)) == ""
    # a checkpoint's own seq lies between records: the state just after it
    checkpoints = [r.seq async for r in store.read_records(checkpoints=True) if r.kind == 2]
    assert state_text(await store.state_at(seq=checkpoints[0])) == text_of(updates[:60])
    with pytest.raises(YDocNotFound):
        await open_store(db_url, "nothing").state_at(seq=3)
    with pytest.raises(ValueError, match="exactly one"):
        await store.state_at()
    await dispose_databases()


async def test_retention_window_keeps_recent_history_and_the_content(db_url: str) -> None:
    updates = edits(200)
    clock = Clock()
    store, seqs = await written(db_url, updates, 50, clock=clock)
    stamps = [r.timestamp async for r in store.read_records()]
    clock.now = stamps[-1]
    # retain() reads the clock once more (one second later): keeps records 120..200 (1-based)
    window = stamps[-1] - stamps[119] + 1.5
    report = await store.retain(RetentionPolicy(window=window))
    assert report is not None
    assert report.cut_seq == seqs[118]
    assert await restored(store) == text_of(updates)
    got = [r async for r in store.read_records()]
    assert got[0].kind == RecordKind.SNAPSHOT
    assert got[0].seq == seqs[118]
    assert [r.update for r in got[1:]] == updates[119:]
    stats = await store.history_stats()
    assert stats is not None
    assert stats.oldest == stamps[118]
    for count in (119, 120, 150, 200):
        assert state_text(await store.state_at(seq=seqs[count - 1])) == text_of(updates[:count])
        assert state_text(await store.state_at(stamps[count - 1])) == text_of(updates[:count])
    with pytest.raises(HistoryNotKeptError) as caught:
        await store.state_at(seq=seqs[100])
    assert caught.value.oldest == stamps[118]
    with pytest.raises(HistoryNotKeptError):
        await store.state_at(stamps[50])
    # checkpoints the snapshot supersedes are gone; later ones stay and serve restores
    kinds = [r.kind async for r in store.read_records(checkpoints=True)]
    assert kinds.count(RecordKind.CHECKPOINT) == 2  # those covering 150 and 200
    clock.now = stamps[-1]  # the same moment again: nothing more to drop
    assert await store.retain(RetentionPolicy(window=window)) is None
    assert await store.retain(RetentionPolicy.all()) is None
    await dispose_databases()


async def test_retention_budget_and_none(db_url: str) -> None:
    updates = edits(120, paste_every=40)
    store, _seqs = await written(db_url, updates, 40)  # a budget of stored bytes: raw here
    budget = sum(map(len, updates[-30:]))
    report = await store.retain(RetentionPolicy(budget=budget))
    assert report is not None
    kept = [r async for r in store.read_records()]
    assert [r.update for r in kept[1:]] == updates[-30:]
    assert await restored(store) == text_of(updates)
    squashed = await store.retain(RetentionPolicy.none())
    assert squashed is not None
    assert squashed.records_after == 1
    kinds = [r.kind async for r in store.read_records(checkpoints=True)]
    assert kinds == [RecordKind.SNAPSHOT]  # the squash superseded every checkpoint
    assert await restored(store) == text_of(updates)
    log = await store.log_stats()
    assert log is not None
    assert (log.tail_records, log.has_snapshot) == (0, True)
    await dispose_databases()


async def test_checkpoints_are_not_part_of_the_log_compaction_measures(db_url: str) -> None:
    updates = edits(30)
    store, _seqs = await written(db_url, updates, 10)
    stats = await store.log_stats()
    assert stats is not None
    assert stats.tail_records == 30
    assert stats.tail_bytes == sum(map(len, updates))
    follower = store.follow(0)
    got = await anext(follower)
    await follower.aclose()
    assert all(r.kind == RecordKind.UPDATE for r in got)
    await dispose_databases()


async def test_retention_and_checkpoints_while_writers_keep_writing(db_url: str) -> None:
    updates = edits(600)
    store = open_store(db_url, "doc", checkpoints=CheckpointPolicy(every_updates=50))
    assert isinstance(store, SQLYStore)
    for update in updates[:200]:
        await store.write(update)
    done = asyncio.Event()

    async def write_rest() -> None:
        writer = open_store(db_url, "doc")
        for start in range(200, 600, 20):
            await asyncio.gather(*(writer.write(u) for u in updates[start : start + 20]))
        done.set()

    async def maintain() -> None:
        rounds = 0
        while not done.is_set() or rounds < 2:
            await store.checkpoint()
            await store.retain(RetentionPolicy(budget=2000))
            rounds += 1
            await asyncio.sleep(0)

    await asyncio.gather(write_rest(), maintain())
    assert await restored(store) == text_of(updates)
    assert await restored(open_store(db_url, "doc")) == text_of(updates)
    stats = await store.history_stats()
    assert stats is not None
    assert stats.records < 600
    await dispose_databases()


async def test_a_0002_database_with_data_upgrades_and_downgrades(db_url: str) -> None:
    updates = edits(40)
    await schema.upgrade(db_url, "0002_snapshot_index")
    values = ", ".join(
        f"('doc', {i + 1}, 0, {blob(db_url, u)}, {blob(db_url, b'')}, {1000.0 + i})"
        for i, u in enumerate(updates)
    )
    await run_sql(
        db_url,
        'INSERT INTO ystore_records (doc, seq, kind, "update", metadata, "timestamp") '
        f"VALUES {values}",
        "INSERT INTO ystore_documents (doc, last_seq, last_write) VALUES ('doc', 40, 1039.0)",
    )
    await schema.upgrade(db_url)
    assert await schema.check(db_url)
    assert await schema.diff(db_url) == []
    store = open_store(db_url, "doc")
    assert [u async for u, _m, _t in store.read()] == updates
    assert await restored(store) == text_of(updates)
    assert set(await column_values(db_url, "codec")) == {0}
    await store.write(updates[0])  # a new record after the old ones
    assert [r.seq async for r in store.read_records()][-1] == 41
    await dispose_databases()
    await schema.downgrade(db_url, "0002_snapshot_index")
    assert await schema.current(db_url) == "0002_snapshot_index"
    await schema.upgrade(db_url)
    store = open_store(db_url, "doc", compress=True)
    assert await store.checkpoint() is not None
    await dispose_databases()
    # a compressed checkpoint: deleted (the records before it hold all it says)
    await schema.downgrade(db_url, "0002_snapshot_index")
    assert await schema.current(db_url) == "0002_snapshot_index"
    await schema.upgrade(db_url)
    store = open_store(db_url, "doc")
    assert isinstance(store, SQLYStore)
    assert [u async for u, _m, _t in store.read()] == [*updates, updates[0]]
    assert [r async for r in store.read_records(checkpoints=True)] == [
        r async for r in store.read_records()
    ]
    assert await restored(store) == text_of(updates)
    await dispose_databases()


def blob(url: str, data: bytes) -> str:
    return f"x'{data.hex()}'" if url.startswith("sqlite") else f"'\\x{data.hex()}'::bytea"


async def test_copy_and_export_with_checkpoints_and_compression(
    db_url: str, tmp_path: Path
) -> None:
    updates = edits(150, paste_every=30)
    store, _seqs = await written(db_url, updates[:120], 40, compress=True)
    for update in updates[120:]:
        await store.write(update)
    await dispose_databases()
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    for args in (["copy", db_url, target], ["verify", target]):
        result = await anyio.to_thread.run_sync(runner.invoke, app, args)
        assert result.exit_code == 0, result.output
    copied = open_store(target, "doc")
    assert [u async for u, _m, _t in copied.read()] == updates
    assert await restored(copied) == text_of(updates)
    exported = tmp_path / "doc.bin"
    for source in (db_url, target):
        args = ["export", source, "--doc", "doc", "-o", str(exported)]
        result = await anyio.to_thread.run_sync(runner.invoke, app, args)
        assert result.exit_code == 0, result.output
        assert text_of([exported.read_bytes()]) == text_of(updates)
    await dispose_databases()


def run_sqlite_script(path: Path, script: str) -> None:
    """Run an offline `--sql` script as a user would (`sqlite3 file.db < script`)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(script)
    finally:
        conn.close()


def sqlite_dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


async def test_an_offline_sqlite_script_builds_the_schema_stores_use(tmp_path: Path) -> None:
    path = tmp_path / "offline.db"
    url = f"sqlite:///{path}"
    run_sqlite_script(path, schema.sql_script(url))
    assert await schema.current(url) == schema.head_revision()
    assert await schema.diff(url) == []
    updates = edits(20)
    store = open_store(url, "doc", create_schema=False)
    for update in updates:
        await store.write(update)
    assert await restored(store) == text_of(updates)
    await dispose_databases()


async def test_an_offline_sqlite_downgrade_its_guard_refuses_changes_nothing(
    tmp_path: Path,
) -> None:
    # Compressed rows must be stored raw by `ystore migrate`: the script's guard
    # fails, and since the script is one transaction, no earlier step stays applied.
    path = tmp_path / "offline.db"
    url = f"sqlite:///{path}"
    updates = edits(60, paste_every=10)
    store = open_store(url, "doc", compress=True)
    for update in updates:
        await store.write(update)
    assert await store.checkpoint() is not None
    await dispose_databases()
    before = sqlite_dump(path)
    script = schema.sql_script(url, "base", from_revision="head", downgrade=True)
    with pytest.raises(sqlite3.IntegrityError):
        run_sqlite_script(path, script)
    assert sqlite_dump(path) == before
    assert await schema.current(url) == schema.head_revision()
    assert [u async for u, _m, _t in open_store(url, "doc").read()] == updates
    await dispose_databases()
