"""What an execution environment hands back to the :class:`~edgeproxy.runtime.Runtime`, whatever the language and
however it got there: a result its runtime already marshalled, word that the result is the event's part unchanged,
or one of the neutral failures the Runtime turns into Lambda's log lines and a
:class:`~edgeproxy.errors.FunctionError`. Keeping them neutral keeps Lambda's wording in one place (the Runtime),
for Python and Node.js environments alike."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Marshalled:
    """A result its runtime sent as JSON: ``value`` parsed back, and ``size``, the bytes of that JSON."""

    value: Any
    size: int


class Unchanged(enum.Enum):
    """The handler returned the event's request (or response) as it got it: the runtime compared the JSON."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


class EnvironmentFailure(Exception):
    """Root of what an environment reports instead of a result."""


class HandlerFailed(EnvironmentFailure):
    """The handler raised, its promise was rejected, or it called back with an error (or its result could not be
    marshalled: ``error_type`` ``Runtime.MarshalError``), as its runtime reported it to the Runtime API.
    ``stack`` is the trace the runtime sent (Python's frames, or Node.js's stack lines); the runtime has already
    written the error to the function's log, as Lambda's runtimes do."""

    def __init__(self, error_type: str, message: str, stack: list[str]) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.stack = stack


class RuntimeExited(EnvironmentFailure):
    """The environment's process ended during the invocation. ``status`` is how, in the words Lambda's log uses
    (Go's process state): ``exit status 1``, ``signal: killed``, ``signal: segmentation fault``; ``exit status 0``
    means it exited without a reason. ``out_of_memory``: edgeproxy killed it for going over its memory size."""

    def __init__(self, status: str, *, out_of_memory: bool = False) -> None:
        super().__init__(status)
        self.status = status
        self.out_of_memory = out_of_memory


class InitFailed(EnvironmentFailure):
    """A new environment could not finish its init phase: the function's module raised (``error_type`` is Lambda's,
    such as ``Runtime.ImportModuleError``, or the exception's own), the process exited (``Runtime.ExitError``), or
    the init ran past Lambda's 10 s limit (``timed_out``). ``duration_ms`` is how long the init ran."""

    def __init__(
        self, error_type: str, message: str, stack: list[str], *, duration_ms: float, timed_out: bool = False
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.stack = stack
        self.duration_ms = duration_ms
        self.timed_out = timed_out


class Throttled(EnvironmentFailure):
    """Every environment the function may have (``concurrency``) is busy: Lambda throttles the invocation."""

    def __init__(self, concurrency: int) -> None:
        super().__init__(f"{concurrency} environments busy")
        self.concurrency = concurrency
