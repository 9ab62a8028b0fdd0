"""History benchmarks: restore and time travel with full history kept, and size after a month.

- restore: `apply_updates` into a fresh document of a `count`-update document
  whose whole history is kept, with checkpoints, at both ends of each store's
  checkpoint cycle. ystores: one checkpoint every `CheckpointPolicy().every_updates`
  records, the default policy (smoke: 50), written with `checkpoint()`; its worst
  case leaves a tail of that many records (the longest the policy lets build up),
  its best case none (right after a checkpoint). pycrdt-store SQLite: the
  checkpoint its write path refreshes every 100 writes, as it ships; its worst
  case replays a tail of 100 updates (right before a refresh), its best case 1.
  Beside them, the stores without checkpoints (ypy-websocket, pycrdt-store's file
  store) replay everything. The stores with checkpoints restore in turn, round
  after round (`ROUNDS`), and each shows its median: the machine's speed drifts
  more than the stores differ. Target: <= 15 ms, and each case at least as fast
  as pycrdt-store's same case.
- state_at: the document at the time of its middle record (`state_at(at=t)`).
  Neither peer travels in time; the baseline is a bare replay up to that record.
  Target: <= 50 ms.
- size after a month: a month of notebook editing (`notebook_month`) written
  through each store with timestamps from a simulated clock. ystores keeps 30
  days of history, with checkpoints and compression: a checkpoint after each
  session that made one due, followed by `pack()` (old history packed into
  blocks, old checkpoints thinned), and retention applied once a simulated day
  (what a running store does in the background, in the same order); on
  Postgres a plain VACUUM at the end of each session stands in for
  autovacuum (which runs every minute while a session writes). The
  peers run as they ship (their write paths read `time.time`, pointed at the
  simulated clock). Written to a
  memory-backed directory where there is one (the same bytes, without a month
  of one-by-one fsyncs); bytes used (SQLite files with their journals, closed;
  file stores' directories) or
  `pg_total_relation_size` of the store's tables. Target: at most half of
  pycrdt-store's.

Every row says whether the store read back exactly what was written; the
ystores rows say whether their target is met.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import types
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
from impls import PYCRDT, YPY, Impl, as_pycrdt, engine_of, opened, prepare, restore_doc
from notebook_month import MonthSize, final_contents, notebook_content, notebook_month
from scenarios import HERE, Row, _reset_postgres, impls_for, scratch
from workload import content, expected_content, load, replay

RESTORE_TARGET_MS = 15.0
STATE_AT_TARGET_MS = 50.0
WINDOW = 30 * 86400.0


def _verdict(met: bool, target: str) -> str:
    return f"target {target}: {'met' if met else 'NOT met'}"


def _history_impls(backends: set[str]) -> list[Impl]:
    """ystores' durable stores and every peer (ystores' fast settings store the same bytes)."""
    return [i for i in impls_for(backends) if i.family != "ystores" or i.durable]


@contextmanager
def in_memory() -> Iterator[Path]:
    """A fresh directory in memory when there is one (sizes are the same, fsyncs free)."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else HERE / ".cache") as directory:
        yield Path(directory)


async def history(size: dict[str, Any], backends: set[str]) -> list[Row]:
    """Every history measurement, at the given sizes."""
    every = size["checkpoint_every"]
    rows = await restore_with_history(size["updates"], restore_every(every), backends)
    rows += await month_of_edits(MonthSize(**size["month"]), every, backends)
    return rows


# -- restore and time travel with full history -----------------------------------


def restore_every(every: int) -> int:
    """Records per checkpoint (and in the tail) for restore: the default policy's,
    or `every` when smaller (the smoke size's tiny document)."""
    from ystores.history import CheckpointPolicy

    default = CheckpointPolicy().every_updates
    return every if default is None else min(every, default)


