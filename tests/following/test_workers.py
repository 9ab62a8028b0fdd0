"""`ystore serve --workers N`: several processes on one port and one store."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from room.conftest import node_clients
from room.kit import free_port, stop_process, wait_for_port

from .conftest import store_url
from .test_servers import check_markers, edit_together, patient_clients, stored_text

__all__ = ["node_clients", "patient_clients"]

pytestmark = pytest.mark.timeout(400)


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_share_one_port_and_keep_clients_in_step(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = store_url(backend, tmp_path)
    port = free_port()
    names = ("ana", "bob", "cy", "dee")
    edits = 15
    with (tmp_path / "serve.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ystores", "serve", "--store", url, "--port", str(port),
             "--workers", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, limit=120)  # imports take seconds on a loaded machine
            workers = [c for c in children(proc.pid) if "spawn_main" in _cmdline(c)]
            assert len(workers) == 2
            texts = edit_together([port], "doc", names, edits)
        finally:
            stop_process(proc, signal.SIGTERM)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    assert len(set(texts)) == 1
    check_markers(texts[0], names, edits)
    assert anyio.run(stored_text, url, "doc") == texts[0]


def test_several_workers_need_a_named_port(tmp_path: Path) -> None:
    url = store_url("sqlite", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ystores", "serve", "--store", url, "--port", "0",
         "--workers", "2"],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--port" in result.stderr.decode()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
