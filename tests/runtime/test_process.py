"""runtime/process.py: execution environments in processes of their own, through a running proxy (real sockets, real
child processes): cold starts and warm ones, one invocation at a time per environment, scaling and throttling,
timeouts that kill, crashes and out-of-memory kills that end only their own environment, Lambda's environment
variables, idle reclaim, reload, and no process left behind."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from edgeproxy import alb, config
from edgeproxy.runtime import process
from edgeproxy.server import Options
from tests import processes
from tests.conftest import Client, Origin, ProxyFactory

# A viewer-request handler answering with its process id and when it ran; it sleeps the query string's seconds.
INFO = """
import json, os, time
def handler(event, context):
    started = time.time()
    time.sleep(float(event["Records"][0]["cf"]["request"]["querystring"] or 0))
    body = json.dumps({"pid": os.getpid(), "started": started, "ended": time.time()})
    return {"status": "200", "body": body}
"""


def write(tmp_path: Path, name: str, source: str) -> str:
    (tmp_path / name).write_text(textwrap.dedent(source))
    return name


async def serve(
    proxy: ProxyFactory,
    tmp_path: Path,
    origin: Origin,
    functions: dict[str, dict[str, Any]],
    *,
    distribution: str = "",
    options: Options | None = None,
) -> Client:
    """A proxy for a distribution whose default behavior has ``functions`` (trigger -> association keys)."""
    lines = [f"[distribution]\n{distribution}", f'[origins.app]\nurl = "{origin.url}"']
    lines.append('[default_behavior]\norigin = "app"\n[default_behavior.functions]')
    lines += [
        f"{trigger} = {{ {', '.join(f'{key} = {json.dumps(value)}' for key, value in spec.items())} }}"
        for trigger, spec in functions.items()
    ]
    (tmp_path / "edgeproxy.toml").write_text("\n".join(lines) + "\n")
    return await proxy(config.load(tmp_path / "edgeproxy.toml"), options=options)


async def info(client: Client, sleep: float = 0) -> dict[str, Any]:
    response = await client.get(f"/info?{sleep}")
    assert response.status == 200, await response.text()
    result: dict[str, Any] = json.loads(await response.text())
    return result


def lambda_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        line
        for record in caplog.records
        if record.name == "edgeproxy.lambda"
        for line in record.getMessage().split("\n")
    ]


@pytest.fixture(autouse=True)
def _lambda_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeproxy.lambda")


# -- cold and warm starts ----------------------------------------------------------------------------------------


async def test_an_environment_starts_once_and_stays_warm(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = write(
        tmp_path,
        "warm.py",
        "COUNT = 0\n" + INFO.replace("started = time.time()", "global COUNT\n    COUNT += 1\n    started = COUNT"),
    )
    client = await serve(proxy, tmp_path, origin, {"viewer-request": {"handler": f"{ref}:handler"}})
    first, second, third = [await info(client) for _ in range(3)]
    assert first["pid"] == second["pid"] == third["pid"] != os.getpid()  # one process, not the proxy's
    assert [first["started"], second["started"], third["started"]] == [1, 2, 3]  # module state kept: warm
    lines = lambda_lines(caplog)
    init_start = r"\[warm\] INIT_START Runtime Version: python:3\.\d+\.v0\tRuntime Version ARN: "
    init_start += r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}"
    assert any(re.fullmatch(init_start, line) for line in lines)
    reports = [line for line in lines if "REPORT RequestId" in line]
    assert len(reports) == 3
    # The first invocation of the environment reports its init; the others do not. Max Memory Used: its peak RSS.
    assert re.search(r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms$", reports[0])
    assert all(re.search(r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB$", report) for report in reports[1:])
    used = int(re.search(r"Max Memory Used: (\d+) MB", reports[0]).group(1))  # type: ignore[union-attr]
    assert 5 <= used < 128  # the child's own peak, not the proxy's


async def test_a_cold_start_during_serving_logs_init_start_before_start(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = write(tmp_path, "chatty.py", "print('loading the module')\n" + INFO)
    client = await serve(proxy, tmp_path, origin, {"viewer-request": {"handler": f"{ref}:handler"}})
    await asyncio.gather(info(client, 0.3), info(client, 0.3))  # the second needs a second environment
    records = [record.getMessage().split("\n") for record in caplog.records if "INIT_START" in record.getMessage()]
    cold = [lines for lines in records if any("START RequestId" in line for line in lines)]
    assert len(cold) == 1  # one environment started at start-up (its own record), one for the second request
    lines = cold[0]
    assert lines[0].startswith("[chatty viewer-request] INIT_START Runtime Version: python:")
    assert lines[1] == "[chatty viewer-request] loading the module"  # init output: no request id (there is none)
    assert lines[2].startswith("[chatty viewer-request] START RequestId: ")
    assert "\tInit Duration: " in lines[-1]


# -- one invocation at a time, scaling, throttling -------------------------------------------------------------


async def test_three_concurrent_slow_invocations_run_in_three_environments_at_once(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"viewer-request": {"handler": f"{write(tmp_path, 'slow.py', INFO)}:handler"}}
    )
    runs = await asyncio.gather(*(info(client, 0.5) for _ in range(3)))
    assert len({run["pid"] for run in runs}) == 3  # an environment serves one invocation at a time
    assert max(run["started"] for run in runs) < min(run["ended"] for run in runs)  # all three ran at once
    again = await asyncio.gather(*(info(client) for _ in range(3)))
    assert {run["pid"] for run in again} == {run["pid"] for run in runs}  # the three stay warm


async def test_beyond_its_concurrency_a_function_is_throttled(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy,
        tmp_path,
        origin,
        {"viewer-request": {"handler": f"{write(tmp_path, 'slow.py', INFO)}:handler", "concurrency": 2}},
    )
    responses = await asyncio.gather(*(client.get("/info?0.5") for _ in range(3)))
    statuses = sorted(response.status for response in responses)
    assert statuses == [200, 200, 503]
    [throttled] = [response for response in responses if response.status == 503]
    # CloudFront's answer to a throttled Lambda@Edge function (http-503-lambda-limit-execeeded-error).
    assert throttled.headers["X-Cache"] == "LambdaLimitExceeded from cloudfront"
    page = await throttled.text()
    assert "The Lambda function associated with the CloudFront distribution was throttled." in page
    assert page.count("We can't connect to the server for this app or website at this time.") == 1
    assert "was throttled: its 2 environments (its concurrency) are busy" in throttled.headers["X-Edgeproxy-Error"]
    assert (await client.get("/info?0")).status == 200  # free again


async def test_an_alb_target_is_throttled_with_a_502_lambda_throttling(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    (tmp_path / "edgeproxy.toml").write_text('[alb]\ntarget = "slow.handler"\nconcurrency = 1\n')
    (tmp_path / "slow.py").write_text(
        "import time\ndef handler(event, context):\n    time.sleep(0.4)\n    return {'statusCode': 200, 'body': 'ok'}\n"
    )
    group = config.load_any(tmp_path / "edgeproxy.toml")
    assert isinstance(group, config.TargetGroup)
    client = await aiohttp_client(alb.create_app(group))
    responses = await asyncio.gather(client.get("/"), client.get("/"))
    assert sorted(response.status for response in responses) == [200, 502]
    [throttled] = [response for response in responses if response.status == 502]
    assert throttled.headers["Server"] == "awselb/2.0"


# -- timeouts --------------------------------------------------------------------------------------------------

SPIN = """
import os
def handler(event, context):
    if event["Records"][0]["cf"]["request"]["uri"] == "/pid":
        return {"status": "200", "body": str(os.getpid())}
    hog = b"x" * (40 << 20)  # resident: its REPORT says so
    while True:
        pass
