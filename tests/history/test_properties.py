"""History properties on every backend, over random multi-client edit histories.

Each example writes a random history (text, map and array edits by three
clients, timestamps from a simulated clock, several records sometimes sharing a
timestamp), with checkpoints written, retention policies (windows, byte
budgets, squashes) applied, compression switched on and off and stores reopened
at random points, history packed into blocks with old checkpoints thinned (on
the backends that pack), and checks against a replay of what was written:

- `apply_updates` gives the document of the full replay (content and state vector);
- `state_at(at=t)` gives the replay of every record stamped at or before `t`,
  for every record's time and the times between them, as long as the kept
  history covers `t`; before that it raises `HistoryNotKeptError` (and only
  there: never for a time a policy keeps, always for one a window dropped);
- `state_at(seq=s)` gives the replay up to record `s`, for every record kept.

Examples per backend: `YSTORES_HISTORY_EXAMPLES` (default 8 in CI; a bigger
run: `YSTORES_HISTORY_EXAMPLES=300 pytest tests/history/test_properties.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from backends import BACKENDS, StoreFactory
from ystores import BaseYStore, HistoryNotKeptError, RecordKind
from ystores.filestore.formats import v3_records_start
from ystores.filestore.frames import FRAME_HEAD, frame_checksum
from ystores.filestore.hints import hint_path
from ystores.history import RetentionPolicy, ThinningPolicy, decode_header, encode_header
from ystores.records import decode_varuint, encode_varuint
from ystores.yupdate import decode_state_vector

pytestmark = pytest.mark.anyio

EXAMPLES = int(os.environ.get("YSTORES_HISTORY_EXAMPLES", "8"))
START = 1_700_000_000.0

edits = st.tuples(
    st.just("edit"),
    st.integers(0, 2),  # client
    st.sampled_from(["insert", "delete", "map", "array", "array-delete"]),
    st.integers(0, 10_000),
    st.text(alphabet="abcXYZ \n", min_size=1, max_size=4),
    st.sampled_from([0.0, 0.0, 0.5, 1.0, 7.0, 3600.0]),  # seconds before this edit
)
reopens = st.tuples(st.just("reopen"))
checkpoints = st.tuples(st.just("checkpoint"))
compressions = st.tuples(st.just("compress"), st.booleans())
retentions = st.tuples(
    st.just("retain"),
    st.one_of(
        st.tuples(st.just("window"), st.sampled_from([0.0, 0.5, 1.0, 10.0, 3600.0, 1e6])),
        st.tuples(st.just("budget"), st.sampled_from([0, 40, 400, 4000])),
        st.tuples(st.just("all"), st.just(0)),
    ),
)
packs = st.tuples(
    st.just("pack"),
    st.integers(1, 2),  # checkpoints kept, the newest
    st.sampled_from([2, 20, 100]),  # then one per this many records
    st.sampled_from([2, 4, 1000]),  # records per block
    st.booleans(),  # a checkpoint first, as the background maintenance does
)
steps = st.lists(
    st.one_of(
        edits, edits, edits, edits, reopens, checkpoints, compressions, retentions, packs, packs
    ),
    min_size=1,
    max_size=40,
)


class SimulatedClock:
    """The time stores stamp records with, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Written:
    """What the test wrote, in order: the model the stores are checked against."""

    updates: list[bytes] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    must_answer_from: float = START - 1.0
    """Every time from this on is still covered by the kept history."""
    dropped_before: float = START - 1.0
    """A window retention dropped the records before this time: state_at raises there."""

    def replay(self, count: int) -> pycrdt.Doc[Any]:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for update in self.updates[:count]:
            doc.apply_update(update)
        return doc

    def retained(self, policy: RetentionPolicy, now: float) -> None:
        """Note what a retention policy applied at `now` leaves answerable, and what not."""
        if not self.stamps or policy.keep_all:
            return
        last = self.stamps[-1]
        # Records a policy drops are folded into one record stamped with the last of
        # them: times before that stamp are gone once two records or more were folded.
        if policy.keeps_nothing:
            self.must_answer_from = max(self.must_answer_from, last)
            if len(self.stamps) > 1:
                self.dropped_before = max(self.dropped_before, last)
        elif policy.window is not None:
            cutoff = now - policy.window
            self.must_answer_from = max(self.must_answer_from, min(cutoff, last))
            dropped = [stamp for stamp in self.stamps if stamp < cutoff]
            if len(dropped) > 1:
                self.dropped_before = max(self.dropped_before, dropped[-1])
        else:  # a budget of stored bytes: the newest record at least is kept
            self.must_answer_from = max(self.must_answer_from, last)

    def count_at(self, at: float) -> int:
        """How many records are stamped at or before `at` (stamps never go back)."""
        return sum(1 for stamp in self.stamps if stamp <= at)


