"""Talking to origins: HTTP origins through one pooled client session, and S3-style local folders.

Bodies pass through untouched (no decompression), in both directions, streamed unless a rule needs them buffered.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.config import DirectoryOrigin, bucket_of
from edgeproxy.errors import OriginConnectionError, OriginTimeoutError
from edgeproxy.wire import end_to_end

CHUNK_SIZE = 64 * 1024
# aiohttp sends raw bytes above 1 MiB in one write, and warns (ResourceWarning) that it may block the loop.
LARGE_BODY = 1024 * 1024
CONNECT_TIMEOUT = 10.0  # §5.2: connection timeout default 10 s
# aiohttp adds these when missing; the origin must see only what the viewer or the function sent.
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

RequestBody = bytes | aiohttp.StreamReader | None


@dataclass
class OriginResponse:
    """What an origin answered. ``body`` streams until the request's exit stack closes."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes | AsyncIterator[bytes]


class OriginClient:
    """Sends origin requests. Holds the one pooled ``ClientSession`` of the proxy.

    An S3 origin is the folder origin standing for its bucket, by any of the bucket's host names. A host name in
    ``resolve`` (``"host:port"`` or ``"host"``, see :func:`~edgeproxy.config.resolve_table`) is connected to at
    its local URL instead; any other custom origin is connected to by its name, as CloudFront would."""

    def __init__(self, directories: Iterable[DirectoryOrigin], resolve: Mapping[str, URL] | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._buckets = {origin.bucket: origin for origin in directories}
        self._resolve = dict(resolve or {})

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=5.0),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=SKIP_AUTO_HEADERS,
                trust_env=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        *,
        origin: Mapping[str, Any],
        method: str,
        uri: str,
        querystring: str,
        headers: CIMultiDict[str],
        body: RequestBody,
        stack: AsyncExitStack,
    ) -> OriginResponse:
        """Send a request to the origin described by an event's ``request.origin``."""
        kind, spec = next(iter(origin.items()))
        domain, path = spec["domainName"], spec.get("path", "") + uri
        # §1.6: origin.s3 has no protocol or port: CloudFront reaches an S3 REST endpoint over HTTPS.
        scheme, port = (spec["protocol"], spec["port"]) if kind == "custom" else ("https", 443)
        if kind == "s3" and (bucket := bucket_of(domain)) in self._buckets:
            return await serve_directory(self._buckets[bucket], method=method, uri=path, headers=headers)
        local = self._resolve.get(f"{domain.lower()}:{port}") or self._resolve.get(domain.lower())
        if local is not None:
            scheme, domain, port = local.scheme, local.host, local.port
        elif kind == "s3":
            raise OriginConnectionError(
                f"no folder origin stands for S3 domain {domain!r} (bucket {bucket_of(domain)!r}): give a folder "
                "origin that bucket (bucket = ...), or map the host name to a local URL in [resolve]"
            )
        url = URL.build(scheme=scheme, host=domain, port=port, path=path, query_string=querystring, encoded=True)
        return await self._fetch_http(
            method, url, headers, body, read_timeout=float(spec.get("readTimeout", 30)), stack=stack
        )

    async def _fetch_http(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: RequestBody,
        *,
        read_timeout: float,
        stack: AsyncExitStack,
    ) -> OriginResponse:
        assert self._session is not None, "OriginClient.start() was not awaited"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)
        data = io.BytesIO(body) if isinstance(body, bytes) and len(body) > LARGE_BODY else body
        try:
            response = await stack.enter_async_context(
                self._session.request(method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout)
            )
        except aiohttp.ClientConnectorDNSError as exc:
            raise OriginConnectionError(
                f"DNS lookup for origin {url.host!r} failed: {exc.os_error} (to reach a local stand-in for this host "
                "name, map it to a URL in [resolve])"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise OriginConnectionError(f"cannot connect to origin {url.host}:{url.port}: {exc.os_error}") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise OriginTimeoutError(f"origin {url.host}:{url.port} did not answer within {read_timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise OriginConnectionError(f"origin {url.host}:{url.port} failed: {type(exc).__name__}: {exc}") from None
        return OriginResponse(
            status=response.status,
            reason=response.reason,
            headers=CIMultiDict(response.headers),
            body=response.content.iter_chunked(CHUNK_SIZE),
        )


def _s3_error(status: int, code: str, message: str, key: str) -> OriginResponse:
    request_id = os.urandom(8).hex().upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        + (f"<Key>{escape(key)}</Key>" if code == "NoSuchKey" else "")
        + f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = CIMultiDict(
        {
            "Content-Type": "application/xml",
            "Content-Length": str(len(body)),
            "Date": formatdate(usegmt=True),
            "Server": "AmazonS3",
            "x-amz-request-id": request_id,
        }
    )
    return OriginResponse(status=status, reason=None, headers=headers, body=body)


async def serve_directory(
    origin: DirectoryOrigin, *, method: str, uri: str, headers: CIMultiDict[str]
) -> OriginResponse:
    """Answer like an S3 bucket without public listing: files by key, 404 NoSuchKey, 403 AccessDenied."""
    key = unquote(uri.removeprefix("/"))
    if method not in ("GET", "HEAD"):
        return _s3_error(403, "AccessDenied", "Access Denied", key)
    root = origin.directory
    path = (root / key).resolve()
    if not key or key.endswith("/") or (path != root and root not in path.parents):
        return _s3_error(403, "AccessDenied", "Access Denied", key)
    try:
        stat = await asyncio.to_thread(path.stat)
    except (FileNotFoundError, NotADirectoryError):
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
    if not path.is_file():
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
    etag = f'"{await asyncio.to_thread(_md5_of, path, stat.st_mtime_ns, stat.st_size)}"'
    response_headers = CIMultiDict(
        {
            "Date": formatdate(usegmt=True),
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(path.name)[0] or "binary/octet-stream",
            "Server": "AmazonS3",
        }
    )
    if _not_modified(headers, etag, stat.st_mtime):
        return OriginResponse(status=304, reason=None, headers=response_headers, body=b"")
    response_headers["Content-Length"] = str(stat.st_size)
    body = b"" if method == "HEAD" else _read_chunks(path)
    return OriginResponse(status=200, reason=None, headers=response_headers, body=body)


def _not_modified(headers: CIMultiDict[str], etag: str, mtime: float) -> bool:
    if "If-None-Match" in headers:
        return etag in [tag.strip() for tag in headers["If-None-Match"].split(",")] or headers["If-None-Match"] == "*"
    if "If-Modified-Since" in headers:
        try:
            since = parsedate_to_datetime(headers["If-Modified-Since"]).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= since
    return False


_md5_cache: dict[tuple[Path, int, int], str] = {}


def _md5_of(path: Path, mtime_ns: int, size: int) -> str:
    key = (path, mtime_ns, size)
    if key not in _md5_cache:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                digest.update(chunk)
        _md5_cache[key] = digest.hexdigest()
    return _md5_cache[key]


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
            yield chunk


def origin_headers(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """An origin response's headers as they may be passed on: end-to-end only, repeats kept."""
    return CIMultiDict(end_to_end(headers))
