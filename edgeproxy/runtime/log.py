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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("edgeproxy.lambda")


@dataclass(slots=True)
class InvocationLog:
    """The lines of one invocation, each prefixed like ``[name trigger] <request id>\\t``. Emitted as one multi-line
    record when the invocation ends, which keeps concurrent invocations' lines together and costs one write."""

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

    def write(self, text: str) -> None:
        """Output of a Python handler (a print): each line prefixed with the request id, as edgeproxy shows them."""
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        self.lines.extend(f"{self.prefix} {self.aws_request_id}\t{line}" for line in lines)

    def write_raw(self, text: str) -> None:
        """Output that carries its own request id (a Node.js console line: ``timestamp\\trequestId\\tLEVEL\\t...``),
        or none (init output): each line prefixed only with the function and trigger."""
        lines = (self.raw_pending + text).split("\n")
        self.raw_pending = lines.pop()
        self.lines.extend(f"{self.prefix} {line}" for line in lines)

    def flush(self) -> None:
        """End the lines still open (a print without its newline)."""
        if self.pending:
            self.write("\n")
        if self.raw_pending:
            self.write_raw("\n")

    def line(self, text: str) -> None:
        """A line of Lambda's own (``START``, ``END``, ``REPORT``, ``Task timed out...``)."""
        self.lines.append(f"{self.prefix} {text}")

    def end(self, *lines: str, level: int = logging.INFO) -> None:
        """Lambda's last lines (``END``, ``REPORT``), then :meth:`emit`."""
        if self.pending:
            self.write("\n")
        prefix = self.prefix
        self.lines.extend(f"{prefix} {line}" for line in lines)
        self.emit(level)

    def emit(self, level: int = logging.INFO) -> None:
        self.flush()
        if self.lines and log.isEnabledFor(level):
            # makeRecord + handle, not log.log: no caller lookup (the caller is always this line).
            log.handle(log.makeRecord(log.name, level, __file__, 0, "\n".join(self.lines), (), None))


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
