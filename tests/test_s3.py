"""s3.py: S3-style folder origins, through the proxy and on their own."""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from multidict import CIMultiDict

from edgeproxy import s3
from edgeproxy.config import DirectoryOrigin
from edgeproxy.origin import OriginRequest
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


async def test_etags_are_remembered_per_bucket_within_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "ETAG_CACHE_SIZE", 2)
    bucket = s3.FolderBucket(DirectoryOrigin(name="site", directory=tmp_path))
    for name in "abc":
        (tmp_path / name).write_text(name)
        async with AsyncExitStack() as stack:
            response = await bucket.fetch(get(f"/{name}"), stack)
        assert response.status == 200
        assert response.headers["ETag"] == f'"{hashlib.md5(name.encode()).hexdigest()}"'
    assert len(bucket._etags) == 2  # the oldest was let go


async def test_only_get_and_head_and_keys_inside_the_folder(tmp_path: Path) -> None:
    bucket = s3.FolderBucket(DirectoryOrigin(name="site", directory=tmp_path))
    (tmp_path / "a.txt").write_text("a")
    async with AsyncExitStack() as stack:
        assert (await bucket.fetch(get("/a.txt", method="PUT"), stack)).status == 403
        assert (await bucket.fetch(get("/%2E%2E/secret"), stack)).status == 403
        head = await bucket.fetch(get("/a.txt", method="HEAD"), stack)
        assert (head.status, head.body) == (200, b"")


def get(path: str, *, method: str = "GET") -> OriginRequest:
    return OriginRequest(method, "s3", "site.s3.us-east-1.amazonaws.com", "https", 443, path, "", CIMultiDict())
