"""record/replay.py: an origin answered from a recording, byte for byte."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from edgeproxy.errors import ReplayMissError
from edgeproxy.origin import OriginRequest, OriginResponse
from edgeproxy.record.har import HarFile, Recording
from edgeproxy.record.har import read as read_har
from edgeproxy.record.replay import ReplayOrigin

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def recorded(path: str, response: dict[str, Any], *, method: str = "GET", body: bytes = b"") -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "url": f"https://api.example.com:443{path}", "headers": []}
    if body:
        request["postData"] = {"mimeType": "", "text": base64.b64encode(body).decode(), "_encoding": "base64"}
    return {"_origin": {"request": request, "response": response}}


def request(path: str, query: str = "", *, method: str = "GET", body: Any = None) -> OriginRequest:
    return OriginRequest(method, "custom", "api.example.com", "https", 443, path, query, CIMultiDict(), body)


async def read(response: OriginResponse) -> bytes:
    assert not isinstance(response.body, bytes)  # streamed, as the origin's body was
    return b"".join([chunk async for chunk in response.body])


RESPONSE = {
    "status": 201,
    "statusText": "Made It",
    "headers": [
        {"name": "Content-Type", "value": "image/png"},
        {"name": "Set-Cookie", "value": "a=1"},
        {"name": "Set-Cookie", "value": "b=2"},
        {"name": "Content-Length", "value": str(len(PNG))},
    ],
    "content": {
        "size": len(PNG),
        "mimeType": "image/png",
        "text": base64.b64encode(PNG).decode(),
        "encoding": "base64",
    },
}


async def test_answers_byte_for_byte_from_the_recording() -> None:
    origin = ReplayOrigin(Recording(Path("r.har"), [recorded("/v1/logo.png", RESPONSE)]))
    async with AsyncExitStack() as stack:
        response = await origin.fetch(request("/v1/logo.png"), stack)
        assert (response.status, response.reason, response.replayed) == (201, "Made It", True)
        assert list(response.headers.items()) == [(h["name"], h["value"]) for h in RESPONSE["headers"]]  # type: ignore[attr-defined]
        assert await read(response) == PNG


async def test_a_miss_is_cloudfronts_502_naming_the_nearest_and_is_kept_for_the_test_report() -> None:
    origin = ReplayOrigin(Recording(Path("r.har"), [recorded("/v1/logo.png", RESPONSE)]))
    async with AsyncExitStack() as stack:
        with pytest.raises(ReplayMissError) as caught:
            await origin.fetch(request("/v1/logo.png", "size=2"), stack)
    assert (caught.value.status, caught.value.x_cache) == (502, "Error")
    assert caught.value.request == "GET https://api.example.com:443/v1/logo.png?size=2"
    assert "nearest recorded: GET https://api.example.com:443/v1/logo.png: query '' != 'size=2'" in caught.value.reason
    assert origin.misses == [caught.value]


async def test_what_is_not_recorded_goes_live_and_once_learnt_repeats() -> None:
    class Live:
        calls = 0

        async def start(self) -> None: ...

        async def close(self) -> None: ...

        async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
            Live.calls += 1
            return OriginResponse(200, "OK", CIMultiDict(), b"live")

    origin = ReplayOrigin(Recording(Path("r.har"), []), live=Live())
    async with AsyncExitStack() as stack:
        assert (await origin.fetch(request("/new"), stack)).body == b"live"
        origin.learn(recorded("/new", {"status": 200, "headers": [], "content": {"size": 4, "text": "kept"}}))
        assert await read(await origin.fetch(request("/new"), stack)) == b"kept"
    assert Live.calls == 1


async def test_matching_on_the_body_reads_a_streamed_body() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"pa"
        yield b"yload"

    origin = ReplayOrigin(
        Recording(Path("r.har"), [recorded("/post", RESPONSE, method="POST", body=b"payload")]),
        match_on=("method", "path", "body"),
    )
    async with AsyncExitStack() as stack:
        assert (await origin.fetch(request("/post", method="POST", body=chunks()), stack)).status == 201
        with pytest.raises(ReplayMissError, match="body differs"):
            await origin.fetch(request("/post", method="POST", body=b"other"), stack)


async def test_an_origin_with_an_international_domain_name_is_answered(tmp_path: Path) -> None:
    # The config holds an origin's domain name as yarl's URL.host gives it (decoded), and the recording writes it so.
    path = tmp_path / "r.har"
    file = HarFile(path)
    for host in ("bücher.example", "xn--bcher-kva.example"):
        exchange = {"request": {"method": "GET", "url": f"https://{host}:443/v1/logo.png"}, "response": RESPONSE}
        file.append({"startedDateTime": "2026-12-01T00:00:01.000Z", "_origin": exchange, "_invocations": []})
    file.close()
    origin = ReplayOrigin(read_har(path))
    async with AsyncExitStack() as stack:
        for host in ("bücher.example", "xn--bcher-kva.example"):
            live = OriginRequest("GET", "custom", host, "https", 443, "/v1/logo.png", "", CIMultiDict())
            assert await read(await origin.fetch(live, stack)) == PNG
