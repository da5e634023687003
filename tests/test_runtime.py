"""runtime.py: loading, warm module state, context, timeouts, logs, reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.config import Association
from edgeproxy.errors import ConfigError, LambdaExecutionError
from edgeproxy.runtime import Function, Runtime

EVENT = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": {"uri": "/"}}}]}


def association(tmp_path: Path, ref: str) -> Association:
    return Association(handler=ref, base_dir=tmp_path, source="test", key="k")


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


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    runtime = Runtime(max_threads=8)
    yield runtime
    runtime.close()


async def test_context_fields_and_remaining_time(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "ctx.py").write_text(
        "import time\n"
        "def handler(event, context):\n"
        "    first = context.get_remaining_time_in_millis()\n"
        "    time.sleep(0.05)\n"
        "    return {k: getattr(context, k) for k in ('function_name', 'function_version', 'invoked_function_arn',\n"
        "            'memory_limit_in_mb', 'aws_request_id', 'log_group_name', 'log_stream_name')} | {\n"
        "            'first': first, 'second': context.get_remaining_time_in_millis()}\n"
    )
    function = runtime.load(association(tmp_path, "ctx.py:handler"))
    result = await runtime.invoke(function, EVENT, trigger="viewer-request", seconds=2, memory=128)
    assert result["function_name"] == "us-east-1.ctx"
    assert result["function_version"] == "1"
    assert result["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx:1"
    assert result["memory_limit_in_mb"] == 128
    assert re.fullmatch(r"[0-9a-f-]{36}", result["aws_request_id"])
    assert result["log_group_name"] == "/aws/lambda/us-east-1.ctx"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", result["log_stream_name"])
    assert 1000 < result["first"] <= 2000
    assert result["second"] < result["first"]


async def test_module_state_persists_between_invocations(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "warm.py").write_text(
        "COUNT = 0\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    return COUNT\n"
    )
    function = runtime.load(association(tmp_path, "warm.handler"))  # Lambda-style module.function
    assert [await runtime.invoke(function, EVENT, trigger="viewer-request") for _ in range(3)] == [1, 2, 3]


async def test_async_handler(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "aio.py").write_text(
        "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(0)\n    return 'ok'\n"
    )
    function = runtime.load(association(tmp_path, "aio.py:handler"))
    assert await runtime.invoke(function, EVENT, trigger="origin-request") == "ok"


async def test_sync_handler_does_not_block_the_event_loop(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "slow.py").write_text("import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return 1\n")
    function = runtime.load(association(tmp_path, "slow.py:handler"))
    async with loop_ticks() as ticks:
        await runtime.invoke(function, EVENT, trigger="viewer-request")
    assert ticks[0] >= 5  # the loop kept running while the handler slept in its thread


async def test_timeout_is_execution_error_and_others_keep_running(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "hang.py").write_text("import time\ndef handler(event, context):\n    time.sleep(3)\n")
    (tmp_path / "quick.py").write_text("def handler(event, context):\n    return 'quick'\n")
    hang = runtime.load(association(tmp_path, "hang.py:handler"))
    quick = runtime.load(association(tmp_path, "quick.py:handler"))
    hanging = asyncio.create_task(runtime.invoke(hang, EVENT, trigger="viewer-request", seconds=0.2))
    assert await runtime.invoke(quick, EVENT, trigger="viewer-request") == "quick"
    with pytest.raises(LambdaExecutionError, match=r"hang.py:handler at viewer-request timed out after 0.2 s"):
        await hanging


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


async def test_sys_exit_in_a_handler_is_an_execution_error(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "quits.py").write_text("import sys\ndef handler(event, context):\n    sys.exit(3)\n")
    (tmp_path / "aquits.py").write_text("import sys\nasync def handler(event, context):\n    sys.exit(3)\n")
    for ref in ("quits.py:handler", "aquits.py:handler"):
        with pytest.raises(LambdaExecutionError, match=rf"{ref} at viewer-request raised SystemExit: 3"):
            await runtime.invoke(runtime.load(association(tmp_path, ref)), EVENT, trigger="viewer-request")
    (tmp_path / "still.py").write_text("def handler(event, context):\n    return 'still here'\n")
    still = runtime.load(association(tmp_path, "still.py:handler"))
    assert await runtime.invoke(still, EVENT, trigger="viewer-request") == "still here"


async def test_any_base_exception_from_a_handler_is_an_execution_error(tmp_path: Path, runtime: Runtime) -> None:
    # KeyboardInterrupt or a BaseException subclass raised by a handler is that invocation's crash: asyncio re-raises
    # KeyboardInterrupt out of the event loop, which would stop the whole proxy.
    (tmp_path / "interrupts.py").write_text("def handler(event, context):\n    raise KeyboardInterrupt('x')\n")
    (tmp_path / "ainterrupts.py").write_text("async def handler(event, context):\n    raise KeyboardInterrupt('x')\n")
    (tmp_path / "base.py").write_text(
        "class Odd(BaseException):\n    pass\ndef handler(event, context):\n    raise Odd('y')\n"
    )
    (tmp_path / "genexit.py").write_text("def handler(event, context):\n    raise GeneratorExit()\n")
    (tmp_path / "agenexit.py").write_text("async def handler(event, context):\n    raise GeneratorExit()\n")
    for ref, name in [
        ("interrupts.py:handler", "KeyboardInterrupt"),
        ("ainterrupts.py:handler", "KeyboardInterrupt"),
        ("base.py:handler", "Odd"),
        ("genexit.py:handler", "GeneratorExit"),
        ("agenexit.py:handler", "GeneratorExit"),
    ]:
        with pytest.raises(LambdaExecutionError, match=rf"{ref} at viewer-request raised {name}"):
            await runtime.invoke(runtime.load(association(tmp_path, ref)), EVENT, trigger="viewer-request")
    (tmp_path / "still.py").write_text("def handler(event, context):\n    return 'still here'\n")
    still = runtime.load(association(tmp_path, "still.py:handler"))
    assert await runtime.invoke(still, EVENT, trigger="viewer-request") == "still here"


async def test_exception_logs_user_traceback(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "boom.py").write_text(
        "def helper():\n    raise KeyError('missing')\n\ndef handler(event, context):\n    helper()\n"
    )
    function = runtime.load(association(tmp_path, "boom.py:handler"))
    with (
        caplog.at_level(logging.INFO, logger="edgeproxy.lambda"),
        pytest.raises(LambdaExecutionError, match="KeyError"),
    ):
        await runtime.invoke(function, EVENT, trigger="origin-response")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert 'boom.py", line 5, in handler' in text
    assert 'boom.py", line 2, in helper' in text
    assert "runtime.py" not in text
    assert "concurrent" not in text


async def test_lambda_style_log_lines_and_prints(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "chatty.py").write_text(
        "def handler(event, context):\n"
        "    print('hello', 'world')\n"
        "    print('second line')\n"
        "    return context.aws_request_id\n"
    )
    function = runtime.load(association(tmp_path, "chatty.py:handler"))
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        request_id = await runtime.invoke(function, EVENT, trigger="viewer-response")
    messages = caplog.records[0].getMessage().split("\n")
    assert messages[0] == f"[chatty viewer-response] START RequestId: {request_id} Version: 1"
    assert messages[1] == f"[chatty viewer-response] {request_id}\thello world"
    assert messages[2] == f"[chatty viewer-response] {request_id}\tsecond line"
    assert messages[3] == f"[chatty viewer-response] END RequestId: {request_id}"
    assert re.fullmatch(
        rf"\[chatty viewer-response\] REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\t"
        r"Billed Duration: \d+ ms\tMemory Size: 128 MB",
        messages[4],
    )


def test_reload_picks_up_changes_and_survives_syntax_errors(tmp_path: Path) -> None:
    source = tmp_path / "live.py"
    source.write_text("def handler(event, context):\n    return 'v1'\n")
    function = Function.load("live.py:handler", tmp_path)
    assert function.handler({}, None) == "v1"  # type: ignore[arg-type]
    source.write_text("def handler(event, context):\n    return 'v2'\n")
    os.utime(source, (function.mtime + 5, function.mtime + 5))
    assert function.reload_if_changed()
    assert function.handler({}, None) == "v2"  # type: ignore[arg-type]
    source.write_text("def handler(event, context):\n    return (\n")
    os.utime(source, (function.mtime + 10, function.mtime + 10))
    assert not function.reload_if_changed()
    assert function.handler({}, None) == "v2"  # type: ignore[arg-type]


def test_load_errors_name_the_config_key(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError) as caught:
        runtime.load(association(tmp_path, "broken.py:handler"))
    assert (caught.value.source, caught.value.key) == ("test", "k")
    assert "ModuleNotFoundError" in caught.value.problem
    with pytest.raises(ConfigError, match="is not a handler reference"):
        runtime.load(association(tmp_path, "nodots"))


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("security_headers.py", "'security_headers.py' names no function: a handler reference is 'file.py:function'"),
        ("security_headers.py", "(for example 'security_headers.py:handler' or 'security_headers.handler')"),
        ("lib/auth.py:", "'lib/auth.py:' names no function: a handler reference is 'file.py:function' or"),
        (":handler", "':handler' names no function"),
        ("nodots", "'nodots' is not a handler reference: a handler reference is 'file.py:function' or"),
        ("index.mjs", "'index.mjs' names a Node.js file: Node.js handlers are not supported yet"),
        ("index.js:handler", "'index.js:handler' names a Node.js file: Node.js handlers are not supported yet"),
        ("app.cjs:handler", "Node.js handlers are not supported yet"),
        ("node_app.handler", "node_app.mjs is there, but Node.js handlers are not supported yet"),
    ],
)
def test_a_reference_that_is_not_a_python_handler_says_what_a_reference_looks_like(
    ref: str, problem: str, tmp_path: Path, runtime: Runtime
) -> None:
    (tmp_path / "security_headers.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "node_app.mjs").write_text("export const handler = async (event) => event;\n")
    with pytest.raises(ConfigError) as caught:
        runtime.load(association(tmp_path, ref))
    assert problem in caught.value.problem
    assert "has no function 'py'" not in caught.value.problem


# -- every handler in an environment of its own: a worker thread, with its own event loop for async handlers ------


def _module(function: Function) -> dict[str, Any]:
    """The loaded handler's module globals (where a test handler leaves what it saw)."""
    globals_: dict[str, Any] = function.handler.__globals__
    return globals_


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
    with pytest.raises(LambdaExecutionError, match=r"cancels.py:handler at viewer-request raised CancelledError"):
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
        with pytest.raises(LambdaExecutionError, match=timed_out):
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
    with pytest.raises(LambdaExecutionError, match=r"timed out after 0\.2 s"):
        await runtime.invoke(function, EVENT, trigger="viewer-request", seconds=0.2)
    for _ in range(200):
        if _module(function)["SEEN"]:
            break
        await asyncio.sleep(0.01)
    assert _module(function)["SEEN"] == ["cancelled"]
    after = runtime.load(association(tmp_path, "next.py:handler"))
    assert await runtime.invoke(after, EVENT, trigger="viewer-request") == "next"


