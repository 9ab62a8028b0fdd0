"""A real Jupyter server (jupyter_server + jupyter-collaboration) in a subprocess, and a
real Yjs client (y-websocket under Node) talking to it through the collaboration API."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycrdt

from room.kit import free_port, node, stop_process
from ystores import YStoreError, open_store

START_LIMIT = 120.0
"""Seconds a server may take to answer (imports are slow on a busy machine)."""

# Only the collaboration extension and what it needs: JupyterLab's extensions slow the start.
_CONFIG = {
    "ServerApp": {
        "jpserver_extensions": {
            "jupyterlab": False,
            "jupyter_lsp": False,
            "jupyter_server_terminals": False,
            "notebook_shim": False,
        }
    }
}


@dataclass
class JupyterServer:
    """A running server: its base URL, token and log file."""

    url: str
    token: str
    log: Path

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def open_text_file(self, path: str) -> tuple[str, str]:
        """`PUT /api/collaboration/session/{path}`: the room of a text file and a session."""
        session = self.request(
            "PUT",
            f"/api/collaboration/session/{path}",
            {
                "format": "text",
                "type": "file",
            },
        )
        return f"text:file:{session['fileId']}", session["sessionId"]

    def client(self, mode: str, room: str, session: str, *args: str) -> Any:
        """Run tests/room/js/client.mjs (y-websocket) against the room's websocket."""
        env = {
            "CLIENT_TEXT": "source",
            "CLIENT_PARAMS": json.dumps({"sessionId": session, "token": self.token}),
        }
        ws_url = self.url.replace("http://", "ws://") + "/api/collaboration/room"
        return node("client.mjs", mode, ws_url, room, *args, env=env)


def _wait_until_up(server: JupyterServer, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"Jupyter exited with {proc.returncode}:\n{server.log.read_text()}"
            )
        try:
            server.request("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"Jupyter did not answer in {START_LIMIT} s:\n{server.log.read_text()}")


@contextmanager
def jupyter_server(root: Path, home: Path, *options: str) -> Iterator[JupyterServer]:
    """Run `jupyter server` serving `root` (its working directory) with `options`.

    `home` holds its configuration, data (the file ids) and runtime directories: the
    same `home` across restarts keeps a file's id, hence its room and store document.
    Stopped with SIGTERM (a graceful shutdown); the log is appended to `home/jupyter.log`.
    """
    for directory in ("config", "data", "runtime"):
        (home / directory).mkdir(parents=True, exist_ok=True)
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(_CONFIG))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("PYTHONWARNINGS", None)
    port = free_port()
    server = JupyterServer(f"http://127.0.0.1:{port}", secrets.token_hex(16), home / "jupyter.log")
    with server.log.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--allow-root",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={server.token}",
                f"--ServerApp.root_dir={root}",
                *options,
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(server, proc)
            yield server
        finally:
            stop_process(proc, signal.SIGTERM)


def stored_text(url: str, doc: str, root: str) -> str | None:
    """The text of root `root` of document `doc` in the store at `url` (None: unreadable)."""

    async def read() -> str | None:
        store = open_store(url, doc)
        ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
        try:
            await store.apply_updates(ydoc)
        except YStoreError:
            return None
        finally:
            await store.aclose()
        return str(ydoc.get(root, type=pycrdt.Text))

    return asyncio.run(read())


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll `condition` until it holds (bounded in time)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Not true after {limit} s: {what}")
        time.sleep(0.2)


def wait_for_text(url: str, doc: str, root: str, expected: str, limit: float = 60.0) -> None:
    """Poll the store until document `doc`'s root `root` holds `expected`."""
    seen: list[str | None] = [None]

    def holds() -> bool:
        seen[0] = stored_text(url, doc, root)
        return seen[0] == expected

    try:
        wait_for(holds, f"{doc} in {url} holds {expected!r}", limit)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it holds {seen[0]!r}") from None
