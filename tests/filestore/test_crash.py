"""Kill a writing process at random moments: every acknowledged write survives.

A child process (`writer.py`) appends updates to one FileYStore file and prints
each write once `await write()` has returned. The parent SIGKILLs it after a
random delay, then checks that every acknowledged write reads back, in order,
that the file still accepts writes, and runs the next round on the same file.

Also: a process killed while upgrading a legacy file leaves the old file or the
new one, and a write the operating system refuses midway leaves no partial record.

Rounds: `YSTORES_CRASH_ROUNDS` (default 10, for CI; run 200 for a full trial:
`YSTORES_CRASH_ROUNDS=200 pytest tests/filestore/test_crash.py`). The kill delays
come from a generator seeded by `YSTORES_CRASH_SEED` (default 0).
"""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores import FileYStore, Record
from ystores.records import encode_varuint

WRITER = Path(__file__).with_name("writer.py")
ROUNDS = int(os.environ.get("YSTORES_CRASH_ROUNDS", "10"))


async def _read(path: Path) -> tuple[list[Record], FileYStore]:
    store = FileYStore(str(path))
    return [record async for record in store.read_records()], store


def _run_and_kill(
    path: Path, name: str, delay: float, fsync: bool, tasks: int, first_ack: bool = True
) -> list[str]:
    """Start a writer, let it run for `delay` seconds, SIGKILL it; return its acks.

    With `first_ack` (and a delay), the delay starts at the writer's first ack.
    """
    with subprocess.Popen(
        [sys.executable, str(WRITER), str(path), name, "0", "1" if fsync else "0", str(tasks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            child.stdin.write("go\n")
            child.stdin.flush()
            acks: list[str] = []
            if delay and first_ack:
                # wait for the first ack so that most rounds kill the writer mid-stream
                acks.append(child.stdout.readline().strip())
            if delay:
                anyio.run(anyio.sleep, delay)
            child.send_signal(signal.SIGKILL)
            acks += child.stdout.read().split()  # not communicate(): it skips readline's buffer
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return [ack for ack in acks if ack]


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("YSTORES_CRASH_SEED", "0"))
    path = tmp_path / "doc.y"
    expected: list[bytes] = []  # metadata of every record we know is stored, in order
    torn_rounds = 0
    for round_ in range(ROUNDS):
        name = f"r{round_}"
        delay = rng.choice([0.0, rng.uniform(0.0, 0.005), rng.uniform(0.0, 0.3)])
        tasks = 1 if round_ % 3 else 3  # some rounds group-commit three writers' updates
        acks = _run_and_kill(path, name, delay, fsync=round_ % 2 == 0, tasks=tasks)
        writers = [name] if tasks == 1 else [f"{name}.{t}" for t in range(tasks)]
        acked = {w: [a for a in acks if a.startswith(f"{w}:")] for w in writers}
        assert sum(map(len, acked.values())) == len(acks)
        for w, mine in acked.items():
            assert mine == [f"{w}:{i}" for i in range(len(mine))], "acks in order"

        records, store = anyio.run(_read, path) if path.exists() else ([], None)
        metadata = [r.metadata for r in records]
        # everything known before this round is intact, then each writer's updates in
        # its order: all the acknowledged ones, and possibly one written but not acked
        assert metadata[: len(expected)] == expected
        this_round = [m.decode() for m in metadata[len(expected) :]]
        for w, mine in acked.items():
            stored = [m for m in this_round if m.startswith(f"{w}:")]
            assert stored == [f"{w}:{i}" for i in range(len(stored))]
            assert len(mine) <= len(stored) <= len(mine) + 1
        assert sum(len([m for m in this_round if m.startswith(f"{w}:")]) for w in writers) == len(
            this_round
        )
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        if store is not None and store.torn_tail is not None:
            torn_rounds += 1

        # the file takes new writes after the crash (cutting any torn tail)
        async def write_after_crash(tag: bytes = f"parent:{round_}".encode()) -> None:
            store = FileYStore(str(path), metadata_callback=lambda: tag)
            await store.write(b"\x00\x00")
            await store.aclose()

        anyio.run(write_after_crash)
        expected = [*metadata, f"parent:{round_}".encode()]
        records, _store = anyio.run(_read, path)
        assert [r.metadata for r in records] == expected

    # every stored update applies; each child update typed one character
    records, _store = anyio.run(_read, path)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for record in records:
        doc.apply_update(record.update)
    typed = sum(1 for r in records if not r.metadata.startswith(b"parent:"))
    assert typed > 0  # the writers did write before they were killed
    assert len(str(doc.get("t", type=pycrdt.Text))) == typed
    leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("doc.y.torn-"))
    assert leftovers == ["doc.y"]
    print(f"{ROUNDS} rounds, {typed} child writes, {torn_rounds} torn tails")


def _big_legacy_file(records: int = 5000) -> tuple[bytes, list[tuple[bytes, bytes, float]]]:
    """A 9 MB ypy-websocket v2 file (upgrading it takes a few tenths of a second)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=12345)
    text = doc.get("t", type=pycrdt.Text)
    entries = []
    data = bytearray(b"VERSION:2\n")
    for i in range(records):
        state = doc.get_state()
        text += "x"
        update, metadata, timestamp = doc.get_update(state), b"%06d" % i * 300, 1.6e9 + i
        entries.append((update, metadata, timestamp))
        data += encode_varuint(len(update)) + update + encode_varuint(len(metadata)) + metadata
        data += b"\x08" + struct.pack("<d", timestamp)
    return bytes(data), entries


@pytest.mark.slow
def test_sigkill_during_an_upgrade_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("YSTORES_CRASH_SEED", "0"))
    original, entries = _big_legacy_file()
    path = tmp_path / "doc.y"
    outcomes = []
    for round_ in range(max(3, ROUNDS // 2)):
        path.write_bytes(original)
        delay = rng.uniform(0.0, 0.3)
        _run_and_kill(path, f"u{round_}", delay, fsync=True, tasks=1, first_ack=False)
        if path.read_bytes() == original:
            outcomes.append("old")
        else:
            records, _store = anyio.run(_read, path)
            assert path.read_bytes().startswith(b"VERSION:4\n")
            assert [r.as_tuple() for r in records[: len(entries)]] == entries
            extra = [r.metadata for r in records[len(entries) :]]  # the child's own writes
            assert extra == [f"u{round_}:{i}".encode() for i in range(len(extra))]
            outcomes.append("new")

        async def upgrade_now() -> None:
            await FileYStore(str(path), upgrade=True).write(b"\x00\x00")

        anyio.run(upgrade_now)
        # no temporary file is left behind by the killed upgrade, once one upgrade has run
        assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.y"], outcomes
    print(f"upgrades killed: {outcomes}")


FILE_SIZE_LIMIT_CHILD = """
import resource, signal, sys, anyio, pycrdt
from ystores import FileYStore, StoreIOError

async def main(path):
    store = FileYStore(path)
    await store.write(b"\\x00\\x00")
    size = len(open(path, "rb").read())
    doc = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text += "x" * 5000
    # the file may grow by 100 bytes only: the 5 kB record is written in part, then refused
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
    try:
        await store.write(doc.get_update())
    except StoreIOError as exc:
        print("refused:", exc)
    print("size-after-refusal:", len(open(path, "rb").read()) - size)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    await store.write(doc.get_update())

anyio.run(main, sys.argv[1])
"""


def test_a_write_failing_midway_leaves_no_partial_record(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    result = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("refused: Could not append to")
    assert "File too large" in lines[0]
    assert lines[1] == "size-after-refusal: 0"
    records, store = anyio.run(_read, path)
    assert [r.seq for r in records] == [1, 2]
    assert store.torn_tail is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.y"]
