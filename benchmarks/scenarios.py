"""The benchmark scenarios. Each returns rows: one measurement per implementation."""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from impls import (
    IMPLS,
    Impl,
    as_pycrdt,
    available,
    engine_of,
    opened,
    prepare,
    read_into_doc,
    restore_doc,
)
from workload import content, expected_content, load, replay

from ystores.filestore.scanning import accelerated

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """One measurement: higher is better for rates, lower for times and memory."""

    scenario: str
    impl: str
    family: str
    value: float
    unit: str
    verified: bool
    note: str = ""


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory on the same disk as the project (not tmpfs)."""
    with tempfile.TemporaryDirectory(dir=HERE / ".cache") as directory:
        yield Path(directory)


def impls_for(backends: set[str]) -> list[Impl]:
    return [impl for impl in IMPLS if impl.backend in backends and available(impl)]


async def drop_bench_database() -> None:
    """Drop the last database made by `_reset_postgres`, if any."""
    old = os.environ.pop("YSTORES_BENCH_POSTGRES_URL", "/").rsplit("/", 1)[1]
    if old.startswith("ystores_bench_"):
        import asyncpg

        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        finally:
            await admin.close()


async def _reset_postgres(impl: Impl) -> None:
    """Point the Postgres store at a new, empty database (the previous one is dropped)."""
    if impl.backend != "postgres":
        return
    import asyncpg

    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        old = os.environ.get("YSTORES_BENCH_POSTGRES_URL", "/").rsplit("/", 1)[1]
        if old.startswith("ystores_bench_"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        name = f"ystores_bench_{os.getpid()}_{time.monotonic_ns()}"
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    os.environ["YSTORES_BENCH_POSTGRES_URL"] = f"postgresql://postgres@127.0.0.1:5432/{name}"


async def sequential_writes(count: int, repeats: int, backends: set[str]) -> list[Row]:
    updates = load("typing", count)
    expected = expected_content(updates)
    rows = []
    for impl in impls_for(backends):
        rates, verified = [], True
        for _ in range(repeats):
            await _reset_postgres(impl)
            with scratch() as root:
                async with opened(impl, root, "doc") as store:
                    start = time.perf_counter()
                    for update in updates:
                        await store.write(update)
                    rates.append(count / (time.perf_counter() - start))
                async with opened(impl, root, "doc") as store:
                    verified &= content(await read_into_doc(store)) == expected
        rows.append(
            Row(
                "sequential writes",
                impl.name,
                impl.family,
                statistics.median(rates),
                "updates/s",
                verified,
            )
        )
    return rows


async def concurrent_writes(docs: int, per_doc: int, backends: set[str]) -> list[Row]:
    workloads = [load("typing", per_doc, seed=100 + i) for i in range(docs)]
    rows = []
    for impl in impls_for(backends):
        await _reset_postgres(impl)
        with scratch() as root:

            async def write_all(store: Any, updates: list[bytes]) -> None:
                for update in updates:
                    await store.write(update)

            async with AsyncExitStack() as stack:
                stores = [
                    await stack.enter_async_context(opened(impl, root, f"doc{i}"))
                    for i in range(docs)
                ]
                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for store, updates in zip(stores, workloads, strict=True):
                        tg.start_soon(write_all, store, updates)
                elapsed = time.perf_counter() - start
            verified = True
            for i, updates in enumerate(workloads):
                async with opened(impl, root, f"doc{i}") as store:
                    verified &= content(await read_into_doc(store)) == expected_content(updates)
        rows.append(
            Row(
                f"concurrent writes ({docs} docs)",
                impl.name,
                impl.family,
                docs * per_doc / elapsed,
                "updates/s",
                verified,
            )
        )
    return rows


async def multiprocess_writes(procs: int, per_proc: int, backends: set[str]) -> list[Row]:
    workloads = [load("typing", per_proc, seed=200 + i) for i in range(procs)]
    expected = expected_content([u for w in workloads for u in w])
    rows = []
    for impl in impls_for(backends):
        await _reset_postgres(impl)
        with scratch() as root:
            go = root / "go"
            workers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "worker.py"),
                        impl.name,
                        str(root),
                        str(per_proc),
                        str(200 + i),
                        str(go),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for i in range(procs)
            ]
            failures = []
            for worker in workers:
                assert worker.stdout is not None
                said = worker.stdout.readline().split()
                if said[:1] != ["ready"]:
                    failures.append(" ".join(said[1:]) or "no output")
            go.touch()
            spans = []
            for worker in workers:
                out, _ = worker.communicate(timeout=600)
                said = out.split()
                if said[:1] == ["failed"]:
                    failures.append(" ".join(said[1:]))
                elif len(said) == 2:
                    spans.append((float(said[0]), float(said[1])))
                else:
                    failures.append(f"exit {worker.returncode}")
            if failures:  # a peer that cannot share its store across processes
                rows.append(
                    Row(
                        f"{procs} processes, one document",
                        impl.name,
                        impl.family,
                        0.0,
                        "updates/s",
                        False,
                        f"a writer failed: {failures[0]}",
                    )
                )
                continue
            elapsed = max(e for _, e in spans) - min(b for b, _ in spans)
            try:
                async with opened(impl, root, "shared") as store:
                    verified = content(await read_into_doc(store)) == expected
                note = ""
            except Exception as exc:  # a peer whose file was interleaved cannot be read
                verified, note = False, f"read back failed: {type(exc).__name__}"
        rows.append(
            Row(
                f"{procs} processes, one document",
                impl.name,
                impl.family,
                procs * per_proc / elapsed,
                "updates/s",
                verified,
                note,
            )
        )
    return rows


async def restore(count: int, backends: set[str]) -> list[Row]:
    """Restore a document with each store's own `apply_updates`, beside a bare replay.

    Each store restores into a document of the engine it takes (ystores and
    pycrdt-store: pycrdt; ypy-websocket: y-py) and is compared with a bare replay
    of the same updates in that engine (one `apply_update` per update, no store).
    """
    updates = load("typing", count)
    expected = expected_content(updates)
    bare = {engine: _bare_replay_ms(engine, updates) for engine in ("pycrdt", "y-py")}
    rows = [
        Row(
            f"restore {count} updates",
            f"bare replay, {engine} (no store)",
            "baseline",
            ms,
            "ms",
            True,
        )
        for engine, ms in bare.items()
    ]
    for impl in impls_for(backends):
        if not impl.durable and impl.family == "ystores":
            continue  # same files as the durable setting
        engine = engine_of(impl)
        await _reset_postgres(impl)
        with scratch() as root:
            await prepare(impl, root, "doc", updates)
            times, verified = [], True
            for _ in range(3):
                async with opened(impl, root, "doc") as store:
                    start = time.perf_counter()
                    doc = await restore_doc(store, engine)
                    times.append(time.perf_counter() - start)
                verified &= content(as_pycrdt(doc)) == expected
        value = statistics.median(times) * 1e3
        rows.append(
            Row(
                f"restore {count} updates",
                impl.name,
                impl.family,
                value,
                "ms",
                verified,
                f"{value / bare[engine]:.2f}x bare replay ({engine})",
            )
        )
    return rows


READ_ROUNDS = 9
"""Reads per store (alone, and applying each update), interleaved round by round."""


async def read_all(count: int, backends: set[str]) -> list[Row]:
    """Iterate `read()` over a `count`-record document: alone, and applying each update.

    `read()` is the ancestor's API that applications iterate themselves (to
    rebuild a document their own way, to export or to inspect): the second row
    applies each yielded update to a document of the store's engine as they go
    (ypy-websocket's own `apply_updates` does just this). CPU time of the
    process, median of `READ_ROUNDS`, beside each peer. The stores are read in
    turn, round after round (the machine's speed drifts more than they differ:
    five reads of one store, then five of the next, moved a ratio by 0.3 from
    run to run on a shared machine). Target: level with the best peer or better
    (applying: the best peer that applies into the same engine, the engines' own
    speeds differ).
    """
    updates = load("typing", count)
    rows: list[Row] = []
    impls = [
        impl
        for impl in impls_for(backends)
        if impl.durable or impl.family != "ystores"  # else: same files as the durable setting
    ]
    times: dict[tuple[str, bool], list[float]] = {}
    complete: dict[tuple[str, bool], bool] = {}
    with ExitStack() as directories:
        roots = []
        for impl in impls:
            await _reset_postgres(impl)  # one Postgres store: its database stays for the rounds
            root = directories.enter_context(scratch())
            await prepare(impl, root, "doc", updates)
            roots.append(root)
        for _ in range(READ_ROUNDS):
            for impl, root in zip(impls, roots, strict=True):
                for applying in (False, True):
                    async with opened(impl, root, "doc") as store:
                        gc.collect()
                        seconds, seen = await _time_read(store, engine_of(impl), applying)
                    key = (impl.name, applying)
                    times.setdefault(key, []).append(seconds)
                    complete[key] = complete.get(key, True) and seen == updates
    measured: list[tuple[Impl, str, float, bool]] = [
        (
            impl,
            "read() and apply each" if applying else "read()",
            statistics.median(times[impl.name, applying]) * 1e3,
            complete[impl.name, applying],
        )
        for impl in impls
        for applying in (False, True)
    ]
    for label in ("read()", "read() and apply each"):
        applying = label != "read()"
        for impl, what, ms, verified in measured:
            if what != label:
                continue
            # applying, the engines differ: the peers that apply into the same engine
            peers = [
                peer_ms
                for peer, peer_what, peer_ms, _ in measured
                if peer_what == label
                and peer.family != "ystores"
                and (not applying or engine_of(peer) == engine_of(impl))
            ]
            note = f"into {engine_of(impl)}" if applying else ""
            if impl.family == "ystores" and peers:
                best = min(peers)
                met = verified and ms <= best
                which = "the best peer" + (f" applying into {engine_of(impl)}" if applying else "")
                note = f"{ms / best:.2f}x {which}; target <= {which}: " + (
                    "met" if met else "NOT met"
                )
            if impl.family == "ystores" and impl.backend == "file" and not accelerated():
                note += " (pure Python frame scanner: installed without the compiled one)"
            name = f"{label} over {count} records, CPU"
            rows.append(Row(name, impl.name, impl.family, ms, "ms", verified, note))
    return rows


async def _time_read(store: Any, engine: str, applying: bool) -> tuple[float, list[bytes]]:
    """CPU seconds to iterate `store.read()` (applying each update if asked); what it yielded."""
    seen: list[bytes] = []
    if applying and engine == "y-py":
        import y_py

        ydoc: Any = y_py.YDoc()
        apply = lambda update: y_py.apply_update(ydoc, update)  # noqa: E731
    elif applying:
        import pycrdt

        ydoc = pycrdt.Doc()
        apply = ydoc.apply_update
    start = time.process_time()
    async for update, _metadata, _timestamp in store.read():
        if applying:
            apply(update)
        seen.append(update)
    return time.process_time() - start, seen


def _bare_replay_ms(engine: str, updates: list[bytes]) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        if engine == "pycrdt":
            replay(updates)
        else:
            import y_py

            doc = y_py.YDoc()
            for update in updates:
                y_py.apply_update(doc, update)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


async def squash(count: int, backends: set[str]) -> list[Row]:
    """Squash a log of `count` keystrokes, beside a bare replay; then restore the snapshot.

    Only ystores is measured: the peers squash inside `write()` (ypy-websocket's
    `document_ttl`) or on their own timer, with no call to time on its own.
    """
    updates = load("typing", count)
    expected = expected_content(updates)
    start = time.perf_counter()
    replay(updates)
    bare = time.perf_counter() - start
    rows = [
        Row(f"squash {count} updates", "bare replay (no store)", "baseline", bare * 1e3, "ms", True)
    ]
    restore_rows = []
    for impl in impls_for(backends):
        if impl.family != "ystores" or not impl.durable:
            continue
        await _reset_postgres(impl)
        with scratch() as root:
            await prepare(impl, root, "doc", updates)
            async with opened(impl, root, "doc") as store:
                start = time.perf_counter()
                report = await store.squash()
                elapsed = time.perf_counter() - start
            async with opened(impl, root, "doc") as store:
                start = time.perf_counter()
                doc = await restore_doc(store, "pycrdt")
                restored = time.perf_counter() - start
            verified = report is not None and content(doc) == expected
        rows.append(
            Row(
                f"squash {count} updates",
                impl.name,
                impl.family,
                elapsed * 1e3,
                "ms",
                verified,
                f"{elapsed / bare:.2f}x bare replay",
            )
        )
        restore_rows.append(
            Row(
                f"restore {count} updates after compaction",
                impl.name,
                impl.family,
                restored * 1e3,
                "ms",
                verified,
            )
        )
    return rows + restore_rows


async def memory(megabytes: int, backends: set[str]) -> list[Row]:
    rows = []
    for impl in impls_for(backends):
        if not impl.durable and impl.family == "ystores":
            continue
        await _reset_postgres(impl)
        with scratch() as root:
            result = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "worker.py"),
                    "--memory",
                    impl.name,
                    str(root),
                    str(megabytes),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=900,
            )
            if result.returncode != 0:
                rows.append(
                    Row(
                        f"peak RSS reading a {megabytes} MB log",
                        impl.name,
                        impl.family,
                        float("nan"),
                        "MB",
                        False,
                        result.stderr.strip()[-200:],
                    )
                )
                continue
            grown, records, expected_records = result.stdout.split()
            rows.append(
                Row(
                    f"peak RSS reading a {megabytes} MB log",
                    impl.name,
                    impl.family,
                    float(grown),
                    "MB growth",
                    records == expected_records,
                )
            )
    return rows


def describe_machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"
