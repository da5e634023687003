"""runtime/bootstrap.py: the Python runtime of an execution environment, driven over its wire as the proxy drives
it, and run by the base interpreter (which does not have edgeproxy installed: the bootstrap needs only the standard
library)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.runtime.process import PYTHON_BOOTSTRAP

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)  # the interpreter this virtualenv was made from
EVENT = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": {"uri": "/", "headers": {}}}}]}


class Runtime:
    """The bootstrap in a child process, its pipes, and the frames it sent."""

    def __init__(self, handler_file: Path, name: str = "handler", env: dict[str, str] | None = None) -> None:
        self.request_r, self.request_w = os.pipe()
        self.response_r, self.response_w = os.pipe()
        self.process = subprocess.Popen(
            [BASE_PYTHON, str(PYTHON_BOOTSTRAP), str(self.request_r), str(self.response_w), str(handler_file), name],
            pass_fds=(self.request_r, self.response_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=handler_file.parent,
            env={**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", **(env or {})},
        )
        os.close(self.request_r)
        os.close(self.response_w)

    def frame(self) -> tuple[str, bytes]:
        header = self._read(4)
        body = self._read(int.from_bytes(header, "big"))
        return body[:1].decode(), body[1:]

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(self.response_r, size - len(data))
            assert chunk, "the runtime closed its end"
            data += chunk
        return data

    def invoke(self, event: Any, part: str | None = None, deadline_in: float = 3.0) -> tuple[str, bytes]:
        payload = json.dumps(
            {
                "id": "req-1",
                "deadline": int((time.time() + deadline_in) * 1000),
                "arn": "arn:x",
                "part": part,
                "event": event,
            }
        ).encode()
        os.write(self.request_w, (len(payload) + 1).to_bytes(4, "big") + b"I" + payload)
        return self.frame()

    def close(self) -> str:
        """End of file on its request pipe: it exits. Everything it wrote to standard output and error."""
        os.close(self.request_w)
        assert self.process.wait(timeout=10) == 0
        os.close(self.response_r)
        assert self.process.stdout is not None
        output = self.process.stdout.read().decode()
        self.process.stdout.close()
        return output


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Runtime]]:
    runtimes: list[Runtime] = []
    yield runtimes
    for runtime in runtimes:
        runtime.process.kill()
        runtime.process.wait()
        if runtime.process.stdout is not None:
            runtime.process.stdout.close()
        for fd in (runtime.request_w, runtime.response_r):
            with contextlib.suppress(OSError):
                os.close(fd)


def start(tmp_path: Path, started: list[Runtime], source: str, name: str = "app.py", **kwargs: Any) -> Runtime:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    runtime = Runtime(path, **kwargs)
    started.append(runtime)
    return runtime


def ready(runtime: Runtime) -> dict[str, Any]:
    kind, payload = runtime.frame()
    assert kind == "S"
    version: dict[str, Any] = json.loads(payload)
    kind, peak = runtime.frame()
    assert (kind, peak.isdigit()) == ("N", True)  # ready, with its peak RSS in kB
    return version


def test_the_base_interpreter_has_no_edgeproxy(tmp_path: Path) -> None:
    missing = subprocess.run([BASE_PYTHON, "-c", "import edgeproxy"], capture_output=True, cwd=tmp_path, check=False)
    assert missing.returncode != 0  # so every test here shows the bootstrap needs nothing but the standard library


def test_started_then_ready_then_a_result_with_the_peak_memory(tmp_path: Path, started: list[Runtime]) -> None:
    runtime = start(tmp_path, started, "def handler(event, context):\n    return {'status': '200', 'body': 'hé'}\n")
    version = ready(runtime)
    assert version["runtime"] == f"python:{sys.version_info.major}.{sys.version_info.minor}"
    kind, payload = runtime.invoke(EVENT)
    assert kind == "R"
    peak, _, body = payload.partition(b"\n")
    assert 1000 < int(peak) < 100_000  # kB: this process's own peak
    assert body == b'{"status": "200", "body": "h\\u00e9"}'  # json.dumps, as Lambda's runtime sends it
    runtime.close()


def test_a_result_equal_to_the_events_part_is_said_unchanged(tmp_path: Path, started: list[Runtime]) -> None:
    runtime = start(
        tmp_path, started, "def handler(event, context):\n    return event['Records'][0]['cf']['request']\n"
    )
    ready(runtime)
    kind, payload = runtime.invoke(EVENT, part="request")
    assert (kind, payload.isdigit()) == ("U", True)
    edits = "def handler(event, context):\n    request = event['Records'][0]['cf']['request']\n"
    edits += "    request['uri'] = '/x'\n    return request\n"
    changed = start(tmp_path, started, edits, name="b.py")
    ready(changed)
    assert changed.invoke(EVENT, part="request")[0] == "R"


def test_the_context_is_lambdas_python_context(tmp_path: Path, started: list[Runtime]) -> None:
    source = """
    import json
    def handler(event, context):
        return {"id": context.aws_request_id, "arn": context.invoked_function_arn, "memory": context.memory_limit_in_mb,
                "remaining": context.get_remaining_time_in_millis(), "identity": context.identity.cognito_identity_id,
                "client": context.client_context}
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    _, payload = runtime.invoke(EVENT, deadline_in=2)
    seen = json.loads(payload.partition(b"\n")[2])
    assert seen["id"] == "req-1"
    assert seen["arn"] == "arn:x"
    assert seen["memory"] == "256"  # a string, from AWS_LAMBDA_FUNCTION_MEMORY_SIZE
    assert 1000 < seen["remaining"] <= 2000
    assert (seen["identity"], seen["client"]) == (None, None)
    _, payload = runtime.invoke(EVENT, deadline_in=-5)
    assert json.loads(payload.partition(b"\n")[2])["remaining"] == 0  # never below 0 in Python


