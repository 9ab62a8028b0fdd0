"""Group commit: concurrent writers share flushes, and share their failures."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from ystores import StoreStateError
from ystores.groupcommit import GroupCommitter

pytestmark = pytest.mark.anyio


class Interrupted(BaseException):
    pass


async def test_concurrent_entries_share_flushes_in_order() -> None:
    batches: list[list[int]] = []

    async def flush(entries: Sequence[int]) -> list[int]:
        batches.append(list(entries))
        await anyio.sleep(0.01)
        return [e * 10 for e in entries]

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    results: dict[int, int] = {}

    async def submit(i: int) -> None:
        results[i] = await committer.submit(i)

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(submit, i)
    assert results == {i: i * 10 for i in range(50)}
    assert [e for batch in batches for e in batch] == list(range(50))
    assert len(batches) < 50  # batched: fewer flushes than entries


async def test_a_failed_flush_fails_every_entry_of_its_batch() -> None:
    async def flush(entries: Sequence[int]) -> list[int]:
        await anyio.sleep(0.01)
        raise OSError("disk full")

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    errors: list[BaseException] = []

    async def submit(i: int) -> None:
        try:
            await committer.submit(i)
        except OSError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(submit, i)
    assert len(errors) == 10


async def test_an_interrupted_flush_reports_no_entry_as_stored() -> None:
    async def flush(entries: Sequence[int]) -> list[int]:
        await anyio.sleep(0.01)
        raise Interrupted

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    outcomes: list[str] = []

    async def submit(i: int) -> None:
        try:
            await committer.submit(i)
            outcomes.append("stored")
        except StoreStateError:
            outcomes.append("interrupted")
        except Interrupted:
            outcomes.append("leader")

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(submit, i)
    assert "stored" not in outcomes
    assert outcomes.count("leader") >= 1  # each batch leader sees the interruption itself


async def test_writers_released_by_a_flush_join_the_next_batch_together() -> None:
    """Ten writers each awaiting one write after another: once they contend, each
    flush carries all ten, instead of one writer that led at once and nine that
    queued behind it (which halved throughput)."""
    batches: list[int] = []

    async def flush(entries: Sequence[int]) -> list[int]:
        batches.append(len(entries))
        await anyio.sleep(0.002)
        return list(entries)

    committer: GroupCommitter[int, int] = GroupCommitter(flush)

    async def writer(w: int) -> None:
        for i in range(20):
            assert await committer.submit(w * 100 + i) == w * 100 + i

    async with anyio.create_task_group() as tg:
        for w in range(10):
            tg.start_soon(writer, w)
    assert sum(batches) == 200
    assert len(batches) <= 22, batches


async def test_a_lone_writer_never_waits_for_company() -> None:
    batches: list[int] = []

    async def flush(entries: Sequence[int]) -> list[int]:
        batches.append(len(entries))
        return list(entries)

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    for i in range(5):
        assert await committer.submit(i) == i
    assert batches == [1] * 5
