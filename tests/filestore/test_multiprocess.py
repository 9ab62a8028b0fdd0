"""Several processes appending to one file at once: nothing lost, nothing interleaved."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores import FileYStore, Record

WRITER = Path(__file__).with_name("writer.py")
PROCESSES = 4
WRITES = 500


async def _read(path: Path) -> list[Record]:
    return [record async for record in FileYStore(str(path)).read_records()]


@pytest.mark.parametrize("fsync", ["1", "0"], ids=["durable", "fast"])
def test_processes_append_to_one_file(tmp_path: Path, fsync: str) -> None:
    """Durable writers hop to a worker thread; fast ones append on the loop when the
    lock is free and nobody else appended, and must notice when somebody did."""
    path = tmp_path / "doc.y"
    names = [f"p{i}" for i in range(PROCESSES)]
    children = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(path), name, str(WRITES), fsync],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    try:
        for child in children:  # every writer has imported everything and opened its store
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:  # then all start together
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=100)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    assert [child.returncode for child in children] == [0] * PROCESSES
    for name, out in zip(names, outputs, strict=True):
        assert out.split() == [f"{name}:{i}" for i in range(WRITES)]

    records = anyio.run(_read, path)
    total = PROCESSES * WRITES
    assert [r.seq for r in records] == list(range(1, total + 1))
    by_writer: dict[str, list[int]] = {name: [] for name in names}
    for record in records:
        name, index = record.metadata.decode().split(":")
        by_writer[name].append(int(index))
    assert by_writer == {name: list(range(WRITES)) for name in names}
    # how much the writers' records interleave (almost always a lot; a loaded machine
    # could run them one after the other, so only the count of writers is asserted)
    writers = [r.metadata.split(b":")[0] for r in records]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches >= PROCESSES - 1
    print(f"{switches} switches between writers in {total} records")

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for record in records:
        doc.apply_update(record.update)
    assert len(str(doc.get("t", type=pycrdt.Text))) == total
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.y"]  # no torn tail, no temp file


def test_a_writer_killed_among_others_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    survivors = [f"s{i}" for i in range(3)]
    writes = 300
    commands = [[str(path), name, str(writes), "1"] for name in survivors]
    commands.append([str(path), "victim", "0", "1"])  # writes until killed
    children = [
        subprocess.Popen(
            [sys.executable, str(WRITER), *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    victim = children[-1]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        assert victim.stdout is not None
        victim_acks = [victim.stdout.readline().strip() for _ in range(50)]
        victim.send_signal(signal.SIGKILL)  # most likely while the others are writing
        victim_acks += victim.stdout.read().split()
        outputs = [child.communicate(timeout=100)[0] for child in children[:-1]]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    assert victim.returncode == -signal.SIGKILL
    assert [child.returncode for child in children[:-1]] == [0, 0, 0]
    for name, out in zip(survivors, outputs, strict=True):
        assert out.split() == [f"{name}:{i}" for i in range(writes)]

    records = anyio.run(_read, path)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    by_writer: dict[str, list[int]] = {}
    for record in records:
        name, index = record.metadata.decode().split(":")
        by_writer.setdefault(name, []).append(int(index))
    for name in survivors:
        assert by_writer[name] == list(range(writes))
    stored = by_writer["victim"]
    assert stored == list(range(len(stored)))
    assert len(victim_acks) <= len(stored) <= len(victim_acks) + 1
    assert victim_acks == [f"victim:{i}" for i in range(len(victim_acks))]
