"""alb.py, functional: requests on a real socket through the ALB facade to real handlers, in both header modes.

Each test names the conformance checklist item of reference/aws-behaviour.md §8 it covers (47-62).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

from edgeproxy import EdgeProxyFactory
from edgeproxy.alb import HEALTH, TARGET, trace_header
from edgeproxy.config import HealthCheck
from tests.conftest import BINARY, Client, HandlerWriter, ProxyFactory, raw_url, wait_for_checks

MODES = pytest.mark.parametrize("multi_value", [False, True], ids=["single-value", "multi-value"])
ROOT_ID = r"1-[0-9a-f]{8}-[0-9a-f]{24}"

# Answers with the event it received, using the header field of the event's mode.
ECHO = """
import json

def handler(event, context):
    multi = "multiValueHeaders" in event
    headers = {"multiValueHeaders": {"content-type": ["application/json"]}} if multi else {
        "headers": {"content-type": "application/json"}}
    return {"statusCode": 200, **headers, "body": json.dumps(event)}
"""

# Returns RESULT as it is; the test fills it in.
RETURNS = """
import json
RESULT = json.loads({literal!r})

def handler(event, context):
    return RESULT
"""

# Counts its invocations in a file next to it.
COUNTS = """
import pathlib
COUNT = pathlib.Path(__file__).with_suffix(".count")

def handler(event, context):
    COUNT.write_text(str(int(COUNT.read_text()) + 1) if COUNT.exists() else "1")
    return {"statusCode": 200, "body": "ok"}
