"""Functional: the trigger sequence, its skip rules and the event each trigger sees, over real sockets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from yarl import URL

from edgeproxy import testing
from edgeproxy.exchange import Exchange, Observer
from tests.conftest import (
    GZIPPED,
    PASS_THROUGH,
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    SnippetWriter,
    recorded_events,
)

FOUR = ("viewer-request", "origin-request", "origin-response", "viewer-response")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{54}==$")


def cf(event: Any) -> Any:
    return event["Records"][0]["cf"]


async def test_each_trigger_gets_cloudfront_shaped_event(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url + "/prod", functions=dict.fromkeys(FOUR, ref))
    url = URL(str(client.make_url("/")).rstrip("/") + "/a%20b/c?x=1&y=%2F&x=2", encoded=True)
    response = await client.session.get(
        url,
        headers=[("X-Multi", "text/html"), ("X-Multi", "application/json"), ("X-Custom", "v")],
    )
    assert response.status == 200
    events = recorded_events(ref)
    assert [cf(e)["config"]["eventType"] for e in events] == list(FOUR)
    for event in events:
        assert len(cast(list[Any], event["Records"])) == 1
        config = cf(event)["config"]
        assert config["distributionDomainName"] == "d111111abcdef8.cloudfront.net"
        assert config["distributionId"] == "EDFDVBD6EXAMPLE"
        assert config["requestId"] == response.headers["X-Amz-Cf-Id"]
        assert REQUEST_ID.match(config["requestId"])
        request = cf(event)["request"]
        assert request["clientIp"] == "127.0.0.1"
        assert request["method"] == "GET"
        assert request["uri"] == "/a%20b/c"
        assert request["querystring"] == "x=1&y=%2F&x=2"
        assert "body" not in request

    viewer_request, origin_request, origin_response, viewer_response = (cf(e) for e in events)
    # Viewer events: the viewer's headers, repeated ones kept as separate entries, lower-case names.
    headers = viewer_request["request"]["headers"]
    assert headers["x-multi"] == [
        {"key": "X-Multi", "value": "text/html"},
        {"key": "X-Multi", "value": "application/json"},
    ]
    assert headers["x-custom"] == [{"key": "X-Custom", "value": "v"}]
    assert all(name == name.lower() for name in headers)
    assert "origin" not in viewer_request["request"]
    assert "response" not in viewer_request
    assert "origin" not in viewer_response["request"]

    # Origin events: the request as sent to the origin.
    for event in (origin_request, origin_response):
        request = event["request"]
        host, port = origin.url.removeprefix("http://").split(":")
        assert request["origin"] == {
            "custom": {
                "customHeaders": {},
                "domainName": host,
                "keepaliveTimeout": 5,
                "path": "/prod",
                "port": int(port),
                "protocol": "http",
                "readTimeout": 30,
                "sslProtocols": ["TLSv1.2"],
            }
        }
        assert request["headers"]["host"] == [{"key": "Host", "value": host}]
        assert request["headers"]["user-agent"] == [{"key": "User-Agent", "value": "Amazon CloudFront"}]
        assert request["headers"]["x-forwarded-for"] == [{"key": "X-Forwarded-For", "value": "127.0.0.1"}]
        assert re.fullmatch(r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", request["headers"]["via"][0]["value"])
        assert len(request["headers"]["x-multi"]) == 2

    # Response events: status as a string, a description, headers, never a body.
    for event in (origin_response, viewer_response):
        assert event["response"]["status"] == "200"
        assert event["response"]["statusDescription"] == "OK"
        assert event["response"]["headers"]["content-type"][0]["value"].startswith("application/json")
        assert "body" not in event["response"]

    # What the origin received: origin path prefixed, raw query string, CloudFront's headers.
    seen = origin.last
    assert seen.raw_path == "/prod/a%20b/c?x=1&y=%2F&x=2"
    assert seen.header("User-Agent") == ["Amazon CloudFront"]
    assert seen.header("X-Amz-Cf-Id") == [response.headers["X-Amz-Cf-Id"]]
    assert seen.header("X-Multi") == ["text/html", "application/json"]


async def test_query_string_is_empty_string_when_absent(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions={"viewer-request": ref})
    await client.get("/plain")
    assert cf(recorded_events(ref)[0])["request"]["querystring"] == ""
    assert origin.last.raw_path == "/plain"


async def test_viewer_request_generated_response_short_circuits(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    generate = write_handler(
        "generate",
        """
        def handler(event, context):
            return {"status": "302", "headers": {"location": [{"value": "https://example.com/"}]}}
        """,
    )
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(
        origin=origin.url,
        functions={
            "viewer-request": generate,
            "origin-request": recorder,
            "origin-response": recorder,
            "viewer-response": recorder,
        },
    )
    response = await client.get("/x", allow_redirects=False)
    assert response.status == 302
    assert response.reason == "Found"
    assert response.headers["Location"] == "https://example.com/"
    assert response.headers["X-Cache"] == "LambdaGeneratedResponse from cloudfront"
    assert response.headers["Server"] == "CloudFront"
    assert response.headers["Content-Length"] == "0"
    assert origin.seen == []
    assert recorded_events(recorder) == []


async def test_origin_request_generated_response_skips_origin_and_origin_response(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    generate = write_handler(
        "generate",
        """
        def handler(event, context):
            return {"status": "200", "statusDescription": "Generated", "body": "from the edge",
                    "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain"}]}}
        """,
    )
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(
        origin=origin.url,
        functions={"origin-request": generate, "origin-response": recorder, "viewer-response": recorder},
    )
    response = await client.get("/x")
    assert (response.status, response.reason, await response.text()) == (200, "Generated", "from the edge")
    assert response.headers["X-Cache"] == "LambdaGeneratedResponse from cloudfront"
    assert origin.seen == []
    assert [cf(e)["config"]["eventType"] for e in recorded_events(recorder)] == ["viewer-response"]


async def test_origin_error_runs_origin_response_but_not_viewer_response(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, recorder))
    response = await client.get("/status/404")
    assert (response.status, response.reason) == (404, "Custom Reason")
    assert await response.text() == "status 404"
    assert response.headers["X-Cache"] == "Error from cloudfront"
    events = recorded_events(recorder)
    assert [cf(e)["config"]["eventType"] for e in events] == ["viewer-request", "origin-request", "origin-response"]
    assert cf(events[2])["response"]["status"] == "404"
    assert cf(events[2])["response"]["statusDescription"] == "Custom Reason"


async def test_rewritten_uri_and_headers_reach_origin(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    rewrite = write_handler(
        "rewrite",
        """
        def handler(event, context):
            request = event["Records"][0]["cf"]["request"]
            request["uri"] = "/rewritten" + request["uri"]
            request["querystring"] = "q=new"
            request["headers"]["x-added"] = [{"value": "yes"}]
            return request
        """,
    )
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions={"viewer-request": rewrite, "origin-request": recorder})
    await client.get("/path?q=old")
    assert origin.last.raw_path == "/rewritten/path?q=new"
    assert origin.last.header("X-Added") == ["yes"]
    assert cf(recorded_events(recorder)[0])["request"]["headers"]["x-added"] == [{"key": "X-Added", "value": "yes"}]


async def test_response_triggers_replace_body_and_headers(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    origin_response = write_handler(
        "origin_response",
        """
        def handler(event, context):
            response = event["Records"][0]["cf"]["response"]
            response["status"] = "200"
            response["statusDescription"] = "OK"
            response["body"] = "ok"
            return response
        """,
    )
    viewer_response = write_handler(
        "viewer_response",
        """
        def handler(event, context):
            response = event["Records"][0]["cf"]["response"]
            response["headers"]["x-viewer"] = [{"key": "X-Viewer", "value": "seen"}]
            return response
        """,
    )
    client = await proxy(
        origin=origin.url, functions={"origin-response": origin_response, "viewer-response": viewer_response}
    )
    response = await client.get("/status/500")
    assert (response.status, await response.text()) == (200, "ok")
    assert response.headers["Content-Length"] == "2"
    assert response.headers["X-Viewer"] == "seen"


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
@pytest.mark.parametrize("changes", [False, True])
async def test_origin_headers_no_function_sees_reach_the_viewer_whether_or_not_a_function_changes_the_response(
    trigger: str, changes: bool, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    # Disallowed headers are "not exposed to edge functions" (§3.3); a function that adds a header cannot have
    # meant to remove the ones it was never shown (an API Gateway origin's X-Amzn-RequestId).
    ref = snippet("response['headers']['x-added'] = [{'key': 'X-Added', 'value': '1'}]" if changes else "pass")
    client = await proxy(origin=origin.url, functions={trigger: ref})
    response = await client.get("/headers?X-Amzn-RequestId=abc&X-Accel-Buffering=no&X-Shown=yes")
    assert response.status == 200
    assert response.headers.getall("X-Amzn-RequestId") == ["abc"]
    assert response.headers.getall("X-Accel-Buffering") == ["no"]
    assert response.headers.getall("X-Shown") == ["yes"]
    assert response.headers.getall("X-Added", []) == (["1"] if changes else [])


@pytest.mark.parametrize(
    ("description", "reason"),
    [(None, "Service Unavailable"), ("Back Soon", "Back Soon")],
    ids=["standard-phrase", "own-description"],
)
async def test_new_status_does_not_keep_the_origins_reason_phrase(
    description: str | None, reason: str, origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    set_description = f"    response['statusDescription'] = {description!r}\n" if description else ""
    handler = write_handler(
        "maintenance",
        "def handler(event, context):\n"
        "    response = event['Records'][0]['cf']['response']\n"
        "    response['status'] = '503'\n" + set_description + "    return response\n",
    )
    client = await proxy(origin=origin.url, functions={"origin-response": handler})
    response = await client.get("/x")  # the origin answers 200 OK
    assert (response.status, response.reason) == (503, reason)


async def test_hop_by_hop_headers_dropped_and_forwarded_for_appended(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    response = await client.get(
        "/x",
        headers={
            "X-Forwarded-For": "192.0.2.4",
            "Connection": "keep-alive, X-Secret",
            "X-Secret": "s",
            "TE": "trailers",
            "X-Real-IP": "1.2.3.4",
            "Upgrade": "h2c",
        },
    )
    assert response.status == 200
    seen = origin.last
    assert seen.header("X-Forwarded-For") == ["192.0.2.4,127.0.0.1"]
    for name in ("X-Secret", "TE", "X-Real-IP", "Upgrade"):
        assert seen.header(name) == [], name
    assert re.fullmatch(r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", response.headers["Via"])
    assert response.headers["X-Amz-Cf-Pop"] == "IAD89-C1"


async def test_request_body_streams_to_origin(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    payload = bytes(range(256)) * 4096  # 1 MiB, binary
    response = await client.post("/upload", data=payload, headers={"Content-Type": "application/octet-stream"})
    assert response.status == 200
    assert origin.last.body == payload
    assert origin.last.header("Content-Length") == [str(len(payload))]


async def test_compressed_request_body_reaches_origin_as_sent(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": write_handler("pass", PASS_THROUGH)})
    response = await client.post("/upload", data=GZIPPED, headers={"Content-Encoding": "gzip"})
    assert response.status == 200
    seen = origin.last
    assert seen.body == GZIPPED  # CloudFront does not decode request bodies
    assert seen.header("Content-Encoding") == ["gzip"]
    assert seen.header("Content-Length") == [str(len(GZIPPED))]


async def test_chunked_origin_response_passes_through(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    response = await client.get("/chunked")
    assert await response.read() == b"one,two,three"


async def test_head_request(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    response = await client.head("/bytes")
    assert response.status == 200
    assert origin.last.method == "HEAD"
    assert await response.read() == b""


async def test_unreachable_origin_is_cloudfront_502_page(proxy: ProxyFactory, unused_tcp_port: int) -> None:
    client = await proxy(origin=f"http://127.0.0.1:{unused_tcp_port}")
    response = await client.get("/x")
    body = await response.text()
    assert response.status == 502
    assert response.headers["Server"] == "CloudFront"
    assert response.headers["X-Cache"] == "Error from cloudfront"
    assert "<H1>502 ERROR</H1>" in body
    assert f"Request ID: {response.headers['X-Amz-Cf-Id']}" in body
    assert "Traceback" not in body


async def test_origin_body_cut_short_cuts_the_viewer_connection_with_one_log_line(
    proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def short_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n0123456789")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short_origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await proxy(origin=f"http://127.0.0.1:{port}")
        response = await client.get("/x")
        assert response.status == 200  # the headers had gone out
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()  # ...and the viewer sees the body end early, not a complete short body
    finally:
        server.close()
        await server.wait_closed()
    assert "origin response body cut short" in caplog.text
    assert "Traceback" not in caplog.text
    assert "Error handling request" not in caplog.text


async def test_handler_exception_is_503_without_traceback(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    crash = write_handler("crash", "def handler(event, context):\n    raise RuntimeError('secret detail')\n")
    client = await proxy(origin=origin.url, functions={"viewer-request": crash})
    response = await client.get("/x")
    body = await response.text()
    assert response.status == 503
    assert response.headers["X-Cache"] == "LambdaExecutionError from cloudfront"
    assert "secret detail" not in body
    assert "Traceback" not in body
    assert "RuntimeError: secret detail" in response.headers["X-Edgeproxy-Error"]
    assert origin.seen == []


async def test_invalid_result_is_502_validation_error(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    bad = write_handler("bad", "def handler(event, context):\n    return None\n")
    client = await proxy(origin=origin.url, functions={"origin-request": bad})
    response = await client.get("/x")
    assert response.status == 502
    assert response.headers["X-Cache"] == "LambdaValidationError from cloudfront"
    assert "The JSON output must be an object type." in await response.text()
    assert "bad.py:handler at origin-request" in response.headers["X-Edgeproxy-Error"]
    assert origin.seen == []


async def test_result_mutated_in_place_is_validated(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # The handler returns the very object it was given, changed: it must be checked like any other result.
    sneaky = write_handler(
        "sneaky",
        "def handler(event, context):\n"
        "    request = event['Records'][0]['cf']['request']\n"
        "    request['headers']['host'][0]['value'] = 'elsewhere.example'\n"
        "    return request\n",
    )
    client = await proxy(origin=origin.url, functions={"viewer-request": sneaky})
    response = await client.get("/x")
    assert response.status == 502
    assert response.headers["X-Cache"] == "LambdaValidationError from cloudfront"
    assert "changed read-only header 'host'" in response.headers["X-Edgeproxy-Error"]
    assert origin.seen == []


async def test_a_request_body_the_origin_did_not_read_is_still_captured_for_observers(tmp_path: Path) -> None:
    # A folder origin refuses a POST without reading its body; a recording (or the inspector) keeps the body anyway.
    class Bodies(Observer):
        wants_bodies = True

        def __init__(self) -> None:
            self.seen: list[bytes | None] = []

        def exchange_done(self, exchange: Exchange) -> None:
            self.seen.append(None if exchange.request_body is None else bytes(exchange.request_body))

    (tmp_path / "site").mkdir()
    proxy = await testing.start(origin=str(tmp_path / "site"))
    bodies = Bodies()
    proxy.observe(bodies)
    try:
        async with proxy.client.post("/upload", data=b"\x00\x01" * 50_000) as response:
            assert response.status == 403  # S3's AccessDenied for a POST
            await response.read()
    finally:
        await proxy.close()
    assert bodies.seen == [b"\x00\x01" * 50_000]
