"""cli.py: serve (as a real subprocess), invoke and events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from edgeproxy.cli import _distribution, _parser, main
from edgeproxy.config import TRIGGERS
from edgeproxy.server import create_app
from tests.conftest import Origin

ROOT = Path(__file__).parents[1]
EVENTS = ROOT / "fixtures" / "events"
PASS = (
    "def handler(event, context):\n    cf = event['Records'][0]['cf']\n    return cf.get('response', cf['request'])\n"
)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_events_prints_a_complete_event(trigger: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", trigger, "--uri", "/a/b?x=1", "--method", "post", "--header", "X-Test: yes"]) == 0
    cf = json.loads(capsys.readouterr().out)["Records"][0]["cf"]
    assert cf["config"]["eventType"] == trigger
    assert cf["request"]["method"] == "POST"
    assert (cf["request"]["uri"], cf["request"]["querystring"]) == ("/a/b", "x=1")
    assert cf["request"]["headers"]["x-test"] == [{"key": "X-Test", "value": "yes"}]
    assert ("origin" in cf["request"]) == trigger.startswith("origin")
    assert ("response" in cf) == trigger.endswith("response")
    if trigger.startswith("origin"):
        assert cf["request"]["headers"]["user-agent"][0]["value"] == "Amazon CloudFront"


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_invoke_prints_validated_result_for_fixture_events(
    trigger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pass.py").write_text(PASS)
    monkeypatch.chdir(tmp_path)
    event_file = EVENTS / f"{trigger}.json"
    assert main(["invoke", "pass.py:handler", "--event", str(event_file)]) == 0
    cf = json.loads(event_file.read_text())["Records"][0]["cf"]
    assert json.loads(capsys.readouterr().out) == cf.get("response", cf["request"])


def test_invoke_reports_validation_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.py").write_text(
        "def handler(event, context):\n"
        "    request = event['Records'][0]['cf']['request']\n"
        "    request['headers']['host'] = [{'value': 'other.example'}]\n"
        "    return request\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["invoke", "bad.handler", "--event", str(EVENTS / "viewer-request.json")]) == 1
    err = capsys.readouterr().err
    assert "502 LambdaValidationError" in err
    assert "changed read-only header 'host'" in err


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[origins.a]\nurl = "http://127.0.0.1:1"\n[default_behavior]\norigin = "b"\n')
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: default_behavior.origin: no origin named 'b'" in err


def test_missing_handler_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--origin", str(tmp_path), "--viewer-request", str(tmp_path / "nope.py") + ":handler"]) == 2
    assert "command line: --viewer-request: handler file" in capsys.readouterr().err


def test_serve_subprocess_prints_url_serves_and_exits_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hello.txt").write_bytes(b"hello from the folder\n")
    (tmp_path / "pass.py").write_text(PASS)
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", "site", "--port", "0"]
    command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", "pass.py:handler")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            line = process.stdout.readline().strip()
            assert line.startswith("edgeproxy listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            with urllib.request.urlopen(url + "/hello.txt", timeout=10) as response:
                assert response.read() == b"hello from the folder\n"
                assert response.headers["Server"] == "AmazonS3"
                assert response.headers["X-Cache"] == "Miss from cloudfront"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
            stderr = process.stderr.read()
            assert "Traceback" not in stderr
            assert "START RequestId" in stderr
        finally:
            process.kill()


ADD_CONTENT_ENCODING = (
    "def handler(event, context):\n"
    "    response = event['Records'][0]['cf']['response']\n"
    "    response['headers']['content-encoding'] = [{'value': 'identity'}]\n"
    "    return response\n"
)


@pytest.mark.parametrize(
    ("in_file", "flag", "status"),
    [(None, None, 200), (None, "2021", 502), ("2021", None, 502), ("2021", "current", 200), ("current", "2021", 502)],
)
async def test_serve_viewer_response_read_only_flag_overrides_the_config(
    in_file: str | None,
    flag: str | None,
    status: int,
    tmp_path: Path,
    origin: Origin,
    aiohttp_client: AiohttpClient,
) -> None:
    (tmp_path / "encode.py").write_text(ADD_CONTENT_ENCODING)
    setting = f'[distribution]\nviewer_response_read_only = "{in_file}"\n' if in_file else ""
    (tmp_path / "edgeproxy.toml").write_text(
        f'{setting}[origins.app]\nurl = "{origin.url}"\n'
        '[default_behavior]\norigin = "app"\n[default_behavior.functions]\nviewer-response = "encode.py:handler"\n'
    )
    argv = ["serve", "--config", str(tmp_path / "edgeproxy.toml")] + (
        ["--viewer-response-read-only", flag] if flag else []
    )
    client = await aiohttp_client(create_app(_distribution(_parser().parse_args(argv))))
    response = await client.get("/x")
    assert response.status == status
    if status == 502:
        assert response.headers["X-Cache"] == "LambdaValidationError from cloudfront"


@pytest.mark.parametrize(("flag", "code"), [([], 0), (["--viewer-response-read-only", "2021"], 1)])
def test_invoke_viewer_response_read_only_flag(
    flag: list[str], code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "encode.py").write_text(ADD_CONTENT_ENCODING)
    monkeypatch.chdir(tmp_path)
    assert main(["invoke", "encode.py:handler", "--event", str(EVENTS / "viewer-response.json"), *flag]) == code
    if code:
        assert "added read-only header 'content-encoding'" in capsys.readouterr().err


# ALB mode


@pytest.mark.parametrize("multi_value", [False, True], ids=["single-value", "multi-value"])
def test_events_alb_prints_an_alb_event(multi_value: bool, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["events", "alb", "--uri", "/p%20q?a=1&a=2", "--method", "post", "--header", "X-Test: yes"]
    args += ["--header", "Content-Type: application/json", "--body", '{"k": 1}']
    assert main(args + (["--multi-value-headers"] if multi_value else [])) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["requestContext"]["elb"]["targetGroupArn"].startswith("arn:aws:elasticloadbalancing:")
    assert (event["httpMethod"], event["path"]) == ("POST", "/p%20q")
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": 1}', False)
    if multi_value:
        assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
        assert event["multiValueHeaders"]["x-test"] == ["yes"]
        assert "headers" not in event
    else:
        assert event["queryStringParameters"] == {"a": "2"}
        assert event["headers"]["x-test"] == "yes"
        assert "multiValueHeaders" not in event
        assert set(event["headers"]) >= {"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}


def test_events_alb_health_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "alb", "--health-check", "--multi-value-headers"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["multiValueHeaders"] == {"user-agent": ["ELB-HealthChecker/2.0"]}
    assert event["multiValueQueryStringParameters"] == {}


@pytest.mark.parametrize("fixture", ["alb.json", "alb-multi-value.json", "alb-health-check.json"])
def test_invoke_alb_fixture_events(fixture: str, capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(ROOT / "sample_functions" / "alb_echo.py") + ":handler"
    assert main(["invoke", sample, "--event", str(EVENTS / fixture)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["statusCode"] == 200
    multi = fixture == "alb-multi-value.json"
    assert ("multiValueHeaders" in result) == multi
    assert ("headers" in result) == (not multi)
    if fixture != "alb-health-check.json":
        assert json.loads(result["body"])["query"]["tag"] == (["new", "sale"] if multi else ["sale"])


def test_invoke_alb_reports_invalid_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.py").write_text("def handler(event, context):\n    return {'statusCode': '200'}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["invoke", "bad.handler", "--event", str(EVENTS / "alb.json")]) == 1
    err = capsys.readouterr().err
    assert "502 LambdaInvalidResponse" in err
    assert "'statusCode' must be a number" in err


def test_alb_config_mixed_with_cloudfront_tables_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.toml"
    path.write_text('[alb]\ntarget = "app.handler"\n[origins.a]\nurl = "http://127.0.0.1:1"\n')
    assert main(["serve", "--config", str(path)]) == 2
    assert f"{path}: origins: an [alb] config describes an ALB target group" in capsys.readouterr().err


def test_alb_missing_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alb", "--target", str(tmp_path / "nope.py") + ":handler"]) == 2
    assert "command line: --target: handler file" in capsys.readouterr().err


def _serve_and_get(command: list[str], cwd: Path, path: str) -> tuple[int, dict[str, str], bytes, str]:
    """Run an edgeproxy server as a subprocess, GET one path, stop it with Ctrl-C: status, headers, body, stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "edgeproxy.cli", *command, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            line = process.stdout.readline().strip()
            assert line.startswith("edgeproxy listening on http://127.0.0.1:"), process.stderr.read()
            try:
                with urllib.request.urlopen(line.rsplit(" ", 1)[1] + path, timeout=10) as response:
                    status, headers, body = response.status, dict(response.headers), response.read()
            except urllib.error.HTTPError as error:  # an error page is an answer too
                status, headers, body = error.code, dict(error.headers), error.read()
                error.close()
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
            return status, headers, body, process.stderr.read()
        finally:
            process.kill()


