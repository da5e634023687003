"""cli.py: serve (as a real subprocess), invoke and events."""

from __future__ import annotations

import base64
import gc
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgeproxy.cli import main
from edgeproxy.config import TRIGGERS
from tests.conftest import serve_and_get

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


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
def test_events_body_is_an_include_body_request_body(trigger: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", trigger, "--method", "POST", "--body", "name1=a&name2=b"]) == 0
    body = json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]["body"]
    assert body == {
        "inputTruncated": False,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(b"name1=a&name2=b").decode(),
    }
    assert main(["events", trigger, "--method", "PUT", "--include-body"]) == 0
    assert json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]["body"]["data"] == ""
    assert main(["events", trigger, "--method", "PUT"]) == 0
    assert "body" not in json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
def test_events_response_headers_and_status_make_the_origins_response(
    trigger: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["events", trigger, "--header", "X-Viewer: 1", "--status", "304"]
    args += ["--response-header", "X-Amz-Meta-Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT"]
    args += ["--response-header", "Set-Cookie: a=1", "--response-header", "Set-Cookie: b=2"]
    assert main(args) == 0
    cf = json.loads(capsys.readouterr().out)["Records"][0]["cf"]
    assert cf["response"] == {
        "headers": {
            "x-amz-meta-last-modified": [{"key": "X-Amz-Meta-Last-Modified", "value": "Tue, 01 Dec 2026 10:00:00 GMT"}],
            "set-cookie": [{"key": "Set-Cookie", "value": "a=1"}, {"key": "Set-Cookie", "value": "b=2"}],
        },
        "status": "304",
        "statusDescription": "Not Modified",
    }
    assert cf["request"]["headers"]["x-viewer"] == [{"key": "X-Viewer", "value": "1"}]  # --header: the request's


@pytest.mark.parametrize("trigger", ["origin-request", "origin-response"])
def test_events_origin_may_be_an_s3_bucket(trigger: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", trigger, "--origin", "s3://my-bucket"]) == 0
    request = json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]
    assert request["origin"]["s3"]["domainName"] == "my-bucket.s3.us-east-1.amazonaws.com"
    assert main(["events", trigger, "--origin", "https://www.example.com:8443/prod"]) == 0
    custom = json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]["origin"]["custom"]
    assert (custom["domainName"], custom["port"], custom["path"]) == ("www.example.com", 8443, "/prod")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["origin-response", "--status", "99"], "events origin-response: --status 99: an origin's response status is"),
        (["viewer-response", "--status", "404"], "--status 404: viewer-response does not run for statuses of 400"),
        (["viewer-request", "--status", "200"], "--status 200: applies to origin-response and viewer-response events"),
        (["viewer-request", "--uri", "no-slash"], "--uri 'no-slash': a request path starts with '/'"),
        (["alb", "--uri", "no-slash"], "events alb: --uri 'no-slash': a request path starts with '/'"),
        (["origin-request", "--origin", "."], "--origin '.': an origin is an http:// or https:// URL"),
        (["origin-request", "--origin", "s3://Bad_Bucket"], "--origin 's3://Bad_Bucket': s3://BUCKET names an S3"),
        (["viewer-request", "--origin", "s3://bucket"], "--origin 's3://bucket': applies to origin-request and"),
        (["viewer-request", "--header", "no colon"], "--header 'no colon': a header is 'Name: value'"),
        (["viewer-request", "--header", "Bad Name: 1"], "--header 'Bad Name': is not a header name"),
        (["viewer-response", "--response-header", "oops"], "--response-header 'oops': a header is 'Name: value'"),
        (["origin-request", "--response-header", "X: 1"], "--response-header [('X', '1')]: applies to origin-resp"),
        (["viewer-request", "--body", "x"], "--body 'x': a GET request has no body (CloudFront answers 403 to one)"),
        (["viewer-response", "--include-body"], "--include-body True: applies to viewer-request and origin-request"),
        (["viewer-request", "--method", "TRACE"], "--method 'TRACE': CloudFront accepts only GET, HEAD, OPTIONS"),
        (["viewer-request", "--client-ip", "x"], "--client-ip 'x': is not an IPv4 or IPv6 address"),
        (["viewer-request", "--multi-value-headers"], "--multi-value-headers True: applies to alb events only"),
        (["alb", "--status", "200"], "events alb: --status 200: applies to CloudFront events only"),
        (["origin-response", "--status", "abc"], "edgeproxy events: argument --status: invalid int value: 'abc'"),
    ],
)
def test_events_bad_values_exit_2_with_one_line(args: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    code: int | str | None
    try:
        code = main(["events", *args])
    except SystemExit as exited:  # argparse's own errors exit from parse_args
        code = exited.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert line in captured.err
    assert "Traceback" not in captured.err


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


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        (
            "security_headers.py",
            "names no function: a handler reference is 'file.py:function', 'file.mjs:function' or 'module.function'",
        ),
        ("index.mjs", "names no function: a handler reference is 'file.py:function', 'file.mjs:function' or"),
    ],
)
def test_a_handler_reference_that_is_not_one_exits_2_saying_what_a_reference_is(
    ref: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "security_headers.py").write_text(PASS)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--origin", str(tmp_path), "--viewer-response", ref]) == 2
    err = capsys.readouterr().err
    assert f"edgeproxy: configuration error: command line: --viewer-response: {ref!r} {problem}" in err
    assert len(err.splitlines()) == 1