async def test_a_job_whose_deadline_passes_in_the_queue_is_dropped_not_run(tmp_path: Path) -> None:
    runtime = Runtime(max_threads=1)
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
        with pytest.raises(LambdaExecutionError, match=r"timed out after 0\.1 s"):
            await runtime.invoke(counts, {"n": 1}, trigger="viewer-request", seconds=0.1)
        with pytest.raises(LambdaExecutionError):
            await hanging
        assert await runtime.invoke(counts, {"n": 2}, trigger="viewer-request") == 2  # past the stuck worker
        assert _module(counts)["RUNS"] == [2]
    finally:
        _module(hangs)["RELEASE"].set()
        runtime.close()


async def test_stuck_workers_do_not_count_toward_the_pool_size(tmp_path: Path) -> None:
    runtime = Runtime(max_threads=4)
    (tmp_path / "hangs.py").write_text(
        "import threading\nRELEASE = threading.Event()\ndef handler(event, context):\n    RELEASE.wait(10)\n"
    )
    (tmp_path / "quick.py").write_text("def handler(event, context):\n    return 'quick'\n")
    hangs = runtime.load(association(tmp_path, "hangs.py:handler"))
    quick = runtime.load(association(tmp_path, "quick.py:handler"))
    try:
        hung = [runtime.invoke(hangs, EVENT, trigger="viewer-request", seconds=0.2) for _ in range(10)]
        outcomes = await asyncio.gather(*hung, return_exceptions=True)
        assert all(isinstance(outcome, LambdaExecutionError) for outcome in outcomes)
        assert await runtime.invoke(quick, EVENT, trigger="viewer-request") == "quick"
    finally:
        _module(hangs)["RELEASE"].set()
        runtime.close()


async def test_invocations_leave_the_global_random_generator_to_the_handler(tmp_path: Path, runtime: Runtime) -> None:
    # A handler that seeds random gets the same numbers, however many requests were answered in between.
    (tmp_path / "seeded.py").write_text(
        "import random\ndef handler(event, context):\n    random.seed(7)\n    return random.random()\n"
    )
    (tmp_path / "draws.py").write_text("import random\ndef handler(event, context):\n    return random.random()\n")
    seeded = runtime.load(association(tmp_path, "seeded.py:handler"))
    draws = runtime.load(association(tmp_path, "draws.py:handler"))
    first = await runtime.invoke(seeded, EVENT, trigger="viewer-request")
    random.seed(7)
    expected = [random.random(), random.random()]
    random.seed(7)
    random.random()
    assert await runtime.invoke(draws, EVENT, trigger="viewer-request") == expected[1]  # nothing drawn in between
    assert first == expected[0]
