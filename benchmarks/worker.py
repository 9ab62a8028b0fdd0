"""Subprocess side of the multi-process and memory scenarios (run by scenarios.py)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from impls import IMPLS, Impl, opened, prepare
from workload import load

BIG_UPDATE_CHARS = 64 * 1024


def impl_named(name: str) -> Impl:
    return next(impl for impl in IMPLS if impl.name == name)


async def write_when_told(impl: Impl, root: Path, count: int, seed: int, go: Path) -> None:
    """Open the store, say "ready", wait for the go file, write, print the span.

    A store that fails (a peer racing its own schema creation, say) prints
    "failed <error type>" instead, so the scenario reports it rather than dying.
    """
    updates = load("typing", count, seed=seed)
    try:
        async with opened(impl, root, "shared") as store:
            print("ready", flush=True)
            parent = os.getppid()
            while not go.exists():
                if os.getppid() != parent:  # the benchmark died: do not wait forever
                    raise SystemExit(1)
                await anyio.sleep(0.001)
            begin = time.time()
            for update in updates:
                await store.write(update)
            end = time.time()
    except Exception as exc:
        print("failed", _error_name(exc), flush=True)
        return
    print(begin, end, flush=True)


def _error_name(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)  # an exception group of one
    while inner is not None and len(inner) == 1:
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return type(exc).__name__


def big_updates(megabytes: int) -> list[bytes]:
    import pycrdt

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(megabytes * 1024 * 1024 // BIG_UPDATE_CHARS):
        text += chr(ord("a") + i % 26) * BIG_UPDATE_CHARS
    return updates


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it does not carry the
    peak of the process that exec'ed it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_now_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


async def read_all(impl: Impl, root: Path) -> int:
    records = 0
    root.mkdir(exist_ok=True)
    async with opened(impl, root, "big") as store:
        try:
            async for _ in store.read():
                records += 1
        except Exception as exc:
            if type(exc).__name__ != "YDocNotFound":
                raise
    return records


def main(argv: list[str]) -> None:
    if argv[0] == "--memory":
        impl, root, megabytes = impl_named(argv[1]), Path(argv[2]), int(argv[3])
        updates = big_updates(megabytes)
        anyio.run(prepare, impl, root, "big", updates)
        reader = subprocess.run(
            [sys.executable, __file__, "--memory-read", impl.name, str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        grown, records = reader.stdout.split()
        print(grown, records, len(updates))
    elif argv[0] == "--memory-read":
        impl, root = impl_named(argv[1]), Path(argv[2])
        anyio.run(read_all, impl, root / "warm-up")  # imports and loop set-up, not reading
        before = rss_now_mb()
        records = anyio.run(read_all, impl, root)
        peak = peak_rss_mb()
        print(f"{max(peak - before, 0.0):.1f}", records)
    else:
        impl, root, count, seed, go = argv[0], Path(argv[1]), int(argv[2]), int(argv[3]), argv[4]
        anyio.run(write_when_told, impl_named(impl), root, count, seed, Path(go))


if __name__ == "__main__":
    main(sys.argv[1:])