def content(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    return {
        "text": str(doc.get("text", type=pycrdt.Text)),
        "map": doc.get("map", type=pycrdt.Map).to_py(),
        "array": doc.get("array", type=pycrdt.Array).to_py(),
    }


def edit(doc: pycrdt.Doc[Any], op: str, seed: int, text: str) -> bytes:
    before = doc.get_state()
    body = doc.get("text", type=pycrdt.Text)
    items = doc.get("array", type=pycrdt.Array)
    if op == "delete" and len(body):
        start = seed % len(body)
        del body[start : min(len(body), start + len(text))]
    elif op == "map":
        doc.get("map", type=pycrdt.Map)[text] = seed
    elif op == "array":
        items.insert(seed % (len(items) + 1), text)
    elif op == "array-delete" and len(items):
        del items[seed % len(items)]
    else:
        body.insert(seed % (len(body) + 1), text)
    return doc.get_update(before)


def policy_of(kind: str, value: float) -> RetentionPolicy:
    if kind == "window":
        return RetentionPolicy(window=value)
    if kind == "budget":
        return RetentionPolicy(budget=int(value))
    return RetentionPolicy.all()


def state_of(update: bytes) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    return doc


async def write_history(
    make: StoreFactory, name: str, history: list[tuple[Any, ...]], clock: SimulatedClock
) -> tuple[BaseYStore, Written]:
    """Write the edits of `history` through stores of document `name`; the open store."""
    store = make(name, clock=clock)
    clients: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=10 + i) for i in range(3)]
    written = Written()
    for step in history:
        if step[0] == "reopen":
            compress = store.compress
            await store.aclose()
            store = make(name, clock=clock)
            store.compress = compress
            continue
        if step[0] == "checkpoint":
            await store.checkpoint()
            continue
        if step[0] == "pack":
            if step[4]:
                await store.checkpoint()
            with contextlib.suppress(NotImplementedError):  # backends that do not pack
                thinning = ThinningPolicy(keep_recent=step[1], spacing=step[2])
                await store.pack(thinning=thinning, block_records=step[3])
            continue
        if step[0] == "compress":
            store.compress = step[1]
            continue
        if step[0] == "retain":
            policy = policy_of(*step[1])
            await store.retain(policy)
            written.retained(policy, clock.now)
            continue
        _, who, op, seed, text, pause = step
        update = edit(clients[who], op, seed, text)
        for other in clients:
            other.apply_update(update)
        clock.now += pause
        await store.write(update)
        written.updates.append(update)
        written.stamps.append(clock.now)
    return store, written


def probe_times(stamps: list[float]) -> list[float]:
    """Every record's time, a moment before and after each, and before the first."""
    times = {START - 1.0}
    for stamp in stamps:
        times.update((stamp - 0.25, stamp, stamp + 0.25))
    return sorted(times)


async def state_or_oldest(store: BaseYStore, at: float) -> tuple[bytes | None, float]:
    """The state at `at`, or None and the oldest time kept (NaN when none is said)."""
    try:
        return await store.state_at(at), math.nan
    except HistoryNotKeptError as exc:
        return None, math.nan if exc.oldest is None else exc.oldest


