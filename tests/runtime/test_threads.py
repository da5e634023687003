"""runtime/threads.py: the thread executor (every handler on a worker thread, async ones on the thread's own loop;
never on the proxy's event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.errors import FunctionError
from edgeproxy.runtime import Runtime
from edgeproxy.runtime.context import ContextData
from edgeproxy.runtime.functions import Function
from edgeproxy.runtime.log import InvocationLog
from edgeproxy.runtime.threads import Raised, ThreadExecutor
from tests.conftest import association

EVENT = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": {"uri": "/"}}}]}


def _module(function: Function) -> dict[str, Any]:
    """The loaded handler's module globals (where a test handler leaves what it saw)."""
    globals_: dict[str, Any] = function.handler.__globals__
    return globals_


@contextlib.asynccontextmanager
async def loop_ticks() -> AsyncIterator[list[int]]:
    """Count, in ``[0]``, how often the event loop got to run a 10 ms ticker meanwhile."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    task = asyncio.create_task(ticker())
    try:
        yield ticks
    finally:
        task.cancel()


async def test_sync_handler_does_not_block_the_event_loop(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "slow.py").write_text("import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return 1\n")
    function = runtime.load(association(tmp_path, "slow.py:handler"))
    async with loop_ticks() as ticks:
        await runtime.invoke(function, EVENT, trigger="viewer-request")
    assert ticks[0] >= 5  # the loop kept running while the handler slept in its thread


async def test_concurrent_sync_invocations_each_get_their_own_result(tmp_path: Path, runtime: Runtime) -> None:
    # Results come back to the loop in batches; each must reach the invocation that produced it.
    (tmp_path / "echo.py").write_text(
        "import random, time\n"
        "def handler(event, context):\n"
        "    time.sleep(random.random() / 200)\n"
        "    return event['n'], context.aws_request_id\n"
    )
    function = runtime.load(association(tmp_path, "echo.py:handler"))
    results = await asyncio.gather(*(runtime.invoke(function, {"n": n}, trigger="origin-request") for n in range(300)))
    assert [n for n, _ in results] == list(range(300))
    assert len({request_id for _, request_id in results}) == 300


async def test_sync_handler_can_use_asyncio_get_event_loop(tmp_path: Path, runtime: Runtime) -> None:
    # On Lambda the handler runs on the runtime's main thread, where get_event_loop() works; adapters such as
    # Mangum rely on it.
    (tmp_path / "loopy.py").write_text(
        "import asyncio\n"
        "async def answer():\n"
        "    await asyncio.sleep(0)\n"
        "    return 42\n"
        "def handler(event, context):\n"
        "    return asyncio.get_event_loop().run_until_complete(answer())\n"
    )
    function = runtime.load(association(tmp_path, "loopy.py:handler"))
    assert [await runtime.invoke(function, EVENT, trigger="origin-request") for _ in range(3)] == [42, 42, 42]


async def test_the_handlers_exception_comes_back_as_it_was_raised() -> None:
    def fails(event: object, context: object) -> None:
        raise KeyError("missing")

    def exits(event: object, context: object) -> None:
        raise SystemExit(3)

    executor = ThreadExecutor(max_threads=2)
    context = ContextData.make(
        name="f", edge=True, version="1", memory=128, aws_request_id="r", log_stream="s", timeout=5
    )
    try:
        with pytest.raises(KeyError):
            await executor.run(Function.of(fails), {}, context, InvocationLog("[f viewer-request]", "r"))
        with pytest.raises(Raised) as raised:  # a BaseException travels wrapped, so asyncio does not re-raise it
            await executor.run(Function.of(exits), {}, context, InvocationLog("[f viewer-request]", "r"))
        assert isinstance(raised.value.raised, SystemExit)
    finally:
        executor.close()


# -- every handler in an environment of its own: a worker thread, with its own event loop for async handlers ------


async def test_async_handler_runs_on_a_loop_of_its_own(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "where.py").write_text(
        "import asyncio, threading\n"
        "async def handler(event, context):\n"
        "    async with asyncio.timeout(5):  # needs a running task of its own\n"
        "        await asyncio.sleep(0)\n"
        "    return threading.get_ident(), id(asyncio.get_running_loop())\n"
    )
    function = runtime.load(association(tmp_path, "where.py:handler"))
    thread, loop = await runtime.invoke(function, EVENT, trigger="viewer-request")
    assert thread != threading.get_ident()
    assert loop != id(asyncio.get_running_loop())


async def test_async_handler_raising_cancelled_error_is_an_execution_error(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "cancels.py").write_text(
        "import asyncio\nasync def handler(event, context):\n    raise asyncio.CancelledError('mine')\n"
    )
    (tmp_path / "fine.py").write_text("import asyncio\nasync def handler(event, context):\n    return 'fine'\n")
    cancels = runtime.load(association(tmp_path, "cancels.py:handler"))
    with pytest.raises(FunctionError, match=r"cancels.py:handler at viewer-request raised CancelledError"):
        await runtime.invoke(cancels, EVENT, trigger="viewer-request")
    fine = runtime.load(association(tmp_path, "fine.py:handler"))
    assert await runtime.invoke(fine, EVENT, trigger="viewer-request") == "fine"


async def test_a_blocking_async_handler_delays_only_itself_and_times_out(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocks.py").write_text(
        "import threading, time\n"
        "RELEASE = threading.Event()\n"
        "async def handler(event, context):\n"
        "    RELEASE.wait(10)  # a blocking call in an async def handler\n"
        "    return 'late'\n"
    )
    function = runtime.load(association(tmp_path, "blocks.py:handler"))
    timed_out = r"blocks\.py:handler at viewer-request timed out after 0\.3 s"
    async with loop_ticks() as ticks:
        with pytest.raises(FunctionError, match=timed_out):
            await runtime.invoke(function, EVENT, trigger="viewer-request", seconds=0.3)
    assert ticks[0] >= 5  # the proxy's loop ran on while the handler blocked its own
    assert "blocks.py:handler at viewer-request has blocked its event loop for 0.3" in caplog.text
    _module(function)["RELEASE"].set()


async def test_an_async_handler_past_its_deadline_is_cancelled_on_its_loop(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "waits.py").write_text(
        "import asyncio\n"
        "SEEN = []\n"
        "async def handler(event, context):\n"
        "    try:\n"
        "        await asyncio.sleep(60)\n"
        "    except asyncio.CancelledError:\n"
        "        SEEN.append('cancelled')\n"
        "        raise\n"
    )
    (tmp_path / "next.py").write_text("async def handler(event, context):\n    return 'next'\n")
    function = runtime.load(association(tmp_path, "waits.py:handler"))
    with pytest.raises(FunctionError, match=r"timed out after 0\.2 s"):
        await runtime.invoke(function, EVENT, trigger="viewer-request", seconds=0.2)
    for _ in range(200):
        if _module(function)["SEEN"]:
            break
        await asyncio.sleep(0.01)
    assert _module(function)["SEEN"] == ["cancelled"]
    after = runtime.load(association(tmp_path, "next.py:handler"))
    assert await runtime.invoke(after, EVENT, trigger="viewer-request") == "next"


async def test_a_job_whose_deadline_passes_in_the_queue_is_dropped_not_run(tmp_path: Path) -> None:
    runtime = Runtime(max_threads=1, isolation="thread")
    (tmp_path / "hangs.py").write_text(
        "import threading\nRELEASE = threading.Event()\ndef handler(event, context):\n    RELEASE.wait(10)\n"
    )
    (tmp_path / "counts.py").write_text(
        "RUNS = []\ndef handler(event, context):\n    RUNS.append(event['n'])\n    return event['n']\n"
    )
    hangs = runtime.load(association(tmp_path, "hangs.py:handler"))
    counts = runtime.load(association(tmp_path, "counts.py:handler"))
    try:
        hanging = asyncio.create_task(runtime.invoke(hangs, EVENT, trigger="viewer-request", seconds=0.2))
        await asyncio.sleep(0.05)  # the one worker is busy: the next job waits in the queue
        with pytest.raises(FunctionError, match=r"timed out after 0\.1 s"):
            await runtime.invoke(counts, {"n": 1}, trigger="viewer-request", seconds=0.1)
        with pytest.raises(FunctionError):
            await hanging
        assert await runtime.invoke(counts, {"n": 2}, trigger="viewer-request") == 2  # past the stuck worker
        assert _module(counts)["RUNS"] == [2]
    finally:
        _module(hangs)["RELEASE"].set()
        runtime.close()


async def test_stuck_workers_do_not_count_toward_the_pool_size(tmp_path: Path) -> None:
    runtime = Runtime(max_threads=4, isolation="thread")
    (tmp_path / "hangs.py").write_text(
        "import threading\nRELEASE = threading.Event()\ndef handler(event, context):\n    RELEASE.wait(10)\n"
    )
    (tmp_path / "quick.py").write_text("def handler(event, context):\n    return 'quick'\n")
    hangs = runtime.load(association(tmp_path, "hangs.py:handler"))
    quick = runtime.load(association(tmp_path, "quick.py:handler"))
    try:
        hung = [runtime.invoke(hangs, EVENT, trigger="viewer-request", seconds=0.2) for _ in range(10)]
        outcomes = await asyncio.gather(*hung, return_exceptions=True)
        assert all(isinstance(outcome, FunctionError) for outcome in outcomes)
        assert await runtime.invoke(quick, EVENT, trigger="viewer-request") == "quick"
    finally:
        _module(hangs)["RELEASE"].set()
        runtime.close()
