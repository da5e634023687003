"""Talking to origins: HTTP origins through one pooled client session, and S3-style local folders.

Bodies pass through untouched (no decompression), in both directions, streamed unless a rule needs them buffered.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.config import CustomOrigin, DirectoryOrigin, Origin, bucket_of
from edgeproxy.errors import OriginConnectionError, OriginTimeoutError
from edgeproxy.wire import end_to_end

CHUNK_SIZE = 64 * 1024
# aiohttp sends raw bytes above 1 MiB in one write, and warns (ResourceWarning) that it may block the loop.
LARGE_BODY = 1024 * 1024
# §5.2: connection attempts 1-3 (3 by default), each with a connection timeout of 1-10 s (10 s by default).
CONNECTION_ATTEMPTS = 3
CONNECTION_TIMEOUT = 10.0
# CloudFront's quota "maximum length of a request or an origin response, including headers and query strings, but not
# including the body content": 20,480 bytes (current quotas page; reference §5.3 names requests only). As many header
# lines as fit, each as long as fits, are accepted (aiohttp's client would stop at 128 lines of 8,190 bytes).
MAX_ORIGIN_HEADER_BYTES = 20480
# aiohttp adds these when missing; the origin must see only what the viewer or the function sent.
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

RequestBody = bytes | aiohttp.StreamReader | AsyncIterator[bytes] | None


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
    its local URL instead; any other custom origin is connected to by its name, as CloudFront would. An HTTP
    origin's connection attempts and timeout apply to every request for its host and port (a function that
    switches to another origin gets the defaults, as the event's ``origin`` does not carry them)."""

    def __init__(self, origins: Iterable[Origin], resolve: Mapping[str, URL] | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        configured = list(origins)
        self._buckets = {origin.bucket: origin for origin in configured if isinstance(origin, DirectoryOrigin)}
        self._resolve = dict(resolve or {})
        self._connection_settings = {
            (origin.domain_name, origin.port): (origin.connection_attempts, origin.connection_timeout)
            for origin in configured
            if isinstance(origin, CustomOrigin)
        }

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=5.0),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=SKIP_AUTO_HEADERS,
                trust_env=False,
                max_line_size=MAX_ORIGIN_HEADER_BYTES,
                max_field_size=MAX_ORIGIN_HEADER_BYTES,
                max_headers=MAX_ORIGIN_HEADER_BYTES // len("a:\r\n"),
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
        where = f"{url.host}:{url.port}"
        attempts, connect_timeout = self._connection_settings.get(
            (url.host or "", url.port or 0), (CONNECTION_ATTEMPTS, CONNECTION_TIMEOUT)
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        failure = ""
        for _ in range(attempts):  # §5.2: a connection that fails or times out is tried again, up to the attempts
            data = io.BytesIO(body) if isinstance(body, bytes) and len(body) > LARGE_BODY else body
            try:
                response = await stack.enter_async_context(
                    self._session.request(
                        method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout
                    )
                )
                break
            except aiohttp.ClientConnectorDNSError as exc:
                raise OriginConnectionError(
                    f"DNS lookup for origin {url.host!r} failed: {exc.os_error} (to reach a local stand-in for this "
                    "host name, map it to a URL in [resolve])"
                ) from None
            except aiohttp.ConnectionTimeoutError:
                failure = f"no connection within {connect_timeout:g} s"
            except aiohttp.ClientConnectorError as exc:
                failure = str(exc.os_error)
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise OriginTimeoutError(f"origin {where} did not answer within {read_timeout:g} s") from None
            except aiohttp.ClientError as exc:
                raise OriginConnectionError(f"origin {where} failed: {type(exc).__name__}: {exc}") from None
        else:
            reason = f"cannot connect to origin {where} in {attempts} attempt(s): {failure}"
            # §5.2: an origin that does not answer the connection attempts in time is a 504; one that refuses them
            # (nothing listens, a reset) is CloudFront's 502 "wasn't able to connect to the origin".
            if failure.startswith("no connection within"):
                raise OriginTimeoutError(reason)
            raise OriginConnectionError(reason)
        if not 100 <= response.status <= 599:
            raise OriginConnectionError(f"origin {where} answered with status {response.status} (outside 100-599)")
        header_bytes = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + sum(
            len(name) + len(value) + 4 for name, value in response.raw_headers
        )
        if header_bytes > MAX_ORIGIN_HEADER_BYTES:
            raise OriginConnectionError(
                f"origin {where} sent {header_bytes} bytes of status line and headers (limit {MAX_ORIGIN_HEADER_BYTES})"
            )
        return OriginResponse(
            status=response.status,
            reason=response.reason,
            headers=CIMultiDict(response.headers),
            body=response.content.iter_chunked(CHUNK_SIZE),
        )


S3_MAX_KEY_BYTES = 1024  # S3 object keys are at most 1,024 bytes of UTF-8; a longer one is 400 KeyTooLongError
# What XML 1.0 cannot hold, even as a character reference: taken out of the <Key> of an error document.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _s3_error(status: int, code: str, message: str, key: str) -> OriginResponse:
    request_id = os.urandom(8).hex().upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        + (f"<Key>{escape(NOT_XML.sub('', key))}</Key>" if code == "NoSuchKey" else "")
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


def _no_such_key(key: str) -> OriginResponse:
    return _s3_error(404, "NoSuchKey", "The specified key does not exist.", key)


def _access_denied(key: str) -> OriginResponse:
    return _s3_error(403, "AccessDenied", "Access Denied", key)


async def serve_directory(
    origin: DirectoryOrigin, *, method: str, uri: str, headers: CIMultiDict[str]
) -> OriginResponse:
    """Answer like an S3 bucket without public listing: files by key, 404 NoSuchKey, 403 AccessDenied, 400 for a key
    S3 refuses. A key no file can have (a NUL, a name too long for the file system, a symlink loop) does not exist."""
    key = unquote(uri.removeprefix("/"))
    if method not in ("GET", "HEAD"):
        return _access_denied(key)
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        return _s3_error(400, "KeyTooLongError", "Your key is too long", key)
    root = origin.directory
    if not key or key.endswith("/"):
        return _access_denied(key)
    try:
        path = (root / key).resolve()  # RuntimeError on a symlink loop (Python 3.11), ValueError on a NUL
        if path != root and root not in path.parents:
            return _access_denied(key)
        stat = await asyncio.to_thread(path.stat)
        if not S_ISREG(stat.st_mode):
            return _no_such_key(key)
        etag = f'"{await asyncio.to_thread(_md5_of, path, stat.st_mtime_ns, stat.st_size)}"'
    except PermissionError:
        return _access_denied(key)
    except (OSError, RuntimeError, ValueError):  # not found, ENAMETOOLONG, ELOOP, a NUL...
        return _no_such_key(key)
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
