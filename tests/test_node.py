"""Functional: Node.js handlers, through the proxy over real sockets (and through ``edgeproxy invoke``,
``testing.invoke`` and the pytest fixture): ES modules and CommonJS, Lambda's file lookup for ``index.handler``,
async, promise and callback handlers with ``callbackWaitsForEmptyEventLoop``, the context, console lines as the
Node.js runtime writes them, Lambda's error JSON, crashes, memory and timeouts, and results validated as Python's.
The bootstrap is runtime/bootstrap.mjs; the process side is covered in tests/runtime/test_process.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from edgeproxy import EdgeProxyFactory, alb, config, testing
from edgeproxy.cli import main
from edgeproxy.errors import ConfigError, LambdaExecutionError
from edgeproxy.server import create_app
from tests import processes
from tests.conftest import Client, Origin, ProxyFactory, needs_node

pytestmark = needs_node

CONSOLE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(?P<id>[0-9a-f-]{36}|undefined)\t(?P<level>[A-Z]+)\t(?P<message>.*)"
)


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


async def serve(
    proxy: ProxyFactory, tmp_path: Path, origin: Origin, trigger: str, handler: str, **settings: Any
) -> Client:
    spec = ", ".join(f"{key} = {json.dumps(value)}" for key, value in {"handler": handler, **settings}.items())
    text = f'[origins.app]\nurl = "{origin.url}"\n[default_behavior]\norigin = "app"\n'
    text += 'allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]\n'
    text += f"[default_behavior.functions]\n{trigger} = {{ {spec} }}\n"
    (tmp_path / "edgeproxy.toml").write_text(text)
    return await proxy(config.load(tmp_path / "edgeproxy.toml"))


def lambda_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        line
        for record in caplog.records
        if record.name == "edgeproxy.lambda"
        for line in record.getMessage().split("\n")
    ]


def environments(file: str) -> list[int]:
    """The pids of this process's children running ``file`` (the environments of that handler)."""
    found = []
    for pid in processes.children(os.getpid()):
        try:
            if file in Path(f"/proc/{pid}/cmdline").read_text():
                found.append(pid)
        except OSError:
            continue
    return found


def console(lines: list[str]) -> list[dict[str, str]]:
    """The Node.js console lines among the log's (``[name trigger] `` prefix removed)."""
    found = []
    for line in lines:
        match = CONSOLE.fullmatch(line.partition("] ")[2])
        if match:
            found.append(match.groupdict())
    return found


@pytest.fixture(autouse=True)
def _lambda_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeproxy.lambda")


GENERATED = "{ status: '200', body: %s }"


