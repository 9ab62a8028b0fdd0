"""`ystore verify` checks every checkpoint record's header against its digest, on every backend."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import make_url

from backends import new_postgres_database, run_sync
from ystores import FileYStore
from ystores.filestore.frames import encode_frame
from ystores.records import Record, RecordKind

from .helpers import ok_json, ystore
from .test_history_cli import write_history

DOC = "notes/a.txt"


@pytest.fixture(params=["directory", "sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store of each backend, holding a document's history and one checkpoint of it."""
    if request.param == "directory":
        url = f"file://{tmp_path / 'files'}/"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = new_postgres_database()
    write_history(url)
    result = ystore("checkpoint", url)
    assert result.exit_code == 0, result.output
    return url


def _flip(header: bytes) -> bytes:
    """The checkpoint header with one bit of its digest (its last bytes) flipped."""
    return header[:-1] + bytes((header[-1] ^ 0x01,))


def _damage_file(path: Path) -> None:
    # The frame's own checksum would catch a flipped byte (reported as damage in the
    # middle, as before): here the header is damaged before the frame was checksummed,
    # which only the digest can tell.
    async def records() -> list[Record]:
        store = FileYStore(str(path))
        return [r async for r in store.read_records(checkpoints=True)]

    kept = asyncio.run(records())
    frames = [
        encode_frame(
            Record(r.seq, r.update, _flip(r.metadata), r.timestamp, r.kind)
            if r.kind is RecordKind.CHECKPOINT
            else r
        )
        for r in kept
    ]
    header = path.read_bytes()[: len(b"VERSION:4\n")]
    path.write_bytes(header + b"".join(frames))


def _damage_sqlite(path: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        ((seq, metadata),) = conn.execute(
            "SELECT seq, metadata FROM ystore_records WHERE doc = ? AND kind = ?",
            (DOC, int(RecordKind.CHECKPOINT)),
        ).fetchall()
        conn.execute(
            "UPDATE ystore_records SET metadata = ? WHERE doc = ? AND seq = ?",
            (_flip(bytes(metadata)), DOC, seq),
        )
        conn.commit()


def _damage_postgres(url: str) -> None:
    async def damage() -> None:
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            ((seq, metadata),) = await conn.fetch(
                "SELECT seq, metadata FROM ystore_records WHERE doc = $1 AND kind = $2",
                DOC,
                int(RecordKind.CHECKPOINT),
            )
            await conn.execute(
                "UPDATE ystore_records SET metadata = $1 WHERE doc = $2 AND seq = $3",
                _flip(bytes(metadata)),
                DOC,
                seq,
            )
        finally:
            await conn.close()

    run_sync(damage)


def _damage(target: str) -> None:
    if target.startswith("file://"):
        _damage_file(Path(target.removeprefix("file://")) / DOC)
    elif target.startswith("sqlite:///"):
        _damage_sqlite(target.removeprefix("sqlite:///"))
    else:
        _damage_postgres(target)


def test_a_damaged_checkpoint_is_one_problem_line_and_exit_1(target: str) -> None:
    assert ok_json("verify", target)["healthy"] is True  # intact checkpoints pass
    _damage(target)

    result = ystore("verify", target)

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{DOC}: damaged-checkpoint: the checkpoint at seq ")
    assert "do not match their digest" in line
    as_json = ystore("verify", target, "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert [(p["document"], p["kind"]) for p in report["remaining"]] == [
        (DOC, "damaged-checkpoint")
    ]
    # The document itself is whole: a restore skips the damaged checkpoint.
    assert ok_json("inspect", target, "--doc", DOC, "--content")["text"]["value"]
