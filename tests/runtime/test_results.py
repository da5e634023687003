"""runtime/results.py: what an environment hands back, and how the Runtime words each failure as Lambda does
(through the Runtime, with a fake environment: the words are the Runtime's, whatever the language)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgeproxy.errors import FunctionError
from edgeproxy.runtime import Runtime
from edgeproxy.runtime.context import ContextData
from edgeproxy.runtime.functions import Function
from edgeproxy.runtime.log import InvocationLog
from edgeproxy.runtime.results import (
    UNCHANGED,
    HandlerFailed,
    InitFailed,
    Marshalled,
    RuntimeExited,
    Throttled,
)


class Scripted:
    """An executor whose environment answers with ``outcome`` (a value, or a failure to raise), entering raises
    ``on_enter`` when given."""

    def __init__(self, outcome: Any, on_enter: BaseException | None = None) -> None:
        self.outcome = outcome
        self.on_enter = on_enter

    @contextlib.asynccontextmanager
    async def environment(self, function: Function, log: InvocationLog) -> AsyncIterator[Scripted]:
        if self.on_enter is not None:
            raise self.on_enter
        log.init_duration_ms = 12.5
        yield self

    async def run(self, event: Any, context: ContextData, log: InvocationLog, *, part: str | None = None) -> Any:
        log.max_memory_used_mb = 42
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def close(self) -> None:
        return None


def _function(language: str = "python") -> Function:
    function = Function(ref="app.py:handler", path=None, attribute="handler", name="app", language=language)  # type: ignore[arg-type]
    function.isolation = "process"
    return function


async def _invoke(outcome: Any, on_enter: BaseException | None = None, language: str = "python", **options: Any) -> Any:
    runtime = Runtime()
    runtime.processes = Scripted(outcome, on_enter)  # type: ignore[assignment]
    try:
        return await runtime.invoke_result(_function(language), {"e": 1}, trigger="viewer-request", **options)
    finally:
        runtime.executor.close()


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeproxy.lambda")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [line for record in caplog.records for line in record.getMessage().split("\n")]


async def test_a_marshalled_result_keeps_its_size_and_the_report_its_memory_and_init(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = await _invoke(Marshalled({"a": 1}, 8))
    assert (result.value, result.size) == ({"a": 1}, 8)
    report = _lines(caplog)[-1]
    assert report.endswith("\tMemory Size: 128 MB\tMax Memory Used: 42 MB\tInit Duration: 12.50 ms")


async def test_unchanged_is_the_invokers_own_object() -> None:
    mine = {"uri": "/"}
    result = await _invoke(UNCHANGED, unchanged=mine)
    assert result.value is mine
    assert result.size is None


async def test_a_handler_failure_is_unhandled_with_its_trace() -> None:
    stack = ['  File "/x/app.py", line 2, in handler\n    raise ValueError("no")\n']
    with pytest.raises(FunctionError) as caught:
        await _invoke(HandlerFailed("ValueError", "no", stack))
    assert (caught.value.kind, caught.value.reason) == (
        "unhandled",
        "app.py:handler at viewer-request raised ValueError: no",
    )
    assert caught.value.handler_traceback == f"Traceback (most recent call last):\n{stack[0]}ValueError: no"
    with pytest.raises(FunctionError) as caught:
        await _invoke(
            HandlerFailed("Error", "boom", ["Error: boom", "    at handler (file:///x/app.mjs:2:9)"]), language="node"
        )
    assert caught.value.handler_traceback == "Error: boom\n    at handler (file:///x/app.mjs:2:9)"


async def test_a_marshal_error_is_a_bad_result() -> None:
    with pytest.raises(FunctionError) as caught:
        await _invoke(HandlerFailed("Runtime.MarshalError", "Unable to marshal response: no", []))
    assert caught.value.kind == "bad_result"
    assert (
        "returned a value that is not JSON (Runtime.MarshalError: Unable to marshal response: no)"
        in caught.value.reason
    )


@pytest.mark.parametrize(
    ("status", "sentence"),
    [
        ("exit status 1", "Runtime exited with error: exit status 1"),
        ("signal: segmentation fault", "Runtime exited with error: signal: segmentation fault"),
        ("exit status 0", "Runtime exited without providing a reason"),
    ],
)
async def test_an_exit_is_lambdas_two_lines_before_end(
    status: str, sentence: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FunctionError) as caught:
        await _invoke(RuntimeExited(status))
    assert caught.value.kind == "unhandled"
    assert caught.value.reason.endswith(f"{sentence} (Runtime.ExitError)")
    lines = _lines(caplog)
    at = next(index for index, line in enumerate(lines) if line.endswith(sentence))
    assert "] RequestId: " in lines[at]
    assert lines[at + 1].endswith("] Runtime.ExitError")
    assert "END RequestId" in lines[at + 2]


async def test_an_out_of_memory_kill_reports_the_memory_size(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(FunctionError) as caught:
        await _invoke(RuntimeExited("signal: killed", out_of_memory=True), memory=512)
    assert caught.value.kind == "out_of_memory"
    assert any(line.endswith("Error: Runtime exited with error: signal: killed") for line in _lines(caplog))
    assert _lines(caplog)[-1].endswith("\tMemory Size: 512 MB\tMax Memory Used: 512 MB\tInit Duration: 12.50 ms")


async def test_a_failed_init_logs_init_report_and_no_start(caplog: pytest.LogCaptureFixture) -> None:
    failure = InitFailed(
        "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'x'", [], duration_ms=31.4
    )
    with pytest.raises(FunctionError) as caught:
        await _invoke(None, on_enter=failure)
    assert caught.value.kind == "init_error"
    lines = _lines(caplog)
    assert lines[-1].endswith(
        "] INIT_REPORT Init Duration: 31.40 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError"
    )
    assert not any("START RequestId" in line for line in lines)
    user_error = InitFailed("KeyError", "'x'", [], duration_ms=1)
    with pytest.raises(FunctionError):
        await _invoke(None, on_enter=user_error)
    assert _lines(caplog)[-1].endswith("Error Type: Runtime.Unknown")  # a user's error type reads Runtime.Unknown
    timed_out = InitFailed("Runtime.Unknown", "the init ran past 10 s", [], duration_ms=10000, timed_out=True)
    with pytest.raises(FunctionError):
        await _invoke(None, on_enter=timed_out)
    assert _lines(caplog)[-1].endswith("INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout")


async def test_throttled_reaches_no_environment_and_logs_no_invocation(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(FunctionError) as caught:
        await _invoke(None, on_enter=Throttled(32))
    assert caught.value.kind == "throttled"
    assert (
        caught.value.reason
        == "app.py:handler at viewer-request was throttled: its 32 environments (its concurrency) are busy"
    )
    assert _lines(caplog) == []
