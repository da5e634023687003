"""The Lambda log of one invocation: ``START``, the handler's prints, ``END`` and ``REPORT``, as Lambda writes them.

Prints are captured per invocation, not by swapping ``sys.stdout`` for the whole process: a handler module loaded
in-process gets its own ``print`` (see :func:`invocation_print`), which writes to the log of the invocation running
on that thread, and anything else goes to the real ``print``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import logging
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("edgeproxy.lambda")


# How much of an invocation's output its log holds: the first HEAD characters (after its platform lines) and the
# last TAIL; what comes between is left out, and counted. Lambda sends all of it to CloudWatch Logs, a line at a time;
# the proxy holds an invocation's log to write it as one record, so it holds a bounded part: a handler that prints
# hundreds of MB costs the proxy two MB, and the log one record of that size.
HEAD = TAIL = 1 << 20
# A line longer than this is logged in pieces of this size (a print that never ends its line is held so far).
LINE = 1 << 18


@dataclass(slots=True)
class InvocationLog:
    """The lines of one invocation, each prefixed like ``[name trigger] <request id>\\t``. Emitted as one multi-line
    record when the invocation ends, which keeps concurrent invocations' lines together and costs one write. Its
    output is held up to :data:`HEAD` and :data:`TAIL` characters: the lines between are left out, with a line
    saying how many."""

    prefix: str
    aws_request_id: str
    label: str = ""  # "<handler> at <trigger>", for edgeproxy's own findings about the invocation
    lines: list[str] = field(default_factory=list)
    pending: str = ""
    # What the REPORT line needs from the environment that ran the invocation, when it can tell: its init time on a
    # cold start (the first invocation of a new environment), and its peak resident memory so far.
    init_duration_ms: float | None = None
    max_memory_used_mb: int | None = None
    raw_pending: str = ""
    held: int = 0  # characters of output in ``lines``
    tail: deque[str] = field(default_factory=deque)  # the latest output, once HEAD is reached, and its characters
    tail_held: int = 0
    left_out: int = 0  # lines left out before the tail, and their characters
    left_out_chars: int = 0

    def write(self, text: str) -> None:
        """Output of a Python handler (a print): each line prefixed with the request id, as edgeproxy shows them."""
        self.pending = self._output(self.pending + text, f"{self.prefix} {self.aws_request_id}\t")

    def write_raw(self, text: str) -> None:
        """Output that carries its own request id (a Node.js console line: ``timestamp\\trequestId\\tLEVEL\\t...``),
        or none (init output): each line prefixed only with the function and trigger."""
        self.raw_pending = self._output(self.raw_pending + text, f"{self.prefix} ")

    def _output(self, text: str, prefix: str) -> str:
        """Hold the complete lines of ``text`` (and the pieces of a line past :data:`LINE`); returns the rest."""
        lines = text.split("\n")
        rest = lines.pop()
        while len(rest) > LINE:
            lines.append(rest[:LINE])
            rest = rest[LINE:]
        for line in lines:
            self._hold(prefix + line)
        return rest

    def _hold(self, line: str) -> None:
        size = len(line)
        if not self.tail and self.held + size <= HEAD:
            self.lines.append(line)
            self.held += size
            return
        self.tail.append(line)
        self.tail_held += size
        while self.tail_held > TAIL:
            dropped = len(self.tail.popleft())
            self.tail_held -= dropped
            self.left_out += 1
            self.left_out_chars += dropped

    def _settle(self) -> None:
        """The tail joins the lines, after a line saying what was left out before it."""
        if self.left_out:
            self.lines.append(
                f"{self.prefix} [edgeproxy] {self.left_out} lines ({self.left_out_chars / 1e6:.1f} MB) of output left "
                f"out here: edgeproxy logs an invocation's first and last {HEAD >> 20} MB of output"
            )
            self.left_out = self.left_out_chars = 0
        self.lines.extend(self.tail)
        self.held += self.tail_held
        self.tail.clear()
        self.tail_held = 0

    def flush(self) -> None:
        """End the lines still open (a print without its newline)."""
        if self.pending:
            self.write("\n")
        if self.raw_pending:
            self.write_raw("\n")

    def line(self, text: str) -> None:
        """A line of Lambda's own (``START``, ``END``, ``REPORT``, ``Task timed out...``), after the output so far
        (a line left open ends here, as Lambda's log has it); never left out."""
        if self.pending or self.raw_pending or self.tail:  # (three per invocation: the common case costs no call)
            self.flush()
            self._settle()
        self.lines.append(f"{self.prefix} {text}")

    def emit(self, level: int = logging.INFO) -> None:
        """Log the lines held as one record, and start afresh."""
        self.flush()
        self._settle()
        if self.lines and log.isEnabledFor(level):
            # makeRecord + handle, not log.log: no caller lookup (the caller is always this line).
            log.handle(log.makeRecord(log.name, level, __file__, 0, "\n".join(self.lines), (), None))
        self.lines.clear()
        self.held = 0


current: contextvars.ContextVar[InvocationLog | None] = contextvars.ContextVar("edgeproxy_invocation", default=None)


def invocation_print(
    *values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """``print`` for handler modules: to the running invocation's log, or the real ``print`` outside one (or when
    given a ``file`` other than standard output)."""
    running = current.get()
    if running is None or (file is not None and file is not sys.stdout):
        builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
        return
    running.write((" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end))


_NOT_USER_CODE = (
    str(Path(__file__).parent.parent),
    str(Path(asyncio.__file__).parent),
    threading.__file__,
    "<frozen importlib",
)


def user_traceback(exc: BaseException) -> str:
    """The traceback cut to the user's own frames (no edgeproxy, asyncio or thread-pool frames)."""
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith(_NOT_USER_CODE)
    ]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "Traceback (most recent call last):\n" + "".join(lines).rstrip()