def test_serve_refuses_a_viewer_trigger_over_lambda_at_edge_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "slow.py").write_text("import time\ndef handler(event, context):\n    time.sleep(7)\n")
    path = tmp_path / "edgeproxy.toml"
    path.write_text(
        '[origins.app]\nurl = "http://127.0.0.1:1"\n[default_behavior]\norigin = "app"\n'
        '[default_behavior.functions]\nviewer-request = { handler = "slow.py:handler", timeout = 30 }\n'
    )
    assert main(["serve", "--config", str(path)]) == 2
    assert (
        f"edgeproxy: configuration error: {path}: default_behavior.functions.viewer-request.timeout: 30 s is over "
        "Lambda@Edge's limit for viewer triggers, 5 s (origin triggers: 30 s)\n"
    ) == capsys.readouterr().err


@pytest.mark.parametrize(("trigger", "code"), [("viewer-response", 2), ("origin-response", 0)])
def test_invoke_timeout_is_within_the_trigger_limit(
    trigger: str, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pass.py").write_text(PASS)
    monkeypatch.chdir(tmp_path)
    assert main(["invoke", "pass.py:handler", "--event", str(EVENTS / f"{trigger}.json"), "--timeout", "6"]) == code
    if code:
        assert "configuration error: invoke: timeout: 6 s is over Lambda@Edge's limit for viewer triggers, 5 s" in (
            capsys.readouterr().err
        )


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
    [(None, "2021", 502), ("2021", None, 502), ("2021", "current", 200)],
)
def test_serve_viewer_response_read_only_flag_overrides_the_config(
    in_file: str | None, flag: str | None, status: int, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "x.txt").write_text("x")
    (tmp_path / "encode.py").write_text(ADD_CONTENT_ENCODING)
    setting = f'[distribution]\nviewer_response_read_only = "{in_file}"\n' if in_file else ""
    (tmp_path / "edgeproxy.toml").write_text(
        f'{setting}[origins.site]\ndirectory = "site"\n'
        '[default_behavior]\norigin = "site"\n[default_behavior.functions]\nviewer-response = "encode.py:handler"\n'
    )
    command = ["serve", "--config", "edgeproxy.toml", *(["--viewer-response-read-only", flag] if flag else [])]
    [(got, headers, _)], stderr = serve_and_get(command, tmp_path, "/x.txt")
    assert got == status
    if status == 502:
        assert headers["X-Cache"] == "LambdaValidationError from cloudfront"
        assert "added read-only header 'content-encoding'" in stderr
    else:
        assert headers["Content-Encoding"] == "identity"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--viewer-request", "pass.py:handler"], "--viewer-request: goes with --origin; a config file names its own"),
        (["--include-body"], "--include-body: goes with --origin"),
    ],
)
def test_serve_config_refuses_flags_it_would_ignore(
    args: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "edgeproxy.toml").write_text(
        '[origins.a]\nurl = "http://127.0.0.1:1"\n[default_behavior]\norigin = "a"\n'
    )
    assert main(["serve", "--config", str(tmp_path / "edgeproxy.toml"), *args]) == 2
    assert f"edgeproxy: configuration error: command line: {problem}" in capsys.readouterr().err


def test_serve_alb_config_refuses_the_viewer_response_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "alb.toml").write_text('[alb]\ntarget = "app.handler"\n')
    assert main(["serve", "--config", str(tmp_path / "alb.toml"), "--viewer-response-read-only", "2021"]) == 2
    assert "--viewer-response-read-only: applies to a CloudFront distribution" in capsys.readouterr().err


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


