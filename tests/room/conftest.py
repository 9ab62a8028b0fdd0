from __future__ import annotations

import shutil
import subprocess

import pytest

from .kit import JS_DIR


@pytest.fixture(scope="session")
def node_clients() -> None:
    """The Node clients' packages (yjs, y-websocket, ws...), installed from the lock file once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("The room tests need Node.js and npm on the PATH.")
    installed = JS_DIR / "node_modules"
    if not all((installed / name).is_dir() for name in ("y-websocket", "@y/websocket-server")):
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {JS_DIR}:\n{result.stderr.decode()}")
