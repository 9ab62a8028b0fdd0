"""Store factories for the contract suite: one entry per backend.

A factory makes stores for one backend inside one test: calling it twice with
the same document name gives two stores over the same document. Backends that
need per-test resources (a database, a schema) set them up in their entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ystores import BaseYStore, FileYStore, TempFileYStore


class StoreFactory(Protocol):
    def __call__(self, name: str = "doc", **kwargs: Any) -> BaseYStore: ...


def file_factory(tmp_path: Path) -> StoreFactory:
    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return FileYStore(name, root=tmp_path, **kwargs)

    return make


def tempfile_factory(tmp_path: Path) -> StoreFactory:
    def make(name: str = "doc", **kwargs: Any) -> BaseYStore:
        return TempFileYStore(name, base_dir=tmp_path, **kwargs)

    return make


# backend name -> (factory maker, event loops it runs on)
BACKENDS: dict[str, tuple[Callable[[Path], StoreFactory], tuple[str, ...]]] = {
    "file": (file_factory, ("asyncio", "trio")),
    "tempfile": (tempfile_factory, ("asyncio", "trio")),
}
