"""SIGKILL a process checkpointing and applying retention while another keeps writing.

A typist process writes one keystroke at a time to a document and says which
writes were acknowledged; a historian process checkpoints the document and
drops its older history in a loop, and is SIGKILLed at random moments, round
after round. After each kill the document read back holds every acknowledged
keystroke, in order, and nothing else; once the typist has stopped, the document
is exactly the replay of every update it wrote (all acknowledged), restored,
at the present time, and after one more checkpoint and retention.

Rounds per backend: `YSTORES_CRASH_ROUNDS` (default 5 in CI; a full trial runs
100: `YSTORES_CRASH_ROUNDS=100 pytest tests/history/test_crash.py`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from backends import new_postgres_database
from ystores import open_store
from ystores.history import RetentionPolicy

ROUNDS = int(os.environ.get("YSTORES_CRASH_ROUNDS", "5"))
HERE = Path(__file__).resolve().parent
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def typed(length: int) -> str:
    """What the typist's text holds after `length` keystrokes."""
    return "".join(ALPHABET[i % 26] for i in range(length))


class Typist:
    """The writing process, and the highest length it has acknowledged."""

    def __init__(self, url: str, stop: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "typist.py"), url, "doc", str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        assert stdout.readline().strip() == "ready"
        self.acked = 0
        self._reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            self.acked = max(self.acked, int(line))

    def finish(self) -> int:
        """Wait for the typist to exit cleanly; the length it acknowledged last."""
        assert self.process.wait(timeout=120) == 0
        self._reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.acked


def kill_historian(url: str, delay: float) -> None:
    """Run the historian for `delay` seconds once it is ready, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, str(HERE / "historian.py"), url, "doc"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL


async def read_text(url: str) -> str:
    store = open_store(url, "doc")
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await store.apply_updates(doc)
    finally:
        await store.aclose()
    return str(doc.get("t", type=pycrdt.Text))


async def final_checks(url: str, expected: str) -> None:
    """Restore, state_at now, and one more checkpoint and retention: all the replay."""
    store = open_store(url, "doc")
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await store.apply_updates(doc)
        assert str(doc.get("t", type=pycrdt.Text)) == expected
        now: pycrdt.Doc[Any] = pycrdt.Doc()
        now.apply_update(await store.state_at(time.time()))
        assert str(now.get("t", type=pycrdt.Text)) == expected
        await store.checkpoint()
        await store.retain(RetentionPolicy(window=0.0001))
    finally:
        await store.aclose()
    assert await read_text(url) == expected


@pytest.fixture(params=["file", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path}/docs/"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db"
    return new_postgres_database()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_checkpoints_and_retention_loses_nothing(url: str, tmp_path: Path) -> None:
    rng = random.Random(11)
    stop = tmp_path / "stop"
    typist = Typist(url, stop)
    try:
        while typist.acked < 5:
            time.sleep(0.01)
        for _ in range(ROUNDS):
            kill_historian(url, rng.uniform(0.05, 1.5))
            acked = typist.acked
            text = anyio.run(read_text, url)
            assert text == typed(len(text))  # in order, nothing in the middle lost
            assert len(text) >= acked  # every acknowledged keystroke is there
    finally:
        stop.touch()
    acked = typist.finish()
    assert acked > 5
    anyio.run(final_checks, url, typed(acked))
