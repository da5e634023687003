"""Running user handlers as Lambda runs them: loaded once and kept warm, invoked with a context and a timeout,
logged with ``START``/``END``/``REPORT`` lines.

Every handler runs on a worker thread, as each Lambda invocation runs in an environment of its own: a sync handler on
the thread, an ``async def`` one on the thread's own event loop. So no handler ever blocks the proxy's event loop,
and a blocking call (``time.sleep``, a busy loop) delays only its own invocation. A handler that runs past its
timeout is abandoned (its 503 goes out on time): an async one is cancelled on its loop; a sync one cannot be stopped
(a Python thread cannot be killed) and keeps its worker thread, which then no longer counts toward the pool's size,
so handlers that never return cost only their own requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import decimal
import errno
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
import types
import uuid
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from edgeproxy.config import LIMITS, Association, HandlerRef, Trigger
from edgeproxy.errors import AlbError, ConfigError, HandlerLoadError, LambdaExecutionError, ViewerError

log = logging.getLogger("edgeproxy.lambda")
diagnostics = logging.getLogger("edgeproxy")  # edgeproxy's own findings about a handler, beside its Lambda log

# What a function is invoked for: a Lambda@Edge trigger, or an ALB target group (§7).
Source = Trigger | Literal["alb"]
# §2.4: at the edge, a function without a configured timeout gets its trigger's limit (5 s at viewer triggers,
# 30 s at origin triggers). An ALB target runs for its function's own timeout (§7.5): Lambda's default is 3 s.
DEFAULT_TIMEOUTS: dict[Source, float] = {**{trigger: limits.timeout for trigger, limits in LIMITS.items()}, "alb": 3.0}
FUNCTION_VERSION = "1"  # Lambda@Edge runs numbered versions only (§2.4)
# Not random's global generator, which a handler may seed for reproducible results (see events.cloudfront._ids).
_request_ids = random.Random()
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


# A step of an async handler's coroutine (the code between two awaits) running this long is reported in the log.
SLOW_STEP_SECONDS = 1.0


@dataclass(eq=False, slots=True)
class _Job:
    """One invocation on its way to a worker thread and back. ``deadline`` is ``time.monotonic()`` at the
    invocation's timeout: a job still queued then is dropped, and a worker still running it is stuck."""

    inbox: _Inbox
    future: asyncio.Future[Any]
    run_context: contextvars.Context
    handler: Handler
    event: Any
    context: LambdaContext
    is_async: bool
    deadline: float
    label: str  # "<handler> at <trigger>", for the log
    step_started: float | None = None  # an async handler's step running since (time.monotonic()), if any
    longest_step: float = 0.0
    timed_out: bool = False
    finished: bool = False
    task: asyncio.Task[Any] | None = None  # an async handler's task on its worker's loop, while it runs

    def blocked_for(self) -> float | None:
        """How long an async handler has been running one step without yielding to its loop, if it is."""
        started = self.step_started
        return None if started is None else time.monotonic() - started

    def abandon(self) -> None:
        """The invocation timed out: an async handler is cancelled on its own loop (a sync one cannot be stopped)."""
        self.timed_out = True
        if (task := self.task) is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                task.get_loop().call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:  # on the handler's loop, between two of its steps
        if not self.finished and self.task is not None:
            self.task.cancel()


@types.coroutine
def _timed_steps(job: _Job, coroutine: Coroutine[Any, Any, Any]) -> Generator[Any, None, Any]:
    """Drive an async handler's coroutine as its task would, each step in the invocation's context (so that its
    prints reach the invocation's log), timing every step: a step that does not yield blocks the handler's loop."""
    value: Any = None
    error: BaseException | None = None
    while True:
        job.step_started = started = time.monotonic()
        try:
            if error is None:
                yielded = job.run_context.run(coroutine.send, value)
            else:
                yielded = job.run_context.run(coroutine.throw, error)
        except StopIteration as stop:
            return stop.value
        finally:
            job.step_started = None
            job.longest_step = max(job.longest_step, time.monotonic() - started)
        try:
            value, error = (yield yielded), None
        except BaseException as exc:  # a cancellation or another exception thrown into the task: the handler's
            value, error = None, exc


