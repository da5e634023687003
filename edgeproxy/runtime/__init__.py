"""Running user functions as Lambda runs them, over an executor.

Lambda's semantics live here, once, whatever runs the handler: the deadline, the ``context`` (from plain data),
the ``START``/``END``/``REPORT`` log, the JSON round trip of results, and one neutral
:class:`~edgeproxy.errors.FunctionError` for every way an invocation can fail. What runs the handler is an
:class:`Executor`; :class:`~edgeproxy.runtime.threads.ThreadExecutor` runs it in this process. Callers map a
``FunctionError`` to their service's answer (CloudFront's 503, ALB's 502).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Required, TypedDict, Unpack

from edgeproxy.config import Association, HandlerRef
from edgeproxy.errors import ConfigError, FunctionError, HandlerLoadError
from edgeproxy.runtime.context import ContextData
from edgeproxy.runtime.functions import FUNCTION_VERSION, Function, parse_ref
from edgeproxy.runtime.log import InvocationLog, user_traceback
from edgeproxy.runtime.marshal import MarshalError, marshalled
from edgeproxy.runtime.threads import Raised, ThreadExecutor
from edgeproxy.triggers import Source, default_timeout

__all__ = ["Executor", "Function", "Result", "Runtime", "new_request_id", "parse_ref"]

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


class Executor(Protocol):
    """What runs a handler: given the loaded function, the event, the context's data and the invocation's log,
    return what the handler returned, or raise what it raised (or a :class:`~edgeproxy.errors.FunctionError`).
    Cancelled at the deadline."""

    async def run(self, function: Function, event: Any, context: ContextData, log: InvocationLog) -> Any: ...

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
    """Loads the functions of a distribution (or target group) and invokes them."""

    def __init__(self, *, max_threads: int = 64, executor: Executor | None = None) -> None:
        self.executor: Executor = executor or ThreadExecutor(max_threads)
        self._functions: dict[tuple[HandlerRef, Path], Function] = {}

    def load(self, association: Association) -> Function:
        """The loaded function for an association (shared by associations naming the same reference)."""
        key = (association.handler, association.base_dir)
        function = self._functions.get(key)
        if function is None:
            try:
                handler = association.handler
                if isinstance(handler, str):
                    function = Function.load(handler, association.base_dir)
                else:
                    function = Function.of(handler)
            except HandlerLoadError as exc:
                raise ConfigError(association.source, association.key, str(exc)) from None
            self._functions[key] = function
        return function

    def load_all(self, associations: Iterable[Association]) -> None:
        for association in associations:
            self.load(association)

    def reload_changed(self) -> list[Function]:
        return [function for function in self._functions.values() if function.reload_if_changed()]

    async def watch(self, interval: float = 0.5) -> None:
        """Poll the handlers' source files and reload those that changed, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.reload_changed)

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
        context = ContextData.make(
            name=function.name,
            edge=edge,
            version=FUNCTION_VERSION,
            memory=memory,
            aws_request_id=aws_request_id,
            log_stream=function.log_stream_name,
            timeout=limit,
        )
        log = InvocationLog(
            prefix=f"[{function.name} {trigger}]", aws_request_id=aws_request_id, label=f"{function.ref} at {trigger}"
        )
        log.line(f"START RequestId: {aws_request_id} Version: {context.function_version}")
        level = logging.INFO
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                returned = await self.executor.run(function, event, context, log)
            if unchanged is not None and type(returned) is dict and returned == unchanged:
                return Result(returned, None)  # a plain dict: no user-defined __eq__ runs here
            try:  # what the invoker receives is the JSON the Lambda runtime made of the result
                return Result(*marshalled(returned))
            except MarshalError as exc:
                level = logging.ERROR
                log.line(f"{aws_request_id} Runtime.MarshalError: Unable to marshal response: {exc}")
                raise FunctionError(
                    "bad_result",
                    f"{function.ref} at {trigger} returned a value that is not JSON (Runtime.MarshalError: {exc})",
                ) from None
        except TimeoutError:
            level = logging.ERROR
            log.line(f"{aws_request_id} Task timed out after {limit:.2f} seconds")
            raise FunctionError("timeout", f"{function.ref} at {trigger} timed out after {limit:g} s") from None
        except (asyncio.CancelledError, FunctionError):
            raise  # cancelled: the viewer went away or the server is stopping, not the handler's doing
        except BaseException as exc:  # sys.exit(), KeyboardInterrupt... in a handler crash that invocation only
            if isinstance(exc, Raised):
                exc = exc.raised
            level = logging.ERROR
            handler_traceback = user_traceback(exc)
            log.line(f"{aws_request_id} {handler_traceback}")
            raise FunctionError(
                "unhandled",
                f"{function.ref} at {trigger} raised {type(exc).__name__}: {exc}",
                handler_traceback=handler_traceback,
            ) from None
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.end(
                f"END RequestId: {aws_request_id}",
                f"REPORT RequestId: {aws_request_id}\tDuration: {elapsed_ms:.2f} ms\t"
                f"Billed Duration: {max(1, math.ceil(elapsed_ms))} ms\tMemory Size: {memory} MB",
                level=level,
            )

    def close(self) -> None:
        self.executor.close()
