"""File store history: format 4, compression, checkpoints, their index, time travel, retention.

Every test writes real files with real Yjs updates and reads them back through
the store; hostile cases damage the file or its checkpoint index by hand.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from ydocs import text_of, typing_updates
from ystores import FileYStore, crdt
from ystores.errors import CorruptStoreError, HistoryNotKeptError
from ystores.filestore.checkpointing import RestoreResult, restore_batches
from ystores.filestore.formats import HEADER_V3
from ystores.filestore.frames import FRAME_HEAD, encode_frames
from ystores.filestore.hints import hint_path, read_hints, read_index
from ystores.filestore.inspection import inspect_file
from ystores.history import RetentionPolicy, decode_header
from ystores.records import Record, RecordKind

pytestmark = pytest.mark.anyio


class Clock:
    """A clock tests move by hand: one second per record."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _updates(text: str) -> list[bytes]:
    """One update per character, from one client (so a longer text continues a shorter one)."""
    return typing_updates(text, client_id=7)


def _text(doc: pycrdt.Doc[Any]) -> str:
    return str(doc.get("t", type=pycrdt.Text))


async def _restore(store: FileYStore) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return _text(doc)


def _state_text(update: bytes) -> str:
    return text_of([update])


async def _typed(path: Path, text: str, **options: Any) -> FileYStore:
    store = FileYStore(str(path), fsync=False, **options)
    for update in _updates(text):
        await store.write(update)
    return store


def _v3_file(path: Path, updates: list[bytes]) -> None:
    records = [Record(i, u, b"", 1_700_000_000.0 + i) for i, u in enumerate(updates, 1)]
    path.write_bytes(HEADER_V3 + encode_frames(records))


async def _all_records(store: FileYStore) -> list[Record]:
    return [r async for r in store.read_records(checkpoints=True)]


# -- format 4 ----------------------------------------------------------------


async def test_new_files_are_version_4_and_v3_files_upgrade_at_the_first_checkpoint(
    tmp_path: Path,
) -> None:
    new = await _typed(tmp_path / "new.y", "abc")
    assert (tmp_path / "new.y").read_bytes().startswith(b"VERSION:4\n")
    await new.aclose()

    path = tmp_path / "old.y"
    _v3_file(path, _updates("hello"))
    store = FileYStore(str(path), fsync=False)
    await store.write(_updates("hello!")[-1])
    assert path.read_bytes().startswith(b"VERSION:3\n")  # plain updates: still version 3
    inode = path.stat().st_ino
    report = await store.checkpoint()
    assert report is not None
    assert report.covers == 6
    assert path.read_bytes().startswith(b"VERSION:4\n")
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert [r.seq for r in await _all_records(store)] == [1, 2, 3, 4, 5, 6, 7]
    assert await _restore(store) == "hello!"
    await store.write(_updates("hello!?")[-1])
    assert await _restore(store) == "hello!?"
    await store.aclose()


