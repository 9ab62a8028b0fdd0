"""Compaction leases: one compactor per document across processes; a dead holder's lease is free."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ydocs import typing_updates
from ystores import open_store
from ystores.compaction.policy import CompactionPolicy
from ystores.sql.engines import dispose_databases

pytestmark = pytest.mark.anyio

HOLDER = Path(__file__).resolve().parent / "lease_holder.py"
WAIT = 30.0


async def start_holder(url: str, doc: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HOLDER), url, doc, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    assert line == b"held\n"
    return proc


async def test_a_lease_is_held_by_one_holder_and_freed_when_it_is_killed(any_url: str) -> None:
    store = open_store(any_url, "doc")
    await store.write(typing_updates("x")[0])  # files: the lease lives on the file
    holder = await start_holder(any_url, "doc")
    try:
        async with store.compaction_lease() as held:
            assert not held
        async with open_store(any_url, "other").compaction_lease() as held:
            # another document's lease is free (files: no file yet, nothing to squash)
            assert held or any_url.startswith("file:")
    finally:
        holder.kill()  # SIGKILL: no chance to release anything by itself
        await holder.wait()
    async with store.compaction_lease() as held:
        assert held
        async with open_store(any_url, "doc").compaction_lease() as again:
            assert not again  # one holder at a time, within a process too
    await store.aclose()
    await dispose_databases()


async def test_background_compaction_waits_for_the_lease_then_takes_it_over(
    any_url: str,
) -> None:
    writer = open_store(any_url, "doc")
    updates = typing_updates("compaction")
    await writer.write(updates[0])
    holder = await start_holder(any_url, "doc")  # another server compacting this document
    store = open_store(any_url, "doc", compaction=CompactionPolicy(max_updates=3))
    store.compaction_interval = 0.05
    try:
        async with store:
            for update in updates[1:]:
                await store.write(update)
            await asyncio.sleep(1.0)
            stats = await store.log_stats()
            assert stats is not None
            assert not stats.has_snapshot  # never squashed under another's lease
            holder.kill()
            await holder.wait()
            for update in typing_updates("!!!!", client_id=99):
                await store.write(update)
            for _ in range(int(WAIT * 20)):
                stats = await store.log_stats()
                assert stats is not None
                if stats.has_snapshot:
                    break
                await asyncio.sleep(0.05)
            assert stats.has_snapshot  # the lease was taken over
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
    await writer.aclose()
    await dispose_databases()