def test_alb_subprocess_serves_the_target(tmp_path: Path) -> None:
    sample = str(ROOT / "sample_functions" / "alb_echo.py") + ":handler"
    status, headers, body, stderr = _serve_and_get(
        ["alb", "--target", sample, "--multi-value-headers"], tmp_path, "/hello?a=1&a=2"
    )
    assert status == 200
    assert headers["Server"] == "awselb/2.0"
    echo = json.loads(body)
    assert (echo["mode"], echo["path"], echo["query"]) == ("multi-value", "/hello", {"a": ["1", "2"]})
    assert "Traceback" not in stderr
    assert "[alb_echo alb] START RequestId" in stderr


def test_serve_config_with_alb_table_and_health_checks(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'headers': {'content-type': 'text/plain'}, 'body': event['path']}\n"
    )
    (tmp_path / "alb.toml").write_text(
        "[alb]\n"
        'target = "app.handler"\n'
        'target_group_arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/notes/0123456789abcdef"\n'
        "health_check = { enabled = true, interval = 5, timeout = 2 }\n"
    )
    status, headers, body, stderr = _serve_and_get(["serve", "--config", "alb.toml"], tmp_path, "/from-config")
    assert (status, body) == (200, b"/from-config")
    assert headers["Server"] == "awselb/2.0"
    assert "targetgroup/notes/0123456789abcdef -> app.handler (single-value headers, health checks on)" in stderr