class _Worker:
    """A worker thread and the job it is running (``None`` while idle)."""

    def __init__(self, work: Callable[[_Worker], None], name: str) -> None:
        self.thread = threading.Thread(target=work, args=(self,), name=name, daemon=True)
        self.job: _Job | None = None


class _Workers:
    """Threads that run handlers, as Lambda runs each invocation in an environment of its own: a sync handler on the
    thread, an ``async def`` one on the thread's own event loop, so a blocking call in either delays only its own
    invocation, never the proxy's loop. A job goes over a ``SimpleQueue``; its result comes back through the loop's
    :class:`_Inbox`.

    A thread is started when no idle one is left, up to ``max_threads`` that are not stuck (a stuck worker is one
    still running a job past its deadline, which a Python thread cannot be made to stop): handlers that never return
    cost their own requests only. A job whose deadline passes while it is queued is dropped, not run. Threads are
    daemons, so a handler that never returns cannot keep the process alive at exit."""

    def __init__(self, max_threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
        self._workers: list[_Worker] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._max_threads = max_threads

    def submit(
        self, handler: Handler, event: Any, context: LambdaContext, *, is_async: bool, seconds: float, label: str
    ) -> _Job:
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _Inbox(loop)
        job = _Job(
            inbox=inbox,
            future=loop.create_future(),
            run_context=contextvars.copy_context(),
            handler=handler,
            event=event,
            context=context,
            is_async=is_async,
            deadline=time.monotonic() + seconds,
            label=label,
        )
        self._jobs.put(job)
        self.grow()
        return job

    def grow(self) -> None:
        """Start a thread if jobs are waiting and no worker is idle, unless ``max_threads`` are busy in time."""
        if self._jobs.qsize() <= self._idle:
            return
        with self._lock:
            if len(self._workers) >= self._max_threads:
                now = time.monotonic()
                stuck = sum(1 for worker in self._workers if worker.job is not None and worker.job.deadline <= now)
                if len(self._workers) - stuck >= self._max_threads:
                    return
            worker = _Worker(self._work, f"edgeproxy-handler-{len(self._workers)}")
            self._workers.append(worker)
        try:
            worker.thread.start()
        except RuntimeError as exc:  # no more threads: the job waits for a worker, or for its deadline
            with self._lock:
                self._workers.remove(worker)
            diagnostics.warning("cannot start a handler thread (%s); %d running", exc, len(self._workers))

    def _work(self, worker: _Worker) -> None:
        # The thread's own loop, for async handlers, and for sync ones that call asyncio.get_event_loop() (as they
        # may on Lambda's main thread, as Mangum does). None while the process is out of file descriptors.
        loop = _WorkerLoop.make()
        try:
            job = self._take(worker)
            while job is not None:
                if not job.is_async:
                    self._run_sync(job)
                    job = self._take(worker)
                    continue
                loop = loop or _WorkerLoop.make()
                if loop is None:
                    problem = "no event loop for an async handler: the process is out of file descriptors"
                    job.inbox.put(job.future, False, OSError(errno.EMFILE, problem))
                    job = self._take(worker)
                    continue
                running = job
                try:
                    job = loop.run_until_complete(self._serve_async(worker, running))
                except RuntimeError as exc:  # the handler stopped its loop: its invocation times out; a fresh loop
                    label = running.label if worker.job is None else worker.job.label
                    diagnostics.warning("%s stopped its event loop (%s); its worker starts a new one", label, exc)
                    _close_loop(loop)
                    loop = _WorkerLoop.make()
                    job = self._take(worker)
        finally:
            if loop is not None:
                _close_loop(loop)

    def _take(self, worker: _Worker) -> _Job | None:
        """The next job to run (``None``: stop), skipping those abandoned or past their deadline while queued."""
        worker.job = None
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if job is None:
                return None
            if not job.future.done() and time.monotonic() < job.deadline:
                worker.job = job
                return job

    @staticmethod
    def _run_sync(job: _Job) -> None:
        try:
            result = job.run_context.run(job.handler, job.event, job.context)
        except Exception as exc:
            job.inbox.put(job.future, False, exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... from a handler are its crash, not ours
            job.inbox.put(job.future, False, _Raised(exc))
        else:
            job.inbox.put(job.future, True, result)
        job.finished = True

    async def _serve_async(self, worker: _Worker, job: _Job | None) -> _Job | None:
        """Run async jobs on this thread's loop, one at a time, until a sync one (returned) or the end (``None``).
        Between two jobs the thread waits for the next one inside the loop, so tasks a handler left behind do not
        run then: an environment is frozen between invocations, as on Lambda."""
        while job is not None and job.is_async:
            await self._run_async(job)
            job = self._take(worker)
        return job

    @staticmethod
    async def _run_async(job: _Job) -> None:
        job.task = task = asyncio.current_task()
        assert task is not None
        try:
            result = await _timed_steps(job, job.run_context.run(job.handler, job.event, job.context))
        except asyncio.CancelledError as exc:
            if job.timed_out:  # our own cancellation at the deadline: the invocation has had its 503
                task.uncancel()
            else:  # the handler raised it itself (or let one of its own through): its crash
                job.inbox.put(job.future, False, _Raised(exc))
        except Exception as exc:
            job.inbox.put(job.future, False, exc)
        except BaseException as exc:
            job.inbox.put(job.future, False, _Raised(exc))
        else:
            job.inbox.put(job.future, True, result)
        finally:
            job.finished = True
            job.task = None
        if job.longest_step >= SLOW_STEP_SECONDS or (job.timed_out and job.longest_step > 0.1):
            diagnostics.warning(
                "%s blocked its event loop for %.2f s in one step (a blocking call in an async def handler: "
                "time.sleep, CPU-bound work or blocking I/O; await instead)",
                job.label,
                job.longest_step,
            )

    def close(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)
        self._workers.clear()


class _WorkerLoop(asyncio.SelectorEventLoop):
    """A worker thread's event loop. Making one takes three file descriptors; when the process has none left, it is
    not made, cleanly (asyncio's own loop, half made, reports a second error when it is collected)."""

    def __init__(self) -> None:
        self._made = False
        super().__init__()
        self._made = True

    def __del__(self) -> None:
        if self._made:
            super().__del__()

    @classmethod
    def make(cls) -> _WorkerLoop | None:
        """A new loop, set as the current thread's; ``None`` at the file-descriptor limit."""
        try:
            loop = cls()
        except OSError:
            return None
        asyncio.set_event_loop(loop)
        return loop


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what handlers left running on a worker's loop, then close it (as ``asyncio.run`` does)."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


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
        aws_request_id = str(uuid.UUID(int=_request_ids.getrandbits(128), version=4))  # no getrandom() syscall
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
        job = self._workers.submit(
            function.handler,
            event,
            context,
            is_async=function.is_async,
            seconds=limit,
            label=f"{function.ref} at {trigger}",
        )
        try:
            async with asyncio.timeout(limit):
                return await job.future
        except TimeoutError:
            level = logging.ERROR
            blocked = job.blocked_for()
            job.abandon()
            self._workers.grow()  # its worker is stuck now: it must not hold up the jobs queued behind it
            invocation.lines.append(f"{prefix} {aws_request_id} Task timed out after {limit:.2f} seconds")
            if blocked is not None:
                diagnostics.warning(
                    "%s at %s has blocked its event loop for %.2f s, and still does: its invocation timed out "
                    "(a blocking call in an async def handler: time.sleep, CPU-bound work or blocking I/O)",
                    function.ref,
                    trigger,
                    blocked,
                )
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