"""


async def test_a_timeout_kills_the_environment_and_nothing_keeps_spinning(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy,
        tmp_path,
        origin,
        {"viewer-request": {"handler": f"{write(tmp_path, 'spin.py', SPIN)}:handler", "timeout": 1}},
    )
    spinning = int(await (await client.get("/pid")).text())
    started = time.monotonic()
    response = await client.get("/spin")
    elapsed = time.monotonic() - started
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert 1.0 <= elapsed < 5  # at its deadline (a generous bound for a loaded machine)
    assert "timed out after 1 s" in response.headers["X-Edgeproxy-Error"]
    lines = lambda_lines(caplog)
    assert any(line.endswith("Task timed out after 1.00 seconds") for line in lines)
    # Lambda's REPORT has the invocation's peak memory after a timeout too.
    [report] = [line for line in lines if "REPORT RequestId" in line and "Billed Duration: 1000 ms" in line]
    assert 40 <= int(re.findall(r"\tMax Memory Used: (\d+) MB", report)[0]) < 128
    assert await processes.gone([spinning]) == []  # killed and reaped: not even a zombie
    # By the CPU time of the proxy's children (those alive and those reaped): nothing spins any more.
    before = processes.children_cpu_seconds()
    await asyncio.sleep(0.5)
    assert processes.children_cpu_seconds() - before < 0.1
    replacement = int(await (await client.get("/pid")).text())  # the next request gets a new environment
    assert replacement != spinning


async def test_a_viewer_that_goes_away_leaves_the_invocation_to_finish_in_its_environment(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"viewer-request": {"handler": f"{write(tmp_path, 'slow.py', INFO)}:handler"}}
    )
    pid = (await info(client))["pid"]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.get("/info?0.4"), 0.1)  # the viewer leaves before the handler is done
    await asyncio.sleep(0.6)
    assert processes.is_running(pid)  # not killed: as on Lambda, the invocation ran to its end
    assert (await info(client))["pid"] == pid  # and the environment went back to serving


# -- crashes ---------------------------------------------------------------------------------------------------

CRASHES = """
import ctypes, os, sys
def handler(event, context):
    how = event["Records"][0]["cf"]["request"]["uri"]
    if how == "/exit":
        os._exit(3)
    if how == "/segfault":
        ctypes.string_at(0)
    if how == "/sys-exit":
        sys.exit(0)
    return {"status": "200", "body": str(os.getpid())}
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("/exit", "Error: Runtime exited with error: exit status 3"),
        ("/segfault", "Error: Runtime exited with error: signal: segmentation fault"),
        ("/sys-exit", "Error: Runtime exited without providing a reason"),
    ],
)
async def test_a_crash_ends_only_its_own_environment(
    path: str, line: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"viewer-request": {"handler": f"{write(tmp_path, 'crash.py', CRASHES)}:handler"}}
    )
    before = int(await (await client.get("/pid")).text())
    response = await client.get(path)
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert "(Runtime.ExitError)" in response.headers["X-Edgeproxy-Error"]
    lines = lambda_lines(caplog)
    index = next(i for i, each in enumerate(lines) if each.endswith(line))
    assert re.search(r"\] RequestId: [0-9a-f-]{36} Error: ", lines[index])
    assert lines[index + 1].endswith("] Runtime.ExitError")  # Lambda's two-line event, before END
    assert lines[index + 2].split("] ")[1].startswith("END RequestId:")
    assert re.search(r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB", lines[index + 3])  # as Lambda's REPORT has it
    assert await processes.gone([before]) == []
    after = int(await (await client.get("/pid")).text())  # the proxy survived, and the next request is served
    assert after != before


# -- output ----------------------------------------------------------------------------------------------------

CHATTY = """
import sys
def handler(event, context):
    for number in range(20 * 1024):  # 20 MB
        print(f"{number:05d} " + "x" * 1018)
    sys.stdout.write("partial")  # a line left open: Lambda's log shows it before END
    return event["Records"][0]["cf"]["request"]
"""


async def test_a_handler_that_prints_a_lot_costs_the_proxy_a_bounded_log(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"origin-request": {"handler": f"{write(tmp_path, 'chatty.py', CHATTY)}:handler"}}
    )
    assert (await client.get("/")).status == 200
    [record] = [record.getMessage() for record in caplog.records if "START RequestId" in record.getMessage()]
    assert len(record) < 2.1e6  # its first and last MB, not its 20
    lines = record.split("\n")
    request_id = lines[0].split("RequestId: ")[1].split()[0]
    assert lines[0].startswith("[chatty origin-request] START RequestId: ")
    [notice] = [index for index, line in enumerate(lines) if "[edgeproxy]" in line]
    printed = [int(line.split("\t")[1][:5]) for line in lines[1:-3] if "\t" in line]
    assert printed == list(range(notice - 1)) + list(range(20 * 1024 - (len(printed) - notice + 1), 20 * 1024))
    left_out = 20 * 1024 - len(printed)
    assert lines[notice].startswith(f"[chatty origin-request] [edgeproxy] {left_out} lines (")
    assert lines[-3] == f"[chatty origin-request] {request_id}\tpartial"
    assert lines[-2] == f"[chatty origin-request] END RequestId: {request_id}"
    assert lines[-1].startswith(f"[chatty origin-request] REPORT RequestId: {request_id}\t")


