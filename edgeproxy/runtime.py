"""Running user handlers as Lambda runs them: loaded once and kept warm, invoked with a context and a timeout,
logged with ``START``/``END``/``REPORT`` lines.

Sync handlers run on worker threads, so they never block the event loop; ``async def`` handlers run on the loop.
A handler that runs past its timeout is abandoned (its 503 goes out on time) — a Python thread cannot be killed, so
a sync handler that never returns keeps its worker thread; the pool grows on demand, so a few such handlers do not
starve the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import decimal
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import math
import queue
import random
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from edgeproxy.config import LIMITS, Association, HandlerRef, Trigger
from edgeproxy.errors import AlbError, ConfigError, HandlerLoadError, LambdaExecutionError, ViewerError

log = logging.getLogger("edgeproxy.lambda")

# What a function is invoked for: a Lambda@Edge trigger, or an ALB target group (§7).
Source = Trigger | Literal["alb"]
# §2.4: at the edge, a function without a configured timeout gets its trigger's limit (5 s at viewer triggers,
# 30 s at origin triggers). An ALB target runs for its function's own timeout (§7.5): Lambda's default is 3 s.
DEFAULT_TIMEOUTS: dict[Source, float] = {**{trigger: limits.timeout for trigger, limits in LIMITS.items()}, "alb": 3.0}
FUNCTION_VERSION = "1"  # Lambda@Edge runs numbered versions only (§2.4)
ACCOUNT_ID = "123456789012"
Handler = Callable[[Any, "LambdaContext"], Any]


@dataclass(frozen=True)
class Invocation:
    """One handler invocation as the pipeline saw it: the event it was given (as it was before the handler ran),
    what it returned, how long it took, and the error the viewer got because of it, if any."""

    request_id: str  # CloudFront's request id (the response's X-Amz-Cf-Id); in ALB mode the X-Amzn-Trace-Id
    trigger: Source  # a Lambda@Edge trigger, or "alb"
    handler: str
    event: Any
    result: Any
    duration: float  # seconds
    error: ViewerError | AlbError | None


Observer = Callable[[Invocation], None]


class MarshalError(Exception):
    """A handler's result that the Lambda runtime cannot send as JSON (``Runtime.MarshalError``)."""


def _decimal_digits(value: Any) -> Any:
    # The Python Lambda runtime writes a Decimal (DynamoDB hands them out) as its digits: Decimal("200") is 200.
    if isinstance(value, decimal.Decimal):
        return json.loads(str(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def result_json(result: Any) -> str:
    """A handler's result as the Python Lambda runtime sends it back to its invoker: serialized to JSON. Raises
    :class:`MarshalError` for what JSON cannot hold (a set, bytes, a datetime, a circular or too deep structure),
    which Lambda reports as the function's error."""
    try:
        return json.dumps(result, default=_decimal_digits)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MarshalError(str(exc)) from None


REFERENCE_FORMS = "a handler reference is 'file.py:function' or 'module.function'"
NODE_SUFFIXES = (".js", ".mjs", ".cjs")
NOT_NODE_YET = "Node.js handlers are not supported yet (edgeproxy runs Python handlers)"


def parse_ref(ref: str, base_dir: Path) -> tuple[Path, str]:
    """``path/to/file.py:function`` or Lambda-style ``package.module.function`` -> (source file, function name)."""
    file_part, colon, function = ref.rpartition(":")
    named_file = file_part if colon else ref
    if named_file.endswith(NODE_SUFFIXES):
        raise HandlerLoadError(f"{ref!r} names a Node.js file: {NOT_NODE_YET}")
    if colon and function and file_part:
        return (base_dir / file_part).resolve(), function
    if colon or ref.endswith(".py"):
        stem = Path(named_file).stem
        raise HandlerLoadError(
            f"{ref!r} names no function: {REFERENCE_FORMS} (for example '{named_file}:handler' or '{stem}.handler')"
        )
    module, dot, function = ref.rpartition(".")
    if not dot or not module or not function:
        raise HandlerLoadError(f"{ref!r} is not a handler reference: {REFERENCE_FORMS}")
    return (base_dir / (module.replace(".", "/") + ".py")).resolve(), function


@dataclass
class Function:
    """One handler: loaded from its source file (``reload_if_changed`` re-executes the module on change), or a
    Python callable handed over directly (the testing API; never reloaded)."""

    ref: str
    path: Path | None
    attribute: str
    name: str
    handler: Handler = field(init=False)
    is_async: bool = field(init=False)
    mtime: float = field(init=False)
    # One log stream per warm instance, as in Lambda.
    log_stream_name: str = field(
        init=False, default_factory=lambda: f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"
    )

    @classmethod
    def load(cls, ref: str, base_dir: Path) -> Function:
        path, attribute = parse_ref(ref, base_dir)
        function = cls(ref=ref, path=path, attribute=attribute, name=path.stem)
        function._load()
        return function

    @classmethod
    def of(cls, handler: Handler) -> Function:
        """A function for a callable, named after it (``module.qualname``)."""
        if not callable(handler):
            raise HandlerLoadError(f"{handler!r} is not callable")
        name = getattr(handler, "__name__", type(handler).__name__)
        ref = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', name)}"
        function = cls(ref=ref, path=None, attribute=name, name=name)
        function.handler = handler
        function.is_async = inspect.iscoroutinefunction(handler)
        function.mtime = 0.0
        return function

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.is_file():
            # A Lambda-style reference such as 'index.handler' may be meant for Node.js's index.mjs.
            node = [path for path in map(self.path.with_suffix, NODE_SUFFIXES) if path.is_file()]
            found = f" ({node[0].name} is there, but {NOT_NODE_YET})" if node else ""
            raise HandlerLoadError(f"handler file {str(self.path)!r} does not exist{found}")
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
        if self.path is None:
            return False
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
    """The ``context`` argument, with the fields of the Python Lambda runtime's context object.

    At the edge, the function runs as a regional replica named ``us-east-1.<name>`` of a numbered version; behind an
    ALB, it is the function itself, invoked unqualified (``$LATEST``)."""

    def __init__(self, function: Function, *, timeout: float, memory: int, aws_request_id: str, edge: bool) -> None:
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function.name}"
        self.function_name = f"us-east-1.{function.name}" if edge else function.name
        self.function_version = FUNCTION_VERSION if edge else "$LATEST"
        self.invoked_function_arn = f"{arn}:{FUNCTION_VERSION}" if edge else arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
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
        if log.isEnabledFor(level):
            # makeRecord + handle, not log.log: no caller lookup (the caller is always this line).
            log.handle(log.makeRecord(log.name, level, __file__, 0, "\n".join(self.lines), (), None))


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
    threading.__file__,
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


class _Inbox:
    """Handler results on their way back to one event loop. Workers append; a single ``call_soon_threadsafe`` wakes
    the loop for however many results are waiting, so a busy loop pays one self-pipe write per batch, not one per
    result (about 5x cheaper per invocation under load)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._results: collections.deque[tuple[asyncio.Future[Any], bool, Any]] = collections.deque()
        self._scheduled = False

    def put(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """Called on a worker thread."""
        self._results.append((future, ok, value))
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False  # first: a result appended from now on schedules another delivery
        while self._results:
            future, ok, value = self._results.popleft()
            if future.done():  # abandoned by a timeout
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class _Raised(Exception):
    """A ``BaseException`` that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``...),
    raised by a sync handler, on its way back to the loop. Set on a future as it is, asyncio would re-raise
    ``KeyboardInterrupt`` out of the event loop, and ``GeneratorExit`` would close the awaiting coroutines."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(raised)
        self.raised = raised