async def test_a_version_3_file_refuses_a_checkpoint_frame(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    updates = _updates("ab")
    records = [
        Record(1, updates[0], b"", 1.0),
        Record(2, updates[1], b"", 2.0),
        Record(3, updates[0], b"\x01\x02", 3.0, RecordKind.CHECKPOINT),
        Record(4, updates[1], b"", 4.0),
    ]
    path.write_bytes(HEADER_V3 + encode_frames(records))
    store = FileYStore(str(path))
    with pytest.raises(CorruptStoreError) as caught:
        await _all_records(store)
    assert caught.value.offset is not None
    assert caught.value.offset > len(HEADER_V3)
    path.write_bytes(b"VERSION:4\n" + encode_frames(records))  # the same frames are fine in v4
    assert [r.seq for r in await _all_records(store)] == [1, 2, 3, 4]


# -- compression ---------------------------------------------------------------


async def test_compressed_records_read_back_raw_and_inspect_shows_both_sizes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc["t"] = text = pycrdt.Text()
    big: list[bytes] = []
    doc.observe(lambda event: big.append(event.update))
    store = FileYStore(str(path), fsync=False)
    text += "plain " * 100  # written raw
    await store.write(big[-1])
    store.compress = True
    for i in range(5):
        text += f"squeeze {i} " * 200
        await store.write(big[-1])
    text += "x"  # short: stays raw even with compression on
    await store.write(big[-1])
    stored = [r.update for r in await _all_records(store)]
    assert stored == big
    assert await _restore(store) == str(text)
    report = inspect_file(path)
    assert report.version == 4
    assert report.healthy
    assert report.update_bytes == sum(len(u) for u in big)
    assert report.stored_bytes < report.update_bytes / 5
    assert path.stat().st_size < report.update_bytes / 3
    await store.aclose()


async def test_a_damaged_compressed_record_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    update = b"\x01" * 10  # not an update; written by hand: codec bits say zlib
    body = encode_frames([Record(1, update, b"", 1.0)])
    frame = bytearray(body)
    frame[8 + 1] = 0x10  # kind byte: update, zlib
    from ystores.filestore.frames import frame_checksum

    frame[4:8] = frame_checksum(bytes(frame[:4]), bytes(frame[8:])).to_bytes(4, "little")
    path.write_bytes(b"VERSION:4\n" + bytes(frame))
    with pytest.raises(CorruptStoreError, match="does not decode"):
        await _all_records(FileYStore(str(path)))


# -- checkpoints -------------------------------------------------------------


async def test_checkpoints_are_invisible_to_read_and_restore_starts_from_the_latest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    store = await _typed(path, "hello world", clock=Clock())
    first = await store.checkpoint()
    assert first is not None
    assert (first.covers, first.seq) == (11, 12)
    assert await store.checkpoint() is None  # nothing new since
    for update in _updates("hello world, again")[11:]:
        await store.write(update)
    second = await store.checkpoint()
    assert second is not None
    assert second.covers == 19
    triples = [u async for u, _, _ in store.read()]
    assert len(triples) == 18
    assert text_of(triples) == "hello world, again"
    assert all(r.kind is RecordKind.UPDATE for r in [r async for r in store.read_records()])
    checkpoints = [r for r in await _all_records(store) if r.kind is RecordKind.CHECKPOINT]
    assert [r.seq for r in checkpoints] == [12, 20]
    header = decode_header(checkpoints[1].metadata)
    assert header is not None
    assert header.covers == 19
    assert header.matches(checkpoints[1].update)
    assert text_of([checkpoints[1].update]) == "hello world, again"
    assert hint_path(path).exists()
    assert await _restore(store) == "hello world, again"
    stats = await store.log_stats()
    assert stats is not None
    assert stats.tail_records == 18
    history = await store.history_stats()
    assert history is not None
    assert (history.records_since, history.checkpoints) == (0, 2)
    assert history.oldest == 1_700_000_001.0
    await store.aclose()


async def test_checkpoint_is_built_while_another_process_style_writer_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.y"
    updates = _updates("concurrent writers keep writing")
    store = await _typed(path, "concurrent")
    other = FileYStore(str(path), fsync=False)  # a second writer on the same file
    import anyio

    async def keep_writing() -> None:
        for update in updates[10:]:
            await other.write(update)

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_writing)
        report = await store.checkpoint()
    assert report is not None
    assert await _restore(FileYStore(str(path))) == "concurrent writers keep writing"
    seqs = [r.seq for r in await _all_records(store)]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(updates) + 1
    await store.aclose()
    await other.aclose()


async def _checkpointed(path: Path, text: str = "checkpointed text") -> tuple[FileYStore, str]:
    store = await _typed(path, text[:10], clock=Clock())
    assert await store.checkpoint() is not None
    for update in _updates(text)[10:]:
        await store.write(update)
    return store, text