LOGS = """
import logging
logging.basicConfig(level=logging.INFO)  # a no-op on Lambda, whose runtime set up the root logger first
logger = logging.getLogger()
def handler(event, context):
    logger.info("info line")
    logger.warning("warning line")
    return event["Records"][0]["cf"]["request"]
"""


async def test_logging_is_set_up_before_the_function_is_imported(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"viewer-request": {"handler": f"{write(tmp_path, 'logs.py', LOGS)}:handler"}}
    )
    assert (await client.get("/")).status == 200
    [record] = [record.getMessage() for record in caplog.records if "START RequestId" in record.getMessage()]
    lines = record.split("\n")
    request_id = lines[0].split("RequestId: ")[1].split()[0]
    assert len(lines) == 4  # START, one line, END, REPORT
    assert re.fullmatch(
        rf"\[logs viewer-request\] {request_id}\t\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z"
        rf"\t{request_id}\twarning line",
        lines[1],
    )


# -- memory ----------------------------------------------------------------------------------------------------

HUNGRY = """
import os, time
def handler(event, context):
    how = event["Records"][0]["cf"]["request"]["uri"]
    if how == "/grow":  # grows and holds it: killed while it runs
        hog = bytearray(300 * 1024 * 1024)
        time.sleep(2)
    if how == "/spike":  # too much for a moment only: Lambda would have killed it all the same
        hog = bytearray(300 * 1024 * 1024)
        del hog
    return {"status": "200", "body": str(os.getpid())}
"""


