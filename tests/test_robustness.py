"""Functional: no bad result, request or origin makes the proxy answer aiohttp's 500, hang, cut a body or flood its
log. Each case comes as a twin: the bad input, and the nearest good one, through a running proxy over real sockets.

Connection-level cases (slow request heads, idle connections, what the parser rejects, viewers that disconnect, the
file-descriptor limit) are in tests/test_listener.py, the --quiet and --log-level flags in tests/test_cli.py, and the
property-based counterpart (thousands of generated results and request heads) is tests/test_fuzz.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from edgeproxy import EdgeProxyFactory, config, rules, testing
from edgeproxy.config import Behavior, Distribution
from edgeproxy.errors import ConfigError
from edgeproxy.events import alb as alb_events
from edgeproxy.triggers import TRIGGERS, Trigger
from tests.conftest import (
    BINARY,
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    SnippetWriter,
    assert_cloudfront_error,
    raw_url,
    recorded_events,
)
from tests.test_alb import returning
from tests.test_errors import raw_exchange
from tests.test_include_body import with_body_at
from tests.test_validation import GENERATED, MISS, Expected, check, run

# -- control characters in header values and reason phrases ---------------------------------------------------------


def _header_set(trigger: Trigger, value: str) -> str:
    if trigger in ("viewer-request", "origin-request"):  # a generated response: a request header would reach the origin
        return f"return {{'status': '200', 'headers': {{'x-a': [{{'value': {value!r}}}]}}}}"
    return f"response['headers']['x-a'] = [{{'value': {value!r}}}]"


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\x0bb", "value contains '\\x0b' (a control character)"),
        ("\x1b[1m", "value contains '\\x1b' (a control character)"),
        ("a\x7f", "value contains '\\x7f' (a control character)"),
        ("a\tb", None),  # the nearest good case: tab is allowed in a field value
    ],
)
async def test_control_character_in_a_header_value_is_502_not_aiohttps_500(
    trigger: Trigger,
    value: str,
    expected: str | None,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(_header_set(trigger, value))
    response = await run(proxy, origin, trigger, ref, "/chunked")  # a streamed origin body at response triggers
    good: Expected = GENERATED if trigger.endswith("request") else MISS
    await check(response, caplog, ref, trigger, good if expected is None else expected)
    if expected is None:
        assert response.headers["X-A"] == "a\tb"
        await response.read()  # the whole body arrives, framed as announced


@pytest.mark.parametrize(("description", "bad"), [("Moved\x01Away", True), ("Moved Away", False)])
async def test_control_character_in_status_description_is_502(
    description: str,
    bad: bool,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(f"response['status'] = '302'\nresponse['statusDescription'] = {description!r}")
    response = await run(proxy, origin, "origin-response", ref, "/chunked")
    if bad:
        await check(response, caplog, ref, "origin-response", "statusDescription contains '\\x01'")
    else:
        assert (response.status, response.reason) == (302, "Moved Away")


@pytest.mark.parametrize("multi_value", [False, True], ids=["single-value", "multi-value"])
@pytest.mark.parametrize(
    ("field", "value", "bad"),
    [
        ("header", "a\x0bb", True),
        ("header", "a\tb", False),
        ("statusDescription", "200 O\x1bK", True),
        ("statusDescription", "200 Fine", False),
    ],
)
async def test_alb_control_character_in_a_header_or_status_description_is_502(
    multi_value: bool,
    field: str,
    value: str,
    bad: bool,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"x-a": [value] if multi_value else value} if field == "header" else {}
    result: dict[str, Any] = {"statusCode": 200, "multiValueHeaders" if multi_value else "headers": headers}
    if field == "statusDescription":
        result["statusDescription"] = value
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    response = await client.get("/p")
    if bad:
        assert (response.status, response.headers["Server"]) == (502, "awselb/2.0")
        assert "GET /p -> 502 LambdaInvalidResponse" in caplog.text
        assert "(a control character)" in caplog.text
    else:
        assert response.status == 200
        assert response.headers.get("X-A", "a\tb") == "a\tb"
        assert response.reason in ("OK", "Fine")


# -- results the validator itself tripped on: now the right LambdaValidationError ----------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    [
        ("viewer-request", "return {'status': '2' * 5000}", "response.status must be a string from '200' to '599'"),
        ("viewer-request", "return {'status': '200'}", GENERATED),
        ("origin-response", "response['status'] = '1' * 4301", "response.status must be a string from '200' to '599'"),
        ("origin-response", "response['status'] = '201'", (201, "Miss")),
        ("viewer-request", "return {'status': '200', 'body': 'x\\ud800'}", "holds an unpaired surrogate"),
        ("viewer-request", "return {'status': '200', 'body': 'x\\U0001f600'}", GENERATED),
        ("origin-request", "request['headers']['x-a'] = [{'value': '\\udfff'}]", "holds an unpaired surrogate"),
        ("origin-request", "request['headers']['x-a'] = [{'value': '\\u00e9'}]", MISS),
        ("viewer-response", "response['body'] = 'caf\\u00e9'\nresponse['bodyEncoding'] = 'base64'", "not valid base64"),
        ("viewer-response", "response['body'] = 'Y2Fm'\nresponse['bodyEncoding'] = 'base64'", MISS),
    ],
)
async def test_results_that_tripped_the_validator_are_validation_errors(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    await check(await run(proxy, origin, trigger, ref), caplog, ref, trigger, expected)
    assert "internal error" not in caplog.text


@pytest.mark.parametrize(("data", "bad"), [("\u00e9t\u00e9", True), ("w6l0w6k=", False)])
async def test_base64_body_replacement_with_non_ascii_data_is_a_validation_error(
    data: str, bad: bool, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = snippet(f"request['body'] = {{'action': 'replace', 'encoding': 'base64', 'data': {data!r}}}")
    client = await proxy(origin=origin.url, functions={"viewer-request": ref}, include_body=True)
    response = await client.post("/x", data=b"original")
    if bad:
        await check(response, caplog, ref, "viewer-request", "request.body.data is not valid base64")
    else:
        assert response.status == 200
        assert origin.last.body == "été".encode()


# -- a generated response's size counts its headers, with or without a body ----------------------------------------


@pytest.mark.parametrize(("headers", "bad"), [(41, True), (39, False)])
async def test_generated_response_without_body_counts_its_headers_toward_40_kb(
    headers: int,
    bad: bool,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(
        f"return {{'status': '204', 'headers': {{f'x-h{{i}}': [{{'value': 'v' * 1000}}] for i in range({headers})}}}}"
    )
    response = await run(proxy, origin, "viewer-request", ref)
    if bad:
        await check(response, caplog, ref, "viewer-request", "response headers + body are 41")
    else:
        assert (response.status, response.headers["X-H38"]) == (204, "v" * 1000)


# -- framing is the proxy's: a function's Content-Length never frames a streamed body -------------------------------


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
@pytest.mark.parametrize(
    ("path", "set_length"), [("/bytes", "3"), ("/bytes", "100000"), ("/chunked", "1"), ("/bytes", None)]
)
async def test_a_content_length_set_by_a_function_does_not_frame_the_origins_body(
    trigger: Trigger, path: str, set_length: str | None, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    code = "pass" if set_length is None else f"response['headers']['content-length'] = [{{'value': '{set_length}'}}]"
    client = await proxy(origin=origin.url, functions={trigger: snippet(code)})
    async with asyncio.timeout(10):  # a Content-Length larger than the body would leave the client waiting
        for _ in range(2):  # and the connection must serve the next request
            response = await client.get(path)
            body = await response.read()
            expected = BINARY if path == "/bytes" else b"one,two,three"
            assert (response.status, body) == (200, expected)
            assert response.headers.get("Content-Length") == (str(len(BINARY)) if path == "/bytes" else None)


@pytest.mark.parametrize("method", ["HEAD", "GET"])
async def test_folder_origin_head_gives_the_objects_content_length(
    method: str, tmp_path: Path, proxy: ProxyFactory
) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 123_456)
    client = await proxy(origin=str(tmp_path))
    response = await client.request(method, "/big.bin")
    assert (response.status, response.headers["Content-Length"]) == (200, "123456")
    assert len(await response.read()) == (0 if method == "HEAD" else 123_456)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/a%00b", 404, "NoSuchKey"),  # no file name holds a NUL
        ("/" + "n" * 256, 404, "NoSuchKey"),  # a path component over the file system's 255 bytes
        ("/d/" + "n" * 255, 404, "NoSuchKey"),
        ("/loop/x", 404, "NoSuchKey"),  # a symlink loop
        ("/" + "k/" * 512 + "k", 400, "KeyTooLongError"),  # over S3's 1,024-byte keys
        ("/ok.txt", 200, None),  # the nearest good case
    ],
)
async def test_folder_origin_keys_no_file_can_have_get_s3s_own_errors(
    path: str, status: int, code: str | None, tmp_path: Path, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ok.txt").write_text("ok")
    (tmp_path / "d").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    client = await proxy(origin=str(tmp_path))
    response = await client.session.get(raw_url(client, path))
    body = await response.text()
    assert response.status == status
    if code is None:
        assert body == "ok"
    else:
        assert (response.headers["Server"], response.headers["X-Cache"]) == ("AmazonS3", "Error from cloudfront")
        assert f"<Code>{code}</Code>" in body
    assert "internal error" not in caplog.text


# -- requests CloudFront (or the ALB) refuses: HTTP/0.9, a header that is not UTF-8 ---------------------------------


@pytest.mark.parametrize("mode", ["cloudfront", "alb"])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9: no version, no headers
        (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n", 400),  # Latin-1, not UTF-8
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Name: café\r\nConnection: close\r\n\r\n".encode(), 200),
    ],
)
async def test_http_0_9_and_headers_that_are_not_utf_8_are_400(
    mode: str,
    request_bytes: bytes,
    status: int,
    origin: Origin,
    proxy: ProxyFactory,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if mode == "cloudfront":
        client = await proxy(origin=origin.url)
    else:
        client = await alb_proxy(returning(write_handler, {"statusCode": 200, "body": "ok"}))
    status_line, rest = await raw_exchange(client, request_bytes)
    assert status_line.split()[1] == str(status).encode()
    if status == 400:
        assert (b"Server: CloudFront\r\n" if mode == "cloudfront" else b"Server: awselb/2.0\r\n") in rest
        assert (b"<H1>400 ERROR</H1>" if mode == "cloudfront" else b"<h1>400 Bad Request</h1>") in rest
        assert "-> 400" in caplog.text
    elif mode == "cloudfront":
        assert origin.last.header("X-Name") in ([], ["café"])


# -- origins: statuses outside 100-599, big header blocks, connection attempts --------------------------------------


def _odd_origin(status: int = 200, headers: list[tuple[str, str]] | None = None) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(text="from the origin", headers=CIMultiDict(headers or []))
        response.set_status(status, "Odd")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


@pytest.mark.parametrize(("status", "expected"), [(999, 502), (600, 502), (599, 599)])
async def test_origin_status_outside_100_to_599_is_502(
    status: int,
    expected: int,
    aiohttp_server: AiohttpServer,
    proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await aiohttp_server(_odd_origin(status))
    client = await proxy(origin=str(server.make_url("")))
    response = await client.get("/")
    assert response.status == expected
    if expected == 502:
        assert_cloudfront_error(response, caplog, 502, "Error", f"answered with status {status} (outside 100-599)")
    else:
        assert await response.text() == "from the origin"


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ([("Set-Cookie", f"c{n}=v; Path=/") for n in range(200)], True),  # 200 lines: more than aiohttp's 128
        ([("X-Long", "v" * 10_000)], True),  # one line longer than aiohttp's 8,190 bytes
        ([("X-Long", "v" * 20_000), ("X-More", "v" * 1_000)], False),  # over CloudFront's 20,480 bytes in all
    ],
)
async def test_origin_headers_are_accepted_up_to_cloudfronts_20480_bytes(
    headers: list[tuple[str, str]],
    ok: bool,
    aiohttp_server: AiohttpServer,
    proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    origin_app = _odd_origin(headers=headers)
    server = await aiohttp_server(origin_app)
    client = await proxy(origin=str(server.make_url("")))
    session = aiohttp.ClientSession(max_line_size=32768, max_field_size=32768, max_headers=1024)
    async with session, session.get(client.make_url("/")) as response:
        if ok:
            assert response.status == 200
            assert response.headers.getall(headers[0][0]) == [value for _, value in headers]
        else:
            assert response.status == 502
            assert "bytes of status line and headers (limit 20480)" in caplog.text


def _waiting_for_syn_ack(port: int) -> int:
    """Connections to ``port`` on loopback still in SYN-SENT (Linux's /proc/net/tcp, state 02)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[3] == "02" and int(line.split()[2].split(":")[1], 16) == port)


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 -- polling the kernel's connection table, nothing to wait on
            await asyncio.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads connection states from /proc/net/tcp")
@pytest.mark.parametrize(("attempts", "status"), [(1, 504), (2, 200)])
async def test_an_origin_that_does_not_answer_a_connection_attempt_gets_the_next_one(
    attempts: int, status: int, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # §5.2: each attempt waits connection_timeout; once they are used up, the viewer gets a 504. The origin's
    # accept queue is full (listen(0) plus queued connections), so the proxy's first SYN goes unanswered; the origin
    # then opens, in time for a second attempt but not for the first (the kernel resends a SYN after 1 s).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
    await _until(lambda: _waiting_for_syn_ack(port) >= 2)
    before = _waiting_for_syn_ack(port)
    app_origin = config.custom_origin_from_url(
        "app", f"http://127.0.0.1:{port}", connection_attempts=attempts, connection_timeout=0.5
    )
    client = await proxy(Distribution(Behavior(path_pattern="*", origin=app_origin), origins={"app": app_origin}))
    request = asyncio.create_task(client.get("/"))
    await _until(lambda: _waiting_for_syn_ack(port) > before)  # the proxy's first attempt is waiting
    for filler in fillers:
        filler.close()
    runner = web.AppRunner(_odd_origin())
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        response = await request
        assert response.status == status
        if status == 504:
            reason = f"cannot connect to origin 127.0.0.1:{port} in 1 attempt(s): no connection within 0.5 s"
            assert_cloudfront_error(response, caplog, 504, "Error", reason)
        else:
            assert await response.text() == "from the origin"
    finally:
        await runner.cleanup()


# -- handlers never take the proxy down: a CancelledError, a blocked loop, hung threads -----------------------------


def _request_of(event: dict[str, Any]) -> Any:
    return event["Records"][0]["cf"]["request"]


@pytest.mark.parametrize("raises", [True, False])
async def test_async_handler_raising_cancelled_error_gets_503(
    raises: bool, origin: Origin, edgeproxy: EdgeProxyFactory
) -> None:
    async def handler(event: dict[str, Any], context: object) -> Any:
        if raises:
            raise asyncio.CancelledError("from the handler")
        return _request_of(event)

    proxy = await edgeproxy(origin=origin.url, viewer_request=handler)
    async with proxy.client.get("/x") as response:
        assert response.status == (503 if raises else 200)
        assert response.headers["X-Cache"] == ("LambdaExecutionError" if raises else "Miss") + " from cloudfront"
    if raises:
        [invocation] = proxy.invocations
        assert invocation.error is not None
        assert "raised CancelledError: from the handler" in invocation.error.reason


@pytest.mark.parametrize("blocks", [True, False])
async def test_an_async_handler_that_blocks_delays_only_its_own_request(
    blocks: bool, origin: Origin, edgeproxy: EdgeProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = threading.Event(), threading.Event()

    async def handler(event: dict[str, Any], context: object) -> Any:
        if _request_of(event)["uri"] == "/slow":
            entered.set()
            if blocks:
                release.wait(10)  # time.sleep or a busy loop, in an async def handler
            else:
                await asyncio.to_thread(release.wait, 10)
        return _request_of(event)

    proxy = await edgeproxy(origin=origin.url, viewer_request=handler, timeouts={"viewer-request": 0.5})
    try:
        slow = asyncio.create_task(proxy.client.get("/slow"))
        await asyncio.to_thread(entered.wait, 10)
        async with proxy.client.get("/other") as other:  # served while the slow one's handler is still blocked
            assert other.status == 200
        assert not slow.done()
        response = await slow
        assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
        blocked = "at viewer-request has blocked its event loop for 0.5"
        assert (blocked in caplog.text) == blocks
    finally:
        release.set()


async def test_more_hung_sync_handlers_than_the_pool_then_a_normal_request_still_succeeds(
    origin: Origin, edgeproxy: EdgeProxyFactory
) -> None:
    release = threading.Event()

    def handler(event: dict[str, Any], context: object) -> Any:
        if _request_of(event)["uri"] == "/hang":
            release.wait(30)
        return _request_of(event)

    proxy = await edgeproxy(origin=origin.url, viewer_request=handler, timeouts={"viewer-request": 0.3})
    try:
        hung = await asyncio.gather(*(proxy.client.get("/hang") for _ in range(70)))  # the pool's size is 64
        assert {response.status for response in hung} == {503}
        async with proxy.client.get("/ok") as response:
            assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
    finally:
        release.set()


# -- include_body keeps only what the handler may see in memory ------------------------------------------------------


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the process's memory from /proc")
@pytest.mark.parametrize("megabytes", [64, 1])
async def test_a_large_body_with_include_body_streams_to_the_origin_byte_exact(
    megabytes: int, aiohttp_server: AiohttpServer, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    received: list[tuple[int, str]] = []

    async def digest(request: web.Request) -> web.Response:
        sha, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(65536):
            sha.update(chunk)
            size += len(chunk)
        received.append((size, sha.hexdigest()))
        return web.Response(text="stored")

    origin_app = web.Application()
    origin_app.router.add_post("/{tail:.*}", digest)
    server = await aiohttp_server(origin_app)
    recorder = write_handler("recorder", RECORD_EVENTS)
    functions: dict[Trigger, Any] = {
        "viewer-request": {"handler": recorder, "include_body": True},
        "origin-request": {"handler": recorder, "include_body": True},
    }
    client = await proxy(with_body_at(tmp_path, str(server.make_url("")), functions))
    block = bytes(range(256)) * 256  # 64 KiB
    sha = hashlib.sha256(block * (megabytes * 16))

    async def body() -> AsyncIterator[bytes]:
        for _ in range(megabytes * 16):
            yield block

    peak, baseline = 0, _rss_bytes()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _rss_bytes() - baseline)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    headers = {"Content-Length": str(megabytes * 1024 * 1024), "Content-Type": "application/octet-stream"}
    response = await client.post("/upload", data=body(), headers=headers)
    sampler.cancel()
    assert (response.status, await response.text()) == (200, "stored")
    assert received == [(megabytes * 1024 * 1024, sha.hexdigest())]
    events: list[Any] = recorded_events(recorder)
    seen = [event["Records"][0]["cf"]["request"]["body"] for event in events]
    assert [(body["inputTruncated"], len(base64.b64decode(body["data"]))) for body in seen] == [
        (True, 40 * 1024),
        (megabytes > 1, 1024 * 1024),
    ]
    assert peak < 32 * 1024 * 1024  # the 64 MB body was never held whole (it was, before: RSS rose by 64 MB+)


@pytest.mark.parametrize(("status", "body"), [("204", b""), ("304", b""), ("200", b"status 404")])
async def test_a_status_changed_to_204_or_304_sends_no_body_of_the_origins(
    status: str, body: bytes, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    # Found by tests/test_fuzz.py: the origin's streamed body went out after a 204 status line, and the viewer read
    # it as the start of the next response.
    client = await proxy(origin=origin.url, functions={"origin-response": snippet(f"response['status'] = '{status}'")})
    for _ in range(2):  # the connection serves the next request, framed as announced
        response = await client.get("/status/404")
        assert (response.status, await response.read()) == (int(status), body)


# -- and if validation ever let something unsendable through: the mode's 502, never aiohttp's 500 --------------------


@pytest.mark.parametrize("mode", ["cloudfront", "alb"])
@pytest.mark.parametrize("validation_misses_it", [True, False])
async def test_a_head_aiohttp_refuses_to_write_is_the_modes_502_whatever_runner_serves_it(
    mode: str,
    validation_misses_it: bool,
    origin: Origin,
    proxy: ProxyFactory,
    alb_proxy: ProxyFactory,
    snippet: SnippetWriter,
    write_handler: HandlerWriter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # These apps are served by aiohttp's own test server, without listener.py's protections.
    if validation_misses_it:
        monkeypatch.setattr(rules, "forbidden_in_field", lambda text: None)
        monkeypatch.setattr(alb_events, "forbidden_in_field", lambda text: None)
    if mode == "cloudfront":
        code = "return {'status': '200', 'headers': {'x-a': [{'value': 'a\\x0bb'}]}}"
        client = await proxy(origin=origin.url, functions={"viewer-request": snippet(code)})
    else:
        client = await alb_proxy(returning(write_handler, {"statusCode": 200, "headers": {"x-a": "a\x0bb"}}))
    response = await client.get("/x")
    assert response.status == 502
    assert response.headers["Server"] == ("CloudFront" if mode == "cloudfront" else "awselb/2.0")
    if mode == "cloudfront":
        x_cache = "Error" if validation_misses_it else "LambdaValidationError"
        assert response.headers["X-Cache"] == f"{x_cache} from cloudfront"
    assert ("internal error writing the response" in caplog.text) == validation_misses_it


# -- handlers that break the runtime's own plumbing (found by an adversarial review) ----------------------------------

STOP_ITERATION = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/bad":
        next(iter([]))  # StopIteration, which an asyncio future refuses
    return request
"""
STR_RAISES = """
class Odd(Exception):
    def __str__(self):
        raise RuntimeError("no str")

def handler(event, context):
    raise Odd()
"""
DEEP_RESULT = """
def handler(event, context):
    extra = level = {}
    for _ in range(1500):
        level["a"] = {}
        level = level["a"]
    return {"status": "200", "body": "ok", "extra": extra}
"""


async def test_a_thread_handler_raising_stop_iteration_is_503_at_once_and_others_go_on(
    origin: Origin, edgeproxy: EdgeProxyFactory, write_handler: HandlerWriter
) -> None:
    proxy = await edgeproxy(origin=origin.url, viewer_request=write_handler("stop", STOP_ITERATION), isolation="thread")

    async def get(path: str) -> tuple[int, str]:
        async with proxy.client.get(path) as response:
            await response.read()
            return response.status, response.headers["X-Cache"]

    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await asyncio.gather(*(get("/bad" if n % 3 == 0 else "/good") for n in range(12)))
    assert loop.time() - started < 4  # not the viewer-request timeout (5 s)
    for n, answer in enumerate(answers):
        expected = (503, "LambdaExecutionError from cloudfront") if n % 3 == 0 else (200, "Miss from cloudfront")
        assert answer == expected, (n, answer)
    errors = [invocation.error.reason for invocation in proxy.invocations if invocation.error is not None]
    assert len(errors) == 4
    assert all("raised StopIteration" in reason for reason in errors), errors


async def test_a_handler_exception_whose_str_raises_is_its_503(
    origin: Origin, edgeproxy: EdgeProxyFactory, write_handler: HandlerWriter
) -> None:
    proxy = await edgeproxy(origin=origin.url, viewer_request=write_handler("odd", STR_RAISES), isolation="thread")
    async with proxy.client.get("/x") as response:
        assert (response.status, response.headers["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
    [invocation] = proxy.invocations
    assert invocation.error is not None
    assert "raised Odd (its message could not be made" in invocation.error.reason


async def test_a_result_nested_past_the_json_decoders_is_a_marshal_error_at_once(
    origin: Origin, edgeproxy: EdgeProxyFactory, write_handler: HandlerWriter
) -> None:
    proxy = await edgeproxy(origin=origin.url, viewer_request=write_handler("deep", DEEP_RESULT))
    loop = asyncio.get_running_loop()
    for _ in range(2):  # the environment answers the next invocation too
        started = loop.time()
        async with proxy.client.get("/x") as response:
            assert response.status in (502, 503)
            assert response.headers["Server"] == "CloudFront"
        assert loop.time() - started < 4  # not the 5 s timeout
    errors = [invocation.error.reason for invocation in proxy.invocations if invocation.error is not None]
    assert len(errors) == 2
    assert all("Runtime.MarshalError" in reason and "timed out" not in reason for reason in errors), errors


@pytest.mark.parametrize("statement", ["import sys\nsys.exit(0)", "import sys\nsys.exit(3)", "raise KeyboardInterrupt"])
async def test_a_thread_module_that_exits_at_import_is_a_configuration_error(
    statement: str, origin: Origin, tmp_path: Path
) -> None:
    (tmp_path / "leaves.py").write_text(statement + "\ndef handler(event, context):\n    return None\n")
    with pytest.raises(ConfigError, match=r"viewer_request: importing .*leaves\.py' failed: "):
        await testing.start(origin=origin.url, viewer_request=f"{tmp_path / 'leaves.py'}:handler", isolation="thread")


ESCAPES = """
import os, time

def handler(event, context):
    child = os.fork()
    if child == 0:  # the handler's child leaves the environment's process group and session
        os.setsid()
        time.sleep(60)
        os._exit(0)
    with open(os.environ["ESCAPED_PID_FILE"], "w") as out:
        out.write(str(child))
    return event["Records"][0]["cf"]["request"]
"""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie waits for init to reap it: it is dead


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux's /proc")
async def test_a_handlers_child_that_left_its_session_dies_with_its_environment(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_handler: HandlerWriter
) -> None:
    monkeypatch.setenv("ESCAPED_PID_FILE", str(tmp_path / "escaped.pid"))
    proxy = await testing.start(origin=origin.url, viewer_request=write_handler("escapes", ESCAPES))
    try:
        async with proxy.client.get("/x") as response:
            assert response.status == 200
        escaped = int((tmp_path / "escaped.pid").read_text())
        assert _alive(escaped)
    finally:
        await proxy.close()
    for _ in range(50):
        if not _alive(escaped):
            break
        await asyncio.sleep(0.1)
    assert not _alive(escaped)
