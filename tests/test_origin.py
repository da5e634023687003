"""origin.py: the origin protocol, HTTP origins through one pooled session, and routing between origins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient
from yarl import URL

from edgeproxy import config
from edgeproxy.errors import OriginConnectionError
from edgeproxy.origin import HttpOrigin, OriginRequest, OriginResponse, Origins, RequestBody
from edgeproxy.server import Options, create_app
from tests.conftest import BINARY, Origin


def request_to(
    origin: Origin,
    path: str,
    query: str = "",
    *,
    method: str = "GET",
    headers: CIMultiDict[str] | None = None,
    body: RequestBody = None,
) -> OriginRequest:
    url = URL(origin.url)
    assert url.host is not None
    assert url.port is not None
    headers = headers if headers is not None else CIMultiDict([("Host", "origin.example")])
    return OriginRequest(method, "custom", url.host, "http", url.port, path, query, headers, body)


async def read(response: OriginResponse) -> bytes:
    if isinstance(response.body, bytes):
        return response.body
    return b"".join([chunk async for chunk in response.body])


async def test_http_origin_sends_raw_path_query_and_headers_as_given(origin: Origin) -> None:
    http = HttpOrigin()
    await http.start()
    try:
        # Repeated in another case, with names after it (that the respelling must keep too).
        headers = CIMultiDict([("Host", "origin.example"), ("X-Twice", "1"), ("x-twice", "2"), ("X-After", "3")])
        async with AsyncExitStack() as stack:
            response = await http.fetch(request_to(origin, "/a%2Fb/c", "q=%20&q=2", headers=headers), stack)
            assert response.status == 200
            await read(response)
    finally:
        await http.close()
    seen = origin.last
    assert seen.raw_path == "/a%2Fb/c?q=%20&q=2"
    assert seen.header("X-Twice") == ["1", "2"]  # repeated in another case, sent with the first spelling
    assert [name for name, _ in seen.headers if name.lower() == "x-twice"] == ["X-Twice", "X-Twice"]
    assert seen.header("X-After") == ["3"]
    assert seen.header("Host") == ["origin.example"]
    assert seen.header("User-Agent") == []  # no client defaults: the origin sees only what CloudFront sends
    assert seen.header("Accept-Encoding") == []


async def test_an_origin_name_that_is_not_valid_idna_is_a_failed_dns_lookup() -> None:
    # A valid host name to CloudFront's rules, but not an IDNA encoding: yarl's URL.host cannot decode it.
    request = OriginRequest("GET", "custom", "xn--zz.invalid", "http", 80, "/", "", CIMultiDict([("Host", "x")]))
    http = HttpOrigin()
    await http.start()
    try:
        async with AsyncExitStack() as stack:
            with pytest.raises(OriginConnectionError, match=r"DNS lookup for origin 'xn--zz.invalid' failed"):
                await http.fetch(request, stack)
    finally:
        await http.close()


async def test_http_origin_response_is_as_received(origin: Origin) -> None:
    http = HttpOrigin()
    await http.start()
    try:
        async with AsyncExitStack() as stack:
            cookies = await http.fetch(request_to(origin, "/cookies"), stack)
            binary = await http.fetch(request_to(origin, "/bytes"), stack)
            assert (cookies.status, cookies.reason) == (200, "Cookies Set")
            assert cookies.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
            assert await read(binary) == BINARY
    finally:
        await http.close()


async def test_http_origin_request_body_bytes_or_stream(origin: Origin) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two"

    http = HttpOrigin()
    await http.start()
    try:
        async with AsyncExitStack() as stack:
            await http.fetch(request_to(origin, "/post", method="POST", body=b"bytes"), stack)
            await http.fetch(request_to(origin, "/post", method="POST", body=chunks()), stack)
    finally:
        await http.close()
    assert [seen.body for seen in origin.seen] == [b"bytes", b"one,two"]


async def test_origins_route_s3_requests_to_their_bucket_by_any_host_name_and_refuse_unknown_buckets(
    tmp_path: Path,
) -> None:
    class Answer:
        def __init__(self, text: bytes) -> None:
            self.text = text

        async def start(self) -> None: ...

        async def close(self) -> None: ...

        async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
            return OriginResponse(200, None, CIMultiDict(), self.text)

    origins = Origins({"b": Answer(b"bucket")}, http=Answer(b"http"))
    s3 = OriginRequest("GET", "s3", "b.s3.us-east-1.amazonaws.com", "https", 443, "/k", "", CIMultiDict())
    other = OriginRequest("GET", "s3", "other.s3.amazonaws.com", "https", 443, "/k", "", CIMultiDict())
    custom = OriginRequest("GET", "custom", "example.org", "https", 443, "/k", "", CIMultiDict())
    regional = OriginRequest("GET", "s3", "b.s3-eu-west-1.amazonaws.com", "https", 443, "/k", "", CIMultiDict())
    async with AsyncExitStack() as stack:
        assert (await origins.fetch(s3, stack)).body == b"bucket"
        assert (await origins.fetch(regional, stack)).body == b"bucket"
        assert (await origins.fetch(custom, stack)).body == b"http"
        with pytest.raises(OriginConnectionError, match="no folder origin stands for S3 domain"):
            await origins.fetch(other, stack)


async def test_the_proxy_can_be_given_another_origin(aiohttp_client: AiohttpClient) -> None:
    """Any implementation of the protocol answers the origin requests: the typed request comes in as CloudFront
    would send it (here to an origin that does not exist), and its response goes to the viewer."""
    seen: list[OriginRequest] = []

    class Canned:
        async def start(self) -> None: ...

        async def close(self) -> None: ...

        async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
            seen.append(request)
            headers = CIMultiDict([("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
            return OriginResponse(201, "Made", headers, b"canned")

    distribution = config.from_flags("http://nowhere.invalid:9/base", {})
    client = await aiohttp_client(create_app(distribution, Options(), origin=Canned()))
    response = await client.get("/p?q=1")
    assert (response.status, response.reason, await response.text()) == (201, "Made", "canned")
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Cache"] == "Miss from cloudfront"
    [request] = seen
    assert (request.domain_name, request.port, request.path, request.query) == ("nowhere.invalid", 9, "/base/p", "q=1")
    assert request.headers["User-Agent"] == "Amazon CloudFront"
    assert request.headers["X-Amz-Cf-Id"] == response.headers["X-Amz-Cf-Id"]
