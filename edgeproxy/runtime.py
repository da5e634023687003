"""Running user handlers as Lambda runs them: loaded once and kept warm, invoked with a context and a timeout,
logged with ``START``/``END``/``REPORT`` lines.

Sync handlers run on a dedicated thread pool, so they never block the event loop; ``async def`` handlers run on
the loop. A handler that runs past its timeout is abandoned (its 503 goes out on time) — a Python thread cannot be
killed, so a sync handler that never returns keeps its worker thread; the pool is sized so that a few such
handlers do not starve the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hashlib
import importlib.util
import inspect
import io
import logging
import math
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from edgeproxy.config import Association, Trigger
from edgeproxy.errors import ConfigError, HandlerLoadError, LambdaExecutionError

log = logging.getLogger("edgeproxy.lambda")

# What a function is invoked for: a Lambda@Edge trigger, or an ALB target group (§7).
Source = Trigger | Literal["alb"]
# §2.4: 5 s at viewer triggers, 30 s at origin triggers (configurable per association). An ALB target runs for its
# function's own timeout (§7.5): Lambda's default is 3 s.
DEFAULT_TIMEOUTS: dict[Source, float] = {
    "viewer-request": 5.0,
    "viewer-response": 5.0,
    "origin-request": 30.0,
    "origin-response": 30.0,
    "alb": 3.0,
}
FUNCTION_VERSION = "1"  # Lambda@Edge runs numbered versions only (§2.4)
ACCOUNT_ID = "123456789012"
Handler = Callable[[Any, "LambdaContext"], Any]


def parse_ref(ref: str, base_dir: Path) -> tuple[Path, str]:
    """``path/to/file.py:function`` or Lambda-style ``package.module.function`` -> (source file, function name)."""
    if ":" in ref:
        file_part, _, function = ref.rpartition(":")
        return (base_dir / file_part).resolve(), function
    module, dot, function = ref.rpartition(".")
    if not dot or not module or not function:
        raise HandlerLoadError(f"{ref!r} is not a handler reference (use 'file.py:function' or 'module.function')")
    return (base_dir / (module.replace(".", "/") + ".py")).resolve(), function


@dataclass
class Function:
    """One handler, loaded from its source file. ``reload_if_changed`` re-executes the module on change."""

    ref: str
    path: Path
    attribute: str
    name: str
    handler: Handler = field(init=False)
    is_async: bool = field(init=False)
    mtime: float = field(init=False)
    log_stream_name: str = field(init=False)

    @classmethod
    def load(cls, ref: str, base_dir: Path) -> Function:
        path, attribute = parse_ref(ref, base_dir)
        function = cls(ref=ref, path=path, attribute=attribute, name=path.stem)
        # One log stream per warm instance, as in Lambda.
        function.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"
        function._load()
        return function

    def _load(self) -> None:
        if not self.path.is_file():
            raise HandlerLoadError(f"handler file {str(self.path)!r} does not exist")
        mtime = self.path.stat().st_mtime
        digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:12]
        module_name = f"edgeproxy_handler_{self.path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, self.path)
        if spec is None or spec.loader is None:
            raise HandlerLoadError(f"{str(self.path)!r} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        # Like Lambda's task root: the handler's folder is importable, so it can import its siblings.
        folder = str(self.path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise HandlerLoadError(
                f"importing {str(self.path)!r} failed: {type(exc).__name__}: {exc}\n{_user_traceback(exc)}"
            ) from exc
        handler = getattr(module, self.attribute, None)
        if handler is None:
            raise HandlerLoadError(f"{str(self.path)!r} has no function {self.attribute!r}")
        if not callable(handler):
            raise HandlerLoadError(f"{self.path.name}:{self.attribute} is not callable")
        sys.modules[module_name] = module
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self.mtime = mtime

    def reload_if_changed(self) -> bool:
        """Re-load the source if its modification time changed. Keeps the old code if the new one fails."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self.mtime:
            return False
        try:
            self._load()
        except HandlerLoadError as exc:
            self.mtime = mtime
            log.error("reload of %s failed, keeping the previous version: %s", self.ref, exc)
            return False
        log.info("reloaded %s", self.ref)
        return True


