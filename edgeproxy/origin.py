"""The origin boundary: one typed :class:`OriginRequest` goes in, one :class:`OriginResponse` comes out.

:class:`Origin` is the protocol. :class:`HttpOrigin` sends requests over HTTP through the proxy's one pooled client
session; :class:`~edgeproxy.s3.FolderBucket` answers like an S3 bucket from a local folder; :class:`Origins`, the
default origin of a distribution, routes each request to one of them. The proxy can be given any other
implementation (a recording's replay is one).

Bodies pass through untouched (no decompression), in both directions, streamed unless a rule needs them buffered.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.config import bucket_of
from edgeproxy.errors import OriginConnectionError, OriginTimeoutError
from edgeproxy.headers import CLIENT_AUTO_HEADERS, as_received, end_to_end

CHUNK_SIZE = 64 * 1024
# aiohttp sends raw bytes above 1 MiB in one write, and warns (ResourceWarning) that it may block the loop.
LARGE_BODY = 1024 * 1024
CONNECT_TIMEOUT = 10.0  # §5.2: connection timeout default 10 s

RequestBody = bytes | aiohttp.StreamReader | AsyncIterator[bytes] | None


@dataclass(frozen=True)
class OriginRequest:
    """A request as CloudFront sends it to an origin. ``path`` (the origin path and the uri) and ``query`` are raw,
    as they go on the wire; ``headers`` are the wire headers in order; ``domain_name`` is the origin's name as the
    event gives it (an S3 bucket's host name for ``kind = "s3"``)."""

    method: str
    kind: Literal["custom", "s3"]
    domain_name: str
    protocol: str
    port: int
    path: str
    query: str
    headers: CIMultiDict[str]
    body: RequestBody = None
    read_timeout: float = 30.0
    keepalive_timeout: float = 5.0

    @property
    def url(self) -> URL:
        return URL.build(
            scheme=self.protocol,
            host=self.domain_name,
            port=self.port,
            path=self.path,
            query_string=self.query,
            encoded=True,
        )


@dataclass
class OriginResponse:
    """What an origin answered: ``headers`` as received, in order, repeats kept. ``body`` streams until the request's
    exit stack closes."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes | AsyncIterator[bytes]
    replayed: bool = False  # answered from a recording, not by the origin itself


class Origin(Protocol):
    """Anything that answers origin requests."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        """Answer ``request``; a body that streams may hold resources until ``stack`` closes. Raises
        :class:`~edgeproxy.errors.OriginConnectionError` or :class:`~edgeproxy.errors.OriginTimeoutError`."""
        ...


class HttpOrigin:
    """HTTP origins, through one pooled ``ClientSession`` (never one per request)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=5.0),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=CLIENT_AUTO_HEADERS,
                trust_env=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        assert self._session is not None, "HttpOrigin.start() was not awaited"
        url = request.url
        read_timeout = request.read_timeout
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)
        body = request.body
        data = io.BytesIO(body) if isinstance(body, bytes) and len(body) > LARGE_BODY else body
        headers = _one_spelling(request.headers)
        try:
            response = await stack.enter_async_context(
                self._session.request(
                    request.method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout
                )
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
            headers=as_received(response.raw_headers),
            body=response.content.iter_chunked(CHUNK_SIZE),
        )


class Origins:
    """A distribution's origins. An S3 request goes to the folder origin standing for its bucket, by any of the
    bucket's host names (:func:`~edgeproxy.config.bucket_of`). A host name in ``resolve`` (``"host:port"`` or
    ``"host"``, see :func:`~edgeproxy.config.resolve_table`) is connected to at its local URL instead, while the
    event and the ``Host`` header keep the name the function chose; any other request goes over HTTP to its name, as
    CloudFront would send it."""

    def __init__(
        self, buckets: Mapping[str, Origin], *, resolve: Mapping[str, URL] | None = None, http: Origin | None = None
    ) -> None:
        self.http: Origin = http or HttpOrigin()
        self._buckets = dict(buckets)  # bucket name -> the origin answering for that bucket
        self._resolve = dict(resolve or {})

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        domain = request.domain_name.lower()
        if request.kind == "s3" and (bucket := bucket_of(domain)) in self._buckets:
            return await self._buckets[bucket].fetch(request, stack)
        local = self._resolve.get(f"{domain}:{request.port}") or self._resolve.get(domain)
        if local is not None:
            assert local.host is not None
            assert local.port is not None
            request = replace(request, protocol=local.scheme, domain_name=local.host, port=local.port)
        elif request.kind == "s3":
            raise OriginConnectionError(
                f"no folder origin stands for S3 domain {request.domain_name!r} (bucket {bucket_of(domain)!r}): give "
                "a folder origin that bucket (bucket = ...), or map the host name to a local URL in [resolve]"
            )
        return await self.http.fetch(request, stack)


def _one_spelling(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """The headers with every repeat of a name spelled as its first occurrence. aiohttp's client keeps repeated
    headers, but one repeated in another case (``X-A: 1``, ``x-a: 2``) replaces the earlier ones; header names are
    case-insensitive, so the spelling is what gives."""
    spellings: dict[str, str] = {}
    for name, _ in headers.items():
        if spellings.setdefault(name.lower(), name) != name:
            return CIMultiDict((spellings[name.lower()], value) for name, value in headers.items())
    return headers


def origin_headers(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """An origin response's headers as they may be passed on: end-to-end only, repeats kept."""
    return CIMultiDict(end_to_end(headers))
