"""Running user functions as Lambda runs them, over executors.

Lambda's semantics live here, once, whatever runs the handler: the deadline, the ``context`` (from plain data),
the ``INIT_START``/``START``/``END``/``REPORT`` log and the platform's lines for timeouts, crashes, out-of-memory
kills and failed inits, the JSON round trip of results, throttling, and one neutral
:class:`~edgeproxy.errors.FunctionError` for every way an invocation can fail. Callers map a ``FunctionError`` to
their service's answer (CloudFront's 503, ALB's 502).

What runs the handler is an :class:`Executor`, which holds an :class:`Environment` for each invocation:
:class:`~edgeproxy.runtime.process.ProcessExecutor` (``isolation = "process"``, the default for handler references)
runs each function in execution environments of its own, child processes that each serve one invocation at a time
(Python or Node.js); :class:`~edgeproxy.runtime.threads.ThreadExecutor` (``isolation = "thread"``, and always for
Python callables) runs handlers in this process, each invocation on a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import shutil
import sys
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Required, TypedDict, Unpack

from edgeproxy.config import DEFAULT_IDLE_RECLAIM, Association, HandlerRef, Isolation
from edgeproxy.errors import ConfigError, FunctionError, HandlerLoadError
from edgeproxy.runtime.context import ContextData
from edgeproxy.runtime.deadline import Deadline
from edgeproxy.runtime.functions import FUNCTION_VERSION, Function, log_stream_name, parse_ref
from edgeproxy.runtime.log import InvocationLog, user_traceback
from edgeproxy.runtime.marshal import MarshalError, marshalled
from edgeproxy.runtime.process import ProcessExecutor
from edgeproxy.runtime.results import (
    UNCHANGED,
    HandlerFailed,
    InitFailed,
    Marshalled,
    RuntimeExited,
    Throttled,
)
from edgeproxy.runtime.threads import Raised, ThreadExecutor
from edgeproxy.triggers import FACTS, Source, default_timeout

__all__ = ["Environment", "Executor", "Function", "Result", "Runtime", "new_request_id", "parse_ref"]

# Not random's global generator, which a handler may seed for reproducible results (see events.cloudfront._ids).
_request_ids = random.Random()
# The version (4) and variant (RFC 4122) bits of a random UUID.
_UUID4_CLEAR = ~(0xF000 << 64 | 0xC000 << 48)
_UUID4_SET = 0x4000 << 64 | 0x8000 << 48


def new_request_id() -> str:
    """A Lambda request id: a random (version 4) UUID, without a getrandom() syscall, formatted directly (a third of
    what ``str(uuid.UUID(int=..., version=4))`` costs)."""
    digits = f"{(_request_ids.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


Part = Literal["request", "response"]


class Environment(Protocol):
    """Where one invocation runs, held for it by its executor: given the event, the context's data and the
    invocation's log, return what the handler returned (a Python value, or a
    :class:`~edgeproxy.runtime.results.Marshalled` result, or ``UNCHANGED`` when the result is the event's ``part``
    as it came), or raise what it raised (or a :mod:`~edgeproxy.runtime.results` failure). Cancelled at the
    deadline."""

    async def run(self, event: Any, context: ContextData, log: InvocationLog, *, part: Part | None = None) -> Any: ...


class Executor(Protocol):
    """What runs handlers. ``environment(function, log)`` holds an environment for one invocation (a new
    environment's init, a cold start, happens on entering, outside the invocation's deadline, its log lines going to
    ``log``); it raises :class:`~edgeproxy.runtime.results.Throttled` or
    :class:`~edgeproxy.runtime.results.InitFailed`."""

    def environment(self, function: Function, log: InvocationLog) -> AbstractAsyncContextManager[Environment]: ...

    def close(self) -> None: ...


class InvokeOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`Runtime.invoke_result`."""

    trigger: Required[Source]
    seconds: float | None
    memory: int
    unchanged: Any


@dataclass(frozen=True)
class Result:
    """What an invocation returned, as the invoker receives it: JSON-shaped ``value``, and the size in bytes of the
    JSON Lambda sent, or ``None`` when the handler returned the object it was told to compare with unchanged."""

    value: Any
    size: int | None


