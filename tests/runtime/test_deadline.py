"""runtime/deadline.py: a function's timeout, as asyncio.timeout keeps one."""

from __future__ import annotations

import asyncio

import pytest

from edgeproxy.runtime.deadline import Deadline


async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    with Deadline(5) as deadline:
        await asyncio.sleep(0)
    assert not deadline.expired
    await asyncio.sleep(0.02)  # its timer is gone: nothing cancels the task later


async def test_a_block_that_overruns_raises_timeout_error_and_leaves_the_task_uncancelled() -> None:
    with pytest.raises(TimeoutError), Deadline(0.01) as deadline:
        await asyncio.sleep(5)
    assert deadline.expired
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # the task goes on as usual


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    entered = asyncio.Event()

    async def invocation() -> None:
        with Deadline(5):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(invocation())
    await entered.wait()
    task.cancel()  # the viewer went away
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_from_outside_as_the_deadline_passes_stays_a_cancellation() -> None:
    async def invocation() -> None:
        with Deadline(0.01):
            try:
                await asyncio.sleep(5)
            finally:
                asyncio.current_task().cancel()  # type: ignore[union-attr]  # someone else's, at the same moment

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(invocation())


async def test_an_inner_deadline_inside_an_outer_one_is_its_own() -> None:
    with Deadline(5) as outer:
        with pytest.raises(TimeoutError), Deadline(0.01):
            await asyncio.sleep(5)
        await asyncio.sleep(0)
    assert not outer.expired
