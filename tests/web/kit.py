"""Helpers for the web tests: `ystore serve` in a subprocess, plain HTTP requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from room.kit import stop_process

READY_PREFIX = "Open in a browser: "


@dataclass
class Served:
    """A running `ystore serve`: its process, browser URL and websocket URL."""

    proc: subprocess.Popen[str]
    http: str
    ws: str


def _read_ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(READY_PREFIX):
                found.append(line[len(READY_PREFIX) :].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise AssertionError(f"`ystore serve` printed no URL within {timeout} s.")
    return found[0]


@contextmanager
def serve(
    *args: str, cwd: Path, log: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[Served]:
    """`ystore serve ARGS --port 0` in `cwd`; yields once it prints its URL; SIGTERM on exit."""
    with log.open("ab") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ystores", "serve", "--port", "0", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "error", **(env or {})},
        )
        try:
            url = _read_ready_line(proc, timeout).split("?")[0]
            ws = url.replace("http://", "ws://", 1).rstrip("/")
            yield Served(proc, url.rstrip("/"), ws)
        finally:
            stop_process(proc)
    assert proc.returncode == 0, log.read_text()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A GET without following redirects: status, headers (lower-case names), body."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers.items()), error.read()


def _lower(items: list[tuple[str, str]]) -> dict[str, str]:
    return {key.lower(): value for key, value in items}
