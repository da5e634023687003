"""testing.py: event builders, single validated invocations, and a proxy started in the test's loop."""

from __future__ import annotations

import base64
import gc
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgeproxy import (
    AlbError,
    EdgeProxy,
    LambdaExecutionError,
    LambdaValidationError,
    ainvoke,
    alb_event,
    cloudfront_event,
    invoke,
    start,
)
from edgeproxy.config import TRIGGERS, Trigger
from edgeproxy.errors import ConfigError, EventArgumentError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"


def keys(value: Any) -> Any:
    """The shape of an event: its keys, recursively (values vary per request)."""
    if isinstance(value, dict):
        return {key: keys(item) for key, item in value.items() if key not in ("headers",)}
    if isinstance(value, list):
        return [keys(item) for item in value[:1]]
    return type(value).__name__


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_cloudfront_event_has_the_shape_the_proxy_builds(trigger: Trigger) -> None:
    recorded = json.loads((FIXTURES / f"{trigger}.json").read_text())  # recorded through the proxy
    built = cloudfront_event(trigger, "/path", headers={"Accept-Language": "en"})
    assert keys(built) == keys(recorded)
    cf = built["Records"][0]["cf"]
    assert cf["config"]["eventType"] == trigger
    assert cf["request"]["headers"]["accept-language"] == [{"key": "Accept-Language", "value": "en"}]


def test_cloudfront_event_details() -> None:
    event = cloudfront_event(
        "origin-request",
        "/search?q=a%20b",
        method="post",
        headers=[("Cookie", "a=1"), ("Cookie", "b=2")],
        client_ip="192.0.2.7",
        origin="http://127.0.0.1:9000/prod",
        body=b"x" * (1024 * 1024 + 1),
    )
    request = event["Records"][0]["cf"]["request"]
    assert (request["method"], request["uri"], request["querystring"]) == ("POST", "/search", "q=a%20b")
    assert [entry["value"] for entry in request["headers"]["cookie"]] == ["a=1", "b=2"]
    assert request["headers"]["x-forwarded-for"] == [{"key": "X-Forwarded-For", "value": "192.0.2.7"}]
    assert request["origin"]["custom"]["path"] == "/prod"
    body = request["body"]
    assert body["inputTruncated"] is True
    assert len(base64.b64decode(body["data"])) == 1024 * 1024  # truncated at the origin-request limit
    response_event = cloudfront_event("viewer-response", status=304, response_headers={"X-A": "1"})
    response = response_event["Records"][0]["cf"]["response"]
    assert response == {
        "headers": {"x-a": [{"key": "X-A", "value": "1"}]},
        "status": "304",
        "statusDescription": "Not Modified",
    }


@pytest.mark.parametrize("trigger", ["origin-request", "origin-response"])
def test_cloudfront_event_with_an_s3_origin(trigger: Trigger) -> None:
    request = cloudfront_event(trigger, "/a.png", origin="s3://my-bucket")["Records"][0]["cf"]["request"]
    assert request["origin"] == {
        "s3": {
            "authMethod": "none",
            "customHeaders": {},
            "domainName": "my-bucket.s3.us-east-1.amazonaws.com",
            "path": "",
            "region": "us-east-1",
        }
    }
    assert request["headers"]["host"] == [{"key": "Host", "value": "my-bucket.s3.us-east-1.amazonaws.com"}]


