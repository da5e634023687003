"""server.py: the viewer-facing side. Four pass-through handlers return exactly what the origin returned, header
names spelled as sent; CloudFront adds its own headers and error pages."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

from edgeproxy.server import error_page
from tests.conftest import (
    BINARY,
    GZIPPED,
    PASS_THROUGH,
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    recorded_events,
)

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


async def test_a_header_repeated_in_another_case_reaches_the_origin(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # Repeats are normal (the event's array holds one entry per line, each with its own spelling); the origin gets
    # every line, under the first spelling.
    ref = write_handler("passthrough", PASS_THROUGH)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, ref))
    url = client.make_url("/headers")
    reader, writer = await asyncio.open_connection(url.host, url.port)  # aiohttp's client would send one spelling
    writer.write(b"GET /headers HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert origin.last.header("X-A") == ["1", "2"]
    assert origin.last.header("X-B") == ["3"]


async def test_compressed_body_left_compressed(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    ref = write_handler("passthrough", PASS_THROUGH)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, ref))
    response = await client.get("/gzip", auto_decompress=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert await response.read() == GZIPPED


async def test_header_names_keep_the_spelling_they_were_sent_with(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # aiohttp respells the header names it knows (ETag -> Etag, user-agent -> User-Agent); CloudFront keeps the
    # viewer's and the origin's spelling in the events' keys (§1.4) and on the wire.
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(FOUR, recorder))
    response = await client.get("/headers?ETag=%22e%22&content-MD5=x", headers={"accept": "*/*", "x-lower": "1"})
    assert response.status == 200
    raw_names = [name.decode() for name, _ in response.raw_headers]
    assert "ETag" in raw_names
    assert "content-MD5" in raw_names
    assert ("accept", "*/*") in origin.last.headers
    events = recorded_events(recorder)
    viewer = cast(Any, events[0])["Records"][0]["cf"]["request"]["headers"]
    assert viewer["accept"] == [{"key": "accept", "value": "*/*"}]
    assert viewer["x-lower"] == [{"key": "x-lower", "value": "1"}]
    origin_response = cast(Any, events[2])["Records"][0]["cf"]["response"]["headers"]
    assert origin_response["etag"] == [{"key": "ETag", "value": '"e"'}]


async def test_cloudfront_headers_on_every_response(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    ok = await client.get("/a")
    error = await client.get("/status/503")
    for response in (ok, error):
        assert re.fullmatch(r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", response.headers["Via"])
        assert response.headers["X-Amz-Cf-Pop"] == "IAD89-C1"
        assert re.fullmatch(r"[A-Za-z0-9_-]{54}==", response.headers["X-Amz-Cf-Id"])
    assert ok.headers["X-Cache"] == "Miss from cloudfront"
    assert error.headers["X-Cache"] == "Error from cloudfront"
    assert ok.headers["Server"] != "CloudFront"  # the origin's own Server goes through


async def test_via_names_the_viewers_http_version(origin: Origin, proxy: ProxyFactory) -> None:
    # "<viewer http version> <hash>.cloudfront.net (CloudFront)", to the viewer and toward the origin (AWS's sample
    # origin-request event has "2.0 ..." for an HTTP/2 viewer).
    client = await proxy(origin=origin.url)
    url = client.make_url("/a")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
    response = await reader.read()
    writer.close()
    head = response.partition(b"\r\n\r\n")[0].decode()
    assert re.search(r"\r\nVia: 1\.0 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)\r\n", head + "\r\n"), head
    assert re.fullmatch(r"1\.0 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", origin.last.header("Via")[0])


def test_error_page_is_cloudfronts() -> None:
    page = error_page(502, "The Lambda function result failed validation.", "rid==").decode("iso-8859-1")
    assert "<TITLE>ERROR: The request could not be satisfied</TITLE>" in page
    assert "<H1>502 ERROR</H1>" in page
    assert "The Lambda function result failed validation." in page
    assert "Generated by cloudfront (CloudFront)\nRequest ID: rid==" in page
