"""SIGKILL at random points while a process writes and squashes: nothing acknowledged is lost.

Rounds per backend: `YSTORES_CRASH_ROUNDS` (default 6 in CI; a full trial runs
100: `YSTORES_CRASH_ROUNDS=100 pytest tests/compaction/test_crash.py`).
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

ROUNDS = int(os.environ.get("YSTORES_CRASH_ROUNDS", "6"))
SQUASHER = Path(__file__).with_name("squasher.py")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def run_and_kill(url: str, delay: float) -> int:
    """Run the squasher for `delay` seconds after it is ready, SIGKILL it; the last ack."""
    child = subprocess.Popen(
        [sys.executable, str(SQUASHER), url, "doc"], stdout=subprocess.PIPE, text=True
    )
    stdout = child.stdout
    assert stdout is not None
    assert stdout.readline().strip() == "ready"
    acks: list[int] = []
    reader = threading.Thread(target=lambda: acks.extend(int(line) for line in stdout))
    reader.start()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    stdout.close()
    assert child.returncode == -signal.SIGKILL
    return max(acks, default=0)


async def read_text(url: str) -> str:
    store = open_store(url, "doc")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    await store.aclose()
    return str(doc.get("t", type=pycrdt.Text))


@pytest.fixture(params=["file", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path}/docs/"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db"
    return new_postgres_database()


def test_sigkill_during_squash_loses_no_acknowledged_update(url: str) -> None:
    rng = random.Random(7)
    acked = 0
    for _ in range(ROUNDS):
        acked = max(acked, run_and_kill(url, rng.uniform(0.05, 0.6)))
        text = anyio.run(read_text, url)
        expected = "".join(ALPHABET[i % 26] for i in range(len(text)))
        assert text == expected  # a prefix of what was typed: nothing in the middle lost
        assert len(text) >= acked  # every acknowledged write is there
    assert acked > 0
