"""``serve --workers N``: N processes serving one port, the kernel spreading the connections over them.

Each worker is a fork of ``edgeproxy serve`` made before any event loop or thread exists, and runs the same server as
one process does (:func:`edgeproxy.listener.serve_until_stopped`: the header and idle timeouts, the error pages, the
graceful drain on SIGTERM) on its own listening socket bound with ``SO_REUSEPORT`` to the same address: the kernel
hashes each new connection to one of the listening sockets, so no process hands connections out and none is a
bottleneck. What balances the load is the kernel's; this module only starts the workers, tells their URL once every
one listens, passes a stop on, and stops them all when one dies. (gunicorn's arbiter would do the same with more
machinery, and a listener of its own instead of :class:`edgeproxy.listener.ViewerSite`.)

What each worker has to itself, as the edge servers of one CloudFront POP do: its cache (a request may miss in one
worker after a hit in another; an invalidation goes to every worker's admin listener), its execution environments
and their cold starts, and, with ``--reload``, its watch of the handlers' sources. A recording is one file that the
workers append to under a lock (see :class:`edgeproxy.record.har.HarFile`).

Nothing outlives the parent: on Linux each worker gets SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), and its
execution environments die with it in turn. :func:`as_child` is that discipline for any fork of edgeproxy's
(``edgeproxy replay --jobs`` runs its shares in it too).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from yarl import URL

from edgeproxy.listener import INSPECTOR_OFF

log = logging.getLogger("edgeproxy")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Worker:
    """What a worker is told: which one it is (0-based ``index`` of ``count``), the port to listen on (resolved,
    when 0 was asked for), and ``announce``, to call with its URL and its admin listener's once it listens, or
    ``refuse``, to call instead with why it cannot serve (a configuration error, which the parent prints once)."""

    index: int
    count: int
    port: int
    announce: Callable[[URL, URL | None], None]
    refuse: Callable[[str], None]


@dataclass(frozen=True)
class Started:
    """A worker that listens: its pid, URL, and admin URL (if any)."""

    pid: int
    url: str
    admin: str | None


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host``:``port``, which holds the port while the workers start, so that
    port 0 means one free port for all of them. Raises ``OSError`` when the port is taken, also by sockets that would
    share it (another ``serve --workers``): it is bound first without ``SO_REUSEPORT``, which Linux refuses then,
    and given the option after, so that the workers' sockets may join it."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def run(count: int, host: str, port: int, serve: Callable[[Worker], int]) -> int:
    """Fork ``count`` workers, each running ``serve`` with its :class:`Worker`; print the URL once they all listen,
    then wait for them. SIGTERM or SIGINT to this process is passed on to every worker as SIGTERM (each drains its
    requests and exits); a worker that exits on its own stops the others. Returns 0 when all stopped as asked, 2 when
    they refused the configuration (said once), 1 when one failed to start otherwise or died."""
    held = reserve(host, port)
    port = held.getsockname()[1]
    parent = os.getpid()
    pids: list[int] = []
    pipes: list[int] = []
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            for fd in (*pipes, read_end):
                os.close(fd)
            held.close()
            announce, refuse = _announcer(write_end)
            worker = Worker(index, count, port, announce, refuse)
            os._exit(as_child(functools.partial(serve, worker), parent))
        os.close(write_end)
        pids.append(pid)
        pipes.append(read_end)
    held_open: list[socket.socket] = [held]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(pids)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        answers = [_read_announcement(pid, fd) for pid, fd in zip(pids, pipes, strict=True)]
        held_open.pop().close()
        started = [each for each in answers if isinstance(each, Started)]
        refusals = list(dict.fromkeys(each for each in answers if isinstance(each, str)))
        if refusals and not stopping:
            for refusal in refusals:  # the same configuration error from every worker is said once
                print(f"edgeproxy: {refusal}", file=sys.stderr)
            stopping, code = True, 2
            _signal_all(pids)
        elif len(started) == count and not stopping:
            ready = started
            print(f"edgeproxy listening on {ready[0].url}", flush=True)
            for number, each in enumerate(ready, 1):  # each worker's inspector sees only its own exchanges
                if each.admin is not None:
                    print(f"edgeproxy inspector on {each.admin} (worker {number}, pid {each.pid})", flush=True)
            if all(each.admin is None for each in ready):
                print(INSPECTOR_OFF, flush=True)
            listing = ", ".join(str(each.pid) for each in ready)
            print(f"edgeproxy: {count} workers on one port (SO_REUSEPORT), pids {listing}", file=sys.stderr)
        elif not stopping:
            log.error("a worker did not start listening; stopping the others")
            stopping, code = True, 1
            _signal_all(pids)
        code = max(code, _wait(pids, lambda: stopping, _stop_rest(pids)))
    finally:
        for sock in held_open:
            sock.close()
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _stop_rest(pids: list[int]) -> Callable[[], None]:
    return lambda: _signal_all(pids)


def _wait(pids: list[int], stopping: Callable[[], bool], stop_rest: Callable[[], None]) -> int:
    """Reap every worker; one that exits before a stop was asked stops the rest (and makes the status 1)."""
    code = 0
    live = set(pids)
    while live:
        pid, status = os.waitpid(-1, 0)
        if pid not in live:
            continue
        live.discard(pid)
        pids.remove(pid)
        if not stopping() and code == 0:
            log.error("worker %d exited (%s); stopping the others", pid, how_it_ended(status))
            code = 1
            stop_rest()
    return code


def how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _signal_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


REFUSED = "!"  # the start of a worker's line that says why it does not serve, instead of where it does


def _announcer(fd: int) -> tuple[Callable[[URL, URL | None], None], Callable[[str], None]]:
    def say(line: str) -> None:
        data = line.encode(errors="replace")
        while data:
            data = data[os.write(fd, data) :]
        os.close(fd)

    def announce(url: URL, admin: URL | None) -> None:
        say(f"{url} {admin or '-'}\n")

    def refuse(why: str) -> None:
        say(REFUSED + why.replace("\n", "\x00") + "\n")

    return announce, refuse


def _read_announcement(pid: int, fd: int) -> Started | str | None:
    """The line a worker writes once it listens, or why it refused to serve; ``None`` if it exited first (its end of
    the pipe closed)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    text = data.decode(errors="replace")
    if text.startswith(REFUSED):
        return text.removeprefix(REFUSED).rstrip("\n").replace("\x00", "\n")
    url, admin = text.split()
    return Started(pid, url, None if admin == "-" else admin)


def as_child(body: Callable[[], int], parent: int) -> int:
    """What a forked process of edgeproxy's (a worker, a share of a replay) runs ``body`` in: it dies with its parent;
    it leaves Ctrl-C to the parent (which passes it on as SIGTERM); after ``body``, what an exit would run (the
    environments' last kill). Returns the exit status, for ``os._exit``."""
    try:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above
            return 1
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = body()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    return code