# -- module kinds and lookup -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "ref", "expected"),
    [
        ({"app.mjs": "export const handler = async () => ({ status: '200', body: 'esm' });"}, "app.mjs:handler", "esm"),
        ({"app.js": "exports.handler = async () => ({ status: '200', body: 'cjs' });"}, "app.js:handler", "cjs"),
        (
            {"app.cjs": "module.exports = { handler: async () => ({ status: '200', body: 'cjs' }) };"},
            "app.cjs:handler",
            "cjs",
        ),
        (
            {
                "package.json": '{"type": "module"}',
                "app.js": "export const handler = async () => ({ status: '200', body: 'esm js' });",
            },
            "app.js:handler",
            "esm js",
        ),
        (
            {"index.mjs": "export const handler = async () => ({ status: '200', body: 'index.mjs' });"},
            "index.handler",
            "index.mjs",
        ),
        (  # index.js comes before index.mjs, as in Lambda's Node.js runtime
            {
                "index.js": "exports.handler = async () => ({ status: '200', body: 'index.js' });",
                "index.mjs": "export const handler = async () => ({ status: '200', body: 'index.mjs' });",
            },
            "index.handler",
            "index.js",
        ),
        (
            {"index.cjs": "exports.handler = async () => ({ status: '200', body: 'index.cjs' });"},
            "index.handler",
            "index.cjs",
        ),
        (  # a property path, as 'index.handlers.viewer' names one
            {"index.mjs": "export const handlers = { viewer: async () => ({ status: '200', body: 'nested' }) };"},
            "index.handlers.viewer",
            "nested",
        ),
        (
            {"src/index.mjs": "export const handler = async () => ({ status: '200', body: 'in src' });"},
            "src/index.handler",
            "in src",
        ),
    ],
)
async def test_es_modules_commonjs_and_lambdas_lookup_of_index_handler(
    files: dict[str, str], ref: str, expected: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    for name, source in files.items():
        write(tmp_path, name, source)
    client = await serve(proxy, tmp_path, origin, "viewer-request", ref)
    response = await client.get("/")
    assert (response.status, await response.text()) == (200, expected)


async def test_a_node_function_runs_in_a_process_of_its_own(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    write(tmp_path, "pid.mjs", "export const handler = async () => ({ status: '200', body: String(process.pid) });")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "pid.mjs:handler")
    pids = {int(await (await client.get("/")).text()) for _ in range(3)}
    assert len(pids) == 1
    [pid] = pids
    assert pid != os.getpid()
    assert pid in processes.children(os.getpid())


# -- handler styles ----------------------------------------------------------------------------------------------


STYLED = (
    "const styled = (event) => { event.Records[0].cf.request.uri = '/styled'; return event.Records[0].cf.request; };\n"
)


@pytest.mark.parametrize(
    "source",
    [
        "export const handler = async (event) => styled(event);",
        "export const handler = (event) => new Promise((resolve) => setTimeout(() => resolve(styled(event)), 10));",
        "export const handler = (event, context, callback) => { callback(null, styled(event)); };",
        "export const handler = (event, context) => { context.succeed(styled(event)); };",
        "export const handler = (event, context) => { context.done(null, styled(event)); };",
    ],
    ids=["async", "promise", "callback", "context.succeed", "context.done"],
)
async def test_async_promise_and_callback_handlers(
    source: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    write(tmp_path, "styled.mjs", STYLED + source)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "styled.mjs:handler")
    assert (await client.get("/original")).status == 200
    assert origin.last.raw_path == "/styled"


WAITS = """
let invocation = 0;
export const handler = (event, context, callback) => {
  invocation += 1;
  const which = invocation;
  context.callbackWaitsForEmptyEventLoop = event.Records[0].cf.request.querystring !== 'nowait';
  setTimeout(() => console.log(`timer of invocation ${which} fired`), 50);
  callback(null, event.Records[0].cf.request);
};
"""


async def test_a_callback_waits_for_the_event_loop_unless_told_not_to(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "waits.mjs", WAITS)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "waits.mjs:handler")

    async def invocation_log(query: str) -> list[str]:
        caplog.clear()
        assert (await client.get(f"/x?{query}")).status == 200
        [record] = [record for record in caplog.records if "START RequestId" in record.getMessage()]
        return [entry["message"] for entry in console(record.getMessage().split("\n"))]

    assert await invocation_log("wait") == ["timer of invocation 1 fired"]  # answered once the loop was empty
    assert await invocation_log("nowait") == []  # answered at once; its timer is frozen with the environment...
    assert await invocation_log("wait") == [
        "timer of invocation 2 fired",
        "timer of invocation 3 fired",
    ]  # ...until now


@pytest.mark.parametrize(
    "source",
    [
        "(e, c, callback) => { callback(null, FIRST); callback(new Error('late error')); }",
        "(e, c, callback) => { callback(null, FIRST); callback(null, SECOND); }",
        "async (e, c, callback) => { callback(null, FIRST); return SECOND; }",
        "(e, c, callback) => { callback(null, FIRST); c.succeed(SECOND); }",
        "(e, c, callback) => { c.succeed(FIRST); callback(null, SECOND); }",
        "(e, c) => { c.done(null, FIRST); c.fail(new Error('late error')); }",
    ],
    ids=[
        "callback-then-error",
        "callback-twice",
        "callback-then-return",
        "callback-then-succeed",
        "succeed-then-callback",
        "done-then-fail",
    ],
)
async def test_the_first_completion_call_wins(source: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path) -> None:
    # CallbackContext.js wraps callback, succeed, fail and done in one onlyAllowFirstCall; a returned promise goes
    # through the same wrapped succeed and fail (Runtime.js).
    first, second = GENERATED % "'first'", GENERATED % "'second'"
    write(tmp_path, "twice.js", f"const FIRST = {first}, SECOND = {second};\nexports.handler = {source};")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "twice.js:handler")
    response = await client.get("/")
    assert (response.status, await response.text()) == (200, "first")