async def test_restore_with_the_index_reads_two_frames_and_the_tail(tmp_path: Path) -> None:
    """With an index that checks out, the records before the checkpoint are never read:
    damage among them goes unseen by a restore (a full read still reports it)."""
    path = tmp_path / "doc.y"
    _store, text = await _checkpointed(path)
    data = bytearray(path.read_bytes())
    data[len(b"VERSION:4\n") + 8 + 12] ^= 0xFF  # inside record 1, covered by the checkpoint
    path.write_bytes(bytes(data))  # same inode: the index still names this file
    assert await _restore(FileYStore(str(path))) == text
    with pytest.raises(CorruptStoreError):
        [u async for u, _, _ in FileYStore(str(path)).read()]


def test_the_index_taken_row_by_row_gives_the_checkpoints_the_whole_read_gives(
    tmp_path: Path,
) -> None:
    """A restore decodes the index's rows as it tries them (`read_index`): the same
    checkpoints, covering most first, as decoding all of them; rows that do not
    decode are left out either way."""
    path = tmp_path / "doc.y"
    path.write_bytes(b"")
    good = [
        [100, 50, 7, 12, 10, 1.5, 40],
        [300, 60, 8, 30, 25, 2, 200],
        [500, 70, 9, 50, 45, 3.5, 350],
        [200, 55, 6, 20, 18, 1.75, 150],
    ]
    bad = [
        [600, 70, 9, 60, "55", 4.0, 550],  # covers not an integer
        [700, 70, 9, 70, 70, 4.0, 650],  # covers its own seq
        [800, 70, 9, 90, 85, float("inf"), 750],
        [900, 70, 1 << 32, 99, 95, 5.0, 850],  # not a CRC32C
        [1000, 70, 9, 120, 110, 6.0],  # a field short
        [1100, 70, 9, 130, True, 6.0, 1050],
        "not a row",
    ]
    rows = [bad[0], good[0], bad[1], good[1], bad[2], bad[3], good[2], bad[4], bad[5], good[3]]
    rows.append(bad[6])
    index = {"format": "ystores-checkpoint-index", "version": 1, "inode": 1, "device": 2}
    hint_path(path).write_text(json.dumps({**index, "checkpoints": rows}))
    view = read_index(path, None)
    hints = read_hints(path, None)
    assert view is not None
    assert hints is not None
    assert [hint.as_list() for hint in view.latest_first()] == [
        hint.as_list() for hint in hints.latest_first()
    ]
    assert [hint.covers for hint in view.latest_first()] == [45, 25, 18, 10]
    assert view.hints() == hints
    assert (view.inode, view.device) == (1, 2)


@pytest.mark.parametrize(
    "lie",
    ["middle-of-frame", "other-file", "after-squash", "symlink", "garbage", "tail-skips"],
)
async def test_a_hostile_index_costs_a_scan_never_a_wrong_document(
    tmp_path: Path, lie: str
) -> None:
    path = tmp_path / "doc.y"
    store, text = await _checkpointed(path)
    index = hint_path(path)
    saved = json.loads(index.read_bytes())
    row = saved["checkpoints"][0]
    if lie == "middle-of-frame":
        row[0] += 5
    elif lie == "other-file":
        other, _ = await _checkpointed(tmp_path / "other.y", "a different document")
        index.write_bytes(hint_path(tmp_path / "other.y").read_bytes())
        await other.aclose()
    elif lie == "after-squash":
        assert await store.squash() is not None
        assert not index.exists()  # a squash drops the index with the checkpoints
        index.write_text(json.dumps(saved))  # an old index put back
        saved["inode"] = path.stat().st_ino  # even naming the new file
    elif lie == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps(saved))
        index.unlink()
        index.symlink_to(target)
    elif lie == "garbage":
        index.write_bytes(b"\x00{not json" * 10)
    elif lie == "tail-skips":
        row[6] = row[0]  # the tail said to start at the checkpoint: records would be missed
    if lie not in ("other-file", "symlink", "garbage"):
        index.write_text(json.dumps(saved))
    assert await _restore(FileYStore(str(path))) == text
    if lie != "after-squash":  # seq 11 is the checkpoint: seq 12 is the 11th character
        assert _state_text(await FileYStore(str(path)).state_at(seq=12)) == text[:11]
    await store.aclose()


