"""inspector/routes.py: the page, its live feed and the HAR downloads, over real sockets."""

from __future__ import annotations

import asyncio
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from edgeproxy.inspector import ring as ring_module
from tests.inspector.harness import Inspected, InspectedFactory, with_a_cut_body

SCHEMA = json.loads((Path(__file__).parents[2] / "fixtures" / "har" / "har-1.2.schema.json").read_text())
BROKEN = "def handler(event, context):\n    return {'status': 'x'}\n"


async def _events(response: aiohttp.ClientResponse) -> Any:
    """The server-sent events of a stream, as (name, data) pairs, as they come."""
    name, data = "", []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and data:
            yield name, json.loads("\n".join(data))
            name, data = "", []


async def _setup(inspected: InspectedFactory, tmp_path: Path) -> Inspected:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a")
    (tmp_path / "broken.py").write_text(BROKEN)
    return await inspected(origin=str(tmp_path / "site"), origin_response=f"{tmp_path / 'broken.py'}:handler")


async def test_the_stream_gives_the_ring_then_each_new_exchange(inspected: InspectedFactory, tmp_path: Path) -> None:
    setup = await _setup(inspected, tmp_path)
    async with aiohttp.ClientSession() as admin, admin.get(setup.admin / "api" / "stream") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        events = _events(stream)
        name, data = await anext(events)
        assert (name, data["exchanges"], data["size"]) == ("list", [], 100)
        async with setup.proxy.client.get("/a.txt", headers={"Authorization": "Bearer secret"}) as response:
            assert response.status == 502
        name, batch = await asyncio.wait_for(anext(events), 5)
        assert name == "exchanges"
        [row] = batch
        assert {key: row[key] for key in ("method", "path", "status", "x_cache", "error", "behavior")} == {
            "method": "GET",
            "path": "/a.txt",
            "status": 502,
            "x_cache": "LambdaValidationError",
            "error": "LambdaValidationError",
            "behavior": "*",
        }
        assert row["triggers"] == ["origin-response"]

        async with admin.get(setup.admin / "api" / "exchanges") as listing:
            assert [item["id"] for item in (await listing.json())["exchanges"]] == [row["id"]]
        async with admin.get(setup.admin / "api" / "exchanges" / row["id"]) as one:
            detail = await one.json()
        [invocation] = detail["invocations"]
        assert invocation["error"]["field"] == "status"
        assert {"name": "Authorization", "value": "Bearer secret"} in detail["har"]["request"]["headers"]

        async with admin.get(setup.admin / "api" / "exchanges" / row["id"] / "har") as har:
            assert har.headers["Content-Disposition"].startswith("attachment; filename=")
            document = json.loads(await har.read())
        jsonschema.validate(document, SCHEMA)
        [entry] = document["log"]["entries"]
        assert entry["_requestId"] == row["id"]
        assert {"name": "Authorization", "value": "[REDACTED]"} in entry["request"]["headers"]  # as recordings are
        assert "secret" not in json.dumps(document)


async def test_the_whole_ring_downloads_as_har_oldest_first(inspected: InspectedFactory, tmp_path: Path) -> None:
    setup = await _setup(inspected, tmp_path)
    async with setup.ring.watch():
        for n in range(3):
            async with setup.proxy.client.get(f"/a.txt?n={n}") as response:
                await response.read()
    async with aiohttp.ClientSession() as admin, admin.get(setup.admin / "api" / "har") as har:
        document = json.loads(await har.read())
    jsonschema.validate(document, SCHEMA)
    assert [entry["request"]["url"].rsplit("?", 1)[1] for entry in document["log"]["entries"]] == ["n=0", "n=1", "n=2"]


async def test_a_har_entry_says_which_bodies_the_ring_cut(
    inspected: InspectedFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ring_module, "BODY_LIMIT", 1000)
    setup = await with_a_cut_body(inspected, tmp_path)
    [kept] = list(setup.ring)
    async with (
        aiohttp.ClientSession() as admin,
        admin.get(setup.admin / "api" / "exchanges" / kept.exchange.id / "har") as har,
    ):
        document = json.loads(await har.read())
    jsonschema.validate(document, SCHEMA)
    [entry] = document["log"]["entries"]
    assert entry["comment"].startswith("bodies cut at ")
    assert entry["comment"].endswith(" bytes by edgeproxy's inspector: origin_body, viewer_body")


async def test_an_exchange_no_longer_in_the_ring_is_a_404(inspected: InspectedFactory, tmp_path: Path) -> None:
    setup = await _setup(inspected, tmp_path)
    async with aiohttp.ClientSession() as admin:
        for path in ("api/exchanges/nope", "api/exchanges/nope/har", "inspector/secret.py"):
            async with admin.get(setup.admin / path) as response:
                assert response.status == 404, path


async def test_the_page_and_its_assets_need_nothing_from_the_network(
    inspected: InspectedFactory, tmp_path: Path
) -> None:
    setup = await _setup(inspected, tmp_path)
    async with aiohttp.ClientSession() as admin:
        async with admin.get(setup.admin) as page:
            assert page.content_type == "text/html"
            html = await page.text()
        for asset, kind in (("inspector.css", "text/css"), ("inspector.js", "text/javascript")):
            assert f"/inspector/{asset}" in html
            async with admin.get(setup.admin / "inspector" / asset) as response:
                assert response.content_type == kind
    for name in ("index.html", "inspector.css", "inspector.js"):
        text = resources.files("edgeproxy.inspector").joinpath("static", name).read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name  # no CDN, no fonts
