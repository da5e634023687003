"""serving.py: what the CloudFront and ALB applications share."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from edgeproxy import EdgeProxyFactory, serving
from edgeproxy.listener import Listener
from tests.conftest import Origin, ProxyFactory


async def test_absolute_form_request_target_uses_path_only(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url + "/v1")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET http://d111111abcdef8.cloudfront.net/page?a=%2F HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 200")
    assert origin.last.raw_path == "/v1/page?a=%2F"


async def _serving(mode: str, origin: Origin, edgeproxy: EdgeProxyFactory, *, echoing: str) -> tuple[str, int]:
    """A proxy in ``mode`` (CloudFront in front of ``origin``, or an ALB whose target answers the event's
    ``echoing`` field), and where it listens."""
    if mode == "alb":
        proxy = await edgeproxy(alb_target=lambda event, context: {"statusCode": 200, "body": event[echoing]})
    else:
        proxy = await edgeproxy(origin=origin.url)
    assert proxy.url.host is not None
    assert proxy.url.port is not None
    return proxy.url.host, proxy.url.port


async def _raw(host: str, port: int, target: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(target + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    return response


@pytest.mark.parametrize("mode", ["cloudfront", "alb"])
@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"OPTIONS * HTTP/1.1", b"400"),  # asterisk form
        (b"CONNECT example.com:443 HTTP/1.1", b"400"),  # authority form
        (b"GET http://example.com HTTP/1.1", b"200"),  # absolute form with no path: "/"
        (b"GET http://example.com?a=1 HTTP/1.1", b"200"),
    ],
)
async def test_every_request_target_gets_the_services_answer_not_aiohttps(
    mode: str, request_line: bytes, status: bytes, origin: Origin, edgeproxy: EdgeProxyFactory
) -> None:
    # aiohttp's router only matches targets beginning with "/": the others got its own 404 page.
    host, port = await _serving(mode, origin, edgeproxy, echoing="path")
    response = await _raw(host, port, request_line)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status)
    assert (b"Server: awselb/2.0" if mode == "alb" else b"X-Amz-Cf-Id: ") in head
    assert b"404: Not Found" not in body
    if status == b"200" and mode == "alb":
        assert body == b"/"
    elif status == b"200":
        assert origin.last.raw_path in ("/", "/?a=1")


@pytest.mark.parametrize("mode", ["cloudfront", "alb"])
async def test_an_expectation_other_than_100_continue_is_ignored_not_aiohttps_417(
    mode: str, origin: Origin, edgeproxy: EdgeProxyFactory
) -> None:
    host, port = await _serving(mode, origin, edgeproxy, echoing="body")
    for expect, interim in [(b"foo", b""), (b"100-continue", b"HTTP/1.1 100 Continue\r\n\r\n")]:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: " + expect + b"\r\nContent-Length: 2\r\n")
        writer.write(b"Connection: close\r\n\r\n")
        if interim:
            assert await reader.readexactly(len(interim)) == interim
        writer.write(b"hi")
        response = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        assert b"Unknown Expect" not in response
        assert response.endswith(b"aGk=") if mode == "alb" else origin.last.body == b"hi"  # (the ALB's base64)


async def test_the_parser_limits_are_the_applications(origin: Origin) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text=str(len(request.raw_headers)))

    listener = await Listener.start(serving.application(ok, max_line_size=100, max_headers=3))
    try:
        async with aiohttp.ClientSession(skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")) as session:
            async with session.get(listener.url, headers={"X-A": "a" * 50}) as response:
                assert response.status == 200
            async with session.get(listener.url, headers={"X-A": "a" * 200}) as response:
                assert response.status == 400
    finally:
        await listener.close()


def test_one_line_per_failure(caplog: pytest.LogCaptureFixture) -> None:
    class Request:
        method = "GET"
        raw_path = "/x?y"

    with caplog.at_level(logging.WARNING, logger="edgeproxy"):
        serving.log_failure("rid", Request(), 502, "LambdaValidationError", "h.py:handler at viewer-request: why")  # type: ignore[arg-type]
    assert caplog.messages == ["rid GET /x?y -> 502 LambdaValidationError: h.py:handler at viewer-request: why"]