async def test_a_damaged_checkpoint_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "doc.y"
    store = await _typed(path, "first part", clock=Clock())
    await store.checkpoint()
    for update in _updates("first part, second part")[10:]:
        await store.write(update)
    await store.checkpoint()
    checkpoints = [r for r in await _all_records(store) if r.kind is RecordKind.CHECKPOINT]
    wrong = typing_updates("something else entirely", client_id=8)[0]
    # The latest checkpoint rewritten with a valid frame but an update its digest does not match
    data = path.read_bytes()
    records = await _all_records(store)
    rebuilt = [
        Record(r.seq, wrong, r.metadata, r.timestamp, r.kind) if r.seq == checkpoints[1].seq else r
        for r in records
    ]
    path.write_bytes(b"VERSION:4\n" + encode_frames(rebuilt))
    assert path.read_bytes() != data
    # with the index (which no longer matches that frame) and without it
    assert await _restore(FileYStore(str(path))) == "first part, second part"
    hint_path(path).unlink()
    with caplog.at_level(logging.WARNING, logger="ystores"):
        assert await _restore(FileYStore(str(path))) == "first part, second part"
        assert (
            _state_text(await store.state_at(seq=checkpoints[1].seq)) == "first part, second part"
        )
    assert "is damaged" in caplog.text
    assert "digest does not match" in caplog.text
    await store.aclose()


async def test_a_damaged_checkpoint_the_index_vouches_for_is_skipped_on_the_fast_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The index names the damaged frame with its new checksum, so only the digest
    can tell: the restore warns, starts from the earlier checkpoint the index
    names, and still hands over one batch (the file closed, no second hop)."""
    from history.test_properties import damage_frame

    path = tmp_path / "doc.y"
    text = "first part, second part, third"
    store = await _typed(path, text[:10], clock=Clock())
    await store.checkpoint()
    for update in _updates(text)[10:24]:
        await store.write(update)
    await store.checkpoint()
    for update in _updates(text)[24:]:
        await store.write(update)
    checkpoints = [r for r in await _all_records(store) if r.kind is RecordKind.CHECKPOINT]
    await store.aclose()
    damage_frame(path, checkpoints[1].seq, in_header=False, offset=7, flip=0x20)
    saved = json.loads(hint_path(path).read_text())
    (row,) = [row for row in saved["checkpoints"] if row[3] == checkpoints[1].seq]
    row[2] = FRAME_HEAD.unpack_from(path.read_bytes(), row[0])[1]
    hint_path(path).write_text(json.dumps(saved))

    reader = FileYStore(str(path))
    result = RestoreResult()
    with caplog.at_level(logging.WARNING, logger="ystores"):
        batches = list(restore_batches(reader._file_log, result))
    assert "digest does not match" in caplog.text
    assert (result.from_checkpoint, result.last, len(batches)) == (checkpoints[0].seq, True, 1)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    crdt.apply_updates(doc, batches[0])
    assert _text(doc) == text
    assert await _restore(reader) == text
    await reader.aclose()


async def test_a_compressed_checkpoint_that_does_not_decompress_is_skipped_by_a_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the index a restore scans the file: a compressed checkpoint whose
    bytes were damaged under a valid frame is skipped with a warning (it raised
    CorruptStoreError before), the document built from the records."""
    from history.test_properties import damage_frame

    path = tmp_path / "doc.y"
    text = "a compressed checkpoint " * 40
    store = await _typed(path, text[:900], clock=Clock(), compress=True)
    report = await store.checkpoint()
    assert report is not None
    assert report.stored_bytes < report.raw_bytes  # compressed
    for update in _updates(text)[900:]:
        await store.write(update)
    checkpoints = [r for r in await _all_records(store) if r.kind is RecordKind.CHECKPOINT]
    await store.aclose()
    hint_path(path).unlink()
    damage_frame(path, checkpoints[0].seq, False, 0, 0x55)  # its zlib header
    with caplog.at_level(logging.WARNING, logger="ystores"):
        assert await _restore(FileYStore(str(path))) == text
    assert "is damaged" in caplog.text