@pytest.mark.parametrize("path", ["/grow", "/spike"])
async def test_going_over_its_memory_size_kills_the_environment(
    path: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy, tmp_path, origin, {"viewer-request": {"handler": f"{write(tmp_path, 'hungry.py', HUNGRY)}:handler"}}
    )
    before = int(await (await client.get("/pid")).text())
    started = time.monotonic()
    response = await client.get(path)
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert time.monotonic() - started < 2  # killed as it went over, not when it would have answered
    assert "ran out of memory: over its 128 MB" in response.headers["X-Edgeproxy-Error"]
    lines = lambda_lines(caplog)
    assert any(line.endswith("Error: Runtime exited with error: signal: killed") for line in lines)
    assert any(line.endswith("] Runtime.ExitError") for line in lines)
    assert any(line.endswith("\tMemory Size: 128 MB\tMax Memory Used: 128 MB") for line in lines if "REPORT" in line)
    assert await processes.gone([before]) == []
    assert int(await (await client.get("/pid")).text()) != before


async def test_a_bigger_memory_size_lets_the_same_handler_through(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    ref = write(tmp_path, "hungry.py", HUNGRY)
    client = await serve(proxy, tmp_path, origin, {"origin-request": {"handler": f"{ref}:handler", "memory": 1024}})
    response = await client.get("/spike")
    assert response.status == 200


# -- the environment -------------------------------------------------------------------------------------------

ENVIRONMENT = """
import json, os, sys, time
def handler(event, context):
    names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
             "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "_HANDLER", "TZ",
             "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "EDGEPROXY_TEST_PASSED_THROUGH"]
    seen = {name: os.environ.get(name) for name in names}
    seen.update(cwd=os.getcwd(), path0=sys.path[0], zone=time.strftime("%Z"), stream=context.log_stream_name)
    return {"status": "200", "body": json.dumps(seen)}
"""


async def test_lambdas_environment_variables_and_task_root(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEPROXY_TEST_PASSED_THROUGH", "from the proxy")
    monkeypatch.setenv("TZ", "Europe/Paris")  # Lambda's TZ wins
    folder = tmp_path / "fn"
    folder.mkdir()
    write(folder, "envs.py", ENVIRONMENT)
    client = await serve(proxy, tmp_path, origin, {"viewer-request": {"handler": "fn/envs.handler", "memory": 128}})
    seen = json.loads(await (await client.get("/")).text())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert seen == {
        "AWS_LAMBDA_FUNCTION_NAME": "us-east-1.envs",  # a Lambda@Edge replica of the function
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "LAMBDA_TASK_ROOT": str(folder),
        "_HANDLER": "fn/envs.handler",
        "TZ": ":UTC",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/us-east-1.envs",
        "AWS_LAMBDA_LOG_STREAM_NAME": seen["stream"],
        "EDGEPROXY_TEST_PASSED_THROUGH": "from the proxy",  # the proxy's own environment passes through
        "cwd": str(folder),
        "path0": str(folder),  # the function's folder first on the import path, like /var/task
        "zone": "UTC",
        "stream": seen["stream"],
    }
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", seen["stream"])


PACKAGED = """
import json, os, sys
from . import util
from pkg.util import VALUE
def handler(event, context):
    with open("settings.json") as settings:  # the task root is the working directory
        found = json.load(settings)
    seen = {"value": VALUE, "same": util.VALUE, "module": __name__, "settings": found, "cwd": os.getcwd(),
            "root": os.environ["LAMBDA_TASK_ROOT"], "path0": sys.path[0]}
    return {"status": "200", "body": json.dumps(seen)}
"""


@pytest.mark.parametrize("ref", ["pkg/app.handler", "pkg.app.handler", "pkg/app.py:handler"])
async def test_a_handler_in_a_package_is_imported_as_lambdas_runtime_imports_it(
    ref: str, proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    # awslambdaric imports importlib.import_module("pkg/app".replace("/", ".")) from the task root: a handler in a
    # package is the module pkg.app, whose relative and absolute imports of its package work, and the task root is
    # the folder above the package.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "util.py").write_text("VALUE = 'from the package'\n")
    write(package, "app.py", PACKAGED)
    (tmp_path / "settings.json").write_text('{"at": "the task root"}')
    client = await serve(proxy, tmp_path, origin, {"viewer-request": {"handler": ref}})
    response = await client.get("/")
    assert response.status == 200, await response.text()
    assert json.loads(await response.text()) == {
        "value": "from the package",
        "same": "from the package",
        "module": "pkg.app",
        "settings": {"at": "the task root"},
        "cwd": str(tmp_path),
        "root": str(tmp_path),
        "path0": str(tmp_path),
    }


@pytest.fixture
def function_venv(tmp_path: Path) -> Path:
    """``fn/.venv``: a virtualenv of the function's own, with a module the proxy's environment does not have (and
    without edgeproxy: the bootstrap needs nothing but the standard library)."""
    venv = tmp_path / "fn" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    where = [str(python), "-c", "import site; print(site.getsitepackages()[0])"]
    site = subprocess.run(where, capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "only_in_the_function_venv.py").write_text("VALUE = 'from its own venv'\n")
    without = subprocess.run([str(python), "-c", "import edgeproxy"], capture_output=True, check=False, cwd=tmp_path)
    assert without.returncode != 0
    return venv


USES_ITS_VENV = """
import only_in_the_function_venv, sys
def handler(event, context):
    return {"status": "200", "body": only_in_the_function_venv.VALUE + " " + sys.prefix}
"""


async def test_a_function_can_run_with_its_own_interpreter(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, function_venv: Path
) -> None:
    write(tmp_path / "fn", "app.py", USES_ITS_VENV)
    association = {"handler": "fn/app.py:handler", "python": "fn/.venv/bin/python"}
    client = await serve(proxy, tmp_path, origin, {"viewer-request": association})
    assert await (await client.get("/")).text() == f"from its own venv {function_venv}"


def test_without_its_own_interpreter_the_dependency_is_missing_at_start_up(tmp_path: Path) -> None:
    write(tmp_path, "app.py", "import only_in_the_function_venv\ndef handler(event, context):\n    return None\n")
    from edgeproxy.errors import ConfigError
    from edgeproxy.server import create_app

    with pytest.raises(ConfigError) as caught:
        create_app(config.from_flags(str(tmp_path), {"viewer-request": "app.py:handler"}, base_dir=tmp_path))
    assert caught.value.key == "--viewer-request"
    assert (
        "Runtime.ImportModuleError: Unable to import module 'app': No module named 'only_in_the_function_venv'"
        in caught.value.problem
    )


def test_an_interpreter_that_does_not_exist_names_its_key(tmp_path: Path) -> None:
    text = '[origins.o]\nurl = "http://x"\n[default_behavior]\norigin = "o"\n[default_behavior.functions]\n'
    text += 'viewer-request = { handler = "a.handler", python = "no/such/python" }\n'
    (tmp_path / "edgeproxy.toml").write_text(text)
    from edgeproxy.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "edgeproxy.toml")
    assert caught.value.key == "default_behavior.functions.viewer-request.python"
    assert "no/such/python' is not an executable file" in caught.value.problem


# -- idle reclaim, reload --------------------------------------------------------------------------------------


async def test_idle_environments_are_reclaimed(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(
        proxy,
        tmp_path,
        origin,
        {"viewer-request": {"handler": f"{write(tmp_path, 'idle.py', INFO)}:handler"}},
        distribution="idle_reclaim = 0.3",
    )
    first = (await info(client))["pid"]
    assert await processes.gone([first], seconds=5) == []  # stopped once idle for 0.3 s
    caplog.clear()
    assert (await info(client))["pid"] != first  # a cold start
    assert any("\tInit Duration: " in line for line in lambda_lines(caplog) if "REPORT" in line)


async def test_reload_restarts_the_environments_with_the_new_code(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path
) -> None:
    path = tmp_path / "live.py"
    path.write_text(
        "import os\ndef handler(event, context):\n    return {'status': '200', 'body': f'v1 {os.getpid()}'}\n"
    )
    client = await serve(
        proxy,
        tmp_path,
        origin,
        {"viewer-request": {"handler": "live.py:handler"}},
        options=Options(debug_headers=True, reload=True),
    )
    version, pid = (await (await client.get("/")).text()).split()
    assert version == "v1"
    path.write_text(path.read_text().replace("v1", "v2"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    for _ in range(100):
        text = await (await client.get("/")).text()
        if text.startswith("v2"):
            break
        await asyncio.sleep(0.05)
    new_version, new_pid = text.split()
    assert (new_version, new_pid != pid) == ("v2", True)
    assert await processes.gone([int(pid)]) == []


async def test_new_code_that_fails_its_init_gives_503s_until_it_is_fixed(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "live.py"
    path.write_text("def handler(event, context):\n    return {'status': '200', 'body': 'fine'}\n")
    client = await serve(
        proxy,
        tmp_path,
        origin,
        {"viewer-request": {"handler": "live.py:handler"}},
        options=Options(debug_headers=True, reload=True),
    )
    assert (await client.get("/")).status == 200
    path.write_text("raise ValueError('broken at import')\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    for _ in range(100):
        response = await client.get("/")
        if response.status == 503:
            break
        await asyncio.sleep(0.05)
    assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    assert "failed its init: ValueError: broken at import" in response.headers["X-Edgeproxy-Error"]
    lines = lambda_lines(caplog)
    assert any(line.endswith("] [ERROR] ValueError: broken at import") for line in lines)
    assert any(
        re.search(
            r"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: Runtime.Unknown$", line
        )
        for line in lines
    )


async def test_an_init_past_its_limit_is_an_error(
    proxy: ProxyFactory, origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "INIT_LIMIT", 0.5)  # Lambda's is 10 s
    write(tmp_path, "sleepy.py", "import time\ntime.sleep(5)\ndef handler(event, context):\n    return None\n")
    from edgeproxy.errors import ConfigError
    from edgeproxy.server import create_app

    with pytest.raises(ConfigError, match=r"did not finish its init within Lambda's 10 s \(the init ran past 0.5 s\)"):
        create_app(config.from_flags(origin.url, {"viewer-request": "sleepy.py:handler"}, base_dir=tmp_path))


# -- nothing left behind ---------------------------------------------------------------------------------------


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "info.py").write_text(INFO)
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", str(tmp_path), "--port", "0"]
    command += ["--viewer-request", "info.py:handler"]
    proxy = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proxy.stdout is not None
    line = proxy.stdout.readline()
    assert line.startswith("edgeproxy listening on "), line
    return proxy, line.split()[-1]


def _spread(url: str) -> list[int]:
    """Three concurrent requests (three environments); their pids."""
    import concurrent.futures
    import urllib.request

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        bodies = list(pool.map(lambda _: urllib.request.urlopen(url + "/x?0.3", timeout=10).read(), range(3)))
    return [json.loads(body)["pid"] for body in bodies]


def test_no_process_outlives_the_proxy_stopped_with_ctrl_c(tmp_path: Path) -> None:
    proxy, url = _serve(tmp_path)
    try:
        pids = _spread(url)
        assert len(set(pids)) == 3
        assert set(pids) <= set(processes.descendants(proxy.pid))
        proxy.send_signal(signal.SIGINT)
        assert proxy.wait(timeout=10) == 0
    finally:
        proxy.kill()
        proxy.wait()
        assert proxy.stdout is not None
        proxy.stdout.close()
    assert processes.wait_until_gone(pids) == []  # reaped by the proxy: neither running nor zombies


def test_no_process_outlives_the_proxy_killed_outright(tmp_path: Path) -> None:
    proxy, url = _serve(tmp_path)
    try:
        pids = _spread(url)
        proxy.send_signal(signal.SIGKILL)  # no clean-up of its own: the environments go with it (parent-death signal)
        proxy.wait(timeout=10)
    finally:
        proxy.kill()
        proxy.wait()
        assert proxy.stdout is not None
        proxy.stdout.close()
    # Killed with it. Reaping them is then init's job (as for any orphan); in some containers it never does, so
    # they may stay zombies, but none runs on.
    assert processes.wait_until_not_running(pids) == []
