"""The process executor: each function runs in execution environments of its own, as on Lambda.

An environment is one child process running a bootstrap (``bootstrap.py`` for Python, ``bootstrap.mjs`` for
Node.js) that loads the function once (the init phase, a cold start) and then serves one invocation at a time, kept
warm between invocations. The proxy speaks to it over a pipe pair with frames modelled on Lambda's Runtime API (see
``bootstrap.py``), driven by the event loop's readers: nothing polls. The child's standard output and error, one
pipe, go to the log of the invocation it is serving (or, between invocations, straight to the log).

Per function, a :class:`_Pool`: an idle environment serves the next invocation; when all are busy a new one starts,
up to the function's ``concurrency``, beyond which the invocation is throttled; environments idle for longer than
``idle_reclaim`` are stopped. An environment that runs past its invocation's deadline, goes over its memory size or
exits is killed (its whole process group, with SIGKILL) and reaped, and no longer counts: the next invocation starts
a new one. Memory: the peak resident size each environment reports with every answer, and, while an invocation runs
longer than :data:`MEMORY_CHECK`, its resident size read from ``/proc`` every :data:`MEMORY_CHECK`.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import hashlib
import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from edgeproxy.runtime.context import REGION, ContextData
from edgeproxy.runtime.functions import FUNCTION_VERSION, Function, log_stream_name
from edgeproxy.runtime.log import InvocationLog
from edgeproxy.runtime.results import (
    UNCHANGED,
    HandlerFailed,
    InitFailed,
    Marshalled,
    RuntimeExited,
    Throttled,
)

lambda_log = logging.getLogger("edgeproxy.lambda")

HERE = Path(__file__).resolve().parent
PYTHON_BOOTSTRAP = HERE / "bootstrap.py"
# bootstrap.py's launcher (it must not be imported here: the file is the environment's program).
LAUNCHER = (
    "import sys;from importlib.machinery import SourceFileLoader as L;n='edgeproxy_bootstrap';"
    "m=type(sys)(n);m.__file__=sys.argv[1];sys.modules[n]=m;L(n,sys.argv[1]).exec_module(m);m.main(sys.argv[2:])"
)
NODE_BOOTSTRAP = HERE / "bootstrap.mjs"
INIT_LIMIT = 10.0  # seconds: Lambda's limit on the init phase (lambda-runtime-facts §10)
MEMORY_CHECK = 0.025  # seconds: how often a running invocation's resident size is read
READ_SIZE = 1 << 18
# Linux: the environments die with the proxy, even if it is killed (util-linux's setpriv sets the parent-death
# signal; the child of a dead parent would otherwise run on as an orphan while its handler is busy).
SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PROC = Path("/proc")

# Go's names of signals, which Lambda's "Runtime exited with error: signal: ..." lines use.
SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGTRAP: "trace/breakpoint trap",
    signal.SIGPIPE: "broken pipe",
    signal.SIGHUP: "hangup",
    signal.SIGQUIT: "quit",
}

# Frame kinds (bootstrap.py documents the wire).
INVOKE = b"I"
STARTED, READY, INIT_ERROR, RESULT, SAME, ERROR = (ord(kind) for kind in "SNXRUE")


def exit_status(returncode: int) -> str:
    """A process's end in the words of Lambda's log (Go's ``os.ProcessState``): ``exit status 1``,
    ``signal: killed``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    number = -returncode
    try:
        name: str | None = SIGNAL_NAMES.get(signal.Signals(number))
    except ValueError:
        name = None
    if name is None:
        name = (signal.strsignal(number) or f"signal {number}").lower()
    return f"signal: {name}"


def _batch_scheduling(pid: int) -> None:
    """Linux: an environment woken by its next invocation does not preempt the proxy (SCHED_BATCH, a policy any
    process may choose for its children). Without it, each invocation's write to a waiting environment handed the
    proxy's CPU to the environment in the middle of the write; the proxy, one thread serving every request, then
    waited for a core while its environments ran."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))


@dataclass(eq=False, slots=True)
class _Call:
    """The invocation an environment is serving."""

    future: asyncio.Future[Any]
    log: InvocationLog | None
    started: float  # time.monotonic()
    deadline: float  # time.monotonic()
    abandoned: bool = False  # nobody waits for its answer any more (the viewer went away)


def _decoded(body: memoryview) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # what orjson refuses (NaN, an integer past 64 bits) json takes
        return json.loads(bytes(body))


class Environment:
    """One execution environment: a child process running the function's bootstrap.

    States: ``starting`` (its init is running), ``idle``, ``busy`` (held for an invocation) and ``dead`` (killed
    or exited; its process is reaped as soon as it has gone)."""

    def __init__(self, pool: _Pool, log: InvocationLog | None) -> None:
        self.pool = pool
        self.generation = pool.generation
        self.log = log  # where its output goes now; None: between invocations, straight to the log
        self.state = "starting"
        self.started = time.monotonic()
        self.init_ms: float | None = None
        self.init_reported = False
        self.failure: InitFailed | None = None
        self.call: _Call | None = None
        self.out_of_memory = False
        self.peak_kb = 0  # its peak resident size as far as the proxy knows (what it reported, what was seen)
        self.release_when_answered = False
        self.counted = True  # toward its pool's count (until it is dead)
        self.idle_since = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready: asyncio.Future[None] | None = None
        self.reaped = False
        self._buffer = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stray = InvocationLog(prefix=f"[{pool.function.name}]", aws_request_id="")
        self._unsent = b""
        self._output_open = True
        self._response_open = True
        request_r, self.request_w = os.pipe()
        self.response_r, response_w = os.pipe()
        self.output_r, output_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                pool.command(request_r, response_w),
                stdin=subprocess.DEVNULL,
                stdout=output_w,
                stderr=output_w,
                pass_fds=(request_r, response_w),
                cwd=pool.task_root,
                env={**pool.environ, "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(pool.function.edge)},
                process_group=0,
            )
        except OSError:
            for fd in (self.request_w, self.response_r, self.output_r):
                os.close(fd)
            raise
        finally:
            for fd in (request_r, response_w, output_w):
                os.close(fd)
        self.pid = self.process.pid
        _batch_scheduling(self.pid)
        self.pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self.pidfd = os.pidfd_open(self.pid)
        pool.executor.alive.add(self)
        pool.executor.processes[self.pid] = (self.process, self._fds())

    def _fds(self) -> list[int]:
        return [fd for fd in (self.request_w, self.response_r, self.output_r, self.pidfd) if fd is not None]

    # --- frames and output ------------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        view = memoryview(data)
        while len(view) >= 4:
            size = int.from_bytes(view[:4], "big")
            if len(view) < 4 + size:
                break
            self._on_frame(view[4], view[5 : 4 + size])
            view = view[4 + size :]
        if view:
            self._buffer += view

    def _on_frame(self, kind: int, payload: memoryview) -> None:
        if kind in (RESULT, SAME, ERROR):
            self._answered(kind, payload)
        elif kind == STARTED:
            started = json.loads(bytes(payload))
            digest = hashlib.sha256(f"edgeproxy {started['version']}".encode()).hexdigest()
            self._log_line(
                f"INIT_START Runtime Version: {started['runtime']}.v0\t"
                f"Runtime Version ARN: arn:aws:lambda:{REGION}::runtime:{digest}"
            )
        elif kind == READY:
            self.init_ms = (time.monotonic() - self.started) * 1000
            self.peak_kb = int(bytes(payload) or b"0")
            if self.state == "starting":
                self.state = "ready"
                if self.ready is not None and not self.ready.done():
                    self.ready.set_result(None)
        elif kind == INIT_ERROR:
            record = json.loads(bytes(payload))
            stack = record.get("stackTrace", record.get("trace", []))
            self.failure = InitFailed(
                str(record.get("errorType")),
                str(record.get("errorMessage")),
                [str(line) for line in stack] if isinstance(stack, list) else [],
                duration_ms=(time.monotonic() - self.started) * 1000,
            )

    def _answered(self, kind: int, payload: memoryview) -> None:
        self._drain_output()  # what it printed before answering belongs to this invocation
        call = self.call
        if call is None:
            return
        newline = bytes(payload[:24]).find(b"\n")
        peak_kb = int(bytes(payload if newline < 0 else payload[:newline]) or b"0")
        body = payload[newline + 1 :] if newline >= 0 else payload[:0]
        self.peak_kb = max(self.peak_kb, peak_kb)
        pool = self.pool
        if peak_kb * 1024 > pool.memory_bytes:  # it went over its memory at some point: Lambda would have killed it
            self.kill_for_memory()
            return
        if call.log is not None:
            call.log.max_memory_used_mb = math.ceil(peak_kb / 1024)
        self.call = None
        pool.executor.busy.discard(self)
        if call.abandoned:
            if self.release_when_answered:
                pool.release(self)
            return
        if call.future.done():
            return
        if kind == SAME:
            call.future.set_result(UNCHANGED)
        elif kind == RESULT:
            try:
                value = _decoded(body)
            except (ValueError, RecursionError) as exc:  # nested past what the decoders take, or not JSON at all
                reason = f"Unable to read the response: {exc or type(exc).__name__}"
                call.future.set_exception(HandlerFailed("Runtime.MarshalError", reason, []))
                return
            call.future.set_result(Marshalled(value, len(body)))
        else:
            try:
                record = _decoded(body)
            except (ValueError, RecursionError):
                record = {"errorType": "Runtime.Unknown", "errorMessage": "its error could not be read"}
            if not isinstance(record, dict):
                record = {"errorType": "Runtime.Unknown", "errorMessage": repr(record)[:1000]}
            stack = record.get("stackTrace", record.get("trace", []))
            call.future.set_exception(
                HandlerFailed(
                    str(record.get("errorType")),
                    str(record.get("errorMessage")),
                    [str(line) for line in stack] if isinstance(stack, list) else [],
                )
            )

    def _output(self, data: bytes, *, final: bool = False) -> None:
        text = self._decoder.decode(data, final)
        if not text:
            return
        log = self.log
        if log is None:  # between invocations (a thread or a timer the handler left): a record of its own
            self._stray.write_raw(text)
            if self._stray.lines:
                self._stray.emit()
        elif self.call is not None and self.pool.function.language == "python":
            log.write(text)  # a Python print, shown with its request id
        else:
            log.write_raw(text)  # a Node.js console line carries its own; init output has none

    def _log_line(self, text: str) -> None:
        (self.log or self._stray).line(text)
        if self.log is None:
            self._stray.emit()

    def _drain_output(self) -> None:
        while self._output_open:
            data = _read_available(self.output_r)
            if data is None:
                return
            if not data:
                self._close_output()
                return
            self._output(data)
            if len(data) < READ_SIZE and self.loop is None:
                return  # blocking mode: do not wait for more

    def _drain_frames(self) -> None:
        while self._response_open:
            data = _read_available(self.response_r)
            if data is None:
                return
            if not data:
                self._close_response()
                return
            self._feed(data)

    def _close_output(self) -> None:
        if self._output_open:
            self._output_open = False
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(self.output_r)

    def _close_response(self) -> None:
        if self._response_open:
            self._response_open = False
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(self.response_r)

    # --- on the event loop ------------------------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drive this environment from ``loop``'s readers (no thread, no polling)."""
        self.loop = loop
        for fd in (self.request_w, self.response_r, self.output_r):
            os.set_blocking(fd, False)
        if self._response_open:
            loop.add_reader(self.response_r, self._on_response_readable)
        if self._output_open:
            loop.add_reader(self.output_r, self._on_output_readable)
        if self.pidfd is not None:
            loop.add_reader(self.pidfd, self._on_process_ended)
        if self.state == "starting":
            self.ready = loop.create_future()

    def _on_response_readable(self) -> None:
        try:
            data = os.read(self.response_r, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._feed(data)
            return
        # Its end of the protocol closed: it exited (or closed the pipe itself, and cannot answer any more).
        self._close_response()
        self.kill()
        if self.pidfd is None and self.loop is not None:
            reaping = self.loop.run_in_executor(None, self.process.wait)
            reaping.add_done_callback(lambda done: self._ended(self.process.returncode))

    def _on_output_readable(self) -> None:
        try:
            data = os.read(self.output_r, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_output()
            return
        if self.state == "starting":
            self._drain_frames()  # the runtime's STARTED frame goes first: INIT_START precedes the init's output
        self._output(data)

    def _on_process_ended(self) -> None:
        returncode = self.process.poll()
        if returncode is not None:
            self._ended(returncode)

    def _ended(self, returncode: int) -> None:
        """Its process has gone: what it still said is read, then whoever waited on it learns how it ended."""
        if self.reaped:
            return
        self.reaped = True
        for fd, is_open in ((self.response_r, self._response_open), (self.output_r, self._output_open)):
            if is_open:
                os.set_blocking(fd, False)  # what is there is read; nothing is waited for
        self._drain_frames()
        self._drain_output()
        self._output(b"", final=True)
        self._stray.emit()
        status = exit_status(returncode)
        self._unbind()
        self.pool.executor.processes.pop(self.pid, None)
        self.pool.executor.alive.discard(self)
        self.pool.executor.busy.discard(self)
        self.pool.discard(self)
        self.state = "dead"
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(self._init_failure(status))
        call, self.call = self.call, None
        if call is not None and not call.future.done():
            self._report_peak(call)
            call.future.set_exception(RuntimeExited(status, out_of_memory=self.out_of_memory))

    def _init_failure(self, status: str) -> InitFailed:
        if self.failure is not None:
            return self.failure
        elapsed = (time.monotonic() - self.started) * 1000
        sentence = "Runtime exited without providing a reason" if status == "exit status 0" else status
        return InitFailed("Runtime.ExitError", f"Runtime exited with error: {sentence}", [], duration_ms=elapsed)

    def _unbind(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            for fd in (self.response_r, self.output_r, self.pidfd, self.request_w):
                if fd is not None:
                    loop.remove_reader(fd)
                    loop.remove_writer(fd)
        for fd in (self.request_w, self.response_r, self.output_r, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._output_open = self._response_open = False

    async def started_up(self) -> None:
        """Wait for its init (at most Lambda's 10 s). Raises :class:`InitFailed`. Cancelled meanwhile (the viewer
        went away), it goes on starting, and goes idle when ready."""
        assert self.ready is not None
        try:
            async with asyncio.timeout(INIT_LIMIT):
                await asyncio.shield(self.ready)
        except TimeoutError:
            self.kill()
            raise InitFailed(
                "Runtime.Unknown",
                f"the init ran past {INIT_LIMIT:g} s",
                [],
                duration_ms=INIT_LIMIT * 1000,
                timed_out=True,
            ) from None
        except asyncio.CancelledError:
            self.log = None
            self.ready.add_done_callback(lambda ready: self.pool.release(self) if not ready.exception() else None)
            raise
        if self.failure is not None:  # it reported an init error; its exit follows
            raise self.failure

    async def run(self, event: Any, context: ContextData, log: InvocationLog, *, part: str | None = None) -> Any:
        """Send the invocation and wait for its answer. Cancelled at its deadline, the environment is killed (with
        whatever it runs) and gone; cancelled before (the viewer went away), it runs on to its answer or its
        deadline, as on Lambda, and is then released."""
        loop = self.loop
        assert loop is not None
        deadline_ms = int((time.time() + (context.deadline - time.monotonic())) * 1000)
        invocation = {
            "id": context.aws_request_id,
            "deadline": deadline_ms,
            "arn": context.invoked_function_arn,
            "part": part,
            "event": event,
        }
        try:
            payload = orjson.dumps(invocation)
        except TypeError:  # what orjson refuses (an integer past 64 bits) json takes
            payload = json.dumps(invocation).encode()
        call = self.call = _Call(loop.create_future(), log, time.monotonic(), context.deadline)
        self.pool.executor.watch(self)
        self._send(INVOKE, payload)
        try:
            return await call.future
        except asyncio.CancelledError:
            if self.call is call:
                if time.monotonic() >= context.deadline - 0.001:
                    self.peak_kb = max(self.peak_kb, _peak_kb(self.pid) or 0)
                    self._report_peak(call)
                    self.kill()  # timed out: no process keeps running it
                else:
                    call.abandoned = True
                    call.log = None
                    self.log = None
                    loop.call_at(context.deadline, self._deadline_passed, call)
            raise

    def _report_peak(self, call: _Call) -> None:
        """An invocation that ended without an answer (a timeout, an exit) reports its environment's peak memory, as
        Lambda's REPORT does: read at the deadline; after an exit, the highest it reported or was seen at."""
        if call.log is not None and self.peak_kb:
            call.log.max_memory_used_mb = math.ceil(self.peak_kb / 1024)

    def _deadline_passed(self, call: _Call) -> None:
        if self.call is call:
            self.kill()

    def _send(self, kind: bytes, payload: bytes) -> None:
        frame = (len(payload) + 1).to_bytes(4, "big") + kind
        if self._unsent:
            self._unsent += frame + payload
            return
        try:
            written = os.writev(self.request_w, (frame, payload))
        except BlockingIOError:
            written = 0
        except OSError:  # it has gone; its end is on its way
            return
        total = len(frame) + len(payload)
        if written < total:
            self._unsent = (frame + payload)[written:]
            assert self.loop is not None
            self.loop.add_writer(self.request_w, self._write_unsent)

    def _write_unsent(self) -> None:
        try:
            written = os.write(self.request_w, self._unsent)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._unsent)
        self._unsent = self._unsent[written:]
        if not self._unsent and self.loop is not None:
            self.loop.remove_writer(self.request_w)

    def resident_bytes(self) -> int | None:
        """Its resident memory now, from ``/proc/<pid>/statm``; ``None`` where there is no /proc."""
        try:
            with open(PROC / str(self.pid) / "statm", "rb") as statm:
                return int(statm.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return None

    def kill_for_memory(self) -> None:
        self.out_of_memory = True
        self.kill()

    def kill(self) -> None:
        """SIGKILL its process group (its handler's own children too); it no longer counts toward its pool."""
        if self.state != "dead":
            self.state = "dead"
            self.pool.discard(self)
        if not self.reaped:  # once reaped, its pid may be another process's
            _kill_tree(self.pid)

    def reap_now(self) -> None:
        """Kill and reap it, blocking (when the executor closes)."""
        self.kill()
        self.process.wait()
        if self.loop is not None and self.loop.is_closed():
            self.loop = None
        self._ended(self.process.returncode)

    # --- the start-up probe, before any event loop ------------------------------------------------------------

    def wait_ready_blocking(self, timeout: float) -> InitFailed | None:
        """Wait for its init, blocking: ``None`` when it is ready, else why not (it is then dead and reaped)."""
        limit = time.monotonic() + timeout
        while self.state == "starting" and self.failure is None:
            remaining = limit - time.monotonic()
            if remaining <= 0:
                self.reap_now()
                return InitFailed(
                    "Runtime.Unknown",
                    f"the init ran past {timeout:g} s",
                    [],
                    duration_ms=timeout * 1000,
                    timed_out=True,
                )
            watched = [
                fd
                for fd, is_open in ((self.response_r, self._response_open), (self.output_r, self._output_open))
                if is_open
            ]
            if not watched:
                break
            readable, _, _ = select.select(watched, [], [], remaining)
            for fd in readable:
                data = os.read(fd, READ_SIZE)
                if fd == self.output_r:
                    if data:
                        self._output(data)
                    else:
                        self._close_output()
                elif data:
                    self._feed(data)
                else:
                    self._close_response()
            if not self._response_open:
                break
        if self.state == "ready" and self.failure is None:
            self._drain_ready_output()
            return None
        self.kill()
        self.process.wait()
        self._ended(self.process.returncode)
        return self._init_failure(exit_status(self.process.returncode))

    def _drain_ready_output(self) -> None:
        while self._output_open and select.select([self.output_r], [], [], 0)[0]:
            data = os.read(self.output_r, READ_SIZE)
            if not data:
                self._close_output()
                return
            self._output(data)


class _Pool:
    """The environments of one function, and what starting one takes (its command, environment variables)."""

    def __init__(self, executor: ProcessExecutor, function: Function) -> None:
        self.executor = executor
        self.function = function
        self.idle: list[Environment] = []  # the last released last: the warmest is used first
        self.count = 0  # environments starting, idle or busy
        self.generation = 0
        self.memory_bytes = function.memory * 1024 * 1024
        assert function.task_root is not None
        self.task_root = str(function.task_root)
        self.environ = self._environ()

    def _environ(self) -> dict[str, str]:
        """The proxy's own environment (a development convenience: credentials and settings reach the function as
        they would a local script), then Lambda's variables (lambda-runtime-facts §6)."""
        function = self.function
        data = ContextData.make(
            name=function.name,
            edge=function.edge,
            version=FUNCTION_VERSION,
            memory=function.memory,
            aws_request_id="",
            log_stream="",
            timeout=0,
        )
        environ = dict(os.environ)
        environ.pop("AWS_EXECUTION_ENV", None)  # the runtime sets it, from its own version
        environ.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": data.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": data.function_version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": data.log_group_name,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "LAMBDA_TASK_ROOT": self.task_root,
                "LAMBDA_RUNTIME_DIR": str(HERE),
                "_HANDLER": function.lambda_handler,
                "TZ": ":UTC",  # as Lambda sets it (the docs say "UTC"; the environment has ":UTC")
            }
        )
        if function.language == "node":
            node_path = environ.get("NODE_PATH")
            environ["NODE_PATH"] = self.task_root + (os.pathsep + node_path if node_path else "")
        return environ

    def command(self, request_fd: int, response_fd: int) -> list[str]:
        function = self.function
        assert function.path is not None
        assert function.interpreter is not None
        prefix = [SETPRIV, "--pdeathsig", "KILL"] if SETPRIV else []
        fds = [str(request_fd), str(response_fd), str(function.path), function.attribute]
        if function.language == "python":
            return [*prefix, function.interpreter, "-c", LAUNCHER, str(PYTHON_BOOTSTRAP), *fds, function.module]
        flags = []
        options = self.environ.get("NODE_OPTIONS", "")
        if "max-old-space-size" not in options and "max-semi-space-size" not in options:
            # As Lambda's Node.js bootstrap sizes V8's heap from the memory size (lambda-runtime-facts §3.6).
            memory = function.memory
            flags = [f"--max-semi-space-size={memory // 10 // 2}", f"--max-old-space-size={memory - memory // 10}"]
        return [*prefix, function.interpreter, *flags, str(NODE_BOOTSTRAP), *fds]

    def spawn(self, log: InvocationLog | None) -> Environment:
        environment = Environment(self, log)
        self.count += 1
        return environment

    def take(self) -> Environment | None:
        while self.idle:
            environment = self.idle.pop()
            if environment.state == "idle":
                return environment
        return None

    def release(self, environment: Environment) -> None:
        """An environment whose invocation is over goes idle (or, after a reload, goes)."""
        environment.log = None
        if environment.state == "dead":
            return
        if environment.generation != self.generation:
            environment.kill()
            return
        environment.state = "idle"
        environment.idle_since = time.monotonic()
        self.idle.append(environment)
        if environment.loop is not None:
            self.executor.reclaim_later(environment.loop)

    def discard(self, environment: Environment) -> None:
        if environment.counted:
            environment.counted = False
            self.count -= 1
        if environment in self.idle:
            self.idle.remove(environment)


class _Lease:
    """An environment held for one invocation: an idle one, or a new one (a cold start, whose init runs here,
    outside the invocation's deadline); :class:`Throttled` when the function's ``concurrency`` are all busy."""

    __slots__ = ("environment", "log", "pool")

    def __init__(self, pool: _Pool, log: InvocationLog) -> None:
        self.pool = pool
        self.log = log
        self.environment: Environment | None = None

    async def __aenter__(self) -> Environment:
        pool = self.pool
        loop = asyncio.get_running_loop()
        environment = pool.take()
        while environment is not None and environment.loop is not loop:
            if environment.loop is None:  # started before the loop (at start-up): driven from this loop now
                environment.bind(loop)
                break
            environment.kill()  # started under another event loop: of no use here
            environment = pool.take()
        if environment is None:
            if pool.count >= pool.function.concurrency:
                raise Throttled(pool.function.concurrency)
            environment = pool.spawn(self.log)
            environment.bind(loop)
            await environment.started_up()
        environment.state = "busy"
        environment.log = self.log
        if not environment.init_reported:
            environment.init_reported = True
            self.log.init_duration_ms = environment.init_ms
        self.environment = environment
        return environment

    async def __aexit__(self, *exc_info: object) -> None:
        environment = self.environment
        if environment is None:
            return
        if environment.call is not None:  # still running for a viewer that went away: released when it answers
            environment.release_when_answered = True
            environment.log = None
            return
        self.pool.release(environment)


def _kill_tree(pid: int) -> None:
    """SIGKILL an environment's process group (its handler's children too), and the descendants that left the group
    (a child that called ``setsid()``): found first, through /proc's list of each process's children."""
    escaped = _descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for each in escaped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(each, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux's /proc/PID/task/TID/children; none found elsewhere)."""
    found: list[int] = []
    waiting = [pid]
    while waiting and len(found) < 10_000:
        parent = waiting.pop()
        try:
            tasks = list((PROC / str(parent) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            waiting += children
    return found


Processes = dict[int, tuple[subprocess.Popen[bytes], list[int]]]  # pid -> the process and the proxy's ends of its pipes
_LEFT_OVER: list[Processes] = []  # the processes of every executor still around, for the exit


def _stop(processes: Processes) -> None:
    """Kill and reap processes, and close their pipes: for an executor nobody closed, when it is collected or the
    proxy exits (no environment outlives the proxy, nor stays a zombie)."""
    for pid in list(processes):
        _kill_tree(pid)
    for process, fds in list(processes.values()):
        process.wait()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    processes.clear()
    _LEFT_OVER[:] = [each for each in _LEFT_OVER if each is not processes]


@atexit.register
def _stop_all() -> None:
    for processes in list(_LEFT_OVER):
        _stop(processes)


class ProcessExecutor:
    """Execution environments for the functions that run in processes of their own (``isolation = "process"``)."""

    def __init__(self, idle_reclaim: float) -> None:
        self.idle_reclaim = idle_reclaim
        self.pools: dict[Function, _Pool] = {}
        self.alive: set[Environment] = set()  # not reaped yet
        self.busy: set[Environment] = set()  # serving an invocation: their memory is watched
        self._watcher: asyncio.TimerHandle | None = None
        self._reclaimer: asyncio.TimerHandle | None = None
        self.processes: Processes = {}  # refers to no environment, so that a forgotten executor can be collected
        _LEFT_OVER.append(self.processes)
        weakref.finalize(self, _stop, self.processes)

    def pool(self, function: Function) -> _Pool:
        pool = self.pools.get(function)
        if pool is None:
            pool = self.pools[function] = _Pool(self, function)
        return pool

    def prepare(self, functions: Sequence[Function]) -> dict[Function, InitFailed]:
        """Start an environment for each function, all at once, and wait (blocking: this is start-up) for their
        inits, kept warm for the first invocations. Returns the functions whose init failed, and why."""
        started = []
        failures: dict[Function, InitFailed] = {}
        for function in functions:
            pool = self.pool(function)
            log = InvocationLog(prefix=f"[{function.name}]", aws_request_id="")
            try:
                started.append((function, pool.spawn(log), log))
            except OSError as exc:
                problem = f"{function.interpreter} cannot be run: {exc.strerror}"
                failures[function] = InitFailed("Runtime.InvalidEntrypoint", problem, [], duration_ms=0)
        for function, environment, log in started:
            failure = environment.wait_ready_blocking(INIT_LIMIT)
            if failure is None:
                environment.log = None
                self.pools[function].release(environment)
                log.emit()
            else:
                log.emit(logging.ERROR)
                failures[function] = failure
        return failures

    def environment(self, function: Function, log: InvocationLog) -> _Lease:
        return _Lease(self.pool(function), log)

    def restart(self, function: Function) -> None:
        """New code: idle environments go now, busy ones when their invocation ends; new ones load the new code."""
        pool = self.pools.get(function)
        if pool is None:
            return
        pool.generation += 1
        for environment in list(pool.idle):
            environment.kill()
        pool.idle.clear()

    def watch(self, environment: Environment) -> None:
        self.busy.add(environment)
        if self._watcher is None and environment.loop is not None:
            self._watcher = environment.loop.call_later(MEMORY_CHECK, self._check_memory, environment.loop)

    def _check_memory(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watcher = None
        now = time.monotonic()
        for environment in list(self.busy):
            call = environment.call
            if call is None:
                self.busy.discard(environment)
                continue
            if now - call.started < MEMORY_CHECK:
                continue  # most invocations answer before their first check
            resident = environment.resident_bytes()
            if resident is None:
                continue
            environment.peak_kb = max(environment.peak_kb, resident // 1024)
            if resident > environment.pool.memory_bytes:
                environment.kill_for_memory()
        if self.busy and not loop.is_closed():
            self._watcher = loop.call_later(MEMORY_CHECK, self._check_memory, loop)

    def reclaim_later(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._reclaimer is None:
            self._reclaimer = loop.call_later(self.idle_reclaim, self._reclaim, loop)

    def _reclaim(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the environments idle for ``idle_reclaim`` seconds, and come back for the next ones."""
        self._reclaimer = None
        now = time.monotonic()
        next_due: float | None = None
        for pool in self.pools.values():
            for environment in list(pool.idle):
                due = environment.idle_since + self.idle_reclaim
                if due <= now:
                    environment.kill()
                else:
                    next_due = due if next_due is None else min(next_due, due)
        if next_due is not None and not loop.is_closed():
            self._reclaimer = loop.call_later(next_due - now, self._reclaim, loop)

    def close(self) -> None:
        """Kill and reap every environment."""
        for handle in (self._watcher, self._reclaimer):
            if handle is not None:
                handle.cancel()
        self._watcher = self._reclaimer = None
        environments = list(self.alive)
        for environment in environments:
            environment.kill()
        for environment in environments:
            environment.reap_now()
        for pool in self.pools.values():
            pool.idle.clear()
        _stop(self.processes)  # any left (none, unless one could not be reaped above)


def _peak_kb(pid: int) -> int | None:
    """A running process's peak resident size in kB (``VmHWM``); ``None`` where there is no /proc."""
    try:
        status = (PROC / str(pid) / "status").read_bytes()
        start = status.index(b"VmHWM:")
        return int(status[start + 6 : status.index(b"kB", start)])
    except (OSError, ValueError):
        return None


def _read_available(fd: int) -> bytes | None:
    """What the pipe ``fd`` holds (up to READ_SIZE): ``None`` if reading would block, ``b""`` once it is closed."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""