async def check_against_replay(store: BaseYStore, written: Written) -> None:
    """apply_updates and state_at agree with replays of what was written."""
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(restored)
    full = written.replay(len(written.updates))
    assert content(restored) == content(full)
    assert decode_state_vector(restored.get_state()) == decode_state_vector(full.get_state())
    too_old = True
    for at in probe_times(written.stamps):
        state, oldest = await state_or_oldest(store, at)
        if state is None:
            assert too_old, f"state_at({at}) raised after a later time did not"
            assert at < written.must_answer_from, f"state_at({at}) is still kept"
            assert at < oldest, f"state_at({at}) raised, saying {oldest} is kept"
            continue
        too_old = False
        assert at >= written.dropped_before, f"state_at({at}) is older than the history kept"
        expected = written.replay(written.count_at(at))
        assert content(state_of(state)) == content(expected), f"state_at({at})"
    records = [record async for record in store.read_records()]
    updates = [record for record in records if record.kind == RecordKind.UPDATE]
    first = len(written.updates) - len(updates)
    assert [record.update for record in updates] == written.updates[first:]
    for count, record in enumerate(updates, first + 1):
        state = await store.state_at(seq=record.seq)
        assert content(state_of(state)) == content(written.replay(count)), f"seq {record.seq}"


@dataclass
class Location:
    """Where a backend's records are, to damage them behind the store's back."""

    backend: str
    make: StoreFactory
    root: Path


