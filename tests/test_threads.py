"""The shared worker threads run blocking calls off the loop, on asyncio and trio."""

from __future__ import annotations

import threading

import anyio
import pytest

from ystores.threads import WorkerThreads

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


async def test_returns_results_and_runs_off_the_loop_thread() -> None:
    workers = WorkerThreads(size=2)
    loop_thread = threading.get_ident()
    assert await workers.run(lambda: 41 + 1) == 42
    assert await workers.run(threading.get_ident) != loop_thread


async def test_raises_the_callers_error() -> None:
    workers = WorkerThreads(size=1)

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await workers.run(boom)


async def test_blocking_calls_run_in_parallel_up_to_the_size() -> None:
    workers = WorkerThreads(size=3)
    barrier = threading.Barrier(3, timeout=10)
    results: list[int] = []

    async def wait_at_barrier() -> None:
        results.append(await workers.run(barrier.wait))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(wait_at_barrier)
    assert sorted(results) == [0, 1, 2]


async def test_a_cancelled_caller_does_not_cancel_the_call() -> None:
    workers = WorkerThreads(size=1)
    release = threading.Event()
    ran: list[bool] = []

    def slow() -> None:
        release.wait(10)
        ran.append(True)

    with anyio.move_on_after(0.05):
        async with anyio.create_task_group() as tg:
            tg.start_soon(workers.run, slow)
            await anyio.sleep(0.01)
            release.set()
    assert ran == [True]


def test_a_worker_outlives_a_closed_event_loop() -> None:
    workers = WorkerThreads(size=1)
    release = threading.Event()

    async def abandon() -> None:
        with anyio.move_on_after(0.01):
            await workers.run(lambda: release.wait(10))

    anyio.run(abandon)  # the loop closes while the call still runs
    release.set()

    async def reuse() -> int:
        return await workers.run(lambda: 7)

    assert anyio.run(reuse) == 7  # the only worker thread survived and runs it


async def test_calls_submitted_together_never_share_one_woken_thread() -> None:
    # Each round submits three calls that can only finish together. A thread that
    # has just woken for the first call must not be counted as free for the second.
    for _ in range(60):
        workers = WorkerThreads(size=3)
        barrier = threading.Barrier(3, timeout=5)
        results: list[int] = []

        async def wait_at_barrier(
            workers: WorkerThreads = workers,
            barrier: threading.Barrier = barrier,
            results: list[int] = results,
        ) -> None:
            results.append(await workers.run(barrier.wait))

        with anyio.fail_after(10):
            for _ in range(3):  # the same pool again: its threads are idle now
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(wait_at_barrier)
        assert sorted(results) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
