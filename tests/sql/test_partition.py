"""Network partitions to Postgres, through a real TCP proxy: bounded writes, exactly once.

Regression (issue: "a network partition to Postgres hangs writes"): with traffic
blackholed, `await write()` blocked for the whole outage, past the caller's
deadline. Now every write ends within `write_timeout` with `StoreConnectionError`,
the store recovers once the network heals, nothing acknowledged is lost, and a
record whose commit was unknown is stored exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pycrdt
import pytest
from sqlalchemy.engine import make_url

from backends import new_postgres_database
from ystores import StoreConnectionError
from ystores.sql import PostgresYStore
from ystores.sql.database import Database
from ystores.sql.history import WINDOW

from .proxy import PartitionProxy
from .test_history import checkpoint_built_while

pytestmark = pytest.mark.anyio

WRITE_TIMEOUT = 2.0
BOUND = WRITE_TIMEOUT + 5.0  # the write's bound, with room for a loaded machine


def short(url: str) -> PostgresYStore:
    """A store of the document "doc" with short timeouts."""
    return PostgresYStore(
        "doc", url=url, connect_timeout=1.0, statement_timeout=1.0, write_timeout=WRITE_TIMEOUT
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[PartitionProxy, str, str]]:
    """(proxy, URL through the proxy, direct URL) of a new database."""
    direct = new_postgres_database()
    parsed = make_url(direct)
    async with PartitionProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        yield proxy, parsed.set(port=proxy.port).render_as_string(False), direct


class Keystrokes:
    """Distinct Yjs updates, one per character."""

    def __init__(self) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("t", type=pycrdt.Text)

    def next(self, char: str = "x") -> bytes:
        before = self.doc.get_state()
        self.text += char
        return self.doc.get_update(before)


@dataclass
class Scene:
    """A store behind the proxy with one acknowledged write, and the way around it."""

    proxy: PartitionProxy
    store: PostgresYStore
    keys: Keystrokes
    direct: str


@pytest.fixture
async def scene(proxied: tuple[PartitionProxy, str, str]) -> AsyncIterator[Scene]:
    proxy, url, direct = proxied
    made = Scene(proxy, short(url), Keystrokes(), direct)
    await made.store.write(made.keys.next())
    yield made
    await made.store.aclose()


async def stored(url: str, doc: str = "doc") -> Counter[bytes]:
    store = PostgresYStore(doc, url=url)
    try:
        return Counter([update async for update, _m, _t in store.read()])
    finally:
        await store.aclose()


async def database_of(store: PostgresYStore) -> Database:
    return await store.database()


async def wait_resolved(store: PostgresYStore) -> None:
    db = await database_of(store)
    with anyio.fail_after(60):
        while db.in_doubt:
            await anyio.sleep(0.05)


async def timed_write(store: PostgresYStore, update: bytes) -> tuple[StoreConnectionError, float]:
    started = time.monotonic()
    with pytest.raises(StoreConnectionError) as caught:
        await store.write(update)
    return caught.value, time.monotonic() - started


async def cut_write(
    proxy: PartitionProxy, store: PostgresYStore, keys: Keystrokes, mode: str
) -> tuple[bytes, StoreConnectionError]:
    """Cut the network as `mode` says, write a new update: it fails within its bound."""
    proxy.set(mode)
    update = keys.next()
    error, elapsed = await timed_write(store, update)
    assert elapsed < BOUND
    return update, error


async def each_once(direct: str, total: int) -> Counter[bytes]:
    """The stored updates, after checking that none is stored twice and how many there are."""
    counts = await stored(direct)
    assert set(counts.values()) == {1}
    assert sum(counts.values()) == total
    return counts


async def test_a_blackholed_write_raises_within_its_timeout_and_is_stored_once(
    proxied: tuple[PartitionProxy, str, str],
) -> None:
    proxy, url, direct = proxied
    keys = Keystrokes()
    store = short(url)
    acknowledged = [keys.next() for _ in range(5)]
    for update in acknowledged:
        await store.write(update)

    lost, error = await cut_write(proxy, store, keys, "blackhole")
    assert error.commit_unknown  # the statement went out; no answer came
    # Still partitioned: the next write fails within its bound too (no hang on reconnect).
    refused, second = await cut_write(proxy, store, keys, "blackhole")

    proxy.heal()
    await wait_resolved(store)
    after = keys.next()
    await store.write(after)  # the store recovered
    counts = await stored(direct)
    for update in [*acknowledged, after]:
        assert counts[update] == 1
    assert counts[lost] == 1  # in doubt, then resolved: written once
    assert counts[refused] == (1 if second.commit_unknown else 0)
    assert max(counts.values()) == 1  # nothing duplicated
    await store.aclose()


async def test_answers_lost_after_the_commit_are_not_written_twice(scene: Scene) -> None:
    # the server commits; the client never hears
    committed, error = await cut_write(scene.proxy, scene.store, scene.keys, "answers-lost")
    assert error.commit_unknown
    assert (await stored(scene.direct))[committed] == 1  # it did commit
    scene.proxy.heal()
    await wait_resolved(scene.store)
    await scene.store.write(scene.keys.next())
    assert (await each_once(scene.direct, 3))[committed] == 1


async def test_a_statement_delivered_late_cannot_commit_behind_the_store(scene: Scene) -> None:
    # held in the network...
    late, error = await cut_write(scene.proxy, scene.store, scene.keys, "hold")
    assert error.commit_unknown
    scene.proxy.heal(release=False)
    await wait_resolved(scene.store)  # ...the store fences the old connection, writes it once
    assert (await stored(scene.direct))[late] == 1
    assert scene.proxy.release() > 0  # ...and then the retransmission arrives
    await anyio.sleep(0.5)
    assert (await each_once(scene.direct, 2))[late] == 1


async def test_resets_fail_fast_and_the_store_recovers(scene: Scene) -> None:
    refused, error = await cut_write(scene.proxy, scene.store, scene.keys, "reset")
    scene.proxy.heal()
    await wait_resolved(scene.store)
    then = scene.keys.next()
    await scene.store.write(then)
    # refused: stored once if its statement may have gone out (then resolved), else not
    counts = await each_once(scene.direct, 3 if error.commit_unknown else 2)
    assert counts[then] == 1
    assert counts[refused] == (1 if error.commit_unknown else 0)


async def test_a_cancelled_caller_leaves_at_once_and_its_record_is_stored_once(
    proxied: tuple[PartitionProxy, str, str],
) -> None:
    proxy, url, direct = proxied
    keys = Keystrokes()
    # The defaults (write_timeout 15 s) outlast the caller's own deadline.
    store = PostgresYStore("doc", url=url)
    await store.write(keys.next())
    proxy.set("blackhole")
    cancelled = keys.next()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.5):
            await store.write(cancelled)
    assert time.monotonic() - started < 0.5 + 3.0  # honoured, not held for the flush
    proxy.heal()
    db = await database_of(store)
    with anyio.fail_after(90):  # the flush ends by write_timeout, then resolution
        while db.in_doubt or db._detached or (await stored(direct))[cancelled] == 0:
            await anyio.sleep(0.1)
    await store.write(keys.next())
    assert (await each_once(direct, 3))[cancelled] == 1
    await store.aclose()


async def test_writing_the_same_update_again_joins_the_record_in_doubt(scene: Scene) -> None:
    update, error = await cut_write(scene.proxy, scene.store, scene.keys, "answers-lost")
    assert error.commit_unknown
    scene.proxy.heal()
    await scene.store.write(update)  # the caller retries: resolved, not stored twice
    assert (await each_once(scene.direct, 2))[update] == 1


async def test_a_committed_record_packed_before_it_is_looked_up_is_not_written_twice(
    scene: Scene,
) -> None:
    for _ in range(4):
        await scene.store.write(scene.keys.next())
    committed, error = await cut_write(scene.proxy, scene.store, scene.keys, "answers-lost")
    assert error.commit_unknown
    # Meanwhile another server checkpoints the document and packs what the checkpoint
    # covers: the committed record is no longer a row of its own but inside a block.
    other = PostgresYStore("doc", url=scene.direct)
    assert await other.checkpoint() is not None
    report = await other.pack(block_records=100)
    assert report is not None
    assert report.records_packed == 6
    await other.aclose()
    scene.proxy.heal()
    await wait_resolved(scene.store)
    await scene.store.write(scene.keys.next())
    assert (await each_once(scene.direct, 7))[committed] == 1


async def test_two_servers_share_the_database_through_a_partition(
    proxied: tuple[PartitionProxy, str, str],
) -> None:
    proxy, url, direct = proxied
    keys_a, keys_b = Keystrokes(), Keystrokes()
    cut_off = short(url)  # behind the proxy
    other = short(direct)  # another server, not cut off
    await cut_off.write(keys_a.next())
    doubtful, _error = await cut_write(proxy, cut_off, keys_a, "answers-lost")
    for _ in range(3):
        await other.write(keys_b.next())  # the other server keeps writing meanwhile
    proxy.heal()
    await wait_resolved(cut_off)
    assert (await each_once(direct, 5))[doubtful] == 1
    await cut_off.aclose()
    await other.aclose()


async def test_reads_and_squash_are_bounded_too(scene: Scene) -> None:
    for _ in range(3):
        await scene.store.write(scene.keys.next())
    assert [u async for u, _m, _t in scene.store.read()]  # a pooled read connection exists
    scene.proxy.set("blackhole")

    async def read() -> None:
        _ = [u async for u, _m, _t in scene.store.read()]

    async def apply() -> None:
        await scene.store.apply_updates(pycrdt.Doc())

    for operation in (read, apply, scene.store.squash):
        started = time.monotonic()
        with pytest.raises(StoreConnectionError):
            await operation()
        assert time.monotonic() - started < 2 * BOUND, operation  # a read is retried once
    scene.proxy.heal()
    with anyio.fail_after(60):
        while True:  # the pool's broken connections are replaced as they are found
            try:
                assert len([u async for u, _m, _t in scene.store.read()]) == 4
                break
            except StoreConnectionError:
                await anyio.sleep(0.1)
    assert await scene.store.squash() is not None


async def typed_with_checkpoint(
    direct: str, text: str, *, covered: int, lag: int = 0
) -> tuple[Keystrokes, PostgresYStore]:
    """`text` typed into "doc" by a writer that is not behind the proxy: a checkpoint
    of the first `covered` keystrokes, built while the next `lag` were written,
    then the rest (the tail). The keystrokes and the writer."""
    keys = Keystrokes()
    updates = [keys.next(char) for char in text]
    writer = PostgresYStore("doc", url=direct)
    for update in updates[:covered]:
        await writer.write(update)
    await checkpoint_built_while(writer, updates[covered : covered + lag])
    for update in updates[covered + lag :]:
        await writer.write(update)
    return keys, writer


async def test_a_restore_cut_off_while_it_applies_its_checkpoint_is_whole(
    proxied: tuple[PartitionProxy, str, str],
) -> None:
    """After a checkpoint built while `WINDOW` or more records were written, a
    Postgres restore applies the checkpoint while the tail's query is under way;
    a connection reset then fails that query, and the restore runs again on a new
    connection (the checkpoint applied twice is the same state): the document is
    whole, with every update after the checkpoint."""
    proxy, url, direct = proxied
    keys, _writer = await typed_with_checkpoint(
        direct, "checkpoint, then a tail " * 20, covered=400, lag=WINDOW
    )
    expected = str(keys.text)
    store = short(url)
    first: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(first)  # prepares the tail's statement on the connection
    assert str(first.get("t", type=pycrdt.Text)) == expected
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    seen: list[bytes] = []

    def cut_once(event: Any) -> None:
        seen.append(event.update)
        if len(seen) == 1:  # the checkpoint is in; the tail's query is under way
            proxy.set("reset")
            proxy.heal()

    doc.observe(cut_once)
    connections = proxy.accepted
    await store.apply_updates(doc)
    assert str(doc.get("t", type=pycrdt.Text)) == expected

    def text_of(update: bytes) -> str:
        alone: pycrdt.Doc[Any] = pycrdt.Doc()
        alone.apply_update(update)
        return str(alone.get("t", type=pycrdt.Text))

    # the cut came after the checkpoint (the first transaction), before the tail
    assert text_of(seen[0]) == ("checkpoint, then a tail " * 20)[:400]
    assert proxy.accepted > connections  # the reads ran again on a new connection


async def test_a_restore_whose_connection_was_reset_reads_again_whole(
    proxied: tuple[PartitionProxy, str, str],
) -> None:
    """A restore's one statement (the newest checkpoint and its tail) on a pooled
    connection that the network reset fails, and runs again on a new connection:
    the document is whole, the checkpoint applied once, with its tail."""
    proxy, url, direct = proxied
    keys, writer = await typed_with_checkpoint(
        direct, "one statement, then the tail " * 15, covered=300
    )
    store = short(url)
    await store.apply_updates(pycrdt.Doc())  # a pooled connection through the proxy
    connections = proxy.accepted
    proxy.set("reset")  # breaks that connection
    proxy.heal()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    transactions: list[bytes] = []
    doc.observe(lambda event: transactions.append(event.update))
    await store.apply_updates(doc)
    assert str(doc.get("t", type=pycrdt.Text)) == str(keys.text)
    assert len(transactions) == 1  # the checkpoint and its tail, in one transaction
    assert proxy.accepted > connections  # read again on a new connection
    await store.aclose()
    await writer.aclose()