async def _fill_with_checkpoints(impl: Impl, root: Path, updates: list[bytes], every: int) -> str:
    """Write `updates` through ystores, checkpointing every `every`; the note to show."""
    checkpoints: int | None = 0
    async with opened(impl, root, "doc") as store:
        for start in range(0, len(updates), every):
            async with anyio.create_task_group() as tg:
                for update in updates[start : start + every]:
                    tg.start_soon(store.write, update)
            if checkpoints is None or start + every >= len(updates):
                continue  # the last: the tail the policy leaves before its next checkpoint
            try:
                await store.checkpoint()
            except NotImplementedError:
                checkpoints = None
                continue
            checkpoints += 1
    if checkpoints is None:
        return "no checkpoints in this build: a full replay"
    return f"{checkpoints} checkpoints, then {len(updates) - checkpoints * every} records"


PYCRDT_REFRESH = 100
"""pycrdt-store's SQLite store refreshes its one checkpoint every this many writes."""


def _pycrdt_checkpoint(root: Path, doc: str, updates: list[bytes], tail: int) -> bool:
    """Leave the checkpoint row pycrdt-store's write path leaves `tail` updates before the end.

    Its `write()` refreshes the document's one checkpoint every `PYCRDT_REFRESH`
    writes, from the updates before the current one, stamped with the time of
    that write; its restore applies the checkpoint, then the updates stamped at or
    after it. So its tail (what a restore replays) runs from 1, right after a
    refresh, to `PYCRDT_REFRESH`, right before the next. False: too few updates.
    """
    import sqlite3

    at = len(updates) - tail
    if len(updates) < PYCRDT_REFRESH or at < 1:
        return False
    merged = replay(updates[:at]).get_update()
    with sqlite3.connect(root / "pycrdt.db") as connection:
        rows = connection.execute(
            "SELECT timestamp FROM yupdates WHERE path = ? ORDER BY timestamp", (doc,)
        ).fetchall()
        connection.execute(
            "INSERT OR REPLACE INTO ycheckpoints (path, checkpoint, timestamp) VALUES (?, ?, ?)",
            (doc, merged, rows[at][0]),
        )
    return True


async def _time_restores(impl: Impl, root: Path, expected: dict[str, Any]) -> tuple[float, bool]:
    times, verified = [], True
    for _ in range(3):
        async with opened(impl, root, "doc") as store:
            start = time.perf_counter()
            doc = await restore_doc(store, engine_of(impl))
            times.append(time.perf_counter() - start)
        verified &= content(as_pycrdt(doc)) == expected
    return statistics.median(times) * 1e3, verified


