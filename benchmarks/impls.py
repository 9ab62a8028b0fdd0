"""The implementations under test, behind one small adapter each.

ystores is measured with its durable defaults (`await write()` returned means the
update is on disk) and, separately, with its documented fast setting. The peers
are measured as they ship: ypy-websocket 0.12.4 and pycrdt-store never fsync.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

Factory = Callable[[Path, str], Any]


@dataclass(frozen=True)
class Impl:
    """One store implementation and backend.

    Attributes:
        name: Shown in tables, e.g. "ystores file".
        family: "ystores" or the peer's name and version.
        backend: "file", "sqlite" or "postgres".
        make: Builds the store for document `doc` under directory `root`.
        started: Whether the store must run (`async with`) to be used.
        durable: Whether `await write()` returning means the update is on disk.
    """

    name: str
    family: str
    backend: str
    make: Factory
    started: bool
    durable: bool


@asynccontextmanager
async def opened(impl: Impl, root: Path, doc: str) -> AsyncIterator[Any]:
    """The store, started if it needs to be."""
    store = impl.make(root, doc)
    if impl.started and impl.family == "ystores":
        async with store:
            yield store
    elif impl.started:  # the peers' SQLite stores: `async with` raises in ypy-websocket
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.start)
            await store.started.wait()
            while getattr(store, "db_initialized", None) is None:
                await anyio.sleep(0.001)
            await store.db_initialized.wait()
            yield store
            stopped = store.stop()  # sync in ypy-websocket, async in pycrdt-store
            if inspect.isawaitable(stopped):
                await stopped
    else:
        try:
            yield store
        finally:
            if hasattr(store, "aclose"):
                await store.aclose()


def _ystores_file(fsync: bool) -> Factory:
    def make(root: Path, doc: str) -> Any:
        from ystores import FileYStore

        return FileYStore(f"{doc}.y", root=root, fsync=fsync)

    return make


def _ystores_url(scheme: str, fast: bool = False) -> Factory:
    def make(root: Path, doc: str) -> Any:
        from ystores import open_store

        url = f"sqlite:///{root / 'ystores.db'}" if scheme == "sqlite" else _postgres_url()
        return open_store(url + ("?synchronous=normal" if fast else ""), doc)

    return make


def _postgres_url() -> str:
    """Set by the scenarios (for worker processes too) to a fresh database per measurement."""
    return os.environ.get("YSTORES_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _ypy_file(root: Path, doc: str) -> Any:
    from ypy_websocket.ystore import FileYStore

    return FileYStore(str(root / f"{doc}.y"))


def _ypy_sqlite(root: Path, doc: str) -> Any:
    from ypy_websocket.ystore import SQLiteYStore

    store_class = type("BenchSQLiteYStore", (SQLiteYStore,), {"db_path": str(root / "ypy.db")})
    return store_class(doc)


def _pycrdt_file(root: Path, doc: str) -> Any:
    from pycrdt.store import FileYStore

    return FileYStore(str(root / f"{doc}.y"))


def _pycrdt_sqlite(root: Path, doc: str) -> Any:
    from pycrdt.store import SQLiteYStore

    store_class = type("BenchSQLiteYStore", (SQLiteYStore,), {"db_path": str(root / "pycrdt.db")})
    return store_class(doc)


YPY = "ypy-websocket 0.12.4"
PYCRDT = "pycrdt-store 0.1.5"

IMPLS = [
    Impl("ystores file", "ystores", "file", _ystores_file(True), False, True),
    Impl("ystores file (fast)", "ystores", "file", _ystores_file(False), False, False),
    Impl("ystores sqlite", "ystores", "sqlite", _ystores_url("sqlite"), True, True),
    Impl("ystores sqlite (fast)", "ystores", "sqlite", _ystores_url("sqlite", True), True, False),
    Impl("ystores postgres", "ystores", "postgres", _ystores_url("postgres"), True, True),
    Impl("ypy-websocket file", YPY, "file", _ypy_file, False, False),
    Impl("ypy-websocket sqlite", YPY, "sqlite", _ypy_sqlite, True, False),
    Impl("pycrdt-store file", PYCRDT, "file", _pycrdt_file, False, False),
    Impl("pycrdt-store sqlite", PYCRDT, "sqlite", _pycrdt_sqlite, True, False),
]


def available(impl: Impl) -> bool:
    """Whether this build of ystores has the backend (SQL backends arrive separately)."""
    if impl.family != "ystores" or impl.backend == "file":
        return True
    import ystores

    return hasattr(ystores, "open_store")


# -- preparing long logs quickly, in each implementation's own layout ---------------


def _varuint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def prepare(impl: Impl, root: Path, doc: str, updates: list[bytes]) -> None:
    """Store `updates` as document `doc`, fast (restore scenarios time reading, not this).

    ystores writes through its own API (concurrently, so batches are group-committed).
    The peers' stores are created through their API with one write, then filled in
    their documented layout directly (their write paths would take minutes).
    """
    if impl.family == "ystores":
        async with opened(impl, root, doc) as store:
            chunk = 2000
            for start in range(0, len(updates), chunk):
                async with anyio.create_task_group() as tg:
                    for update in updates[start : start + chunk]:
                        tg.start_soon(_write_in_order, store, update, start)
        return
    async with opened(impl, root, doc) as store:
        await store.write(updates[0])
    rest = updates[1:]
    if impl.backend == "file":
        stamp = _varuint(8) + struct.pack("<d", 1.7e9)
        with open(root / f"{doc}.y", "ab") as file:
            for update in rest:
                file.write(_varuint(len(update)) + update + b"\x00" + stamp)
    else:
        db = root / ("ypy.db" if impl.family == YPY else "pycrdt.db")
        with sqlite3.connect(db) as connection:
            connection.executemany(
                "INSERT INTO yupdates VALUES (?, ?, ?, ?)",
                # after the first write's time: ypy-websocket reads in (path, timestamp)
                # index order, and y-py mis-applies a log whose first update comes last
                ((doc, update, b"", time.time() + i * 1e-3) for i, update in enumerate(rest, 1)),
            )


async def _write_in_order(store: Any, update: bytes, _batch: int) -> None:
    await store.write(update)


async def read_into_doc(store: Any) -> Any:
    """Read every update back into a pycrdt document (the same engine for everyone)."""
    import pycrdt

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    apply: Callable[[bytes], None] = doc.apply_update
    async for update, *_ in store.read():
        apply(update)
    return doc


def engine_of(impl: Impl) -> str:
    """The CRDT engine whose documents the implementation's `apply_updates` takes."""
    return "y-py" if impl.family == YPY else "pycrdt"


async def restore_doc(store: Any, engine: str) -> Any:
    """A new document of `engine`, restored with the store's own `apply_updates`."""
    if engine == "y-py":
        import y_py

        doc: Any = y_py.YDoc()
    else:
        import pycrdt

        doc = pycrdt.Doc()
    await store.apply_updates(doc)
    return doc


def as_pycrdt(doc: Any) -> Any:
    """A pycrdt copy of a y-py document (pycrdt documents are returned as they are)."""
    import pycrdt

    if isinstance(doc, pycrdt.Doc):
        return doc
    import y_py

    copy: pycrdt.Doc[Any] = pycrdt.Doc()
    copy.apply_update(bytes(y_py.encode_state_as_update(doc)))
    return copy
