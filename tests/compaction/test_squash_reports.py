"""Squash reports, the `max_bytes` policy and store size agree on every backend.

Regression tests: SQL stores counted the latest snapshot in the tail (every small
write below the document's size squashed the whole document again with
`max_bytes`), their squash reports counted the snapshot twice, `--dry-run`
reported other numbers than the real run, and a library `squash()` left a
SQLite file (with its WAL) larger than before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from backends import new_postgres_database
from ystores import BaseYStore, open_store
from ystores.compaction import CompactionPolicy
from ystores.compaction.policy import SquashReport
from ystores.compaction.sweep import squash_target
from ystores.sql import SQLiteYStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["file", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store of each backend that squashes."""
    if request.param == "file":
        return f"file://{tmp_path}/docs/"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/s.db"
    return new_postgres_database()


class Typist:
    """A document typed into character by character (one update per character)."""

    def __init__(self) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("t", type=pycrdt.Text)

    def type(self, text: str) -> list[bytes]:
        updates: list[bytes] = []
        sub = self.doc.observe(lambda event: updates.append(event.update))
        for char in text:
            self.text += char
        self.doc.unobserve(sub)
        return updates

    def paste(self, text: str) -> bytes:
        """One update inserting `text` at once."""
        before = self.doc.get_state()
        self.text += text
        return self.doc.get_update(before)


async def stored_sizes(store: BaseYStore) -> list[int]:
    return [len(update) async for update, _m, _t in store.read()]


async def test_max_bytes_measures_the_tail_after_the_snapshot(url: str) -> None:
    typist = Typist()
    store = open_store(url, "doc")
    await store.write(typist.paste("x" * 20_000))
    for update in typist.type("ab"):
        await store.write(update)
    assert await store.squash() is not None
    snapshot = (await stored_sizes(store))[0]
    assert snapshot > 20_000
    policy = CompactionPolicy(max_bytes=1_000)  # far below the document's size
    small = typist.type("y" * 20)
    squashes = []
    for update in small:
        await store.write(update)
        squashes.append(await store.compact(policy))
    assert squashes == [None] * 20
    stats = await store.log_stats()
    assert stats is not None
    assert stats.has_snapshot
    assert (stats.tail_records, stats.tail_bytes) == (20, sum(map(len, small)))
    # Once the tail itself passes the limit, the document is squashed, once.
    for update in typist.type("z" * 60):
        await store.write(update)
    assert await store.compact(policy) is not None
    assert await store.compact(policy) is None
    await store.aclose()


async def test_squash_report_counts_the_snapshot_once(url: str) -> None:
    typist = Typist()
    store = open_store(url, "doc")
    first = [typist.paste("x" * 150_000), *typist.type("abc")]
    for update in first:
        await store.write(update)
    report = await store.squash()
    assert report is not None
    snapshot = (await stored_sizes(store))[0]
    assert (report.records_before, report.records_after) == (4, 1)
    assert report.bytes_before == sum(map(len, first))
    assert report.bytes_after == snapshot

    later = typist.type("defg")
    for update in later:
        await store.write(update)
    again = await store.squash()
    assert again is not None
    assert (again.records_before, again.records_after) == (5, 1)
    assert again.bytes_before == snapshot + sum(map(len, later))
    assert again.bytes_after == (await stored_sizes(store))[0]
    assert again.bytes_before < 2 * snapshot  # the snapshot is not counted twice
    await store.aclose()


def _numbers(report: SquashReport) -> tuple[str, int, int, int, int, int]:
    return (
        report.doc,
        report.records_before,
        report.records_after,
        report.bytes_before,
        report.bytes_after,
        report.cut_seq,
    )


async def test_dry_run_reports_what_the_real_run_does(url: str) -> None:
    typist = Typist()
    store = open_store(url, "doc")
    await store.write(typist.paste("x" * 5_000))
    await store.squash()  # a snapshot, then a tail: both counted as the real run counts them
    for update in typist.type("a tail of keystrokes"):
        await store.write(update)
    await store.aclose()

    dry = await squash_target(url, doc="doc", dry_run=True)
    real = await squash_target(url, doc="doc")
    assert len(dry.squashed) == len(real.squashed) == 1
    assert _numbers(dry.squashed[0]) == _numbers(real.squashed[0])
    assert dry.squashed[0].records_before == 21


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


async def test_library_squash_shrinks_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    typist = Typist()
    store = SQLiteYStore("doc", db_path=path)
    for update in typist.type("keystrokes " * 300):
        await store.write(update)
    before = _file_size(path)
    assert await store.squash() is not None
    after = _file_size(path)
    assert after < before
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    await store.aclose()
    with anyio.fail_after(30):
        reopened = SQLiteYStore("doc", db_path=path)
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await reopened.apply_updates(doc)
        assert str(doc.get("t", type=pycrdt.Text)) == "keystrokes " * 300
        await reopened.aclose()