async def test_a_handler_that_returns_nothing_and_calls_nothing_back_answers_null(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    write(tmp_path, "nothing.js", "exports.handler = (event, context, callback) => { setTimeout(() => {}, 20); };")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "nothing.js:handler")
    response = await client.get("/")
    # null, once the event loop is empty: CloudFront's "JSON output must be an object type" (502), as for Python's None
    assert (response.status, response.headers["X-Cache"]) == (502, "LambdaValidationError from cloudfront")


async def test_an_async_handler_whose_promise_never_settles_fails_with_runtime_nodejs_exit(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Runtime.js _setDefaultExitListener: for an async handler, the empty event loop is an error (Errors.js NodeJsExit)
    write(tmp_path, "stuck.js", "exports.handler = async () => { await new Promise(() => {}); };")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "stuck.js:handler")
    [pid] = environments("stuck.js")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert (
        "raised Runtime.NodeJsExit: The Lambda runtime client detected an unexpected Node.js exit code. This is "
        in (response.headers["X-Edgeproxy-Error"])
    )
    [logged] = [entry for entry in console(lambda_lines(caplog)) if entry["level"] == "ERROR"]
    prefix, _, record = logged["message"].partition(" \t")
    error = json.loads(record)
    assert (prefix, error["errorType"]) == ("Invoke Error", "Runtime.NodeJsExit")
    assert error["errorMessage"] == (
        "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise "
        "that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes"
    )
    assert (await client.get("/")).status == 503
    assert environments("stuck.js") == [pid]  # the environment lives on


async def test_results_are_validated_as_pythons_are(proxy: ProxyFactory, origin: Origin, tmp_path: Path) -> None:
    source = """
    export const handler = async (event) => {
      const request = event.Records[0].cf.request;
      request.headers.host = [{ key: 'Host', value: 'x' }];
      return request;
    };
    """
    write(tmp_path, "host.mjs", source)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "host.mjs:handler")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
    assert "changed read-only header 'host'" in response.headers["X-Edgeproxy-Error"]


# -- the context and the environment ---------------------------------------------------------------------------


def node_major() -> str:
    node = shutil.which("node")
    assert node is not None
    version = subprocess.run([node, "-p", "process.versions.node"], capture_output=True, text=True, check=True)
    return version.stdout.split(".")[0]


CONTEXT = """
export const handler = async (event, context) => ({
  status: '200',
  body: JSON.stringify({
    awsRequestId: context.awsRequestId, functionName: context.functionName, functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn, memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName, logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(), waits: context.callbackWaitsForEmptyEventLoop,
    executionEnv: process.env.AWS_EXECUTION_ENV, handler: process.env._HANDLER, tz: process.env.TZ,
    offset: new Date().getTimezoneOffset(), taskRoot: process.env.LAMBDA_TASK_ROOT, cwd: process.cwd(),
    region: process.env.AWS_REGION, nodePath: process.env.NODE_PATH.split(':')[0],
  }),
});
"""


