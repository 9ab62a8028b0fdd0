"""History properties of the file store with packing: random histories, random packs.

The histories of `test_properties` (multi-client edits, checkpoints, retention,
compression, reopens) with `pack()` calls at random points, random block sizes
and thinning policies, on real files; checked against the replay as there:
restore == replay, `state_at(at=t)` and `state_at(seq=s)` == the replay up to
that point, the records read back unchanged; and `history_stats()` (which
reads from the index) equals a full pass over the file.

Examples: `YSTORES_HISTORY_EXAMPLES` (default 8).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ystores import FileYStore
from ystores.filestore.checkpointing import _full_stats, _open
from ystores.filestore.log import FileLog
from ystores.history import ThinningPolicy

from .test_properties import (
    EXAMPLES,
    SimulatedClock,
    Written,
    check_against_replay,
    checkpoints,
    compressions,
    edit,
    edits,
    policy_of,
    reopens,
    retentions,
)

pytestmark = pytest.mark.anyio

packs = st.tuples(
    st.just("pack"),
    st.integers(1, 12),  # block_records
    st.integers(1, 3),  # keep_recent
    st.integers(1, 30),  # spacing
)
steps = st.lists(
    st.one_of(
        edits,
        edits,
        edits,
        edits,
        reopens,
        checkpoints,
        checkpoints,
        compressions,
        retentions,
        packs,
    ),
    min_size=1,
    max_size=50,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _open_store(path: Path, clock: SimulatedClock) -> FileYStore:
    store = FileYStore(str(path), fsync=False, clock=clock)
    store.pack_after = 1
    return store


async def _write(
    path: Path, history: list[tuple[Any, ...]], clock: SimulatedClock
) -> tuple[FileYStore, Written, int]:
    store = _open_store(path, clock)
    clients: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=10 + i) for i in range(3)]
    written = Written()
    packed = 0
    for step in history:
        if step[0] == "reopen":
            compress = store.compress
            await store.aclose()
            store = _open_store(path, clock)
            store.compress = compress
        elif step[0] == "checkpoint":
            await store.checkpoint()
        elif step[0] == "compress":
            store.compress = step[1]
        elif step[0] == "retain":
            policy = policy_of(*step[1])
            await store.retain(policy)
            written.retained(policy, clock.now)
        elif step[0] == "pack":
            _, block_records, keep_recent, spacing = step
            thinning = ThinningPolicy(keep_recent=keep_recent, spacing=spacing)
            report = await store.pack(thinning=thinning, block_records=block_records)
            packed += report is not None and report.blocks > 0
        else:
            _, who, op, seed, text, pause = step
            update = edit(clients[who], op, seed, text)
            for other in clients:
                other.apply_update(update)
            clock.now += pause
            await store.write(update)
            written.updates.append(update)
            written.stamps.append(clock.now)
    return store, written, packed


@settings(
    max_examples=max(EXAMPLES, 8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps.filter(lambda steps: any(step[0] == "edit" for step in steps)))
async def test_packed_histories_restore_and_travel_like_the_replay(
    tmp_path: Path, history: list[tuple[Any, ...]]
) -> None:
    path = tmp_path / f"doc-{uuid.uuid4().hex}.y"
    store, written, _packed = await _write(path, history, SimulatedClock())
    try:
        await check_against_replay(store, written)
        file, fmt, size = _open(FileLog(path, fsync=False, upgrade=False, log=store.log))
        with file:
            full = _full_stats(file, fmt, size, str(path), store.log)
        assert await store.history_stats() == full
        assert await store.history_stats() == full  # again, from the cached counts
    finally:
        await store.aclose()


async def test_a_long_packed_history_with_every_kind_of_step(tmp_path: Path) -> None:
    """One fixed history that packs several times between checkpoints and a retention."""
    history: list[tuple[Any, ...]] = []
    for round_ in range(6):
        for i in range(25):
            history.append(("edit", i % 3, "insert", round_ * 100 + i, "ab", 1.0))
        history.append(("checkpoint",))
        history.append(("pack", 7, 1, 20))
        if round_ == 3:
            history.append(("retain", ("window", 60.0)))
    store, written, packed = await _write(tmp_path / "doc.y", history, SimulatedClock())
    try:
        assert packed >= 4
        assert (tmp_path / "doc.y").read_bytes().startswith(b"VERSION:5\n")
        await check_against_replay(store, written)
    finally:
        await store.aclose()