async def test_restore_from_a_checkpoint_is_faster_than_a_full_replay(tmp_path: Path) -> None:
    """Compared within one run: the same file restored with and without its checkpoint."""
    path = tmp_path / "doc.y"
    text = "abcdefghij" * 400
    store = await _typed(path, text)
    await store.checkpoint()
    await store.aclose()

    def timed() -> float:
        best = float("inf")
        import anyio

        for _ in range(5):  # CPU time of the process, best of 5: what load does not inflate
            started = time.process_time()
            assert anyio.run(_restore, FileYStore(str(path))) == text
            best = min(best, time.process_time() - started)
        return best

    import anyio

    fast = await anyio.to_thread.run_sync(timed)
    records = await _all_records(FileYStore(str(path)))
    plain = tmp_path / "plain.y"
    path.rename(plain)
    path.write_bytes(
        b"VERSION:4\n" + encode_frames([r for r in records if r.kind is not RecordKind.CHECKPOINT])
    )
    slow = await anyio.to_thread.run_sync(timed)
    assert fast < slow / 2, (fast, slow)


# -- time travel ----------------------------------------------------------------


async def test_state_at_seq_and_time_from_the_nearest_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    text = "time travel works"
    clock = Clock()
    store = FileYStore(str(path), fsync=False, clock=clock)
    for i, update in enumerate(_updates(text), 1):
        await store.write(update)
        if i % 5 == 0:
            await store.checkpoint()
    # seqs: 5 updates then a checkpoint, repeated; update k has seq k + (k - 1) // 5
    for k in range(1, len(text) + 1):
        seq = k + (k - 1) // 5
        assert _state_text(await store.state_at(seq=seq)) == text[:k]
        at = 1_700_000_000.0 + seq  # the clock ticks once per record
        assert _state_text(await store.state_at(at=at + 0.5)) == text[:k]
    with pytest.raises(ValueError, match="exactly one"):
        await store.state_at()
    await store.aclose()


# -- retention ------------------------------------------------------------------