async def test_the_context_and_lambdas_environment_variables(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    write(tmp_path, "index.mjs", CONTEXT)
    client = await serve(proxy, tmp_path, origin, "origin-request", "index.handler", timeout=2, memory=256)
    seen = json.loads(await (await client.get("/")).text())
    major = node_major()
    assert re.fullmatch(r"[0-9a-f-]{36}", seen.pop("awsRequestId"))
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", seen.pop("logStreamName"))
    assert 0 < seen.pop("remaining") <= 2000
    assert seen == {
        "functionName": "us-east-1.index",
        "functionVersion": "1",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:index:1",
        "memoryLimitInMB": "256",  # a string, as the Node.js runtime has it
        "logGroupName": "/aws/lambda/us-east-1.index",
        "waits": True,
        "executionEnv": f"AWS_Lambda_nodejs{major}.x",
        "handler": "index.handler",
        "tz": ":UTC",
        "offset": 0,
        "taskRoot": str(tmp_path),
        "cwd": str(tmp_path),
        "region": "us-east-1",
        "nodePath": str(tmp_path),
    }


# -- logs ------------------------------------------------------------------------------------------------------

CHATTY = """
console.log('loading');
export const handler = async (event, context) => {
  console.log('a log line with %s and %d', 'a string', 42);
  console.info({ an: { object: [1, 2] } });
  console.warn('a warning');
  console.error('an error line');
  console.debug('debug');
  console.trace('a trace');
  process.stdout.write('raw stdout\\n');
  return event.Records[0].cf.request;
};
"""


async def test_console_lines_are_written_as_the_node_runtime_writes_them(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "chatty.mjs", CHATTY)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "chatty.mjs:handler")
    caplog.clear()
    assert (await client.get("/")).status == 200
    lines = lambda_lines(caplog)
    start = next(line for line in lines if "START RequestId" in line)
    request_id = start.split("RequestId: ")[1].split()[0]
    entries = console(lines)
    assert [(entry["id"], entry["level"], entry["message"]) for entry in entries] == [
        (request_id, "INFO", "a log line with a string and 42"),
        (request_id, "INFO", "{ an: { object: [ 1, 2 ] } }"),
        (request_id, "WARN", "a warning"),
        (request_id, "ERROR", "an error line"),
        (request_id, "DEBUG", "debug"),
        (request_id, "TRACE", "a trace"),
    ]
    assert "[chatty viewer-request] raw stdout" in lines  # process.stdout is the stream itself, unprefixed
    assert lines.index("[chatty viewer-request] raw stdout") < next(
        i for i, line in enumerate(lines) if "END RequestId" in line
    )


async def test_init_logs_have_request_id_undefined(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "chatty.mjs", CHATTY)
    await serve(proxy, tmp_path, origin, "viewer-request", "chatty.mjs:handler")
    assert {"id": "undefined", "level": "INFO", "message": "loading"} in console(lambda_lines(caplog))


async def test_a_callback_handler_gets_lambdas_deprecation_warning_at_init(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        "cb.js",
        "exports.handler = (event, context, callback) => callback(null, event.Records[0].cf.request);",
    )
    await serve(proxy, tmp_path, origin, "viewer-request", "cb.js:handler")
    [warning] = [entry for entry in console(lambda_lines(caplog)) if entry["level"] == "WARN"]
    assert warning["message"].startswith("AWS Lambda plans to remove support for callback-based function handlers")


# -- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error_type", "message"),
    [
        ("export const handler = async () => { throw new Error('boom'); };", "Error", "boom"),
        ("export const handler = async () => Promise.reject(new TypeError('rejected'));", "TypeError", "rejected"),
        (
            "export const handler = (e, c, callback) => callback(new RangeError('called back'));",
            "RangeError",
            "called back",
        ),
        (
            "export const handler = (e, c, callback) => { throw new Error('thrown in sync'); };",
            "Error",
            "thrown in sync",
        ),
    ],
)
async def test_a_thrown_error_or_a_rejection_logs_lambdas_error_json_and_is_a_503(
    source: str,
    error_type: str,
    message: str,
    proxy: ProxyFactory,
    origin: Origin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write(tmp_path, "fails.mjs", source)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "fails.mjs:handler")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert (
        f"fails.mjs:handler at viewer-request raised {error_type}: {message}" in response.headers["X-Edgeproxy-Error"]
    )
    assert message not in await response.text()
    [logged] = [entry for entry in console(lambda_lines(caplog)) if entry["level"] == "ERROR"]
    prefix, _, record = logged["message"].partition(" \t")
    assert prefix == "Invoke Error"
    error = json.loads(record)
    assert list(error)[:2] == ["errorType", "errorMessage"]
    assert (error["errorType"], error["errorMessage"]) == (error_type, message)
    assert error["stack"][0] == f"{error_type}: {message}"
    assert any("fails.mjs" in line for line in error["stack"])
    assert (await client.get("/")).status == 503  # the environment survives an ordinary error