@pytest.fixture(params=["file", "sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """Stores of each durable backend (asyncio)."""
    maker, _loops = BACKENDS[request.param]
    return Location(request.param, maker(tmp_path), tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps.filter(lambda steps: any(step[0] == "edit" for step in steps)))
async def test_restore_and_time_travel_equal_the_replay(
    location: Location, history: list[tuple[Any, ...]]
) -> None:
    """The document, and its state at every time and seq kept, are those of the replay."""
    name = f"doc-{uuid.uuid4().hex}"
    store, written = await write_history(location.make, name, history, SimulatedClock())
    try:
        await check_against_replay(store, written)
    finally:
        await store.aclose()


def flipped(stored: bytes, offset: int, flip: int) -> bytes:
    damaged = bytearray(stored)
    damaged[offset % len(damaged)] ^= flip
    return bytes(damaged)


async def damage_row(store: BaseYStore, seq: int, column: str, offset: int, flip: int) -> None:
    """Flip one byte of a SQL record's stored update or metadata (its header)."""
    url = make_url(str(getattr(store, "database_url", "")))
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(str(url.database)) as connection:
            (stored,) = connection.execute(
                f'SELECT "{column}" FROM ystore_records WHERE doc = ? AND seq = ?',
                (store.path, seq),
            ).fetchone()
            connection.execute(
                f'UPDATE ystore_records SET "{column}" = ? WHERE doc = ? AND seq = ?',
                (flipped(stored, offset, flip), store.path, seq),
            )
        return
    dsn = url.set(drivername="postgresql", query={}).render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        stored = await connection.fetchval(
            f'SELECT "{column}" FROM ystore_records WHERE doc = $1 AND seq = $2', store.path, seq
        )
        await connection.execute(
            f'UPDATE ystore_records SET "{column}" = $1 WHERE doc = $2 AND seq = $3',
            flipped(stored, offset, flip),
            store.path,
            seq,
        )
    finally:
        await connection.close()


def damage_frame(path: Path, seq: int, in_header: bool, offset: int, flip: int) -> None:
    """Flip one byte of a file record's update or metadata, its frame checksum made valid.

    The frame stays intact, so the damage reaches the checkpoint's own digest check.
    """
    data = bytearray(path.read_bytes())
    with path.open("rb") as file:
        position = v3_records_start(file, len(data))
    assert position is not None
    while position + FRAME_HEAD.size <= len(data):
        length, _checksum = FRAME_HEAD.unpack_from(data, position)
        body = position + FRAME_HEAD.size
        record_seq, at = decode_varuint(data, body)
        metadata_length, metadata = decode_varuint(data, at + 1 + 8)
        update = metadata + metadata_length
        if record_seq == seq:
            start, end = (metadata, update) if in_header else (update, body + length)
            data[start + offset % (end - start)] ^= flip
            checksum = frame_checksum(
                bytes(data[position : position + 4]), bytes(data[body : body + length])
            )
            FRAME_HEAD.pack_into(data, position, length, checksum)
            path.write_bytes(bytes(data))
            return
        position = body + length
    raise AssertionError(f"No record {seq} in {path}.")


async def damage(
    location: Location, store: BaseYStore, seq: int, in_header: bool, offset: int, flip: int
) -> None:
    if location.backend in ("sqlite", "postgres"):
        await damage_row(store, seq, "metadata" if in_header else "update", offset, flip)
    else:
        damage_frame(Path(store.path), seq, in_header, offset, flip)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(edits, min_size=2, max_size=30),
    cuts=st.sets(st.integers(0, 29), max_size=4),
    compress=st.booleans(),
    pick=st.integers(0, 100),
    in_header=st.booleans(),
    offset=st.integers(0, 10**6),
    flip=st.integers(1, 255),
)
async def test_a_damaged_checkpoint_never_yields_a_wrong_document(
    location: Location,
    history: list[tuple[Any, ...]],
    cuts: set[int],
    compress: bool,
    pick: int,
    in_header: bool,
    offset: int,
    flip: int,
) -> None:
    """One byte of a checkpoint's stored update or header flipped: every read is still right."""
    steps: list[tuple[Any, ...]] = []
    for i, step in enumerate(history):
        steps.append(step)
        if i in cuts:
            steps.append(("checkpoint",))
    name = f"doc-{uuid.uuid4().hex}"
    clock = SimulatedClock()
    store, written = await write_history(
        location.make, name, [("compress", compress), *steps], clock
    )
    await store.checkpoint()
    try:
        read_records: Any = store.read_records  # every backend with checkpoints takes the flag
        found = [r async for r in read_records(checkpoints=True)]
        checkpoints = [r for r in found if r.kind == RecordKind.CHECKPOINT]
        assert checkpoints
        await damage(
            location,
            store,
            checkpoints[pick % len(checkpoints)].seq,
            in_header,
            offset,
            flip,
        )
    finally:
        await store.aclose()
    store = location.make(name, clock=clock)
    try:
        await check_against_replay(store, written)
    finally:
        await store.aclose()


@settings(max_examples=EXAMPLES * 25, deadline=None)
@given(
    covers=st.integers(1, 2**40),
    stamp=st.floats(allow_nan=False),
    update=st.binary(min_size=1, max_size=64),
    in_header=st.booleans(),
    offset=st.integers(0, 10**6),
    flip=st.integers(1, 255),
)
def test_a_damaged_checkpoint_header_or_update_is_never_trusted(
    covers: int, stamp: float, update: bytes, in_header: bool, offset: int, flip: int
) -> None:
    """One changed byte anywhere in a checkpoint (its header included) is caught.

    A header whose `covers` or time changed while its update did not would send
    a restore past records it never merged, or time travel over them twice.
    """
    header = bytearray(encode_header(covers, stamp, update))
    body = bytearray(update)
    damaged = header if in_header else body
    damaged[offset % len(damaged)] ^= flip
    decoded = decode_header(bytes(header))
    assert decoded is None or not decoded.matches(bytes(body))
    intact = decode_header(encode_header(covers, stamp, update))
    assert intact is not None
    assert intact.matches(update)


def version_1_header(covers: int, stamp: float, update: bytes) -> bytes:
    """A checkpoint header as the first releases wrote it (BLAKE2b-128, 16 bytes)."""
    fields = encode_varuint(covers) + struct.pack("<d", stamp)
    return b"\x01" + fields + hashlib.blake2b(fields + update, digest_size=16).digest()


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    covers=st.integers(1, 2**40),
    stamp=st.floats(allow_nan=False, allow_infinity=False),
    update=st.binary(min_size=1, max_size=300),
    offset=st.integers(0, 400),
    flip=st.integers(1, 255),
)
def test_a_version_1_checkpoint_header_is_still_read_and_checked(
    covers: int, stamp: float, update: bytes, offset: int, flip: int
) -> None:
    """Stores written before the CRC-32C header keep their checkpoints: a version-1
    header decodes to what it says and trusts its update alone, and a changed byte
    anywhere still makes it untrusted."""
    old = version_1_header(covers, stamp, update)
    decoded = decode_header(old)
    assert decoded is not None
    assert (decoded.covers, decoded.covers_timestamp, decoded.version) == (covers, stamp, 1)
    assert decoded.matches(update)
    new = encode_header(covers, stamp, update)
    assert new[0] == 2
    assert len(new) == len(old) - 12
    assert not decoded.matches(update + b"\x00")
    whole = bytearray(old + update)
    whole[offset % len(whole)] ^= flip
    damaged = decode_header(bytes(whole[: len(old)]))
    assert damaged is None or not damaged.matches(bytes(whole[len(old) :]))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(edits, min_size=2, max_size=30),
    cuts=st.sets(st.integers(0, 29), min_size=1, max_size=4),
    lies=st.lists(
        st.tuples(st.integers(0, 100), st.integers(0, 6), st.integers(-3, 3), st.booleans()),
        min_size=1,
        max_size=3,
    ),
)
async def test_a_lying_checkpoint_index_never_yields_a_wrong_document(
    tmp_path: Path,
    history: list[tuple[Any, ...]],
    cuts: set[int],
    lies: list[tuple[int, int, int, bool]],
) -> None:
    """The file store's checkpoint index, its numbers changed or swapped, is only a cache."""
    make = BACKENDS["file"][0](tmp_path)
    steps: list[tuple[Any, ...]] = []
    for i, step in enumerate(history):
        steps.append(step)
        if i in cuts:
            steps.append(("checkpoint",))
    name = f"doc-{uuid.uuid4().hex}"
    clock = SimulatedClock()
    store, written = await write_history(make, name, [*steps, ("checkpoint",)], clock)
    await store.aclose()
    index = hint_path(Path(store.path))
    hints = json.loads(index.read_text())
    entries = hints["checkpoints"]
    assert entries
    for entry, field_at, delta, swap in lies:
        row = entries[entry % len(entries)]
        other = entries[(entry + 1) % len(entries)]
        row[field_at] = other[field_at] if swap and other is not row else row[field_at] + delta
    index.write_text(json.dumps(hints))
    store = make(name, clock=clock)
    try:
        await check_against_replay(store, written)
    finally:
        await store.aclose()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(edits, min_size=2, max_size=40), clients=st.integers(2, 24))
async def test_a_checkpoint_is_written_for_any_history_of_several_clients(
    location: Location, history: list[tuple[Any, ...]], clients: int
) -> None:
    """Verification accepts a correct merge, however many clients wrote in whatever order."""
    store = location.make(f"doc-{uuid.uuid4().hex}", clock=SimulatedClock())
    replicas: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=100 + i) for i in range(clients)]
    written = Written()
    try:
        for i, (_, _, op, seed, text, _pause) in enumerate(history):
            update = edit(replicas[(i * 7) % clients], op, seed, text)
            for replica in replicas:
                replica.apply_update(update)
            await store.write(update)
            written.updates.append(update)
            written.stamps.append(START)
        report = await store.checkpoint()
        assert report is not None
        assert report.covers == max([r.seq async for r in store.read_records()])
        await check_against_replay(store, written)
    finally:
        await store.aclose()
