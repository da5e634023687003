"""Functional: four pass-through handlers return exactly what the origin returned."""

from __future__ import annotations

from tests.conftest import BINARY, GZIPPED, PASS_THROUGH, HandlerWriter, Origin, ProxyFactory

FOUR = ("viewer-request", "origin-request", "origin-response", "viewer-response")


async def test_binary_body_status_and_query_string_intact(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("passthrough", PASS_THROUGH)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, ref))
    response = await client.get("/bytes?b=2&a=1&a=%20x")
    assert response.status == 200
    assert await response.read() == BINARY
    assert origin.last.raw_path == "/bytes?b=2&a=1&a=%20x"
    assert response.headers["X-Cache"] == "Miss from cloudfront"


async def test_repeated_headers_and_reason_kept(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("passthrough", PASS_THROUGH)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, ref))
    response = await client.get("/cookies")
    assert response.reason == "Cookies Set"
    assert response.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert response.headers.getall("X-Repeated") == ["one", "two"]


async def test_compressed_body_left_compressed(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("passthrough", PASS_THROUGH)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, ref))
    response = await client.get("/gzip", auto_decompress=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert await response.read() == GZIPPED