def test_alb_subprocess_serves_the_target(tmp_path: Path) -> None:
    sample = str(ROOT / "sample_functions" / "alb_echo.py") + ":handler"
    [(status, headers, body)], stderr = serve_and_get(
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
    [(status, headers, body)], stderr = serve_and_get(["serve", "--config", "alb.toml"], tmp_path, "/from-config")
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
    [(status, _, _)], stderr = serve_and_get(command, tmp_path, "/a.txt")
    assert status == 200
    assert ("[fn viewer-request] START RequestId" in stderr) == (not quiet)
    assert ("REPORT RequestId" in stderr) == (not quiet)


def test_serve_quiet_still_logs_a_crashed_invocation(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "fn.py").write_text(CRASH)
    command = ["serve", "--origin", "site", "--viewer-request", "fn.py:handler", "--quiet"]
    [(status, _, _)], stderr = serve_and_get(command, tmp_path, "/a.txt")
    assert status == 503
    assert "[fn viewer-request] START RequestId" in stderr  # a crash keeps its Lambda lines, with the traceback
    assert "ValueError: boom" in stderr
    assert "-> 503 LambdaExecutionError" in stderr


@pytest.mark.parametrize("level", ["WARNING", "INFO"])
def test_alb_log_level(tmp_path: Path, level: str) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    [(status, _, body)], stderr = serve_and_get(["alb", "--target", "app.handler", "--log-level", level], tmp_path, "/")
    assert (status, body) == (200, b"ok")
    assert ("ALB target group" in stderr) == (level == "INFO")
    assert ("[app alb] START RequestId" in stderr) == (level == "INFO")


def test_the_long_running_commands_collect_young_objects_less_often() -> None:
    from edgeproxy import cli

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's default (a serve or replay run in this process has changed it)
        cli._tune_collector()
        assert gc.get_threshold() == (cli.YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert cli.YOUNG_COLLECTION_THRESHOLD > 700
    finally:
        gc.set_threshold(*saved)


def test_the_log_is_written_once_per_loop_iteration_and_at_once_off_the_loop() -> None:
    import asyncio
    import io
    import logging

    from edgeproxy.cli import _BatchedStreamHandler, _LineFormatter

    class Counted(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    stream = Counted()
    handler = _BatchedStreamHandler(stream)
    handler.setFormatter(_LineFormatter())
    log = logging.getLogger("edgeproxy.test-batched")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    try:
        log.info("before the loop")
        assert stream.writes == 1

        async def invocations() -> None:
            for n in range(5):
                log.info("START %d\nEND %d", n, n)
            assert stream.writes == 1  # held until the loop comes round
            await asyncio.sleep(0)
            assert stream.writes == 2  # all five in one write
            log.info("held, then flushed")
            handler.flush()
            assert stream.writes == 3

        asyncio.run(invocations())
        log.info("after the loop")
        lines = stream.getvalue().splitlines()
        assert stream.writes == 4
        assert [line.split(" INFO ")[-1] for line in lines if " INFO " in line] == [
            "before the loop",
            *(f"START {n}" for n in range(5)),
            "held, then flushed",
            "after the loop",
        ]
        assert lines.count("END 4") == 1
    finally:
        log.removeHandler(handler)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["serve", "--origin", ".", "--port", "99999"], "argument --port: '99999' is not a TCP port"),
        (["serve", "--origin", ".", "--port", "-1"], "argument --port: '-1' is not a TCP port"),
        (["serve", "--origin", ".", "--admin-port", "70000"], "argument --admin-port: '70000' is not a TCP port"),
        (["alb", "--target", "a.handler", "--timeout", "-3"], "argument --timeout: '-3' is not a positive number"),
        (["alb", "--target", "a.handler", "--timeout", "nan"], "argument --timeout: 'nan' is not a positive number"),
        (["alb", "--target", "a.handler", "--timeout", "901"], "timeout is at most 900 s"),
        (["alb", "--target", "a.handler", "--memory", "0"], "argument --memory: '0': a Lambda function's memory is"),
        (["alb", "--target", "a.handler", "--memory", "99999"], "memory is 128-10240 MB"),
        (["invoke", "a.py:handler", "--event", "-", "--timeout", "0"], "argument --timeout: '0' is not a positive"),
        (["invalidate", "--admin", "notaurl", "/a"], "--admin 'notaurl' is not an http:// URL"),
        (["invalidate", "--admin", "http://127.0.0.1:abc", "/a"], "is not an http:// URL"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    code: int | str | None
    try:
        code = main(args)
    except SystemExit as exited:  # argparse's own errors exit from parse_args
        code = exited.code
    assert code == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1, captured.err
    assert line in captured.err
    assert "Traceback" not in captured.err


def test_invoke_with_an_event_file_that_is_not_utf8_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "e.json").write_bytes(b"\xff\xfe")
    (tmp_path / "h.py").write_text(PASS)
    assert main(["invoke", f"{tmp_path / 'h.py'}:handler", "--event", str(tmp_path / "e.json")]) == 2
    assert "cannot read event" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("event", "line"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply for JSON"),
        ('{"Records":[{"cf":{"config":{"eventType":"viewer-request"},"request":5}}]}', "cf.request is an object"),
        ('{"Records":[{"cf":{"config":{"eventType":"origin-response"},"request":{}}}]}', "cf.response is an object"),
    ],
)
def test_invoke_with_a_malformed_event_exits_2_with_one_line(
    event: str, line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "e.json").write_text(event)
    (tmp_path / "h.py").write_text(PASS)
    assert main(["invoke", f"{tmp_path / 'h.py'}:handler", "--event", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err
    assert line in err
    assert "Traceback" not in err


def test_invoke_with_a_handler_that_does_not_load_names_it_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    event = subprocess.run(
        [sys.executable, "-m", "edgeproxy.cli", "events", "viewer-request"], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "e.json").write_text(event)
    assert main(["invoke", "nope.py:handler", "--event", "e.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeproxy: configuration error: command line: nope.py:handler: handler file "), err
    assert "edgeproxy.testing" not in err