def test_a_handler_exception_is_lambdas_error_json_and_log(tmp_path: Path, started: list[Runtime]) -> None:
    source = """
    def helper():
        raise ValueError("boom at invoke")
    def handler(event, context):
        print("before the error")
        helper()
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    kind, payload = runtime.invoke(EVENT)
    assert kind == "E"
    record = json.loads(payload.partition(b"\n")[2])
    assert list(record) == ["errorMessage", "errorType", "requestId", "stackTrace"]  # the Python runtime's order
    assert (record["errorMessage"], record["errorType"], record["requestId"]) == (
        "boom at invoke",
        "ValueError",
        "req-1",
    )
    assert len(record["stackTrace"]) == 2  # the handler's frames, none of the runtime's own
    assert record["stackTrace"][1].startswith(f'  File "{tmp_path / "app.py"}", line 3, in helper\n')
    assert runtime.invoke(EVENT)[0] == "E"  # the environment survives an ordinary exception
    output = runtime.close()
    assert output.startswith(
        "before the error\n[ERROR] ValueError: boom at invoke\nTraceback (most recent call last):\n"
    )
    assert "line 6, in handler\n    helper()\n" in output


def test_what_json_cannot_hold_is_a_marshal_error_and_a_decimal_its_digits(
    tmp_path: Path, started: list[Runtime]
) -> None:
    source = """
    from decimal import Decimal
    def handler(event, context):
        if event == "set":
            return {"a": {1, 2}}
        return {"status": Decimal("200"), "ratio": Decimal("0.5")}
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    kind, payload = runtime.invoke("set")
    record = json.loads(payload.partition(b"\n")[2])
    assert (kind, record["errorType"]) == ("E", "Runtime.MarshalError")
    assert record["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    kind, payload = runtime.invoke("decimal")
    assert (kind, payload.partition(b"\n")[2]) == ("R", b'{"status": 200, "ratio": 0.5}')


@pytest.mark.parametrize(
    ("source", "name", "error_type", "message"),
    [
        (
            "import no_such_module\n",
            "app.py",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module'",
        ),
        ("def handler(:\n", "app.py", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app': "),
        (
            "def other(event, context):\n    pass\n",
            "app.py",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        ("handler = 42\n", "app.py", "Runtime.HandlerNotFound", "Handler 'handler' on module 'app' is not callable"),
        ("raise KeyError('at import')\n", "app.py", "KeyError", "'at import'"),
        (
            "def handler(event, context):\n    pass\n",
            "sys.py",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
    ],
)
def test_an_init_failure_is_reported_then_the_runtime_exits(
    source: str, name: str, error_type: str, message: str, tmp_path: Path, started: list[Runtime]
) -> None:
    runtime = start(tmp_path, started, source, name=name)
    assert runtime.frame()[0] == "S"
    kind, payload = runtime.frame()
    record = json.loads(payload)
    assert (kind, record["errorType"], record["requestId"]) == ("X", error_type, "")
    assert record["errorMessage"].startswith(message)
    assert runtime.process.wait(timeout=10) == 1
    assert runtime.process.stdout is not None
    assert f"[ERROR] {error_type}: {message}" in runtime.process.stdout.read().decode()


def test_logging_gets_lambdas_format_with_the_request_id(tmp_path: Path, started: list[Runtime]) -> None:
    source = """
    import logging
    logger = logging.getLogger()
    logger.setLevel(logging.INFO)
    def handler(event, context):
        logger.info("one record")
        return None
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    assert runtime.invoke(EVENT)[0] == "R"
    output = runtime.close()
    assert re.fullmatch(r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-1\tone record\n", output)


LAMBDA_LINE = r"\[{level}\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\t{message}\n"


def test_basic_config_at_import_is_a_no_op_as_on_lambda(tmp_path: Path, started: list[Runtime]) -> None:
    # awslambdaric's run() puts its handler on the root logger before it imports the function: basicConfig then
    # does nothing, and the root logger stays at WARNING.
    source = """
    import logging
    logging.basicConfig(level=logging.INFO)
    logger = logging.getLogger()
    logger.warning("at import")
    def handler(event, context):
        logger.info("info line")
        logger.warning("warning line")
        return None
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    assert runtime.invoke(EVENT)[0] == "R"
    output = runtime.close()
    expected = LAMBDA_LINE.format(level="WARNING", request_id="", message="at import")
    expected += LAMBDA_LINE.format(level="WARNING", request_id="req-1", message="warning line")
    assert re.fullmatch(expected, output), output


def test_logging_imported_in_the_handler_gets_lambdas_format(tmp_path: Path, started: list[Runtime]) -> None:
    source = """
    def handler(event, context):
        import logging
        logging.warning("imported late")
        logging.getLogger("app").error("a named logger")
        return None
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    assert runtime.invoke(EVENT)[0] == "R"
    output = runtime.close()
    expected = LAMBDA_LINE.format(level="WARNING", request_id="req-1", message="imported late")
    expected += LAMBDA_LINE.format(level="ERROR", request_id="req-1", message="a named logger")
    assert re.fullmatch(expected, output), output


@pytest.mark.parametrize(
    ("setting", "logged"), [("DEBUG", ["DEBUG", "INFO"]), ("TRACE", ["DEBUG", "INFO"]), ("bogus", [])]
)
def test_aws_lambda_log_level_sets_the_root_level(
    setting: str, logged: list[str], tmp_path: Path, started: list[Runtime]
) -> None:
    source = """
    import logging
    def handler(event, context):
        logging.debug("debug")
        logging.info("info")
        return None
    """
    runtime = start(tmp_path, started, source, env={"AWS_LAMBDA_LOG_LEVEL": setting})
    ready(runtime)
    assert runtime.invoke(EVENT)[0] == "R"
    assert re.findall(r"^\[([A-Z]+)\]", runtime.close(), re.MULTILINE) == logged


def test_an_async_def_handler_runs_on_a_loop_of_its_own(tmp_path: Path, started: list[Runtime]) -> None:
    source = """
    import asyncio
    async def handler(event, context):
        await asyncio.sleep(0)
        return "awaited"
    """
    runtime = start(tmp_path, started, source)
    ready(runtime)
    assert runtime.invoke(EVENT)[1].partition(b"\n")[2] == b'"awaited"'
    assert runtime.invoke(EVENT)[1].partition(b"\n")[2] == b'"awaited"'


def test_the_functions_folder_is_first_on_its_import_path(tmp_path: Path, started: list[Runtime]) -> None:
    (tmp_path / "sibling.py").write_text("VALUE = 'imported from the task root'\n")
    (tmp_path / "process.py").write_text("SHADOW = True\n")  # a name of edgeproxy's runtime folder: not shadowed by it
    source = "import sibling, process\ndef handler(event, context):\n    return [sibling.VALUE, process.SHADOW]\n"
    runtime = start(tmp_path, started, source)
    ready(runtime)
    assert runtime.invoke(EVENT)[1].partition(b"\n")[2] == b'["imported from the task root", true]'
