"""serving.py: what the CloudFront and ALB applications share."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from edgeproxy import serving
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
