from __future__ import annotations

from pathlib import Path

import pytest

from backends import BACKENDS, StoreFactory

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

BACKEND_LOOPS = [
    pytest.param((backend, loop), id=f"{backend}-{loop}")
    for backend, (_maker, loops) in BACKENDS.items()
    for loop in loops
]


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
    """The legacy fixtures written by ypy-websocket and pycrdt-store (../shared/fixtures)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"The shared fixtures are missing: {FIXTURES} (clone with ../shared beside).")
    return FIXTURES
