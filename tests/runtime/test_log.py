"""runtime/log.py: one invocation's Lambda log, print capture without a process-wide stdout swap, and tracebacks
cut to the user's frames."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from edgeproxy.runtime import log as lambda_log
from edgeproxy.runtime.log import InvocationLog, invocation_print, user_traceback


def test_lines_are_prefixed_and_emitted_as_one_record(caplog: pytest.LogCaptureFixture) -> None:
    log = InvocationLog("[auth viewer-request]", "rid")
    log.line("START RequestId: rid Version: 1")
    log.write("partial ")
    log.write("line\nsecond\nunterminated")
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        log.emit()
    [record] = caplog.records
    assert record.getMessage().split("\n") == [
        "[auth viewer-request] START RequestId: rid Version: 1",
        "[auth viewer-request] rid\tpartial line",
        "[auth viewer-request] rid\tsecond",
        "[auth viewer-request] rid\tunterminated",
    ]


def test_print_goes_to_the_running_invocation_and_elsewhere_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    invocation_print("outside")
    log = InvocationLog("[f t]", "rid")
    token = lambda_log.current.set(log)
    try:
        invocation_print("inside", 1, sep="-")
        invocation_print("to a file", file=io.StringIO())
        invocation_print("to stderr", file=sys.stderr)
    finally:
        lambda_log.current.reset(token)
    assert log.lines == ["[f t] rid\tinside-1"]
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("outside\n", "to stderr\n")
    assert "edgeproxy" not in type(sys.stdout).__module__  # never swapped


def test_user_traceback_keeps_the_users_frames_only() -> None:
    def users_code() -> None:
        raise ValueError("bad")

    try:
        users_code()
    except ValueError as exc:
        text = user_traceback(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert "in users_code" in text
    assert text.endswith("ValueError: bad")
