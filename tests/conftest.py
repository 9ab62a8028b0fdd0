from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (its plugins register before any `gc.freeze()`: see below)
import pytest

from backends import BACKENDS, StoreFactory
from legacy_fixtures import LEGACY_FIXTURES

BACKEND_LOOPS = [
    pytest.param((backend, loop), id=f"{backend}-{loop}")
    for backend, (_maker, loops) in BACKENDS.items()
    for loop in loops
]


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread() -> Iterator[None]:
    """Collect each test's reference cycles on the main thread once it is over.

    A y-py document may only be dropped on the thread that made it; left to the
    collector, a cycle holding one can be collected in a store's worker thread
    during a later test, where y-py reports it as an unraisable error (and
    pytest fails that unrelated test). What survives is then frozen, so the next
    collection scans only what the next test makes (a full collection of the
    whole session's heap after every test cost about 0.35 s a test).
    """
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture(params=BACKEND_LOOPS)
def backend_loop(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Every (backend, event loop) pair the contract suite runs on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> str:
    if "backend_loop" in request.fixturenames:
        return request.getfixturevalue("backend_loop")[1]  # type: ignore[no-any-return]
    return "asyncio"


@pytest.fixture
def make_store(backend_loop: tuple[str, str], tmp_path: Path) -> StoreFactory:
    """A factory of stores of the backend under test."""
    maker, _loops = BACKENDS[backend_loop[0]]
    return maker(tmp_path)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The legacy fixtures written by ypy-websocket and pycrdt-store (tests/fixtures/legacy)."""
    return LEGACY_FIXTURES
