"""Squashing never changes a document, on every backend, even with writers going on."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import StoreFactory
from ystores import BaseYStore, RecordKind
from ystores.compaction import CompactionPolicy

pytestmark = pytest.mark.anyio

steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["insert", "delete", "map", "array", "squash"]),
        st.integers(0, 10_000),
        st.text(alphabet="abcXYZ ", min_size=1, max_size=3),
    ),
    min_size=2,
    max_size=30,
)


def content(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    return {
        "text": str(doc.get("text", type=pycrdt.Text)),
        "map": doc.get("map", type=pycrdt.Map).to_py(),
        "array": doc.get("array", type=pycrdt.Array).to_py(),
    }


async def restore(store: BaseYStore) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return doc


async def kinds(store: BaseYStore) -> list[RecordKind]:
    return [record.kind async for record in store.read_records()]


def edit(doc: pycrdt.Doc[Any], op: str, seed: int, text: str) -> bytes:
    before = doc.get_state()
    body = doc.get("text", type=pycrdt.Text)
    if op == "delete" and len(body):
        start = seed % len(body)
        del body[start : min(len(body), start + len(text))]
    elif op == "map":
        doc.get("map", type=pycrdt.Map)[text] = seed
    elif op == "array":
        items = doc.get("array", type=pycrdt.Array)
        items.insert(seed % (len(items) + 1), text)
    else:
        body.insert(seed % (len(body) + 1), text)
    return doc.get_update(before)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=steps)
async def test_squash_at_any_point_keeps_the_document(
    make_store: StoreFactory, history: list[tuple[int, str, int, str]]
) -> None:
    """Random multi-client histories, squashed at random cut points: same content and state."""
    name = f"doc-{uuid.uuid4().hex}"
    store = make_store(name)
    clients: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=10 + i) for i in range(3)]
    reference: pycrdt.Doc[Any] = pycrdt.Doc()
    written = False
    for who, op, seed, text in history:
        if op == "squash":
            await store.squash()
            if written:
                assert content(await restore(store)) == content(reference)
            continue
        written = True
        update = edit(clients[who], op, seed, text)
        for other in clients:
            other.apply_update(update)
        reference.apply_update(update)
        await store.write(update)
    await store.squash()
    if written:
        restored = await restore(store)
        assert content(restored) == content(reference)
        assert restored.get_state() == reference.get_state()
    await store.aclose()


async def test_squash_replaces_history_by_one_snapshot(make_store: StoreFactory) -> None:
    store = make_store()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=pycrdt.Text)
    for char in "hello world":
        text += char
    for update in updates:
        await store.write(update)
    stats = await store.log_stats()
    assert stats is not None
    assert (stats.tail_records, stats.has_snapshot) == (11, False)
    report = await store.squash()
    assert report is not None
    assert (report.records_before, report.records_after, report.cut_seq) == (11, 1, 11)
    assert await kinds(store) == [RecordKind.SNAPSHOT]
    assert str((await restore(store)).get("text", type=pycrdt.Text)) == "hello world"
    assert await store.squash() is None  # one record: nothing to do
    await store.aclose()


async def test_writers_keep_every_update_while_squashes_run(make_store: StoreFactory) -> None:
    store = make_store()
    writer_doc: pycrdt.Doc[Any] = pycrdt.Doc()
    updates: list[bytes] = []
    writer_doc.observe(lambda event: updates.append(event.update))
    text = writer_doc.get("text", type=pycrdt.Text)
    for i in range(300):
        text += chr(ord("a") + i % 26)
    for update in updates[:50]:
        await store.write(update)
    done = anyio.Event()

    async def write_rest() -> None:
        for update in updates[50:]:
            await store.write(update)
            await anyio.lowlevel.checkpoint()
        done.set()

    async def squash_repeatedly() -> None:
        while not done.is_set():
            await store.squash()
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write_rest)
        tg.start_soon(squash_repeatedly)
    assert str((await restore(store)).get("text", type=pycrdt.Text)) == str(text)
    await store.squash()
    assert await kinds(store) == [RecordKind.SNAPSHOT]
    assert str((await restore(store)).get("text", type=pycrdt.Text)) == str(text)
    await store.aclose()


async def test_ttl_squash_keeps_the_text(make_store: StoreFactory) -> None:
    """pycrdt-store 0.1.3-0.1.5 replaced the history by an empty document here."""
    now = [1_000.0]
    store = make_store(clock=lambda: now[0], compaction=CompactionPolicy(ttl=60))
    store.compaction_interval = 0.01
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=pycrdt.Text)
    text += "Hello"
    text += ", world"
    async with store:
        for update in updates:
            await store.write(update)
        now[0] += 3_600
        with anyio.fail_after(10):
            while (await kinds(store))[0] != RecordKind.SNAPSHOT:
                await anyio.sleep(0.01)
    assert await kinds(store) == [RecordKind.SNAPSHOT]
    assert str((await restore(store)).get("text", type=pycrdt.Text)) == "Hello, world"


async def test_busy_documents_are_compacted_by_count(make_store: StoreFactory) -> None:
    store = make_store(compaction=CompactionPolicy(max_updates=20))
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=pycrdt.Text)
    for i in range(100):
        text += str(i % 10)
    async with store:
        for update in updates:
            await store.write(update)
        with anyio.fail_after(10):
            while True:
                stats = await store.log_stats()
                assert stats is not None
                if stats.has_snapshot and stats.tail_records <= 20:
                    break
                await anyio.sleep(0.01)
    assert str((await restore(store)).get("text", type=pycrdt.Text)) == str(text)


def test_policy_decides_by_idle_time_count_and_bytes() -> None:
    from ystores.compaction import LogStats

    stats = LogStats(
        tail_records=10, tail_bytes=500, has_snapshot=True, last_write=100.0, last_seq=11
    )
    assert CompactionPolicy(ttl=60).due(stats, now=150.0) is None
    assert CompactionPolicy(ttl=60).due(stats, now=161.0) == "idle for 61 s"
    assert CompactionPolicy(max_updates=10).due(stats, now=0) is None
    assert CompactionPolicy(max_updates=9).due(stats, now=0) is not None
    assert CompactionPolicy(max_bytes=499).due(stats, now=0) is not None
    single = LogStats(tail_records=0, tail_bytes=0, has_snapshot=True, last_write=1.0, last_seq=1)
    assert CompactionPolicy(ttl=0).due(single, now=1e9) is None  # nothing to squash
    with pytest.raises(ValueError, match="must not be negative"):
        CompactionPolicy(ttl=-1)
    assert not CompactionPolicy().enabled
