"""Looking at processes from the tests, through /proc: a process's live descendants, their CPU time, whether a pid
is still a process (and not a zombie). What the execution-environment tests check their claims with."""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ')'.
    return [text[: text.index(" ")], *text[text.rindex(")") + 2 :].split()]


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[2] == str(pid) and stat[1] != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid``, at any depth."""
    below = children(pid)
    return below + [grandchild for child in below for grandchild in descendants(child)]


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a process, and not a zombie waiting to be reaped."""
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"


def exists(pid: int) -> bool:
    """Whether ``pid`` is still in the process table (running, or a zombie nobody reaped)."""
    return _stat(pid) is not None


def cpu_seconds(pids: list[int]) -> float:
    """The user and system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        stat = _stat(pid)
        if stat is not None:
            total += int(stat[13]) + int(stat[14])  # utime, stime (fields 14 and 15 of stat(5))
    return total / TICKS


def children_cpu_seconds() -> float:
    """CPU time of this process's children: the live ones, and those already reaped."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return reaped.ru_utime + reaped.ru_stime + cpu_seconds(descendants(os.getpid()))


def wait_until_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    """Wait (at most ``seconds``) for the processes to leave the process table; those still there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [pid for pid in pids if exists(pid)]
        if not left:
            return []
        time.sleep(0.02)
    return [pid for pid in pids if exists(pid)]


async def gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    """:func:`wait_until_gone` for a test running the proxy in its own event loop (which must go on running, to
    reap them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(exists(pid) for pid in pids):
            return []
        await asyncio.sleep(0.02)
    return [pid for pid in pids if exists(pid)]


def wait_until_not_running(pids: list[int], seconds: float = 10.0) -> list[int]:
    """Wait for the processes to end (gone, or a zombie); those still running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(is_running(pid) for pid in pids):
            return []
        time.sleep(0.02)
    return [pid for pid in pids if is_running(pid)]