CRASH = "def handler(event, context):\n    raise ValueError('boom')\n"


@pytest.mark.parametrize("quiet", [True, False])
def test_serve_quiet_drops_the_lines_of_invocations_that_succeed(tmp_path: Path, quiet: bool) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a")
    (tmp_path / "fn.py").write_text(PASS)
    command = ["serve", "--origin", "site", "--viewer-request", "fn.py:handler", *(["--quiet"] if quiet else [])]
    status, _, _, stderr = _serve_and_get(command, tmp_path, "/a.txt")
    assert status == 200
    assert ("[fn viewer-request] START RequestId" in stderr) == (not quiet)
    assert ("REPORT RequestId" in stderr) == (not quiet)


def test_serve_quiet_still_logs_a_crashed_invocation(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "fn.py").write_text(CRASH)
    command = ["serve", "--origin", "site", "--viewer-request", "fn.py:handler", "--quiet"]
    status, _, _, stderr = _serve_and_get(command, tmp_path, "/a.txt")
    assert status == 503
    assert "[fn viewer-request] START RequestId" in stderr  # a crash keeps its Lambda lines, with the traceback
    assert "ValueError: boom" in stderr
    assert "-> 503 LambdaExecutionError" in stderr


@pytest.mark.parametrize("level", ["WARNING", "INFO"])
def test_alb_log_level(tmp_path: Path, level: str) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    status, _, body, stderr = _serve_and_get(["alb", "--target", "app.handler", "--log-level", level], tmp_path, "/")
    assert (status, body) == (200, b"ok")
    assert ("ALB target group" in stderr) == (level == "INFO")
    assert ("[app alb] START RequestId" in stderr) == (level == "INFO")