class Runtime:
    """Loads the functions of a distribution (or target group) and invokes them.

    ``isolation``, when given, overrides every association's (``serve --isolation thread``); ``idle_reclaim`` is
    how long (seconds) an idle execution environment is kept."""

    def __init__(
        self,
        *,
        max_threads: int = 64,
        executor: Executor | None = None,
        isolation: Isolation | None = None,
        idle_reclaim: float = DEFAULT_IDLE_RECLAIM,
    ) -> None:
        self.executor: Executor = executor or ThreadExecutor(max_threads)
        self.processes = ProcessExecutor(idle_reclaim=idle_reclaim)
        self.isolation = isolation
        self._functions: dict[tuple[Any, ...], Function] = {}
        self._by_association: dict[tuple[Association, bool], Function] = {}

    def load(self, association: Association, *, edge: bool = True) -> Function:
        """The function for an association (shared by associations naming the same function with the same
        settings). ``edge``: at a CloudFront trigger (else behind an ALB). A function of its own environments gets
        one started now, whose init (its module's import) must succeed: a failure is a
        :class:`~edgeproxy.errors.ConfigError` naming the association."""
        function = self._by_association.get((association, edge))
        if function is None:
            self.load_all((association,), edge=edge)
            function = self._by_association[(association, edge)]
        return function

    def load_all(self, associations: Iterable[Association], *, edge: bool = True) -> None:
        """:meth:`load` each association; the environments of new functions start together."""
        starting: list[tuple[Association, Function]] = []
        unresolved: ConfigError | None = None
        for association in associations:
            if (association, edge) in self._by_association:
                continue
            try:
                key, isolation = self._key(association, edge)
                function = self._functions.get(key)
                if function is None:
                    function = self._make(association, isolation, edge)
                    self._functions[key] = function
                    if function.isolation == "process":
                        starting.append((association, function))
            except ConfigError as error:
                unresolved = error  # after the inits of the associations before it, which may fail first
                break
            self._by_association[(association, edge)] = function
        failures = self.processes.prepare([function for _, function in starting])
        for association, function in starting:
            failure = failures.get(function)
            if failure is not None:
                self._forget(function)
                raise ConfigError(association.source, association.key, _init_problem(function, failure))
        if unresolved is not None:
            raise unresolved

    def _key(self, association: Association, edge: bool) -> tuple[tuple[Any, ...], Isolation]:
        """What identifies the function an association names (associations naming the same one share it), and
        where it runs. An in-process Python function is its module, whatever the settings (one module state)."""
        handler = association.handler
        if not isinstance(handler, str):
            return (handler, edge), "thread"
        try:
            language = parse_ref(handler, association.base_dir).language
        except HandlerLoadError as exc:
            raise ConfigError(association.source, association.key, str(exc)) from None
        isolation = self.isolation or association.isolation
        if language == "python" and isolation == "thread":
            return (handler, association.base_dir, edge, "thread"), "thread"
        settings = (association.python, association.node, association.memory, association.concurrency)
        return (handler, association.base_dir, edge, "process", *settings), "process"

    def _make(self, association: Association, isolation: Isolation, edge: bool) -> Function:
        handler: HandlerRef = association.handler
        try:
            if not isinstance(handler, str):
                function = Function.of(handler)
                function.edge = edge
                function.log_stream_name = log_stream_name(edge)
                return function
            settings = {"memory": association.memory, "concurrency": association.concurrency, "edge": edge}
            function = Function.resolve(handler, association.base_dir, **settings)
            if function.language == "python" and isolation == "thread":
                function._load()
                return function
            function.isolation = "process"  # a Node.js function always runs in environments of its own
            function.interpreter = _interpreter(function, association)
            return function
        except HandlerLoadError as exc:
            raise ConfigError(association.source, association.key, str(exc)) from None

    def _forget(self, function: Function) -> None:
        self._functions = {key: each for key, each in self._functions.items() if each is not function}
        self._by_association = {key: each for key, each in self._by_association.items() if each is not function}

    def functions(self) -> list[Function]:
        return list(self._functions.values())

    def reload_changed(self) -> list[Function]:
        """Reload the in-process functions whose source changed (keeping the previous code if the new one fails);
        returns those reloaded. Safe on a worker thread."""
        return [each for each in self.functions() if each.isolation == "thread" and each.reload_if_changed()]

    def restart_changed(self) -> list[Function]:
        """Restart the environments of the functions whose source changed (the next invocation starts one with the
        new code); returns them. On the event loop's thread."""
        changed = [each for each in self.functions() if each.isolation == "process" and each.changed()]
        for function in changed:
            self.processes.restart(function)
            logging.getLogger("edgeproxy.lambda").info("%s changed: its environments restart", function.ref)
        return changed

    async def watch(self, interval: float = 0.5) -> None:
        """Poll the handlers' source files, until cancelled: in-process functions are reloaded (on a worker thread:
        an import may take a while), the others get new environments."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.reload_changed)
            self.restart_changed()

    async def invoke(self, function: Function, event: Any, **options: Unpack[InvokeOptions]) -> Any:
        """Run one handler on one event, as Lambda would, and return the JSON-shaped result. Raises
        :class:`~edgeproxy.errors.FunctionError` when the invocation fails."""
        return (await self.invoke_result(function, event, **options)).value

    async def invoke_result(
        self,
        function: Function,
        event: Any,
        *,
        trigger: Source,
        seconds: float | None = None,
        memory: int = 128,
        unchanged: Any = None,
    ) -> Result:
        """:meth:`invoke`, with the size of the JSON the function returned. ``trigger`` is what it is invoked for;
        ``seconds`` its timeout (the trigger's default when ``None``) and ``memory`` its size in MB. A plain dict
        equal to ``unchanged`` (the part of the event the handler may return as it got it) is returned as it is,
        without its JSON round trip."""
        limit = seconds if seconds is not None else default_timeout(trigger)
        aws_request_id = new_request_id()
        edge = trigger != "alb"
        where = f"{function.ref} at {trigger}"
        log = InvocationLog(f"[{function.name} {trigger}]", aws_request_id, where)
        part: Part | None = None
        if unchanged is not None and trigger != "alb":
            part = "request" if FACTS[trigger].is_request else "response"
        executor = self.processes if function.isolation == "process" else self.executor
        level = logging.INFO
        try:
            async with executor.environment(function, log) as environment:
                context = ContextData.make(
                    name=function.name,
                    edge=edge,
                    version=FUNCTION_VERSION,
                    memory=memory,
                    aws_request_id=aws_request_id,
                    log_stream=function.log_stream_name,
                    timeout=limit,
                )
                log.line(f"START RequestId: {aws_request_id} Version: {context.function_version}")
                started = time.perf_counter()
                timed_out = False
                try:
                    with Deadline(limit):
                        returned = await environment.run(event, context, log, part=part)
                    return self._result(returned, unchanged, where, log)
                except TimeoutError:
                    timed_out = True
                    log.line(f"{aws_request_id} Task timed out after {limit:.2f} seconds")
                    raise FunctionError("timeout", f"{where} timed out after {limit:g} s") from None
                except HandlerFailed as failed:  # its runtime has logged it, as Lambda's runtimes do
                    raise _handler_error(function, where, failed) from None
                except RuntimeExited as exited:
                    log.line(f"RequestId: {aws_request_id} Error: {_exit_sentence(exited.status)}")
                    log.line("Runtime.ExitError")
                    if exited.out_of_memory:
                        log.max_memory_used_mb = memory  # Lambda reports the memory size on an out-of-memory kill
                        problem = f"{where} ran out of memory: over its {memory} MB, the environment was killed"
                        raise FunctionError("out_of_memory", f"{problem} (Runtime.ExitError)") from None
                    problem = f"{where}: {_exit_sentence(exited.status)} (Runtime.ExitError)"
                    raise FunctionError("unhandled", problem) from None
                except (asyncio.CancelledError, FunctionError):
                    raise  # cancelled: the viewer went away or the server is stopping, not the handler's doing
                except BaseException as exc:  # sys.exit(), KeyboardInterrupt... in a handler crash that invocation only
                    if isinstance(exc, Raised):
                        exc = exc.raised
                    handler_traceback = user_traceback(exc)
                    log.line(f"{aws_request_id} {handler_traceback}")
                    raise FunctionError(
                        "unhandled", f"{where} raised {_described(exc)}", handler_traceback=handler_traceback
                    ) from None
                finally:
                    log.line(f"END RequestId: {aws_request_id}")
                    log.line(
                        _report(
                            aws_request_id, time.perf_counter() - started, memory, log, limit if timed_out else None
                        )
                    )
        except FunctionError:
            level = logging.ERROR
            raise
        except Throttled as throttled:
            # A throttled invocation reaches no environment: Lambda logs nothing for it (the server logs the 503).
            problem = f"{where} was throttled: its {throttled.concurrency} environments (its concurrency) are busy"
            raise FunctionError("throttled", problem) from None
        except InitFailed as failed:
            level = logging.ERROR
            status = "timeout" if failed.timed_out else f"error\tError Type: {_init_error_type(failed)}"
            log.line(f"INIT_REPORT Init Duration: {failed.duration_ms:.2f} ms\tPhase: init\tStatus: {status}")
            raise FunctionError(
                "init_error", f"{where} failed its init: {failed}", handler_traceback=_stack_text(function, failed)
            ) from None
        finally:
            log.emit(level)

    @staticmethod
    def _result(returned: Any, unchanged: Any, where: str, log: InvocationLog) -> Result:
        if returned is UNCHANGED:
            return Result(unchanged, None)
        if type(returned) is Marshalled:
            return Result(returned.value, returned.size)
        if unchanged is not None and type(returned) is dict and returned == unchanged:
            return Result(returned, None)  # a plain dict: no user-defined __eq__ runs here
        try:  # what the invoker receives is the JSON the Lambda runtime made of the result
            return Result(*marshalled(returned))
        except MarshalError as exc:
            log.line(f"{log.aws_request_id} Runtime.MarshalError: Unable to marshal response: {exc}")
            raise FunctionError(
                "bad_result", f"{where} returned a value that is not JSON (Runtime.MarshalError: {exc})"
            ) from None

    def close(self) -> None:
        """Stop every execution environment (their processes killed and reaped) and the worker threads."""
        self.processes.close()
        self.executor.close()


def _report(request_id: str, elapsed: float, memory: int, log: InvocationLog, timeout: float | None) -> str:
    """Lambda's REPORT line (lambda-runtime-facts §2.3): Max Memory Used when the environment measured it, Init
    Duration on a cold start. The billed duration includes the init (billed since August 2025), and is capped at
    the timeout when the invocation timed out."""
    elapsed_ms = elapsed * 1000
    init_ms = log.init_duration_ms
    billed = math.ceil(timeout * 1000) if timeout is not None else max(1, math.ceil(elapsed_ms))
    if init_ms is not None:
        billed = math.ceil(billed + init_ms)
    line = f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\tBilled Duration: {billed} ms"
    line += f"\tMemory Size: {memory} MB"
    if log.max_memory_used_mb is not None:
        line += f"\tMax Memory Used: {log.max_memory_used_mb} MB"
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    return line


def _described(exc: BaseException) -> str:
    """``Name: message`` of a handler's exception, even one whose ``__str__`` raises."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return f"{type(exc).__name__} (its message could not be made: its __str__ raised)"


def _exit_sentence(status: str) -> str:
    """How Lambda's log words an environment's exit (lambda-runtime-facts §2.6)."""
    if status == "exit status 0":
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: {status}"


def _init_error_type(failed: InitFailed) -> str:
    # A user error type reads Runtime.Unknown in INIT_REPORT; the runtime's own Runtime.* types are kept (§2.7).
    return failed.error_type if failed.error_type.startswith("Runtime.") else "Runtime.Unknown"


def _stack_text(function: Function, failed: HandlerFailed | InitFailed) -> str | None:
    """The trace a runtime sent, as a traceback: Python's frames, or Node.js's stack lines."""
    if not failed.stack:
        return None
    if function.language == "node":
        return "\n".join(failed.stack)
    head = f"{failed.error_type}: {failed.message}" if failed.message else failed.error_type
    return "Traceback (most recent call last):\n" + "".join(failed.stack) + head


def _handler_error(function: Function, where: str, failed: HandlerFailed) -> FunctionError:
    if failed.error_type == "Runtime.MarshalError":
        return FunctionError("bad_result", f"{where} returned a value that is not JSON ({failed})")
    return FunctionError(
        "unhandled",
        f"{where} raised {failed.error_type}: {failed.message}",
        handler_traceback=_stack_text(function, failed),
    )


def _init_problem(function: Function, failed: InitFailed) -> str:
    """A failed init at start-up, as a ConfigError says it (the words of an in-process import's failure, then
    Lambda's error)."""
    path = str(function.path)
    if failed.timed_out:
        return f"{path!r} did not finish its init within Lambda's 10 s ({failed.message})"
    if failed.error_type == "Runtime.HandlerNotFound":
        return f"{path!r} has no function {function.attribute!r} ({failed})"
    trace = _stack_text(function, failed)
    return f"importing {path!r} failed: {failed}" + (f"\n{trace}" if trace else "")


def _interpreter(function: Function, association: Association) -> str:
    """The python or node a function's environments run: the association's, or this interpreter / the ``node`` on
    PATH. A missing Node.js is a :class:`HandlerLoadError` saying what to do."""
    if function.language == "python":
        return association.python or sys.executable
    if association.node is not None:
        return association.node
    found = shutil.which("node")
    if found is None:
        raise HandlerLoadError(
            f"{association.handler!r} is a Node.js handler, and there is no 'node' on PATH: install Node.js (18 or "
            'later), or name one with node = "/path/to/node" (in [distribution] or the association)'
        )
    return found
