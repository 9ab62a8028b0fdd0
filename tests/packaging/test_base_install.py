"""A fresh virtual environment with only `pip install ystores` (no extras): the file store
and the command line work, and whatever needs an extra says which one to install."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import anyio
import pycrdt
import pytest

from ystores import SQLiteYStore

ROOT = Path(__file__).resolve().parents[2]
# Only what the base install may bring: none of the extras' packages.
EXTRAS_PACKAGES = (
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "uvicorn",
    "wsproto",
    "y_py",
    "websockets",
    "channels",
    "traitlets",
    "pycrdt.store",
)


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding ystores and its base dependencies only (installed once per run)."""
    home = tmp_path_factory.mktemp("base-install")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"pip install ystores failed in a fresh venv:\n{result.stderr}")
    return home / "venv" / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_the_base_install_holds_no_extra(base_env: Path, tmp_path: Path) -> None:
    code = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    result = run(base_env, "python", "-c", code, *EXTRAS_PACKAGES, cwd=tmp_path)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_file_store_and_the_cli_work(base_env: Path, tmp_path: Path) -> None:
    script = """
import anyio, pycrdt, ystores
async def main():
    doc = pycrdt.Doc()
    updates = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("text", type=pycrdt.Text).insert(0, "hello")
    async with ystores.FileYStore("a", root="data") as store:
        for update in updates:
            await store.write(update)
    restored = pycrdt.Doc()
    await ystores.FileYStore("a", root="data").apply_updates(restored)
    print(restored.get("text", type=pycrdt.Text))
anyio.run(main)
"""
    result = run(base_env, "python", "-c", script, cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "hello"), result.stderr
    assert run(base_env, "ystore", "--help", cwd=tmp_path).returncode == 0
    listed = run(base_env, "ystore", "ls", "data", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "a" in listed.stdout


def test_serve_names_the_server_extra(base_env: Path, tmp_path: Path) -> None:
    result = run(base_env, "ystore", "serve", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "pip install 'ystores[server]'" in result.stderr
    assert not (tmp_path / "ystore.db").exists()


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        ("import ystores; ystores.SQLiteYStore", "ystores[sqlite]"),
        ("import ystores; ystores.PostgresYStore", "ystores[postgres]"),
        ("import ystores; ystores.open_store('notes.db', 'a')", "ystores[sqlite]"),
        ("import ystores; ystores.open_store('postgresql://h/db', 'a')", "ystores[postgres]"),
        ("import ystores.sql", "ystores[sqlite]' (SQLite) or 'ystores[postgres]"),
        ("import ystores.client", "ystores[client]"),
        ("import ystores.django", "ystores[django]"),
        ("import ystores.jupyter", "ystores[jupyter]"),
    ],
)
def test_sql_stores_name_their_extra(base_env: Path, tmp_path: Path, code: str, extra: str) -> None:
    result = run(base_env, "python", "-c", code, cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ystores.errors.MissingExtraError: "), result.stderr
    assert f"pip install '{extra}'" in last


async def write_one(store: SQLiteYStore) -> None:
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("text", type=pycrdt.Text).insert(0, "hello")
    async with store:
        await store.write(updates[0])


def test_cli_commands_on_a_database_name_the_extra(base_env: Path, tmp_path: Path) -> None:
    # A real store database, written here (this interpreter has every extra).
    anyio.run(write_one, SQLiteYStore("a", db_path=str(tmp_path / "notes.db")))
    # Reading needs no extra (inspect, ls and verify read SQLite with the standard library);
    # writing does.
    for args in (("inspect", "notes.db"), ("ls", "notes.db"), ("verify", "notes.db")):
        assert run(base_env, "ystore", *args, cwd=tmp_path).returncode == 0, args
    for args in (("migrate", "notes.db"), ("squash", "notes.db")):
        result = run(base_env, "ystore", *args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert "pip install 'ystores[sqlite]'" in result.stderr, (args, result.stderr)