@pytest.mark.parametrize(
    ("source", "prefix", "status"),
    [
        (
            "export const handler = (e, c, callback) => { setTimeout(() => { throw new Error('late'); }, 0); };",
            "Uncaught Exception",
            "exit status 129",
        ),
        (
            "export const handler = (e, c, callback) => { Promise.reject(new Error('nobody')); };",
            "Unhandled Promise Rejection",
            "exit status 128",
        ),
        ("export const handler = async () => { process.exit(2); };", None, "exit status 2"),
    ],
)
async def test_an_uncaught_exception_a_stray_rejection_or_process_exit_ends_only_that_environment(
    source: str,
    prefix: str | None,
    status: str,
    proxy: ProxyFactory,
    origin: Origin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write(tmp_path, "dies.mjs", source + "\nexport const pid = process.pid;")
    write(tmp_path, "pid.mjs", "export const handler = async () => ({ status: '200', body: String(process.pid) });")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "dies.mjs:handler")
    [pid] = environments("dies.mjs")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert await processes.gone([pid]) == []
    lines = lambda_lines(caplog)
    if prefix is not None:
        assert any(
            entry["level"] == "ERROR" and entry["message"].startswith(prefix + " \t{") for entry in console(lines)
        )
    else:
        assert any(line.endswith(f"Error: Runtime exited with error: {status}") for line in lines)
    assert (await client.get("/")).status == 503  # served again, by a new environment (which dies the same way)


async def test_going_over_its_memory_size_kills_a_node_environment(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A Buffer lives outside V8's heap (which Lambda's flags size): the resident size is what gets it killed.
    source = """
    export const handler = async () => {
      const hog = Buffer.alloc(300 * 1024 * 1024, 1);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return hog.length;
    };
    """
    write(tmp_path, "hungry.mjs", source)
    client = await serve(proxy, tmp_path, origin, "viewer-request", "hungry.mjs:handler")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert "ran out of memory: over its 128 MB" in response.headers["X-Edgeproxy-Error"]
    assert any(line.endswith("Error: Runtime exited with error: signal: killed") for line in lambda_lines(caplog))


async def test_a_node_timeout_kills_its_environment(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "spin.js", "exports.handler = async () => { for (;;) {} };")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "spin.js:handler", timeout=1)
    [pid] = environments("spin.js")
    response = await client.get("/")
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    [report] = [line for line in lambda_lines(caplog) if "REPORT RequestId" in line]
    assert re.search(r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB", report)  # its peak, read at the deadline
    assert await processes.gone([pid]) == []
    before = processes.children_cpu_seconds()
    await asyncio.sleep(0.5)
    assert processes.children_cpu_seconds() - before < 0.1


# -- start-up --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("export const handler = async () => {", "Runtime.UserCodeSyntaxError: SyntaxError: "),
        (
            "export const other = 1;",
            "has no function 'handler' (Runtime.HandlerNotFound: app.handler is undefined or not exported)",
        ),
        ("export const handler = 42;", "(Runtime.HandlerNotFound: app.handler is not a function)"),
        (
            "import 'no-such-package';\nexport const handler = 1;",
            "Runtime.ImportModuleError: Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'no-such-package'",
        ),
        ("throw new ReferenceError('at the top');", "ReferenceError: at the top"),
    ],
)
def test_an_init_failure_stops_start_up_naming_the_key(source: str, problem: str, tmp_path: Path) -> None:
    write(tmp_path, "app.mjs", source)
    with pytest.raises(ConfigError) as caught:
        create_app(config.from_flags(str(tmp_path), {"viewer-request": "app.mjs:handler"}, base_dir=tmp_path))
    assert caught.value.key == "--viewer-request"
    assert problem in caught.value.problem


def test_without_node_start_up_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "app.mjs", "export const handler = async () => null;")
    monkeypatch.setenv("PATH", str(tmp_path))  # no node there
    with pytest.raises(ConfigError) as caught:
        create_app(config.from_flags(str(tmp_path), {"viewer-request": "app.mjs:handler"}, base_dir=tmp_path))
    assert caught.value.key == "--viewer-request"
    assert (
        "'app.mjs:handler' is a Node.js handler, and there is no 'node' on PATH: install Node.js"
        in caught.value.problem
    )