async def _time_state_at(
    impl: Impl, root: Path, updates: list[bytes]
) -> tuple[float, bool, float, int]:
    """The time to the state at the middle record's timestamp; verified; that time; records."""
    async with opened(impl, root, "doc") as store:
        records = [r async for r in store.read_records()]
    in_order = [r.update for r in records] == updates
    at = records[len(records) // 2].timestamp
    upto = max(i for i, r in enumerate(records) if r.timestamp <= at) + 1
    expected = expected_content(updates[:upto])
    times, verified = [], in_order
    for _ in range(3):
        async with opened(impl, root, "doc") as store:
            start = time.perf_counter()
            state = await store.state_at(at)
            times.append(time.perf_counter() - start)
        verified &= content(replay([state])) == expected
    return statistics.median(times) * 1e3, verified, at, upto


ROUNDS = 41
"""Restores per store and case, interleaved round by round across the stores (a
restore takes 6 to 20 ms: the fill dominates the run, and on a shared machine the
median of 15 still moved by 1 ms from run to run)."""


async def restore_with_history(count: int, every: int, backends: set[str]) -> list[Row]:
    updates = load("typing", count)
    expected = expected_content(updates)
    restore_name = f"restore {count} updates, full history kept"
    travel_name = f"state_at the middle of {count} updates"
    start = time.perf_counter()
    replay(updates)
    bare = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    replay(updates[: count // 2])
    bare_half = (time.perf_counter() - start) * 1e3
    restores = [Row(restore_name, "bare replay, pycrdt (no store)", "baseline", bare, "ms", True)]
    travels = [
        Row(travel_name, "bare replay to that point (no store)", "baseline", bare_half, "ms", True)
    ]
    # (impl, case label, ms, verified, note); the stores with checkpoints are timed in
    # interleaved rounds (the machine's speed drifts more than one store differs from
    # another), first at the worst point of their checkpoint cycle, then at the best
    measured: list[tuple[Impl, str, float, bool, str]] = []
    with ExitStack() as directories:
        cycling: list[tuple[Impl, Path, str]] = []
        for impl in _history_impls(backends):
            await _reset_postgres(impl)  # one Postgres store: its database stays for the rounds
            root = directories.enter_context(scratch())
            if impl.family == "ystores":
                note = await _fill_with_checkpoints(impl, root, updates, every)
                cycling.append((impl, root, note))
                continue
            await prepare(impl, root, "doc", updates)
            with_checkpoint = impl.family == PYCRDT and impl.backend == "sqlite"
            if with_checkpoint and _pycrdt_checkpoint(root, "doc", updates, PYCRDT_REFRESH):
                cycling.append((impl, root, _pycrdt_note(PYCRDT_REFRESH)))
                continue
            ms, verified = await _time_restores(impl, root, expected)
            measured.append((impl, "", ms, verified, "no checkpoints: a full replay"))
        for (impl, _root, note), (ms, verified) in zip(
            cycling, await _interleaved(cycling, expected), strict=True
        ):
            measured.append((impl, ", worst case", ms, verified, note))
        for impl, root, note in cycling:
            if impl.family == "ystores":
                travels.append(await _travel_row(travel_name, impl, root, updates))
                packed = await _packed_file_rows(impl, root, updates, expected, note)
                restores.append(Row(restore_name, *packed[0]))
                travels.append(Row(travel_name, *packed[1]))
        best: list[tuple[Impl, Path, str]] = []
        for impl, root, _note in cycling:
            if impl.family != "ystores":
                _pycrdt_checkpoint(root, "doc", updates, 1)
                best.append((impl, root, _pycrdt_note(1)))
            elif await _checkpoint_now(impl, root):
                best.append((impl, root, "right after a checkpoint: no tail (packed)"))
        for (impl, _root, note), (ms, verified) in zip(
            best, await _interleaved(best, expected), strict=True
        ):
            measured.append((impl, ", best case", ms, verified, note))
    pycrdt_ms = {label: ms for impl, label, ms, _, _ in measured if impl.family == PYCRDT and label}
    for impl, label, ms, verified, note in measured:
        if impl.family == "ystores":
            case = label.removeprefix(", ").removesuffix(" case")
            peer = pycrdt_ms.get(label)
            met = verified and (peer is None or ms <= peer)
            target = f"<= pycrdt-store's {case} case"
            if case == "worst":
                met = met and ms <= RESTORE_TARGET_MS
                target = "<= 15 ms and " + target
            if peer is not None:
                note += f"; {ms / peer:.2f}x pycrdt-store's {case} case"
            note += "; " + _verdict(met, target)
        restores.append(Row(restore_name, impl.name + label, impl.family, ms, "ms", verified, note))
    return restores + travels


def _pycrdt_note(tail: int) -> str:
    return f"its checkpoint (every {PYCRDT_REFRESH} writes) and a tail of {tail}"


async def _interleaved(
    stores: list[tuple[Impl, Path, str]], expected: dict[str, Any]
) -> list[tuple[float, bool]]:
    """Each store's median restore (ms) and whether every restore was right, over
    `ROUNDS` rounds that restore each store once in turn."""
    times: list[list[float]] = [[] for _ in stores]
    verified = [True for _ in stores]
    for _ in range(ROUNDS):
        for i, (impl, root, _note) in enumerate(stores):
            async with opened(impl, root, "doc") as store:
                start = time.perf_counter()
                doc = await restore_doc(store, engine_of(impl))
                times[i].append(time.perf_counter() - start)
            verified[i] &= content(as_pycrdt(doc)) == expected
    return [(statistics.median(t) * 1e3, ok) for t, ok in zip(times, verified, strict=True)]


async def _checkpoint_now(impl: Impl, root: Path) -> bool:
    """Write a checkpoint of the whole log (False: none was due, or none in this build)."""
    async with opened(impl, root, "doc") as store:
        try:
            return await store.checkpoint() is not None
        except NotImplementedError:
            return False


async def _packed_file_rows(
    impl: Impl, root: Path, updates: list[bytes], expected: dict[str, Any], note: str
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A store's restore and state_at again once packed (default thinning)."""
    async with opened(impl, root, "doc") as store:
        report = await store.pack()
    name = f"{impl.name}, packed"
    what = (
        "no pack was due"
        if report is None
        else (
            f"{report.records_packed} records in {report.blocks} blocks, "
            f"{report.checkpoints_dropped} checkpoints dropped, "
            f"{report.bytes_before // 1024} -> {report.bytes_after // 1024} KB"
        )
    )
    ms, verified = await _time_restores(impl, root, expected)
    met = verified and ms <= RESTORE_TARGET_MS
    restore = (
        name,
        impl.family,
        ms,
        "ms",
        verified,
        f"{note}; {what}; " + _verdict(met, "<= 15 ms"),
    )
    travel_ms, travel_ok, _at, upto = await _time_state_at(impl, root, updates)
    met = travel_ok and travel_ms <= STATE_AT_TARGET_MS
    travel_note = f"the state after record {upto}; {what}; " + _verdict(met, "<= 50 ms")
    return restore, (name, impl.family, travel_ms, "ms", travel_ok, travel_note)


async def _travel_row(name: str, impl: Impl, root: Path, updates: list[bytes]) -> Row:
    ms, verified, _at, upto = await _time_state_at(impl, root, updates)
    met = verified and ms <= STATE_AT_TARGET_MS
    note = f"the state after record {upto}; " + _verdict(met, "<= 50 ms")
    return Row(name, impl.name, impl.family, ms, "ms", verified, note)


# -- store size after a month of notebook edits ----------------------------------


class SimulatedClock:
    """The month's clock: stores (and the peers' `time.time`) read `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def peers_on(clock: SimulatedClock) -> Iterator[None]:
    """Point the peers' `time.time()` at the simulated clock (they take no clock)."""
    import pycrdt.store.file
    import pycrdt.store.sqlite

    modules: list[Any] = [pycrdt.store.file, pycrdt.store.sqlite]
    try:
        import ypy_websocket.ystore

        modules.append(ypy_websocket.ystore)
    except ImportError:
        pass
    shim = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if k[0] != "_"})
    shim.time = clock
    saved = [module.time for module in modules]
    for module in modules:
        module.time = shim
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.time = original


def _configure(store: Any, clock: SimulatedClock, every: int) -> None:
    """ystores at 30 days of history, checkpoints and compression, on the simulated clock."""
    from ystores.history import CheckpointPolicy, RetentionPolicy

    store.clock = clock
    store.checkpoints = CheckpointPolicy(every_updates=every)
    store.retention = RetentionPolicy(window=WINDOW)
    store.compress = True


async def _write_month(
    impl: Impl, root: Path, edits: list[Any], clock: SimulatedClock, every: int
) -> str:
    """Write every edit through the store; for ystores, its maintenance too. A note."""
    names = sorted({edit.doc for edit in edits})
    missing: set[str] = set()
    async with AsyncExitStack() as stack:
        stores = {}
        for name in names:
            store = await stack.enter_async_context(opened(impl, root, _doc_name(name)))
            if impl.family == "ystores":
                _configure(store, clock, every)
            stores[name] = store
        since = dict.fromkeys(names, 0)
        day = int(edits[0].timestamp // 86400)
        for i, edit in enumerate(edits):
            clock.now = edit.timestamp
            await stores[edit.doc].write(edit.update)
            since[edit.doc] += 1
            if impl.family != "ystores":
                continue
            session_over = i + 1 == len(edits) or edits[i + 1].timestamp - edit.timestamp > 600
            if session_over and impl.backend == "postgres":
                await _autovacuum()
            if session_over and since[edit.doc] > every:
                # the background maintenance's sequence: a checkpoint, then packing
                # what it covers (thinning old checkpoints) under the same lease
                store = stores[edit.doc]
                if await _maintain(store.checkpoint(), "checkpoints", missing) is not None:
                    await _maintain(store.pack(), "packing", missing)
                since[edit.doc] = 0
            if int(edit.timestamp // 86400) != day:
                day = int(edit.timestamp // 86400)
                for store in stores.values():
                    await _maintain(store.retain(), "retention", missing)
    return "; ".join(f"no {feature} in this build" for feature in sorted(missing))


async def _autovacuum() -> None:
    """What Postgres' autovacuum does during a session at its default settings (every
    minute, once 50 rows + 20% of a table changed): make the space of deleted and
    updated rows reusable (a plain VACUUM: the files do not shrink).

    The month runs in minutes, too fast for autovacuum (and the benchmark server may
    run with it off), so it is run here at the end of each editing session.
    """
    import os

    import asyncpg

    connection = await asyncpg.connect(os.environ["YSTORES_BENCH_POSTGRES_URL"])
    try:
        await connection.execute("VACUUM ystore_records, ystore_documents")
    finally:
        await connection.close()


async def _maintain(call: Any, feature: str, missing: set[str]) -> Any:
    try:
        return await call
    except NotImplementedError:
        missing.add(feature)
        return None


def _doc_name(name: str) -> str:
    """Notebook names as each store keys them (file stores: one file each, flat)."""
    return name.replace("/", "-")


async def _read_month(impl: Impl, root: Path, expected: dict[str, Any]) -> bool:
    for name, wanted in expected.items():
        async with opened(impl, root, _doc_name(name)) as store:
            doc = as_pycrdt(await restore_doc(store, engine_of(impl)))
        if notebook_content(doc) != wanted:
            return False
    return True


async def _bytes_used(impl: Impl, root: Path) -> int:
    if impl.family == "ystores" and impl.backend == "sqlite":
        from ystores.sql.engines import dispose_databases

        await dispose_databases()  # closed: the write-ahead log merged into the file
    if impl.backend != "postgres":
        return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    import os

    import asyncpg

    connection = await asyncpg.connect(os.environ["YSTORES_BENCH_POSTGRES_URL"])
    try:
        used = await connection.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname LIKE 'ystore%'"
        )
    finally:
        await connection.close()
    return int(used)


async def month_of_edits(size: MonthSize, every: int, backends: set[str]) -> list[Row]:
    edits = notebook_month(size)
    expected = final_contents(edits)
    name = (
        f"size after {size.days} days of {size.docs} notebooks "
        f"({len(edits)} updates, {sum(len(e.update) for e in edits) // 1024} KB of updates)"
    )
    measured: list[tuple[Impl, float, bool, str]] = []
    for impl in _history_impls(backends):
        await _reset_postgres(impl)
        clock = SimulatedClock()
        with in_memory() as root, peers_on(clock):
            note = await _write_month(impl, root, edits, clock, every)
            verified = await _read_month(impl, root, expected)
            used = await _bytes_used(impl, root)
        measured.append((impl, used / 1024, verified, note))
    pycrdt_kb = {impl.backend: kb for impl, kb, _, _ in measured if impl.family == PYCRDT}
    rows = []
    for impl, kb, verified, note in measured:
        if impl.family == "ystores":
            what = "30-day retention, checkpoints, compression"
            notes = [what, note] if note else [what]
            # beside pycrdt-store on the same backend; Postgres beside its SQLite store
            peer = impl.backend if impl.backend in pycrdt_kb else "sqlite"
            if peer in pycrdt_kb:
                notes.append(f"{kb / pycrdt_kb[peer]:.2f}x pycrdt-store {peer}")
                met = verified and kb <= pycrdt_kb[peer] / 2
                notes.append(_verdict(met, f"<= half of pycrdt-store {peer}"))
            note = "; ".join(notes)
        elif impl.family in (PYCRDT, YPY):
            note = "as it ships (keeps all history)"
        rows.append(Row(name, impl.name, impl.family, kb, "KB on disk", verified, note))
    return rows
