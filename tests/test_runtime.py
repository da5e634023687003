"""runtime/__init__.py: Lambda's semantics over the executor: loading, warm state, context, timeouts, errors, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
import uuid
from pathlib import Path

import pytest

from edgeproxy import testing
from edgeproxy.errors import ConfigError, FunctionError
from edgeproxy.runtime import Runtime, new_request_id
from tests.conftest import association

EVENT = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": {"uri": "/"}}}]}


async def test_context_fields_and_remaining_time(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "ctx.py").write_text(
        "import time\n"
        "def handler(event, context):\n"
        "    first = context.get_remaining_time_in_millis()\n"
        "    time.sleep(0.05)\n"
        "    return {k: getattr(context, k) for k in ('function_name', 'function_version', 'invoked_function_arn',\n"
        "            'memory_limit_in_mb', 'aws_request_id', 'log_group_name', 'log_stream_name')} | {\n"
        "            'first': first, 'second': context.get_remaining_time_in_millis()}\n"
    )
    function = runtime.load(association(tmp_path, "ctx.py:handler"))
    result = await runtime.invoke(function, EVENT, trigger="viewer-request", seconds=2, memory=128)
    assert result["function_name"] == "us-east-1.ctx"
    assert result["function_version"] == "1"
    assert result["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx:1"
    assert result["memory_limit_in_mb"] == "128"  # a string, as Lambda's Python runtime has it
    assert re.fullmatch(r"[0-9a-f-]{36}", result["aws_request_id"])
    assert result["log_group_name"] == "/aws/lambda/us-east-1.ctx"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", result["log_stream_name"])
    assert 1000 < result["first"] <= 2000
    assert result["second"] < result["first"]


async def test_module_state_persists_between_invocations(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "warm.py").write_text(
        "COUNT = 0\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    return COUNT\n"
    )
    function = runtime.load(association(tmp_path, "warm.handler"))  # Lambda-style module.function
    assert [await runtime.invoke(function, EVENT, trigger="viewer-request") for _ in range(3)] == [1, 2, 3]


async def test_async_handler(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "aio.py").write_text(
        "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(0)\n    return 'ok'\n"
    )
    function = runtime.load(association(tmp_path, "aio.py:handler"))
    assert await runtime.invoke(function, EVENT, trigger="origin-request") == "ok"


async def test_timeout_is_execution_error_and_others_keep_running(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "hang.py").write_text("import time\ndef handler(event, context):\n    time.sleep(3)\n")
    (tmp_path / "quick.py").write_text("def handler(event, context):\n    return 'quick'\n")
    hang = runtime.load(association(tmp_path, "hang.py:handler"))
    quick = runtime.load(association(tmp_path, "quick.py:handler"))
    hanging = asyncio.create_task(runtime.invoke(hang, EVENT, trigger="viewer-request", seconds=0.2))
    assert await runtime.invoke(quick, EVENT, trigger="viewer-request") == "quick"
    with pytest.raises(FunctionError, match=r"hang.py:handler at viewer-request timed out after 0.2 s"):
        await hanging


async def test_sys_exit_in_a_handler_is_an_execution_error(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "quits.py").write_text("import sys\ndef handler(event, context):\n    sys.exit(3)\n")
    (tmp_path / "aquits.py").write_text("import sys\nasync def handler(event, context):\n    sys.exit(3)\n")
    for ref in ("quits.py:handler", "aquits.py:handler"):
        with pytest.raises(FunctionError, match=rf"{ref} at viewer-request raised SystemExit: 3"):
            await runtime.invoke(runtime.load(association(tmp_path, ref)), EVENT, trigger="viewer-request")
    (tmp_path / "still.py").write_text("def handler(event, context):\n    return 'still here'\n")
    still = runtime.load(association(tmp_path, "still.py:handler"))
    assert await runtime.invoke(still, EVENT, trigger="viewer-request") == "still here"


async def test_any_base_exception_from_a_handler_is_an_execution_error(tmp_path: Path, runtime: Runtime) -> None:
    # KeyboardInterrupt or a BaseException subclass raised by a handler is that invocation's crash: asyncio re-raises
    # KeyboardInterrupt out of the event loop, which would stop the whole proxy.
    (tmp_path / "interrupts.py").write_text("def handler(event, context):\n    raise KeyboardInterrupt('x')\n")
    (tmp_path / "ainterrupts.py").write_text("async def handler(event, context):\n    raise KeyboardInterrupt('x')\n")
    (tmp_path / "base.py").write_text(
        "class Odd(BaseException):\n    pass\ndef handler(event, context):\n    raise Odd('y')\n"
    )
    (tmp_path / "genexit.py").write_text("def handler(event, context):\n    raise GeneratorExit()\n")
    (tmp_path / "agenexit.py").write_text("async def handler(event, context):\n    raise GeneratorExit()\n")
    for ref, name in [
        ("interrupts.py:handler", "KeyboardInterrupt"),
        ("ainterrupts.py:handler", "KeyboardInterrupt"),
        ("base.py:handler", "Odd"),
        ("genexit.py:handler", "GeneratorExit"),
        ("agenexit.py:handler", "GeneratorExit"),
    ]:
        with pytest.raises(FunctionError, match=rf"{ref} at viewer-request raised {name}"):
            await runtime.invoke(runtime.load(association(tmp_path, ref)), EVENT, trigger="viewer-request")
    (tmp_path / "still.py").write_text("def handler(event, context):\n    return 'still here'\n")
    still = runtime.load(association(tmp_path, "still.py:handler"))
    assert await runtime.invoke(still, EVENT, trigger="viewer-request") == "still here"


async def test_exception_logs_user_traceback(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "boom.py").write_text(
        "def helper():\n    raise KeyError('missing')\n\ndef handler(event, context):\n    helper()\n"
    )
    function = runtime.load(association(tmp_path, "boom.py:handler"))
    with (
        caplog.at_level(logging.INFO, logger="edgeproxy.lambda"),
        pytest.raises(FunctionError, match="KeyError"),
    ):
        await runtime.invoke(function, EVENT, trigger="origin-response")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert 'boom.py", line 5, in handler' in text
    assert 'boom.py", line 2, in helper' in text
    assert "runtime.py" not in text
    assert "concurrent" not in text


async def test_lambda_style_log_lines_and_prints(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "chatty.py").write_text(
        "def handler(event, context):\n"
        "    print('hello', 'world')\n"
        "    print('second line')\n"
        "    return context.aws_request_id\n"
    )
    function = runtime.load(association(tmp_path, "chatty.py:handler"))
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        request_id = await runtime.invoke(function, EVENT, trigger="viewer-response")
    messages = caplog.records[0].getMessage().split("\n")
    assert messages[0] == f"[chatty viewer-response] START RequestId: {request_id} Version: 1"
    assert messages[1] == f"[chatty viewer-response] {request_id}\thello world"
    assert messages[2] == f"[chatty viewer-response] {request_id}\tsecond line"
    assert messages[3] == f"[chatty viewer-response] END RequestId: {request_id}"
    assert re.fullmatch(
        rf"\[chatty viewer-response\] REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\t"
        r"Billed Duration: \d+ ms\tMemory Size: 128 MB",
        messages[4],
    )


def test_load_errors_name_the_config_key(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError) as caught:
        runtime.load(association(tmp_path, "broken.py:handler"))
    assert (caught.value.source, caught.value.key) == ("test", "k")
    assert "ModuleNotFoundError" in caught.value.problem
    with pytest.raises(ConfigError, match="is not a handler reference"):
        runtime.load(association(tmp_path, "nodots"))


async def test_a_results_own_equality_never_runs(tmp_path: Path, runtime: Runtime) -> None:
    # The unchanged-result shortcut compares plain dicts only; anything else is what Lambda's JSON makes of it.
    (tmp_path / "tricky.py").write_text(
        "class Tricky(dict):\n"
        "    def __eq__(self, other):\n"
        "        raise ValueError('ambiguous')\n"
        "    __hash__ = None\n"
        "def handler(event, context):\n"
        "    return Tricky(event['Records'][0]['cf']['request'])\n"
    )
    before = {"uri": "/", "headers": {}, "method": "GET", "clientIp": "192.0.2.1"}
    event = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": dict(before)}}]}
    function = runtime.load(association(tmp_path, "tricky.py:handler"))
    result = await runtime.invoke(function, event, trigger="viewer-request", unchanged=before)
    assert type(result) is dict
    assert result == before


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("security_headers.py", "'security_headers.py' names no function: a handler reference is 'file.py:function'"),
        ("security_headers.py", "(for example 'security_headers.py:handler' or 'security_headers.handler')"),
        ("lib/auth.py:", "'lib/auth.py:' names no function: a handler reference is 'file.py:function', 'file.mjs"),
        (":handler", "':handler' names no function"),
        ("nodots", "'nodots' is not a handler reference: a handler reference is 'file.py:function', 'file.mjs"),
        ("index.mjs", "'index.mjs' names no function: a handler reference is"),
        ("index.mjs", "(for example 'index.mjs:handler' or 'index.handler')"),
        ("index.js:handler", "index.js' does not exist"),
        ("app.cjs:handler", "app.cjs' does not exist"),
        ("public/index.html:handler", "a handler's file is a .py (Python) or .js, .mjs, .cjs (Node.js) file, not 'in"),
        (
            "missing.handler",
            "missing.py' does not exist (nor, for Node.js, missing, missing.js, missing.mjs or missing",
        ),
        ("both.handler", "'both.handler' could be both.py (Python) or both.mjs (Node.js): name the file"),
    ],
)
def test_a_reference_that_names_no_handler_says_what_a_reference_looks_like(
    ref: str, problem: str, tmp_path: Path, runtime: Runtime
) -> None:
    (tmp_path / "security_headers.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "both.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "both.mjs").write_text("export const handler = async (event) => event;\n")
    with pytest.raises(ConfigError) as caught:
        runtime.load(association(tmp_path, ref))
    assert problem in caught.value.problem
    assert "has no function 'py'" not in caught.value.problem


async def test_invocations_leave_the_global_random_generator_to_the_handler(tmp_path: Path, runtime: Runtime) -> None:
    # A handler that seeds random gets the same numbers, however many requests were answered in between.
    (tmp_path / "seeded.py").write_text(
        "import random\ndef handler(event, context):\n    random.seed(7)\n    return random.random()\n"
    )
    (tmp_path / "draws.py").write_text("import random\ndef handler(event, context):\n    return random.random()\n")
    seeded = runtime.load(association(tmp_path, "seeded.py:handler"))
    draws = runtime.load(association(tmp_path, "draws.py:handler"))
    first = await runtime.invoke(seeded, EVENT, trigger="viewer-request")
    random.seed(7)
    expected = [random.random(), random.random()]
    random.seed(7)
    random.random()
    assert await runtime.invoke(draws, EVENT, trigger="viewer-request") == expected[1]  # nothing drawn in between
    assert first == expected[0]


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


STREAM = """
import json, os

def handler(event, context):
    # (thread isolation runs in the proxy's process, which has no Lambda variables of its own)
    stream = context.log_stream_name
    seen = {"stream": stream, "env": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", stream)}
    if "requestContext" in event:
        return {"statusCode": 200, "body": json.dumps(seen)}
    return {"status": "200", "body": json.dumps(seen)}
"""


@pytest.mark.parametrize("isolation", ["process", "thread"])
async def test_the_log_stream_names_the_version_and_the_utc_date(
    isolation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local date is tomorrow's for most of the day
    time.tzset()
    try:
        (tmp_path / "stream.py").write_text(STREAM)
        ref = f"{tmp_path / 'stream.py'}:handler"
        today = time.strftime("%Y/%m/%d", time.gmtime())
        edge = await testing.ainvoke(ref, testing.cloudfront_event("viewer-request", "/"), isolation=isolation)  # type: ignore[arg-type]
        alb = await testing.ainvoke(ref, testing.alb_event("/"), isolation=isolation)  # type: ignore[arg-type]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    for result, version in ((json.loads(edge["body"]), "[1]"), (json.loads(alb["body"]), "[$LATEST]")):
        for name in (result["stream"], result["env"]):
            assert name.startswith(f"{today}/{version}"), (name, today)