async def test_retention_by_window_keeps_recent_records_and_the_content(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    clock = Clock()
    store = FileYStore(str(path), fsync=False, clock=clock)
    text = "retention keeps the recent part"
    for i, update in enumerate(_updates(text), 1):
        await store.write(update)
        if i % 8 == 0:
            await store.checkpoint()
    before = await _all_records(store)
    clock.now = before[-1].timestamp + 1  # now: one second after the last record
    report = await store.retain(RetentionPolicy(window=10.5))
    assert report is not None
    after = await _all_records(store)
    assert after[0].kind is RecordKind.SNAPSHOT
    assert after[0].seq == report.cut_seq
    kept = [r for r in after[1:] if r.kind is RecordKind.UPDATE]
    assert all(r.timestamp >= clock.now - 10.5 - 1 for r in kept)
    assert {r.seq for r in kept} == {
        r.seq for r in before if r.kind is RecordKind.UPDATE and r.seq > report.cut_seq
    }
    covers = [decode_header(r.metadata) for r in after if r.kind is RecordKind.CHECKPOINT]
    assert all(h is not None and h.covers > report.cut_seq for h in covers)
    assert await _restore(FileYStore(str(path))) == text
    assert text_of([u async for u, _, _ in store.read()]) == text
    with pytest.raises(HistoryNotKeptError) as caught:
        await store.state_at(seq=report.cut_seq - 1)
    assert caught.value.oldest == after[0].timestamp
    assert _state_text(await store.state_at(seq=report.cut_seq)) == text_of(
        [r.update for r in before if r.seq <= report.cut_seq and r.kind is RecordKind.UPDATE]
    )
    history = await store.history_stats()
    assert history is not None
    assert history.oldest == after[0].timestamp
    clock.now = before[-1].timestamp + 1  # the same moment again
    assert await store.retain(RetentionPolicy(window=10.5)) is None  # nothing older left
    assert await store.retain(RetentionPolicy.all()) is None
    await store.aclose()


async def test_retention_by_budget_and_none_is_a_squash(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store, text = await _checkpointed(path, "a budget of bytes for history")
    report = await store.retain(RetentionPolicy(budget=400))
    assert report is not None
    sizes = path.stat().st_size
    assert await _restore(FileYStore(str(path))) == text
    assert sizes < 400 + 200  # the kept frames plus the snapshot
    squashed = await store.retain(RetentionPolicy.none())
    assert squashed is not None
    records = await _all_records(store)
    assert [r.kind for r in records] == [RecordKind.SNAPSHOT]
    assert not hint_path(path).exists()
    assert await _restore(FileYStore(str(path))) == text
    await store.aclose()


async def test_squash_drops_checkpoints_and_log_stats_ignore_them(tmp_path: Path) -> None:
    path = tmp_path / "doc.y"
    store, text = await _checkpointed(path)
    report = await store.squash()
    assert report is not None
    assert report.records_after == 1
    assert [r.kind for r in await _all_records(store)] == [RecordKind.SNAPSHOT]
    assert await _restore(FileYStore(str(path))) == text
    await store.aclose()


async def test_index_survives_as_a_cache_after_retention(tmp_path: Path) -> None:
    """After a rewrite the index names the new file's offsets (and is checked like any)."""
    path = tmp_path / "doc.y"
    clock = Clock()
    store = FileYStore(str(path), fsync=False, clock=clock)
    text = "an index rebuilt after retention"
    for i, update in enumerate(_updates(text), 1):
        await store.write(update)
        if i % 6 == 0:
            await store.checkpoint()
    clock.now = (await _all_records(store))[-1].timestamp + 1
    assert await store.retain(RetentionPolicy(window=12.5)) is not None
    saved = json.loads(hint_path(path).read_bytes())
    assert saved["inode"] == path.stat().st_ino
    assert saved["checkpoints"]
    assert await _restore(FileYStore(str(path))) == text
    os.unlink(hint_path(path))
    assert await _restore(FileYStore(str(path))) == text
    await store.aclose()


@pytest.mark.parametrize("flush", [1 << 24, 64])
async def test_restore_without_the_index_scans_once_from_the_latest_checkpoint(
    tmp_path: Path, flush: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many checkpoints across the file's read chunks, the index gone, updates held in
    memory handed over early (a small flush size) or not: the same document."""
    from ystores.filestore import checkpointing

    monkeypatch.setattr(checkpointing, "FLUSH_BYTES", flush)
    path = tmp_path / "doc.y"
    text = "0123456789" * 300
    store = FileYStore(str(path), fsync=False)
    for i, update in enumerate(_updates(text), 1):
        await store.write(update)
        if i % 250 == 0:
            await store.checkpoint()
    await store.aclose()
    hint_path(path).unlink()
    assert path.stat().st_size > 60_000
    assert await _restore(FileYStore(str(path))) == text
    assert _state_text(await FileYStore(str(path)).state_at(seq=1000)) == text[:997]


_CHECKPOINTER = """
import sys, anyio
from ystores import FileYStore

async def main():
    store = FileYStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    await store.checkpoint()
    print("done", flush=True)

anyio.run(main)
"""


def test_a_kill_during_the_upgrade_to_version_4_leaves_the_old_file_or_the_new(
    tmp_path: Path,
) -> None:
    """SIGKILL a process upgrading a version-3 file for its first checkpoint, at random
    moments: the file is the old one, byte for byte, or version 4 with the same frames."""
    import random
    import signal
    import subprocess
    import sys

    import anyio

    rng = random.Random(4)
    text = "kill the upgrade " * 300
    original = tmp_path / "original.y"
    _v3_file(original, _updates(text))
    frames = original.read_bytes()[len(HEADER_V3) :]
    outcomes: set[str] = set()

    def run(path: Path, kill_after: float | None) -> float:
        with subprocess.Popen(
            [sys.executable, "-c", _CHECKPOINTER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            started = time.perf_counter()
            child.stdin.write("go\n")
            child.stdin.flush()
            if kill_after is None:
                assert child.stdout.readline() == "done\n"
            else:
                time.sleep(kill_after)
                child.send_signal(signal.SIGKILL)
            child.wait()
            return time.perf_counter() - started

    calibration = tmp_path / "calibration.y"
    calibration.write_bytes(original.read_bytes())
    whole = run(calibration, None)  # how long a checkpoint with its upgrade takes here
    for round_ in range(8):
        path = tmp_path / f"doc{round_}.y"
        path.write_bytes(original.read_bytes())
        run(path, rng.uniform(0.5, 1.2) * whole)
        data = path.read_bytes()
        if data.startswith(HEADER_V3):
            assert data == original.read_bytes()
            outcomes.add("old")
        else:
            assert data.startswith(b"VERSION:4\n" + frames)
            outcomes.add("new")
        assert anyio.run(_restore, FileYStore(str(path))) == text
        # and the next checkpoint completes the upgrade, or adds nothing twice
        anyio.run(FileYStore(str(path)).checkpoint)
        assert path.read_bytes().startswith(b"VERSION:4\n" + frames)
        assert anyio.run(_restore, FileYStore(str(path))) == text
    # which outcomes a loaded machine shows varies from run to run; each is checked above


async def test_a_checkpoint_of_many_clients_edits_is_written(tmp_path: Path) -> None:
    """The check before writing compares state vectors decoded (clients come in any order)."""
    path = tmp_path / "doc.y"
    store = FileYStore(str(path), fsync=False)
    for client in range(1, 40):
        for update in typing_updates(f"c{client};", client_id=client * 7919):
            await store.write(update)
    report = await store.checkpoint()
    assert report is not None
    replayed = text_of([u async for u, _, _ in store.read()])
    assert await _restore(FileYStore(str(path))) == replayed
    await store.aclose()


async def test_history_stats_keep_a_checkpoint_another_process_indexed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`history_stats()` read the index, another process wrote a checkpoint and indexed
    it, then `history_stats()` wrote its counts into the copy it had read: the new
    checkpoint was gone from the index (restores replayed from the older one)."""
    import subprocess
    import sys

    from ystores.filestore import checkpointing

    path = tmp_path / "doc.y"
    text = "an index two processes share " * 4
    updates = _updates(text)
    store = FileYStore(str(path), fsync=False)
    for update in updates[:60]:
        await store.write(update)
    assert await store.checkpoint() is not None
    for update in updates[60:]:
        await store.write(update)
    # the other process answers at once; the test waits for it on purpose
    other = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", _CHECKPOINTER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout is not None
    assert other.stdin is not None
    assert other.stdout.readline().strip() == "ready"
    from ystores.filestore.hints import read_hints

    def then_the_other_process_checkpoints(*args: Any) -> Any:
        hints = read_hints(*args)
        assert other.stdin is not None
        assert other.stdout is not None
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "done"
        return hints

    monkeypatch.setattr(checkpointing, "read_hints", then_the_other_process_checkpoints)
    try:
        stats = await store.history_stats()
    finally:
        other.communicate(timeout=60)
    monkeypatch.undo()
    assert stats is not None
    newest = [r.seq for r in await _all_records(store) if r.kind is RecordKind.CHECKPOINT]
    assert len(newest) == 2
    indexed = [row[3] for row in json.loads(hint_path(path).read_bytes())["checkpoints"]]
    assert newest[-1] in indexed  # the other process's checkpoint is still indexed
    assert await store.history_stats() == await FileYStore(str(path)).history_stats()
    assert await _restore(FileYStore(str(path))) == text
    await store.aclose()
