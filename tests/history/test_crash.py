"""SIGKILL a process checkpointing and applying retention while another keeps writing.

A typist process writes one keystroke at a time to a document and says which
writes were acknowledged; a historian process (now and then two at once)
checkpoints the document and drops its older history in a loop, and is
SIGKILLed at random moments, round after round. After each kill the document
read back holds every acknowledged keystroke, in order, and nothing else; once
the typist has stopped, the document is exactly the replay of every update it
wrote (all acknowledged), restored, at the present time, and after one more
checkpoint and retention.

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


def kill_historians(url: str, delays: list[float]) -> None:
    """Run one historian per delay, all at once; SIGKILL each once its delay is over."""
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE / "historian.py"), url, "doc"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in delays
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for child, delay in sorted(zip(children, delays, strict=True), key=lambda pair: pair[1]):
            time.sleep(max(0.0, started + delay - time.monotonic()))
            child.send_signal(signal.SIGKILL)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
            assert child.stdout is not None
            child.stdout.close()
    for child in children:
        assert child.returncode == -signal.SIGKILL  # killed, not failed before


async def read_text(url: str) -> str:
    store = open_store(url, "doc")
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await store.apply_updates(doc)
    finally:
        await store.aclose()
    return str(doc.get("t", type=pycrdt.Text))


async def replay_text(url: str) -> str:
    """The text of a replay of every record `read_records()` yields (packed ones
    expanded), checked to come once each, in seq order."""
    store = open_store(url, "doc")
    try:
        records = [record async for record in store.read_records()]
    finally:
        await store.aclose()
    seqs = [record.seq for record in records]
    assert seqs == sorted(set(seqs))  # in order, none twice
    updates = [record.update for record in records]
    assert len(set(updates)) == len(updates)  # each keystroke is stored once
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
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
            historians = 2 if rng.random() < 0.5 else 1  # now and then two at once
            kill_historians(url, [rng.uniform(0.05, 1.5) for _ in range(historians)])
            acked = typist.acked
            text = anyio.run(read_text, url)
            assert text == typed(len(text))  # in order, nothing in the middle lost
            assert len(text) >= acked  # every acknowledged keystroke is there
            assert anyio.run(replay_text, url)[: len(text)] == text  # the records themselves
    finally:
        stop.touch()
    acked = typist.finish()
    assert acked > 5
    anyio.run(final_checks, url, typed(acked))