def test_a_node_setting_that_names_no_executable_names_its_key(tmp_path: Path) -> None:
    text = '[distribution]\nnode = "bin/node"\n[origins.o]\nurl = "http://x"\n[default_behavior]\norigin = "o"\n'
    (tmp_path / "edgeproxy.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "edgeproxy.toml")
    assert (caught.value.key, caught.value.problem) == (
        "distribution.node",
        f"{str(tmp_path / 'bin/node')!r} is not an executable file",
    )


async def test_node_picks_the_node_to_run(proxy: ProxyFactory, origin: Origin, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    wrapper = write(tmp_path, "bin/node", f'#!/bin/sh\nexport PICKED_NODE=wrapper\nexec {node} "$@"\n')
    wrapper.chmod(0o755)
    write(tmp_path, "app.mjs", "export const handler = async () => ({ status: '200', body: process.env.PICKED_NODE });")
    client = await serve(proxy, tmp_path, origin, "viewer-request", "app.mjs:handler", node="bin/node")
    assert await (await client.get("/")).text() == "wrapper"


# -- ALB, invoke, testing, the fixture -------------------------------------------------------------------------

ALB_TARGET = """
exports.handler = async (event) => {
  if (event.path === '/fail') throw new Error('target failed');
  const body = `node saw ${event.httpMethod} ${event.path}`;
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body };
};
"""


async def test_an_alb_target_in_node(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    write(tmp_path, "target.js", ALB_TARGET)
    client = await aiohttp_client(
        alb.create_app(config.target_group_from_flags("target.js:handler", base_dir=tmp_path))
    )
    response = await client.get("/hello")
    assert (response.status, await response.text()) == (200, "node saw GET /hello")
    failed = await client.get("/fail")
    assert (failed.status, failed.headers["Server"]) == (502, "awselb/2.0")


def test_edgeproxy_invoke_takes_a_node_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    redirect = "{ status: '302', headers: { location: [{ value: '/moved' }] } }"
    write(tmp_path, "app.js", f"exports.handler = (event, context, callback) => callback(null, {redirect});")
    (tmp_path / "event.json").write_text(json.dumps(testing.cloudfront_event("viewer-request", "/old")))
    assert main(["invoke", str(tmp_path / "app.js") + ":handler", "--event", str(tmp_path / "event.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "302"
    assert result["headers"]["location"] == [{"key": "Location", "value": "/moved"}]  # validated: the key filled in


def test_testing_invoke_takes_a_node_reference(tmp_path: Path) -> None:
    write(tmp_path, "app.mjs", "export const handler = async (event) => { throw new Error('from node'); };")
    with pytest.raises(LambdaExecutionError) as caught:
        testing.invoke("app.mjs:handler", testing.cloudfront_event("viewer-request"), base_dir=tmp_path)
    assert "raised Error: from node" in caught.value.reason
    assert caught.value.handler_traceback is not None
    assert caught.value.handler_traceback.startswith("Error: from node\n    at ")


async def test_the_pytest_fixture_takes_a_node_reference(edgeproxy: EdgeProxyFactory, tmp_path: Path) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="origin")

    app = web.Application()
    app.router.add_get("/", page)
    source = """
    export const handler = async (event) => {
      const response = event.Records[0].cf.response;
      response.headers['x-node'] = [{ value: 'yes' }];
      return response;
    };
    """
    write(tmp_path, "headers.mjs", source)
    proxy = await edgeproxy(origin=app, viewer_response=str(tmp_path / "headers.mjs") + ":handler")
    async with proxy.client.get("/") as response:
        assert (response.status, response.headers["X-Node"]) == (200, "yes")
    [invocation] = proxy.invocations_for(response)
    assert invocation.handler.endswith("headers.mjs:handler")


FLOODING = """
export const handler = async (event) => {
  const line = 'y'.repeat(600);
  for (let i = 0; i < 100000; i++) console.log(`line ${i} ${line}`);  // 60 MB, more than its 128 MB can queue
  return event.Records[0].cf.request;
};
"""


async def test_a_handler_logging_more_than_its_memory_size_gets_its_answer(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    # Lambda's Node.js runtime writes each console line at once (fs.writeSync); queued on process.stdout, these
    # lines grew the process past its memory size, and it was killed as out of memory.
    write(tmp_path, "flooding.mjs", FLOODING)
    client = await serve(proxy, tmp_path, origin, "origin-request", "flooding.mjs:handler", memory=128)
    response = await client.get("/x")
    assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