"""


def returning(write_handler: HandlerWriter, result: Any, name: str = "returns") -> str:
    return write_handler(name, RETURNS.format(literal=json.dumps(result)))


async def event_of(client: Client, method: str, path_and_query: str, **kwargs: Any) -> dict[str, Any]:
    """The event the ECHO handler received for one request."""
    response = await client.session.request(method, raw_url(client, path_and_query), **kwargs)
    assert response.status == 200, await response.text()
    event: dict[str, Any] = json.loads(await response.text())
    return event


def invocations(ref: str) -> int:
    path = Path(ref.rsplit(":", 1)[0]).with_suffix(".count")
    return int(path.read_text()) if path.exists() else 0


# 47-49: path, query strings, modes


async def test_single_value_query_undecoded_last_wins(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # 47
    client = await alb_proxy(write_handler("echo", ECHO))
    event = await event_of(client, "GET", "/p%20q?a=hello%20world&a=2&b=x+y")
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/p%20q"
    assert event["queryStringParameters"] == {"a": "2", "b": "x+y"}
    assert "multiValueQueryStringParameters" not in event
    assert "multiValueHeaders" not in event
    assert isinstance(event["headers"], dict)


async def test_multi_value_query_keeps_every_value(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # 48
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=True)
    event = await event_of(client, "GET", "/p%20q?a=hello%20world&a=2&b=x+y&foo%5Ba%5D=x")
    assert event["path"] == "/p%20q"
    assert event["multiValueQueryStringParameters"] == {
        "a": ["hello%20world", "2"],
        "b": ["x+y"],
        "foo%5Ba%5D": ["x"],
    }
    assert isinstance(event["multiValueHeaders"], dict)
    assert "headers" not in event
    assert "queryStringParameters" not in event


@MODES
async def test_no_query_is_an_empty_object(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 49
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "GET", "/plain")
    key = "multiValueQueryStringParameters" if multi_value else "queryStringParameters"
    assert event[key] == {}
    assert (event["body"], event["isBase64Encoded"]) == ("", False)


@MODES
async def test_duplicate_headers_and_lower_case_names(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    headers = [("Cookie", "name1=value1"), ("Cookie", "name2=value2"), ("X-Custom-Thing", "Yes")]
    event = await event_of(client, "GET", "/", headers=headers)
    if multi_value:
        assert event["multiValueHeaders"]["cookie"] == ["name1=value1", "name2=value2"]
        assert event["multiValueHeaders"]["x-custom-thing"] == ["Yes"]
        names = event["multiValueHeaders"]
    else:
        assert event["headers"]["cookie"] == "name2=value2"  # §7.1: the last one wins
        assert event["headers"]["x-custom-thing"] == "Yes"
        names = event["headers"]
    assert all(name == name.lower() for name in names)
    assert "host" in names


@MODES
async def test_method_and_head_response(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "DELETE", "/items/1")
    assert event["httpMethod"] == "DELETE"
    response = await client.head("/items/1")
    assert response.status == 200
    assert await response.read() == b""
    assert int(response.headers["Content-Length"]) > 0  # the length of the body a GET would get


@pytest.mark.parametrize("status", [204, 304])
async def test_no_content_after_a_204_or_304_whatever_body_the_function_returned(
    status: int, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    handler = f"def handler(event, context):\n    return {{'statusCode': {status}, 'body': 'not sent'}}\n"
    client = await alb_proxy(write_handler("no_content", handler))
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(request * 2)  # two requests on one keep-alive connection: the second answer must follow the first
    await writer.drain()
    answers = b""
    while answers.count(b"HTTP/1.1 ") < 2 or not answers.endswith(b"\r\n\r\n"):
        answers += await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert b"not sent" not in answers
    assert answers.count(f"HTTP/1.1 {status} ".encode()) == 2


# 50, 61, 62: headers the load balancer adds


@MODES
async def test_every_event_has_the_load_balancer_headers(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 50
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "GET", "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"})
    headers = (
        {name: values[-1] for name, values in event["multiValueHeaders"].items()} if multi_value else event["headers"]
    )
    if multi_value:  # the client's forwarding headers are replaced, not repeated
        assert len(event["multiValueHeaders"]["x-forwarded-proto"]) == 1
    assert re.fullmatch(f"Root={ROOT_ID}", headers["x-amzn-trace-id"])
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-port"] == str(client.port)
    assert headers["x-forwarded-proto"] == "http"
    assert event["requestContext"]["elb"]["targetGroupArn"].startswith("arn:aws:elasticloadbalancing:")


@MODES
async def test_client_trace_id_gets_a_self_field(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 61
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    given = "Root=1-67891233-abcdef012345678912345678"
    event = await event_of(client, "GET", "/", headers={"X-Amzn-Trace-Id": given})
    values = event["multiValueHeaders"]["x-amzn-trace-id"] if multi_value else [event["headers"]["x-amzn-trace-id"]]
    assert len(values) == 1
    assert re.fullmatch(f"Self={ROOT_ID};{given}", values[0])


def test_trace_header_rules() -> None:
    # §7.7: custom fields kept, an existing Self updated, an invalid header replaced by a new Root.
    root = "Root=1-67891233-abcdef012345678912345678"
    assert re.fullmatch(f"Self={ROOT_ID};{root};Tenant=42", trace_header(f"{root};Tenant=42"))
    updated = trace_header(f"Self=1-00000000-000000000000000000000000;{root}")
    assert re.fullmatch(f"Self={ROOT_ID};{root}", updated)
    assert "Self=1-00000000-" not in updated
    assert re.fullmatch(f"Root={ROOT_ID}", trace_header("Root=not-a-trace-id"))
    assert re.fullmatch(f"Root={ROOT_ID}", trace_header("Tenant=42"))
    # "If the HTTP headers are greater than 7 KB, the load balancer rewrites the X-Amzn-Trace-Id header with a Root
    # field": all of them, not the trace header alone.
    assert re.fullmatch(f"Self={ROOT_ID};{root}", trace_header(root, header_bytes=7 * 1024))
    assert re.fullmatch(f"Root={ROOT_ID}", trace_header(f"{root};Tenant=42", header_bytes=7 * 1024 + 1))


async def test_a_request_whose_headers_are_over_7_kb_gets_a_new_trace_root(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(alb_target=lambda event, context: {"statusCode": 200, "body": json.dumps(event)})
    root = "Root=1-67891233-abcdef012345678912345678"
    async with proxy.client.get("/", headers={"X-Amzn-Trace-Id": root, "Cookie": "c=" + "a" * 8000}) as response:
        event = await response.json(content_type=None)
    assert re.fullmatch(f"Root={ROOT_ID}", event["headers"]["x-amzn-trace-id"])
    assert root not in event["headers"]["x-amzn-trace-id"]


@MODES
async def test_x_forwarded_for_appended_with_comma_space(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 62
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "GET", "/", headers={"X-Forwarded-For": "10.0.0.1"})
    value = event["multiValueHeaders"]["x-forwarded-for"] if multi_value else [event["headers"]["x-forwarded-for"]]
    assert value == ["10.0.0.1, 127.0.0.1"]


# 51, 52: request bodies


@MODES
@pytest.mark.parametrize(
    ("headers", "body", "as_text"),
    [
        ({"Content-Type": "application/json"}, b'{"a":1}', True),
        ({"Content-Type": "text/plain; charset=utf-8"}, "héllo".encode(), True),
        ({"Content-Type": "application/xml"}, b"<a/>", True),
        ({"Content-Type": "application/javascript"}, b"f()", True),
        ({"Content-Type": "application/octet-stream"}, b"\x00\x01binary", False),
        ({}, b"no content type", False),
        ({"Content-Type": "text/plain", "Content-Encoding": "gzip"}, b"\x1f\x8b\x08pretend", False),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2", False),
    ],
    ids=["json", "text-charset", "xml", "javascript", "octet-stream", "no-type", "text-gzip", "form"],
)
async def test_body_encoding_rule(
    multi_value: bool,
    headers: dict[str, str],
    body: bytes,
    as_text: bool,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
) -> None:
    # 51
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "POST", "/upload", headers=headers, data=body)
    assert event["isBase64Encoded"] is not as_text
    assert event["body"] == (body.decode() if as_text else base64.b64encode(body).decode())


@MODES
async def test_binary_upload_arrives_intact(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    client = await alb_proxy(write_handler("echo", ECHO), multi_value=multi_value)
    event = await event_of(client, "PUT", "/files/blob", data=BINARY, headers={"Content-Type": "image/png"})
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == BINARY


@MODES
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_request_body_over_1_mb_is_413_without_invocation(
    multi_value: bool,
    chunked: bool,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 52
    ref = write_handler("counts", COUNTS)
    client = await alb_proxy(ref, multi_value=multi_value)
    body = b"x" * (1024 * 1024 + 1)

    async def chunks() -> Any:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post("/upload", data=chunks() if chunked else io.BytesIO(body))
    assert response.status == 413
    assert response.headers["Server"] == "awselb/2.0"
    assert "<title>413 Request Entity Too Large</title>" in await response.text()
    assert invocations(ref) == 0
    assert "LambdaRequestTooLarge" in caplog.text

    response = await client.post("/upload", data=io.BytesIO(body[:-1]))  # exactly 1 MB is allowed
    assert response.status == 200
    assert invocations(ref) == 1


# 53-59: responses


@MODES
async def test_response_status_headers_body_and_computed_length(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 53
    headers = {"multiValueHeaders": {"X-A": ["1"]}} if multi_value else {"headers": {"X-A": "1"}}
    client = await alb_proxy(
        returning(write_handler, {"statusCode": 201, **headers, "body": "hi"}), multi_value=multi_value
    )
    response = await client.get("/")
    assert response.status == 201
    assert response.reason == "Created"
    assert response.headers.getall("X-A") == ["1"]
    assert await response.read() == b"hi"
    assert response.headers["Content-Length"] == "2"
    assert response.headers["Server"] == "awselb/2.0"
    assert "Date" in response.headers


@MODES
async def test_status_code_alone_is_an_empty_200(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 54
    client = await alb_proxy(returning(write_handler, {"statusCode": 200}), multi_value=multi_value)
    response = await client.get("/")
    assert response.status == 200
    assert await response.read() == b""
    assert response.headers["Content-Length"] == "0"


@MODES
async def test_status_description_is_the_reason_phrase(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    result = {"statusCode": 418, "statusDescription": "418 Short And Stout"}
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    response = await client.get("/")
    assert (response.status, response.reason) == (418, "Short And Stout")


MALFORMED = [
    ({"statusCode": "200"}, "'statusCode' must be a number"),
    ({"statusCode": 200, "body": None}, "'body' is null"),
    ({"statusCode": 200, "headers": {"content-length": 2}}, "header 'content-length' has a value that is not a string"),
    ({"statusCode": 200, "headers": {"x-flag": True}}, "header 'x-flag' has a value that is not a string"),
    ({"statusCode": 200, "headers": None}, "'headers' is null"),
    ({"statusCode": 200, "statusDescription": None, "multiValueHeaders": None}, "is null"),
    ({"body": "no status"}, "'statusCode' is missing"),
    ({"statusCode": 200.5}, "'statusCode' must be a number"),
    ({"statusCode": 700}, "not a final HTTP status"),
    ({"statusCode": 200, "isBase64Encoded": "yes"}, "'isBase64Encoded' must be true or false"),
    ({"statusCode": 200, "isBase64Encoded": True, "body": "!!!"}, "not valid base64"),
    ({"statusCode": 200, "body": {"json": "object"}}, "'body' must be a string"),
    ({"statusCode": 200, "headers": {"bad name": "x"}}, "'bad name' is not a valid header name"),
    ({"statusCode": 200, "headers": {"x-a": "1\r\nInjected: yes"}}, "has '\\r' (a control character)"),
    ("just a string", "the result is a string, not an object"),
    (None, "the result is null"),
]


def in_mode(result: Any, multi_value: bool) -> Any:
    """A single-value result in the other mode: a ``headers`` map becomes ``multiValueHeaders`` of one value each."""
    if not multi_value or not isinstance(result, dict) or not isinstance(result.get("headers"), dict):
        return result
    headers = result["headers"]
    return {
        **{k: v for k, v in result.items() if k != "headers"},
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
    }


@MODES
@pytest.mark.parametrize(("result", "reason"), MALFORMED, ids=[reason for _, reason in MALFORMED])
async def test_malformed_response_is_502_invalid_response(
    multi_value: bool,
    result: Any,
    reason: str,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 55
    client = await alb_proxy(returning(write_handler, in_mode(result, multi_value)), multi_value=multi_value)
    response = await client.get("/path")
    assert response.status == 502
    assert response.headers["Server"] == "awselb/2.0"
    assert response.headers["Content-Type"] == "text/html"
    page = await response.text()
    assert "<title>502 Bad Gateway</title>" in page
    assert "<h1>502 Bad Gateway</h1>" in page
    line = next(record.getMessage() for record in caplog.records if "-> 502" in record.getMessage())
    assert "GET /path -> 502 LambdaInvalidResponse" in line
    assert reason in line


async def test_malformed_multi_value_headers_are_502(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    for index, result in enumerate(
        [
            {"statusCode": 200, "multiValueHeaders": {"x-a": "not-a-list"}},
            {"statusCode": 200, "multiValueHeaders": {"x-a": ["1", 2]}},
            {"statusCode": 200, "headers": None},  # null in the ignored field is still a null (§7.4)
        ]
    ):
        client = await alb_proxy(returning(write_handler, result, f"mv{index}"), multi_value=True)
        assert (await client.get("/")).status == 502


@MODES
async def test_base64_response_body_is_decoded(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 56
    result = {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(BINARY).decode()}
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    response = await client.get("/")
    assert await response.read() == BINARY
    assert response.headers["Content-Length"] == str(len(BINARY))
    client = await alb_proxy(
        returning(write_handler, {"statusCode": 200, "isBase64Encoded": True, "body": "aGk="}, "hi"),
        multi_value=multi_value,
    )
    assert await (await client.get("/")).read() == b"hi"


@MODES
async def test_handler_exception_is_502_unhandled_with_user_traceback_in_log(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    # 57
    caplog.set_level(logging.INFO)
    ref = write_handler("boom", "def handler(event, context):\n    raise ValueError('boom')\n")
    client = await alb_proxy(ref, multi_value=multi_value)
    response = await client.get("/x")
    assert response.status == 502
    assert "<h1>502 Bad Gateway</h1>" in await response.text()
    assert "Traceback" not in await response.text()
    assert "GET /x -> 502 LambdaUnhandled: " in caplog.text
    assert "raised ValueError: boom" in caplog.text
    assert 'boom.py", line 2, in handler' in caplog.text  # the user's own frame, from the shared runtime


@pytest.mark.parametrize("raised", ["KeyboardInterrupt()", "GeneratorExit()", "SystemExit(0)"])
async def test_handler_raising_a_base_exception_is_502_unhandled_and_the_alb_keeps_serving(
    raised: str, alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = write_handler("interrupts", f"def handler(event, context):\n    raise {raised}\n")
    client = await alb_proxy(ref)
    for _ in range(2):
        response = await client.get("/x")
        assert response.status == 502
        assert response.headers["Server"] == "awselb/2.0"
        assert "<h1>502 Bad Gateway</h1>" in await response.text()
    assert "GET /x -> 502 LambdaUnhandled: " in caplog.text


@MODES
async def test_timeout_is_502(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    # 57
    caplog.set_level(logging.INFO)
    ref = write_handler("slow", "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(30)\n")
    client = await alb_proxy(ref, seconds=0.05, multi_value=multi_value)
    response = await client.get("/")
    assert response.status == 502
    assert "Task timed out after 0.05 seconds" in caplog.text
    assert "-> 502 LambdaUnhandled" in caplog.text
    assert "timed out" in caplog.text


@MODES
async def test_response_over_1_mb_is_502_too_large(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    # 57
    big = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'x' * 1048576}\n"
    client = await alb_proxy(write_handler("big", big), multi_value=multi_value)
    response = await client.get("/")
    assert response.status == 502
    assert "LambdaResponseTooLarge" in caplog.text
    fits = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'x' * 1000000}\n"
    client = await alb_proxy(write_handler("fits", fits), multi_value=multi_value)
    assert len(await (await client.get("/")).read()) == 1000000


@pytest.mark.parametrize(
    "setup",
    [
        "result = {'statusCode': 200, 'body': b'bytes'}",
        "result = {'statusCode': 200}\n    result['self'] = result",
        "deep = []\n    for _ in range(100000):\n        deep = [deep]\n    result = {'statusCode': 200, 'deep': deep}",
    ],
    ids=["bytes", "circular", "too-deep"],
)
async def test_result_that_is_not_json_is_502(
    setup: str, alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = write_handler("notjson", f"def handler(event, context):\n    {setup}\n    return result\n")
    client = await alb_proxy(ref)
    assert (await client.get("/")).status == 502
    assert "GET / -> 502 LambdaUnhandled" in caplog.text
    assert "Runtime.MarshalError" in caplog.text


async def test_multi_value_response_two_cookies(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # 58
    result = {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-One": ["1"]}}
    client = await alb_proxy(returning(write_handler, result), multi_value=True)
    response = await client.get("/")
    assert sorted(response.headers.getall("Set-Cookie")) == ["a=1", "b=2"]  # order is not guaranteed (§7.2)
    assert response.headers["X-One"] == "1"


async def test_single_value_response_two_cookies_by_case(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # §7.2: in single-value mode, differently cased keys are the known way to send several Set-Cookie lines.
    result = {"statusCode": 200, "headers": {"set-cookie": "a=1", "Set-cookie": "b=2"}}
    client = await alb_proxy(returning(write_handler, result))
    response = await client.get("/")
    assert sorted(response.headers.getall("Set-Cookie")) == ["a=1", "b=2"]


@pytest.mark.parametrize(
    ("multi_value", "result"),
    [
        (True, {"statusCode": 200, "headers": {"X-Dropped": "1"}, "body": "b"}),
        (False, {"statusCode": 200, "multiValueHeaders": {"X-Dropped": ["1"]}, "body": "b"}),
    ],
    ids=["headers-in-multi-value-mode", "multi-value-headers-in-single-value-mode"],
)
async def test_header_field_of_the_other_mode_is_ignored(
    multi_value: bool,
    result: dict[str, Any],
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 58: §7.2 is unclear (502 is plausible); we follow the reports that say the headers are dropped.
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    response = await client.get("/")
    assert response.status == 200
    assert await response.read() == b"b"
    assert "X-Dropped" not in response.headers
    assert "which the load balancer ignores" in caplog.text


@MODES
async def test_hop_by_hop_and_content_length_from_the_function_ignored(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # 59
    given = {"Connection": "close", "Transfer-Encoding": "chunked", "Content-Length": "999", "X-Kept": "yes"}
    headers = (
        {"multiValueHeaders": {name: [value] for name, value in given.items()}} if multi_value else {"headers": given}
    )
    result = {"statusCode": 200, **headers, "body": "abc"}
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    for _ in range(2):  # the connection stays usable: "Connection: close" did not reach the wire
        response = await client.get("/")
        assert await response.read() == b"abc"
        assert response.headers["Content-Length"] == "3"
        assert "Transfer-Encoding" not in response.headers
        assert response.headers.get("Connection", "").lower() != "close"
        assert response.headers["X-Kept"] == "yes"


# Requests the load balancer refuses itself (§7.3)


async def test_refusals_before_invocation(
    alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = write_handler("counts", COUNTS)
    client = await alb_proxy(ref)
    assert (await client.request("TRACE", "/")).status == 405
    upgrade = await client.get("/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert upgrade.status == 400
    assert "LambdaWebsocketNotSupported" in caplog.text
    forwarded = ", ".join(f"10.0.0.{n}" for n in range(31))
    assert (await client.get("/", headers={"X-Forwarded-For": forwarded})).status == 463
    big_headers = {f"X-Big-{n}": "v" * 15000 for n in range(5)}
    assert (await client.get("/", headers=big_headers)).status == 400
    text = await client.post("/", data=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert text.status == 400
    assert "LambdaBadRequest" in caplog.text
    assert invocations(ref) == 0


async def test_many_small_headers_reach_the_function(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # §7.3 limits each line to 16 K and the whole header to 64 K, not the number of headers.
    client = await alb_proxy(write_handler("echo", ECHO))
    headers = {f"X-Small-{n}": "v" for n in range(500)}
    response = await client.get("/", headers=headers)
    assert response.status == 200
    assert (await response.json())["headers"]["x-small-499"] == "v"


async def test_non_utf8_header_is_bad_request(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    client = await alb_proxy(write_handler("counts", COUNTS))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 400")


# The shared runtime: context, logs, reload


async def test_context_and_lambda_logs(
    alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    source = (
        "import json\n"
        "def handler(event, context):\n"
        "    print('hello from the target')\n"
        "    body = {'id': context.aws_request_id, 'memory': context.memory_limit_in_mb,\n"
        "            'name': context.function_name, 'version': context.function_version,\n"
        "            'arn': context.invoked_function_arn, 'group': context.log_group_name,\n"
        "            'remaining': context.get_remaining_time_in_millis()}\n"
        "    return {'statusCode': 200, 'body': json.dumps(body)}\n"
    )
    client = await alb_proxy(write_handler("ctx", source), seconds=2)
    body = await (await client.get("/")).json(content_type=None)
    assert body["memory"] == "128"  # a string, as Lambda's Python runtime has it
    # behind an ALB it is the function itself, invoked unqualified; not a Lambda@Edge replica (us-east-1.ctx)
    assert (body["name"], body["version"], body["group"]) == ("ctx", "$LATEST", "/aws/lambda/ctx")
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["id"])
    assert f"START RequestId: {body['id']}" in caplog.text
    assert 0 < body["remaining"] <= 2000
    assert re.search(r"\[ctx alb\] START RequestId: [0-9a-f-]{36} Version: \$LATEST", caplog.text)
    assert re.search(r"\[ctx alb\] [0-9a-f-]{36}\thello from the target", caplog.text)
    assert "[ctx alb] REPORT RequestId:" in caplog.text


def edit(path: Path, old: str, new: str) -> None:
    """Change a handler's source, with a modification time that is certainly new."""
    path.write_text(path.read_text().replace(old, new))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_reload_picks_up_a_changed_handler(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    ref = returning(write_handler, {"statusCode": 200, "body": "one"})
    client = await alb_proxy(ref, reload=True)
    assert await (await client.get("/")).text() == "one"
    edit(Path(ref.rsplit(":", 1)[0]), '"one"', '"two"')
    for _ in range(200):  # the watcher polls every 0.5 s; wait for it, at most 10 s
        if await (await client.get("/")).text() == "two":
            break
        await asyncio.sleep(0.05)
    assert await (await client.get("/")).text() == "two"


# 60: health checks

HEALTH_EVENTS = """
import json, pathlib
LOG = pathlib.Path(__file__).with_suffix(".jsonl")

def handler(event, context):
    with LOG.open("a") as f:
        f.write(json.dumps(event) + "\\n")
    return {"statusCode": 200, "body": "healthy"}
"""

# Answers the health checker with the statuses in STATUSES, one per check, then 200.
SCRIPTED = """
STATUSES = {statuses!r}

def handler(event, context):
    status = STATUSES.pop(0) if STATUSES else 200
    return {{"statusCode": status}}
"""


FAST = HealthCheck(enabled=True, interval=0.01, timeout=5, healthy_threshold=5, unhealthy_threshold=2)


@MODES
async def test_health_check_event(multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    # 60
    ref = write_handler("health", HEALTH_EVENTS)
    client = await alb_proxy(ref, multi_value=multi_value, health_check=FAST)
    await wait_for_checks(client, 2)
    lines = Path(ref.rsplit(":", 1)[0]).with_suffix(".jsonl").read_text().splitlines()
    event = json.loads(lines[0])
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/"
    assert (event["body"], event["isBase64Encoded"]) == ("", False)
    assert event["requestContext"]["elb"]["targetGroupArn"] == client.app[TARGET].group.arn
    if multi_value:
        assert event["multiValueHeaders"] == {"user-agent": ["ELB-HealthChecker/2.0"]}
        assert event["multiValueQueryStringParameters"] == {}
    else:
        assert event["headers"] == {"user-agent": "ELB-HealthChecker/2.0"}
        assert event["queryStringParameters"] == {}


async def test_health_transitions(
    alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    # 60: healthy after the first pass; unhealthy after 2 consecutive failures; healthy again after 5 passes.
    caplog.set_level(logging.INFO)
    statuses = [200, 500, 200, 500, 503, 200, 200, 200, 200, 200]
    ref = write_handler("scripted", SCRIPTED.format(statuses=statuses))
    client = await alb_proxy(ref, health_check=FAST)
    checker = client.app[HEALTH]
    await wait_for_checks(client, len(statuses))
    health = [record.getMessage() for record in caplog.records if record.getMessage().startswith("health: target")]
    assert len(health) == 3
    assert "is healthy (was initial): 1 passing check(s)" in health[0]
    assert "is unhealthy (was healthy) after 2 failed checks" in health[1]
    assert "is healthy (was unhealthy): 5 passing check(s)" in health[2]
    assert "status 500 does not match the success codes '200'" in caplog.text
    assert checker.state == "healthy"
    # Requests are routed whatever the target's health (§7.6: one target fails open).
    assert (await client.get("/")).status == 200


async def test_health_check_timeout_and_matcher(
    alb_proxy: ProxyFactory, write_handler: HandlerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    slow = "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(30)\n"
    check = HealthCheck(enabled=True, interval=0.01, timeout=0.05, unhealthy_threshold=2)
    client = await alb_proxy(write_handler("slow", slow), health_check=check)
    await wait_for_checks(client, 2)
    assert client.app[HEALTH].state == "unhealthy"
    assert "no response within the health check timeout (0.05 s)" in caplog.text

    matcher = HealthCheck(enabled=True, interval=0.01, matcher="200-299,404")
    client = await alb_proxy(write_handler("notfound", SCRIPTED.format(statuses=[404, 302, 302])), health_check=matcher)
    await wait_for_checks(client, 3)
    assert client.app[HEALTH].state == "unhealthy"
    assert "status 302 does not match the success codes '200-299,404'" in caplog.text


async def test_health_checks_off_by_default(alb_proxy: ProxyFactory, write_handler: HandlerWriter) -> None:
    ref = write_handler("counts", COUNTS)
    client = await alb_proxy(ref)
    await client.get("/")
    assert client.app[HEALTH].checks == 0
    assert invocations(ref) == 1
