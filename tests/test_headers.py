"""headers.py: the named header sets, and the helpers that apply them."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from multidict import CIMultiDict

from edgeproxy.headers import DISALLOWED, as_received, end_to_end, is_disallowed, title_case
from tests.aws_reference import DISALLOWED as REFERENCE_DISALLOWED
from tests.aws_reference import DISALLOWED_EXAMPLES


def test_disallowed_list_is_the_current_reference_list() -> None:
    assert {name.lower() for name in REFERENCE_DISALLOWED} == DISALLOWED


@pytest.mark.parametrize("name", DISALLOWED_EXAMPLES)
def test_disallowed_names_and_prefixes_in_any_case(name: str) -> None:
    assert is_disallowed(name)
    assert is_disallowed(name.upper())


@pytest.mark.parametrize("name", ["X-Amzn-Trace-Id", "X-Amz-Meta-A", "X-Cache-Status", "X-Edgeproxy", "X-Accel"])
def test_near_misses_are_not_disallowed(name: str) -> None:
    assert not is_disallowed(name)


def test_end_to_end_drops_hop_by_hop_and_connection_named_headers_keeping_order_and_repeats() -> None:
    headers = CIMultiDict(
        [
            ("Set-Cookie", "a=1"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "secret"),
            ("Transfer-Encoding", "chunked"),
            ("set-cookie", "b=2"),
            ("Keep-Alive", "timeout=5"),
            ("Content-Type", "text/plain"),
        ]
    )
    assert list(end_to_end(headers)) == [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("user-agent", "User-Agent"), ("content-type", "Content-Type"), ("x-a-b", "X-A-B"), ("etag", "Etag")],
)
def test_title_case_is_how_lambda_at_edge_fills_a_missing_key(name: str, expected: str) -> None:
    assert title_case(name) == expected


async def _received_over_a_socket(head: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The headers of a request sent as ``head``: as aiohttp parsed them, and as :func:`as_received` gives them."""
    seen: list[list[tuple[str, str]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(list(request.headers.items()))
        seen.append(list(as_received(request.raw_headers, request.headers).items()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(head)
        await reader.read()
        writer.close()
    finally:
        await runner.cleanup()
    return seen[0], seen[1]


@pytest.mark.parametrize("repeat", [1, 2])  # the second time, the spelling comes from the cache
async def test_as_received_keeps_the_wire_spelling_order_and_repeats(repeat: int) -> None:
    head = (
        b'GET / HTTP/1.1\r\nhost: a\r\netag: "1"\r\nX-A: 1\r\nx-a: 2\r\nCONTENT-TYPE: text/plain\r\n'
        b"X-B: \xc3\xa9\r\nConnection: close\r\n\r\n"
    )
    for _ in range(repeat):
        parsed, received = await _received_over_a_socket(head)
    assert received == [
        ("host", "a"),
        ("etag", '"1"'),
        ("X-A", "1"),
        ("x-a", "2"),
        ("CONTENT-TYPE", "text/plain"),
        ("X-B", "é"),
        ("Connection", "close"),
    ]
    assert [name for name, _ in parsed][:2] == ["Host", "Etag"]  # aiohttp respells the names it knows
    assert [value for _, value in parsed] == [value for _, value in received]


async def test_as_received_copies_aiohttps_headers_when_they_are_spelled_as_sent() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Custom: 1\r\nConnection: close\r\n\r\n"
    parsed, received = await _received_over_a_socket(head)
    assert received == parsed == [("Host", "a"), ("X-Custom", "1"), ("Connection", "close")]