@pytest.mark.parametrize(
    ("trigger", "arguments", "message"),
    [
        ("viewer-request", {"uri": "no-slash"}, "uri 'no-slash': a request path starts with '/'"),
        ("viewer-request", {"uri": "/a b"}, "uri '/a b': ' ' cannot be in a request target (percent-encode it)"),
        ("viewer-request", {"method": "TRACE"}, "method 'TRACE': CloudFront accepts only GET, HEAD, OPTIONS, PUT"),
        ("viewer-request", {"headers": {"Bad Name": "1"}}, "headers 'Bad Name': is not a header name"),
        ("viewer-request", {"headers": {"X-A": "1\r\nX-B: 2"}}, "a header value is text without control characters"),
        ("viewer-request", {"client_ip": "localhost"}, "client_ip 'localhost': is not an IPv4 or IPv6 address"),
        ("viewer-request", {"origin": "https://example.org"}, "applies to origin-request and origin-response events"),
        ("origin-request", {"origin": "./public"}, "an origin is an http:// or https:// URL (its path is the origin"),
        ("origin-request", {"origin": "s3://My_Bucket"}, "s3://BUCKET names an S3 bucket: a bucket name is 3-63"),
        ("viewer-request", {"body": "x"}, "body 'x': a GET request has no body (CloudFront answers 403 to one)"),
        ("origin-response", {"body": "x", "method": "POST"}, "applies to viewer-request and origin-request events"),
        ("viewer-request", {"status": 200}, "status 200: applies to origin-response and viewer-response events"),
        ("origin-response", {"status": 99}, "status 99: an origin's response status is from 200 to 599"),
        ("viewer-response", {"status": 404}, "viewer-response does not run for statuses of 400 and above"),
        ("origin-request", {"response_headers": {"X-A": "1"}}, "response_headers {'X-A': '1'}: applies to"),
        ("origin-response", {"response_headers": {"X A": "1"}}, "response_headers 'X A': is not a header name"),
    ],
)
def test_cloudfront_event_refuses_what_cloudfront_would_not_send(
    trigger: Trigger, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:  # a ValueError, for callers catching one
        cloudfront_event(trigger, **arguments)
    assert isinstance(raised.value, EventArgumentError)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"path": "api"}, "path 'api': a request path starts with '/'"), ({"method": "GE T"}, "is a token")],
)
def test_alb_event_refuses_what_a_load_balancer_would_not_send(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(EventArgumentError) as raised:
        alb_event(**arguments)
    assert message in str(raised.value)


def test_invoke_returns_validated_result_with_keys_filled(tmp_path: Path) -> None:
    (tmp_path / "add_header.py").write_text(
        "def handler(event, context):\n"
        "    request = event['Records'][0]['cf']['request']\n"
        "    request['headers']['x-team'] = [{'value': context.function_name}]\n"
        "    return request\n"
    )
    result = invoke("add_header.py:handler", cloudfront_event("viewer-request"), base_dir=tmp_path)
    assert result["headers"]["x-team"] == [{"key": "X-Team", "value": "us-east-1.add_header"}]


def test_invoke_accepts_a_callable() -> None:
    def generate(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"status": "204"}

    assert invoke(generate, cloudfront_event("origin-request"))["status"] == "204"


def test_invoke_raises_validation_error_naming_handler_trigger_and_rule() -> None:
    def touch_host(event: dict[str, Any], context: object) -> Any:
        request = event["Records"][0]["cf"]["request"]
        request["headers"]["host"] = [{"value": "other.example"}]
        return request

    with pytest.raises(LambdaValidationError) as raised:
        invoke(touch_host, cloudfront_event("viewer-request"))
    assert "touch_host at viewer-request: request.headers: changed read-only header 'host'" in raised.value.reason
    assert raised.value.status == 502
    # the same result passes where Host is writable, and in lenient mode
    assert invoke(touch_host, cloudfront_event("origin-request"))["headers"]["host"][0]["value"] == "other.example"
    assert invoke(touch_host, cloudfront_event("viewer-request"), lenient=True)["headers"]["host"]


def test_invoke_raises_execution_error_with_the_handler_traceback(tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text(
        "def helper():\n    return {}['missing']\n\ndef handler(event, context):\n    helper()\n"
    )
    with pytest.raises(LambdaExecutionError) as raised:
        invoke("crash.handler", cloudfront_event("origin-response"), base_dir=tmp_path)
    assert raised.value.status == 503
    assert "crash.handler at origin-response raised KeyError" in raised.value.reason
    traceback = raised.value.handler_traceback or ""
    assert "crash.py" in traceback
    assert "in helper" in traceback
    assert "edgeproxy" not in traceback


def test_invoke_enforces_the_timeout() -> None:
    import time

    def slow(event: Any, context: Any) -> Any:
        time.sleep(1)

    with pytest.raises(LambdaExecutionError, match=r"timed out after 0\.1 s"):
        invoke(slow, cloudfront_event("viewer-request"), timeout=0.1)


async def test_invoke_works_inside_a_running_loop_and_ainvoke_runs_async_handlers() -> None:
    async def passthrough(event: Any, context: Any) -> Any:
        return event["Records"][0]["cf"]["request"]

    event = cloudfront_event("viewer-request", "/x")
    assert invoke(passthrough, event)["uri"] == "/x"
    assert (await ainvoke(passthrough, cloudfront_event("viewer-request", "/y")))["uri"] == "/y"


def test_invoke_rejects_what_is_not_an_edge_event() -> None:
    with pytest.raises(ValueError, match="neither a Lambda@Edge event"):
        invoke(lambda event, context: event, {"httpMethod": "GET"})


async def test_start_serves_an_aiohttp_origin_and_records_invocations() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.path}", headers={"Set-Cookie": "a=1"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)

    def tag(event: dict[str, Any], context: object) -> Any:
        response = event["Records"][0]["cf"]["response"]
        response["headers"]["x-tag"] = [{"value": "1"}]
        return response

    proxy: EdgeProxy = await start(origin=app, viewer_response=tag)
    try:
        async with proxy.client.get("/a") as response:
            assert response.status == 200
            assert await response.text() == "hello /a"
            assert response.headers["X-Tag"] == "1"
            assert response.headers["X-Cache"] == "Miss from cloudfront"
            [invocation] = proxy.invocations_for(response)
        assert invocation.trigger == "viewer-response"
        assert invocation.handler.endswith("tag")
        assert "x-tag" not in invocation.event["Records"][0]["cf"]["response"]["headers"]  # as it was given
        assert invocation.result["headers"]["x-tag"] == [{"key": "X-Tag", "value": "1"}]
        assert invocation.error is None
        assert invocation.duration >= 0
        assert str(proxy.url).startswith("http://127.0.0.1:")
    finally:
        await proxy.close()


async def test_start_keeps_no_invocations_when_asked_not_to() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)

    def same(event: dict[str, Any], context: object) -> Any:
        return event["Records"][0]["cf"]["response"]

    proxy = await start(origin=app, viewer_response=same, keep_invocations=False)
    try:
        for _ in range(3):
            async with proxy.client.get("/a") as response:
                assert response.status == 200
        assert proxy.invocations == []  # a long replay holds nothing per request
    finally:
        await proxy.close()


