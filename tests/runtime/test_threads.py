"""runtime/threads.py: the thread executor (sync handlers on worker threads, never on the event loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgeproxy.runtime import Runtime
from edgeproxy.runtime.context import ContextData
from edgeproxy.runtime.functions import Function
from edgeproxy.runtime.log import InvocationLog
from edgeproxy.runtime.threads import Raised, ThreadExecutor
from tests.conftest import association

EVENT = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": {"uri": "/"}}}]}


async def test_sync_handler_does_not_block_the_event_loop(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "slow.py").write_text("import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return 1\n")
    function = runtime.load(association(tmp_path, "slow.py:handler"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await runtime.invoke(function, EVENT, trigger="viewer-request")
    task.cancel()
    assert ticks >= 5  # the loop kept running while the handler slept in its thread


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
