"""events/cloudfront.py: Lambda@Edge event shapes, built from wire values, and results turned back into them.

The sample events in fixtures/events/ are checked against events captured from a real request through the proxy,
so the builder that prints them (``edgeproxy events``) cannot drift from what handlers really get.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient

from edgeproxy import config
from edgeproxy.events import cloudfront
from edgeproxy.server import Options, create_app
from edgeproxy.triggers import TRIGGERS, Trigger
from tests.conftest import RECORD_EVENTS, HandlerWriter, recorded_events

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures" / "events"
# The viewer request the fixtures describe (fixtures/README.md), byte for byte.
VIEWER_REQUEST = (
    b"GET /images/photo.jpg?size=large&format=webp HTTP/1.1\r\n"
    b"Host: d111111abcdef8.cloudfront.net\r\n"
    b"User-Agent: curl/8.5.0\r\n"
    b"Accept: image/webp,*/*\r\n"
    b"Accept-Language: en-GB\r\n"
    b"Cookie: session=abc\r\n"
    b"Cookie: theme=dark\r\n"
    b"\r\n"
)
# The origin response the fixtures describe (edgeproxy.testing.ORIGIN_RESPONSE_HEADERS), byte for byte.
ORIGIN_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: 1024\r\n"
    b"Date: Mon, 23 Nov 2026 12:00:00 GMT\r\n"
    b"Last-Modified: Fri, 20 Nov 2026 09:30:00 GMT\r\n"
    b'ETag: "7f8a9b0c1d2e3f405162738495a6b7c8"\r\n'
    b"Server: nginx\r\n"
    b"\r\n" + b"x" * 1024
)


@pytest.fixture
async def raw_origin() -> AsyncIterator[int]:
    """An origin on a real socket that answers every request with ORIGIN_RESPONSE; yields its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(ORIGIN_RESPONSE)
            await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def normalised(event: Any, *, origin_port: int) -> Any:
    """An event with what differs between a captured run and the fixtures replaced: the request id, the viewer's
    address (the test's 127.0.0.1, the fixtures' 203.0.113.178) and the origin (a local one, the fixtures'
    https://example.org)."""
    text = json.dumps(event)
    text = re.sub(r'"requestId": "[^"]+"', '"requestId": "-"', text)
    text = text.replace('"127.0.0.1"', '"203.0.113.178"').replace('"localhost"', '"example.org"')
    result = json.loads(text)
    custom = result["Records"][0]["cf"]["request"].get("origin", {}).get("custom")
    if custom is not None:
        assert (custom["port"], custom["protocol"]) in ((origin_port, "http"), (443, "https"))
        custom["port"], custom["protocol"] = 443, "https"
    return result