async def test_start_records_errors_and_accepts_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "bad.py").write_text("def handler(event, context):\n    return 'oops'\n")
    config_file = tmp_path / "edgeproxy.toml"
    config_file.write_text(
        '[origins.site]\ndirectory = "site"\n'
        '[default_behavior]\norigin = "site"\n'
        '[default_behavior.functions]\norigin-request = "bad.py:handler"\n'
    )
    proxy = await start(config_file=config_file, debug_headers=True)
    try:
        async with proxy.client.get("/index.html") as response:
            assert response.status == 502
            assert response.headers["X-Cache"] == "LambdaValidationError from cloudfront"
        [error] = proxy.errors
        assert error.trigger == "origin-request"
        assert error.result == "oops"
        assert error.error is not None
        assert "bad.py:handler at origin-request" in error.error.reason
    finally:
        await proxy.close()


async def test_start_needs_an_origin_or_a_config() -> None:
    with pytest.raises(ValueError, match="give one of config_file, origin"):
        await start()
    with pytest.raises(ValueError, match="give one of config_file, origin"):
        await start(origin="http://127.0.0.1:1", alb_target="app.handler")


# ALB mode


def test_alb_event_single_and_multi_value() -> None:
    single = alb_event("/p%20q?a=hello%20world&a=2&b=x+y", headers=[("Cookie", "a=1"), ("Cookie", "b=2")])
    assert single["path"] == "/p%20q"
    assert single["queryStringParameters"] == {"a": "2", "b": "x+y"}  # undecoded, last wins
    assert single["headers"]["cookie"] == "b=2"
    assert set(single["headers"]) >= {"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
    assert "multiValueHeaders" not in single
    multi = alb_event("/p?a=1&a=2", method="post", body=b"\x00\x01", multi_value_headers=True)
    assert multi["httpMethod"] == "POST"
    assert multi["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert (multi["body"], multi["isBase64Encoded"]) == ("AAE=", True)  # no content type: base64
    assert "headers" not in multi
    traced = alb_event(headers={"X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678"})
    assert re.fullmatch(
        r"Self=1-[0-9a-f]{8}-[0-9a-f]{24};Root=1-67891233-abcdef012345678912345678",
        traced["headers"]["x-amzn-trace-id"],
    )
    check = alb_event(health_check=True)
    assert check["headers"] == {"user-agent": "ELB-HealthChecker/2.0"}


def test_invoke_alb_event_validates_like_the_load_balancer() -> None:
    def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 201, "headers": {"X-Path": event["path"]}, "body": context.function_name}

    assert invoke(ok, alb_event("/x")) == {"statusCode": 201, "headers": {"X-Path": "/x"}, "body": "ok"}

    def string_status(event: Any, context: Any) -> Any:
        return {"statusCode": "200"}

    with pytest.raises(AlbError) as raised:
        invoke(string_status, alb_event())
    assert (raised.value.status, raised.value.error_reason) == (502, "LambdaInvalidResponse")
    assert "'statusCode' must be a number" in raised.value.reason


async def test_start_alb_target_records_invocations() -> None:
    def cookies(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": "hi"}

    proxy = await start(alb_target=cookies, multi_value_headers=True)
    try:
        async with proxy.client.get("/p?x=1&x=2") as response:
            assert response.status == 200
            assert response.headers["Server"] == "awselb/2.0"
            assert sorted(response.headers.getall("Set-Cookie")) == ["a=1", "b=2"]
        [invocation] = proxy.invocations
        assert invocation.trigger == "alb"
        assert invocation.event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
        assert invocation.request_id == invocation.event["multiValueHeaders"]["x-amzn-trace-id"][0]
        assert invocation.result["statusCode"] == 200
        assert invocation.error is None
    finally:
        await proxy.close()


async def test_a_bad_argument_names_the_argument_and_closes_the_origin_it_started(tmp_path: Path) -> None:
    app = web.Application()
    with pytest.raises(ConfigError, match=r"^edgeproxy\.testing\.start\(\): viewer_request: handler file"):
        await start(origin=app, viewer_request=str(tmp_path / "nope.py") + ":handler")
    with pytest.raises(ConfigError, match=r"default_behavior\.cache_policy"):
        await start(origin=app, cache_policy="NoSuchPolicy")
    gc.collect()  # an origin listener left open would warn here (ResourceWarning, an error under this suite)