_Job = tuple[_Inbox, "asyncio.Future[Any]", contextvars.Context, Handler, Any, "LambdaContext"]


class _Workers:
    """Threads that run sync handlers: a job goes over a ``SimpleQueue``, its result comes back through the loop's
    :class:`_Inbox`. Threads are started when no idle one is left, up to ``max_threads``, and are daemons, so a
    handler that never returns cannot keep the process alive at exit."""

    def __init__(self, max_threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._max_threads = max_threads

    def submit(self, handler: Handler, event: Any, context: LambdaContext) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _Inbox(loop)
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((inbox, future, contextvars.copy_context(), handler, event, context))
        if self._jobs.qsize() > self._idle and len(self._threads) < self._max_threads:
            thread = threading.Thread(target=self._work, name=f"edgeproxy-handler-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return future

    def _work(self) -> None:
        # Lambda runs a handler on its runtime's main thread, where asyncio.get_event_loop() works; handlers (and
        # adapters such as Mangum) that call it must find a loop on this thread too.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._serve_jobs()
        finally:
            loop.close()

    def _serve_jobs(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if job is None:
                return
            inbox, future, run_context, handler, event, context = job
            try:
                result = run_context.run(handler, event, context)
            except Exception as exc:
                inbox.put(future, False, exc)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt... from a handler are its crash, not ours
                inbox.put(future, False, _Raised(exc))
            else:
                inbox.put(future, True, result)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()


class Runtime:
    """Loads the handlers of a distribution and invokes them."""

    def __init__(self, *, max_threads: int = 64) -> None:
        self._workers = _Workers(max_threads)
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

    async def invoke(
        self, function: Function, event: Any, *, trigger: Source, seconds: float | None = None, memory: int = 128
    ) -> Any:
        """Run one handler on one event, as Lambda would; raise :class:`LambdaExecutionError` on a crash or timeout."""
        limit = seconds if seconds is not None else DEFAULT_TIMEOUTS[trigger]
        aws_request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))  # no getrandom() syscall
        prefix = f"[{function.name} {trigger}]"
        context = LambdaContext(
            function, timeout=limit, memory=memory, aws_request_id=aws_request_id, edge=trigger != "alb"
        )
        invocation = _Invocation(prefix=prefix, aws_request_id=aws_request_id)
        invocation.lines.append(f"{prefix} START RequestId: {aws_request_id} Version: {context.function_version}")
        _install_stdout_router()  # again: test runners and embedding programs swap sys.stdout
        level = logging.INFO
        token = _current.set(invocation)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                if function.is_async:
                    return await function.handler(event, context)
                return await self._workers.submit(function.handler, event, context)
        except TimeoutError:
            level = logging.ERROR
            invocation.lines.append(f"{prefix} {aws_request_id} Task timed out after {limit:.2f} seconds")
            raise LambdaExecutionError(f"{function.ref} at {trigger} timed out after {limit:g} s") from None
        except asyncio.CancelledError:
            raise  # the viewer went away or the server is stopping: not the handler's doing
        except BaseException as exc:  # sys.exit(), KeyboardInterrupt... in a handler crash that invocation only
            if isinstance(exc, _Raised):
                exc = exc.raised
            level = logging.ERROR
            user_traceback = _user_traceback(exc)
            invocation.lines.append(f"{prefix} {aws_request_id} {user_traceback}")
            raise LambdaExecutionError(
                f"{function.ref} at {trigger} raised {type(exc).__name__}: {exc}", handler_traceback=user_traceback
            ) from None
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
        self._workers.close()