class LambdaContext:
    """The ``context`` argument, with the fields of the Python Lambda runtime's context object."""

    def __init__(self, function: Function, *, timeout: float, memory: int, aws_request_id: str) -> None:
        self.function_name = f"us-east-1.{function.name}"
        self.function_version = FUNCTION_VERSION
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function.name}:{FUNCTION_VERSION}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/us-east-1.{function.name}"
        self.log_stream_name = function.log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class _Invocation:
    """The Lambda log of one invocation: START, the handler's prints (each line prefixed with the request id), END
    and REPORT. It is emitted as one multi-line log record when the invocation ends, which keeps concurrent
    invocations' lines together and costs one write instead of one per line."""

    prefix: str
    aws_request_id: str
    lines: list[str] = field(default_factory=list)
    pending: str = ""

    def write(self, text: str) -> None:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        self.lines.extend(f"{self.prefix} {self.aws_request_id}\t{line}" for line in lines)

    def emit(self, level: int = logging.INFO) -> None:
        if self.pending:
            self.write("\n")
        log.log(level, "\n".join(self.lines))


_current: contextvars.ContextVar[_Invocation | None] = contextvars.ContextVar("edgeproxy_invocation", default=None)


class _StdoutRouter(io.TextIOBase):
    """Stands in for ``sys.stdout``: text printed inside an invocation goes to that invocation's log."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        invocation = _current.get()
        if invocation is None:
            return self.fallback.write(text)
        invocation.write(text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return self.fallback.isatty()


def _install_stdout_router() -> None:
    if not isinstance(sys.stdout, _StdoutRouter):
        sys.stdout = _StdoutRouter(sys.stdout)


_NOT_USER_CODE = (
    str(Path(__file__).parent),
    str(Path(asyncio.__file__).parent),
    str(Path(concurrent.futures.__file__).parent),
    "<frozen importlib",
)


def _user_traceback(exc: BaseException) -> str:
    """The traceback cut to the user's own frames (no edgeproxy, asyncio or thread-pool frames)."""
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith(_NOT_USER_CODE)
    ]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "Traceback (most recent call last):\n" + "".join(lines).rstrip()


class Runtime:
    """Loads the handlers of a distribution and invokes them."""

    def __init__(self, *, max_threads: int = 64) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="edgeproxy-handler"
        )
        self._functions: dict[tuple[str, Path], Function] = {}

    def load(self, association: Association) -> Function:
        """The loaded function for an association (shared by associations naming the same reference)."""
        key = (association.handler, association.base_dir)
        function = self._functions.get(key)
        if function is None:
            try:
                function = Function.load(association.handler, association.base_dir)
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
            await asyncio.get_running_loop().run_in_executor(self._executor, self.reload_changed)

    async def invoke(
        self, function: Function, event: Any, *, trigger: Source, seconds: float | None = None, memory: int = 128
    ) -> Any:
        """Run one handler on one event, as Lambda would; raise :class:`LambdaExecutionError` on a crash or timeout."""
        limit = seconds if seconds is not None else DEFAULT_TIMEOUTS[trigger]
        aws_request_id = str(uuid.uuid4())
        prefix = f"[{function.name} {trigger}]"
        context = LambdaContext(function, timeout=limit, memory=memory, aws_request_id=aws_request_id)
        invocation = _Invocation(prefix=prefix, aws_request_id=aws_request_id)
        invocation.lines.append(f"{prefix} START RequestId: {aws_request_id} Version: {FUNCTION_VERSION}")
        _install_stdout_router()  # again: test runners and embedding programs swap sys.stdout
        level = logging.INFO
        token = _current.set(invocation)
        started = time.perf_counter()
        try:
            running: Awaitable[Any]
            if function.is_async:
                running = function.handler(event, context)
            else:
                running = asyncio.get_running_loop().run_in_executor(
                    self._executor, contextvars.copy_context().run, function.handler, event, context
                )
            return await asyncio.wait_for(running, limit)
        except TimeoutError:
            level = logging.ERROR
            invocation.lines.append(f"{prefix} {aws_request_id} Task timed out after {limit:.2f} seconds")
            raise LambdaExecutionError(f"{function.ref} at {trigger} timed out after {limit:g} s") from None
        except Exception as exc:
            level = logging.ERROR
            invocation.lines.append(f"{prefix} {aws_request_id} {_user_traceback(exc)}")
            raise LambdaExecutionError(f"{function.ref} at {trigger} raised {type(exc).__name__}: {exc}") from None
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            _current.reset(token)
            invocation.lines.append(f"{prefix} END RequestId: {aws_request_id}")
            invocation.lines.append(
                f"{prefix} REPORT RequestId: {aws_request_id}\tDuration: {elapsed_ms:.2f} ms\t"
                f"Billed Duration: {max(1, math.ceil(elapsed_ms))} ms\tMemory Size: {memory} MB"
            )
            invocation.emit(level)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
