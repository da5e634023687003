"""origin.py: the S3-style folder origin, and origin failures."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ProxyFactory


async def test_folder_origin_serves_files_like_s3(tmp_path: Path, proxy: ProxyFactory) -> None:
    (tmp_path / "img").mkdir()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    (tmp_path / "img" / "logo.png").write_bytes(png)
    client = await proxy(origin=str(tmp_path))
    response = await client.get("/img/logo.png")
    assert response.status == 200
    assert await response.read() == png
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(png))
    assert response.headers["Server"] == "AmazonS3"
    etag = response.headers["ETag"]
    assert etag.startswith('"')
    assert len(etag) == 34

    again = await client.get("/img/logo.png", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""


async def test_folder_origin_errors(tmp_path: Path, proxy: ProxyFactory) -> None:
    client = await proxy(origin=str(tmp_path))
    missing = await client.get("/nope.html")
    assert missing.status == 404
    assert missing.headers["X-Cache"] == "Error from cloudfront"
    assert "<Code>NoSuchKey</Code>" in await missing.text()
    for path in ("/", "/..%2F..%2Fetc%2Fpasswd"):
        denied = await client.get(path)
        assert denied.status == 403, path
        assert "<Code>AccessDenied</Code>" in await denied.text()


async def test_origin_read_timeout_is_504(aiohttp_server: AiohttpServer, proxy: ProxyFactory, tmp_path: Path) -> None:
    import asyncio

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    (tmp_path / "edgeproxy.toml").write_text(
        f'[origins.slow]\nurl = "{server.make_url("")}"\nread_timeout = 0.3\n[default_behavior]\norigin = "slow"\n'
    )
    from edgeproxy import config

    client = await proxy(config.load(tmp_path / "edgeproxy.toml"))
    response = await client.get("/slow")
    assert response.status == 504
    assert response.headers["X-Cache"] == "Error from cloudfront"
    assert "<H1>504 ERROR</H1>" in await response.text()
