"""Each sample function, driven through the proxy to a real origin."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pytest_aiohttp import AiohttpServer

from tests.conftest import Origin, ProxyFactory, Seen, origin_app

SAMPLES = Path(__file__).parents[1] / "sample_functions"


def ref(name: str) -> str:
    return f"{SAMPLES / name}.py:handler"


async def test_security_headers(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-response": ref("security_headers")})
    response = await client.get("/page")
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert json.loads(await response.text())["path"] == "/page"


async def test_redirects_answer_at_the_edge_keeping_query(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("redirects")})
    response = await client.get("/old-page?ref=mail", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "/new-page?ref=mail"
    assert response.headers["X-Cache"] == "LambdaGeneratedResponse from cloudfront"
    slash = await client.get("/docs/intro", allow_redirects=False)
    assert slash.headers["Location"] == "/docs/intro/"
    assert origin.seen == []
    assert (await client.get("/new-page")).status == 200
    assert origin.last.raw_path == "/new-page"


async def test_basic_auth(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("basic_auth")})
    denied = await client.get("/secret")
    assert denied.status == 401
    assert denied.headers["WWW-Authenticate"].startswith('Basic realm="staging"')
    wrong = await client.get("/secret", headers={"Authorization": "Basic " + base64.b64encode(b"staging:no").decode()})
    assert wrong.status == 401
    assert origin.seen == []
    right = await client.get(
        "/secret", headers={"Authorization": "Basic " + base64.b64encode(b"staging:let-me-in").decode()}
    )
    assert right.status == 200
    assert origin.last.raw_path == "/secret"


async def test_ab_testing_group_sticks_with_cookie(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("ab_testing")})
    for _ in range(3):
        await client.get("/home", headers={"Cookie": "theme=dark; experiment=b"})
        assert origin.last.raw_path == "/experiment-b/home"
    await client.get("/home")
    assert origin.last.raw_path in ("/experiment-a/home", "/experiment-b/home")
    group = origin.last.raw_path.split("/")[1][-1]
    assert f"experiment={group}" in origin.last.header("Cookie")


async def test_spa_index_rewrites_routes_not_files(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"origin-request": ref("spa_index")})
    for path, expected in (
        ("/settings/profile", "/index.html"),
        ("/docs/", "/docs/index.html"),
        ("/assets/app.js", "/assets/app.js"),
    ):
        await client.get(path)
        assert origin.last.raw_path == expected


async def test_origin_by_device_and_by_header(
    origin: Origin, proxy: ProxyFactory, aiohttp_server: AiohttpServer
) -> None:
    other_seen: list[Seen] = []
    other = await aiohttp_server(origin_app(other_seen))
    client = await proxy(origin=origin.url, functions={"origin-request": ref("origin_by_device")})
    await client.get("/page", headers={"CloudFront-Is-Mobile-Viewer": "true"})
    assert origin.last.raw_path == "/mobile/page"
    await client.get("/page", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})  # not visible at origin-request
    assert origin.last.raw_path == "/page"
    await client.get("/page", headers={"X-Origin": f"localhost:{other.port}"})
    assert len(origin.seen) == 2
    assert other_seen[0].raw_path == "/page"
    assert other_seen[0].header("Host") == ["localhost"]


async def test_querystring_normalised(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("querystring_normalise")})
    await client.get("/list?Size=10&utm_source=news&b=%20x&fbclid=abc&a=1")
    assert origin.last.raw_path == "/list?a=1&b=%20x&size=10"


async def test_generated_response(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("generated_response")})
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert (await response.json())["requestId"] == response.headers["X-Amz-Cf-Id"]
    assert origin.seen == []
    assert (await client.get("/other")).status == 200
    assert origin.last.raw_path == "/other"


async def test_cors_headers(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"origin-response": ref("cors_headers")})
    allowed = await client.get("/api", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Vary"] == "Origin"
    other = await client.get("/api", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_example_distribution(proxy: ProxyFactory) -> None:
    from edgeproxy import config

    client = await proxy(config.load(Path(__file__).parents[1] / "fixtures" / "example" / "edgeproxy.toml"))
    page = await client.get("/any/client/route")
    assert page.status == 200
    assert "Served through edgeproxy" in await page.text()
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    css = await client.get("/assets/site.css")
    assert css.headers["Content-Type"] == "text/css"
