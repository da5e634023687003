"""The thread executor: handlers run inside the proxy's process, each invocation on a worker thread, as each Lambda
invocation runs in an environment of its own: a sync handler on the thread, an ``async def`` one on the thread's own
event loop. So no handler ever blocks the proxy's event loop, and a blocking call (``time.sleep``, a busy loop)
delays only its own invocation.

This is ``isolation = "thread"``: fast, and a debugger's breakpoints work in handlers, but handlers share the
process's memory and modules. A handler that runs past its timeout is abandoned (its error goes out on time): an
async one is cancelled on its loop; a sync one cannot be stopped (a Python thread cannot be killed) and keeps its
worker thread, which then no longer counts toward the pool's size, so handlers that never return cost only their own
requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import errno
import logging
import queue
import threading
import time
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

from edgeproxy.runtime import log as lambda_log
from edgeproxy.runtime.context import ContextData, LambdaContext
from edgeproxy.runtime.functions import Function, Handler
from edgeproxy.runtime.log import InvocationLog

diagnostics = logging.getLogger("edgeproxy")  # edgeproxy's own findings about a handler, beside its Lambda log

# A step of an async handler's coroutine (the code between two awaits) running this long is reported in the log.
SLOW_STEP_SECONDS = 1.0


class Raised(Exception):
    """A ``BaseException`` that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, a
    ``CancelledError`` of the handler's own...), or a ``StopIteration``, raised by a handler, on its way back to the
    runtime. Set on a future
    as it is, asyncio would re-raise ``KeyboardInterrupt`` out of the event loop, and ``GeneratorExit`` would close
    the awaiting coroutines."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(raised)
        self.raised = raised


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
            elif isinstance(value, StopIteration):  # a Future refuses it (PEP 479): the handler's crash all the same
                future.set_exception(Raised(value))
            else:
                future.set_exception(value)


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
        """Nobody waits for the result any more: an async handler is cancelled on its own loop (a sync one cannot
        be stopped)."""
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


class _ThreadEnvironment:
    """What one invocation runs in with the thread executor: the process itself (entered and left at no cost; the
    worker thread is picked when the job is queued)."""

    __slots__ = ("executor", "function")

    def __init__(self, executor: ThreadExecutor, function: Function) -> None:
        self.executor = executor
        self.function = function

    async def __aenter__(self) -> _ThreadEnvironment:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def run(self, event: Any, context: ContextData, log: InvocationLog, *, part: str | None = None) -> Any:
        return await self.executor.run(self.function, event, context, log)


class ThreadExecutor:
    """Worker threads for handlers. A job goes over a ``SimpleQueue``; its result comes back through the loop's
    :class:`_Inbox`.

    A thread is started when no idle one is left, up to ``max_threads`` that are not stuck (a stuck worker is one
    still running a job past its deadline, which a Python thread cannot be made to stop): handlers that never return
    cost their own requests only. A job whose deadline passes while it is queued is dropped, not run. Threads are
    daemons, so a handler that never returns cannot keep the process alive at exit."""

    def __init__(self, max_threads: int = 64) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
        self._workers: list[_Worker] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._max_threads = max_threads

    def environment(self, function: Function, log: InvocationLog) -> _ThreadEnvironment:
        """Where an invocation of ``function`` runs: this process (see :meth:`run`)."""
        return _ThreadEnvironment(self, function)

    async def run(self, function: Function, event: Any, context: ContextData, log: InvocationLog) -> Any:
        """Run one invocation; the handler's exception is raised as it is (a ``BaseException`` as :class:`Raised`).
        Cancelled (at the deadline, or because the viewer went away), the invocation is abandoned."""
        token = lambda_log.current.set(log)
        try:
            job = self._submit(function, event, LambdaContext(context), deadline=context.deadline, label=log.label)
        finally:
            lambda_log.current.reset(token)
        try:
            return await job.future
        except asyncio.CancelledError:
            blocked = job.blocked_for()
            job.abandon()
            self._grow()  # its worker may be stuck now: it must not hold up the jobs queued behind it
            if blocked is not None and time.monotonic() >= job.deadline:
                diagnostics.warning(
                    "%s has blocked its event loop for %.2f s, and still does: its invocation timed out "
                    "(a blocking call in an async def handler: time.sleep, CPU-bound work or blocking I/O)",
                    job.label,
                    blocked,
                )
            raise

    def _submit(self, function: Function, event: Any, context: LambdaContext, *, deadline: float, label: str) -> _Job:
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _Inbox(loop)
        job = _Job(
            inbox=inbox,
            future=loop.create_future(),
            run_context=contextvars.copy_context(),  # holds the invocation's log, for the handler's prints
            handler=function.handler,
            event=event,
            context=context,
            is_async=function.is_async,
            deadline=deadline,
            label=label,
        )
        self._jobs.put(job)
        self._grow()
        return job

    def _grow(self) -> None:
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
            job.inbox.put(job.future, False, Raised(exc))
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
            if job.timed_out:  # our own cancellation: nobody waits for the result
                task.uncancel()
            else:  # the handler raised it itself (or let one of its own through): its crash
                job.inbox.put(job.future, False, Raised(exc))
        except Exception as exc:
            job.inbox.put(job.future, False, exc)
        except BaseException as exc:
            job.inbox.put(job.future, False, Raised(exc))
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
