"""History properties on every backend, over random multi-client edit histories.

Each example writes a random history (text, map and array edits by three
clients, timestamps from a simulated clock, several records sometimes sharing a
timestamp), with stores reopened at random points, and checks against a replay
of what was written:

- `apply_updates` gives the document of the full replay (content and state vector);
- `state_at(at=t)` gives the replay of every record stamped at or before `t`,
  for every record's time and the times between them;
- `state_at(seq=s)` gives the replay up to record `s`.

Examples per backend: `YSTORES_HISTORY_EXAMPLES` (default 8 in CI; a bigger
run: `YSTORES_HISTORY_EXAMPLES=300 pytest tests/history/test_properties.py`).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import BACKENDS, StoreFactory
from ystores import BaseYStore, HistoryNotKeptError
from ystores.history import decode_header, encode_header

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
steps = st.lists(st.one_of(edits, edits, edits, reopens), min_size=1, max_size=40)


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

    def replay(self, count: int) -> pycrdt.Doc[Any]:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for update in self.updates[:count]:
            doc.apply_update(update)
        return doc

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
            await store.aclose()
            store = make(name, clock=clock)
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


async def check_against_replay(store: BaseYStore, written: Written) -> None:
    """apply_updates and state_at agree with replays of what was written."""
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(restored)
    full = written.replay(len(written.updates))
    assert content(restored) == content(full)
    assert restored.get_state() == full.get_state()
    for at in probe_times(written.stamps):
        try:
            state = await store.state_at(at)
        except HistoryNotKeptError:  # the whole history is kept: nothing is too old
            pytest.fail(f"state_at({at}) raised with the whole history kept")
        expected = written.replay(written.count_at(at))
        assert content(state_of(state)) == content(expected), f"state_at({at})"
    seqs = [record.seq async for record in store.read_records()]
    assert len(seqs) == len(written.updates)
    for count, seq in enumerate(seqs, 1):
        state = await store.state_at(seq=seq)
        assert content(state_of(state)) == content(written.replay(count)), f"seq {seq}"


@pytest.fixture(params=["file", "sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Stores of each durable backend (asyncio)."""
    maker, _loops = BACKENDS[request.param]
    return maker(tmp_path)


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
    make: StoreFactory, history: list[tuple[Any, ...]]
) -> None:
    """The document, and its state at every time and seq, are those of the replay."""
    store, written = await write_history(make, f"doc-{uuid.uuid4().hex}", history, SimulatedClock())
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
