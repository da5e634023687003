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


def test_a_chatty_invocation_holds_its_first_and_last_output_and_says_what_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = InvocationLog("[f origin-request]", "rid")
    log.line("START RequestId: rid Version: 1")
    count = 20 * 1024
    most = 0
    for number in range(count):  # 20 MB of 1 KB lines
        log.write(f"{number:05d} {'x' * 1018}\n")
        most = max(most, log.held + log.tail_held)
    log.line("END RequestId: rid")
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        log.emit()
    [record] = caplog.records
    message = record.getMessage()
    assert most <= lambda_log.HEAD + lambda_log.TAIL  # what the proxy held, whatever the handler printed
    assert len(message) <= lambda_log.HEAD + lambda_log.TAIL + 10_000  # and logged (with newlines and its own lines)
    lines = message.split("\n")
    assert (lines[0], lines[-1]) == (
        "[f origin-request] START RequestId: rid Version: 1",
        "[f origin-request] END RequestId: rid",
    )
    [notice] = [index for index, line in enumerate(lines) if "left out" in line]
    shown = [int(line.partition("\t")[2][:5]) for line in lines[1:-1] if "\t" in line]
    head = notice - 1
    assert shown == list(range(head)) + list(range(count - (len(shown) - head), count))  # the first and the last
    left_out = count - len(shown)
    assert lines[notice] == (
        f"[f origin-request] [edgeproxy] {left_out} lines ({left_out * 1047 / 1e6:.1f} MB) of output left out here: "
        "edgeproxy logs an invocation's first and last 1 MB of output"
    )


def test_a_line_that_never_ends_is_held_in_pieces(caplog: pytest.LogCaptureFixture) -> None:
    log = InvocationLog("[f t]", "rid")
    for _ in range(80):
        log.write("y" * 100_000)  # 8 MB, no newline
    log.line("END RequestId: rid")
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        log.emit()
    lines = caplog.records[0].getMessage().split("\n")
    assert len(caplog.records[0].getMessage()) <= lambda_log.HEAD + lambda_log.TAIL + 10_000
    assert lines[-1] == "[f t] END RequestId: rid"
    pieces = [len(line.partition("\t")[2]) for line in lines[:-1] if "\t" in line]
    assert set(pieces[:-1]) == {lambda_log.LINE}  # the line in pieces, then what was left of it at the END line
    assert pieces[-1] == 8_000_000 % lambda_log.LINE