async def test_the_sample_events_are_what_a_real_request_gives_the_handlers(
    aiohttp_client: AiohttpClient, write_handler: HandlerWriter, raw_origin: int
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    distribution = config.from_flags(f"http://localhost:{raw_origin}", dict.fromkeys(TRIGGERS, recorder))
    client = await aiohttp_client(create_app(distribution, Options()))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(VIEWER_REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    captured = recorded_events(recorder)
    assert len(captured) == 4
    for trigger, event in zip(TRIGGERS, captured, strict=True):
        fixture = json.loads((FIXTURES / f"{trigger}.json").read_text())
        assert normalised(event, origin_port=raw_origin) == normalised(fixture, origin_port=raw_origin), trigger


def test_event_headers_keep_order_case_and_repeats() -> None:
    headers = cloudfront.to_event_headers([("Accept", "a"), ("accept", "b"), ("X-A", "1")])
    assert headers == {
        "accept": [{"key": "Accept", "value": "a"}, {"key": "accept", "value": "b"}],
        "x-a": [{"key": "X-A", "value": "1"}],
    }
    assert all(type(key) is str for key in cloudfront.to_event_headers(CIMultiDict([("A", "1")]).items()))
    wire = cloudfront.to_wire_headers({"x-foo": [{"value": "1"}], "accept": headers["accept"]})
    assert list(wire.items()) == [("X-Foo", "1"), ("Accept", "a"), ("accept", "b")]


@pytest.mark.parametrize(("size", "truncated"), [(0, False), (40 * 1024, False), (40 * 1024 + 1, True)])
def test_include_body_record_is_base64_and_truncated_at_the_limit(size: int, truncated: bool) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    record = cloudfront.body_record(data, 40 * 1024)
    assert (record["inputTruncated"], record["action"], record["encoding"]) == (truncated, "read-only", "base64")
    assert base64.b64decode(record["data"]) == data[: 40 * 1024]


def test_request_ids_look_like_cloudfronts() -> None:
    ids = {cloudfront.new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{54}==", request_id) for request_id in ids)


def test_origin_request_is_what_goes_on_the_wire() -> None:
    origin = config.custom_origin_from_url("o", "https://example.org:8443/prod", custom_headers=(("x-key", "s"),))
    viewer = cloudfront.request_record(
        client_ip="192.0.2.1", method="POST", uri="/a b", querystring="q=1", headers=[("Content-Length", "3")]
    )
    request = cloudfront.toward_origin(viewer, origin, client_ip="192.0.2.1", via="1.1 x.cloudfront.net (CloudFront)")
    sent = cloudfront.origin_request(request, method="POST", request_id="rid", body=b"abc", content_length=3)
    assert (sent.kind, sent.domain_name, sent.port, sent.protocol) == ("custom", "example.org", 8443, "https")
    assert (sent.path, sent.query, sent.body) == ("/prod/a b", "q=1", b"abc")
    assert list(sent.headers.items()) == [
        ("Content-Length", "3"),
        ("Host", "example.org"),
        ("User-Agent", "Amazon CloudFront"),
        ("Via", "1.1 x.cloudfront.net (CloudFront)"),
        ("X-Forwarded-For", "192.0.2.1"),
        ("X-Key", "s"),
        ("X-Amz-Cf-Id", "rid"),
    ]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_event_envelope(trigger: Trigger) -> None:
    request = cloudfront.request_record(client_ip="192.0.2.1", method="GET", uri="/", querystring="", headers=[])
    response = cloudfront.response_record(status=404, reason=None, headers=[]) if trigger.endswith("response") else None
    event = cloudfront.build_event(
        trigger=trigger,
        request_id="rid",
        domain_name="d.cloudfront.net",
        distribution_id="E1",
        request=request,
        response=response,
    )
    cf = event["Records"][0]["cf"]
    assert cf["config"] == {
        "distributionDomainName": "d.cloudfront.net",
        "distributionId": "E1",
        "eventType": trigger,
        "requestId": "rid",
    }
    assert ("response" in cf) == trigger.endswith("response")
    if response is not None:
        assert cf["response"]["status"] == "404"
        assert cf["response"]["statusDescription"] == "Not Found"


@pytest.mark.parametrize(
    ("name", "entry", "sent"),
    [
        ("x-foo", {"value": "1"}, "X-Foo"),  # §1.4: a missing key is the map name, title-cased
        ("x-foo", {"key": "x-FOO", "value": "1"}, "x-FOO"),  # the same name: its spelling is kept
        ("last-modified", {"key": "X-Amz-Meta-Last-Modified", "value": "1"}, "Last-Modified"),  # §3.6
        ("x-k", {"key": "X-\u212a", "value": "1"}, "X-K"),  # the Kelvin sign lower-cases to 'k', but is not ASCII
        ("x-foo", {"key": 7, "value": "1"}, "X-Foo"),
    ],
)
def test_wire_name_is_decided_by_the_map_name(name: str, entry: dict[str, Any], sent: str) -> None:
    assert cloudfront.wire_name(name, entry) == sent
    assert list(cloudfront.to_wire_headers({name: [entry]}).items()) == [(sent, "1")]
