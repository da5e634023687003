"""The origin boundary: one typed :class:`OriginRequest` goes in, one :class:`OriginResponse` comes out.

:class:`Origin` is the protocol. :class:`HttpOrigin` sends requests over HTTP through the proxy's one pooled client
session; :class:`~edgeproxy.s3.FolderBucket` answers like an S3 bucket from a local folder; :class:`Origins`, the
default origin of a distribution, routes each request to one of them. The proxy can be given any other
implementation (a recording's replay is one).

Bodies pass through untouched (no decompression), in both directions, streamed unless a rule needs them buffered.
"""

from __future__ import annotations

import functools
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
# §5.2: connection attempts 1-3 (3 by default), each with a connection timeout of 1-10 s (10 s by default).
CONNECTION_ATTEMPTS = 3
CONNECTION_TIMEOUT = 10.0
# CloudFront's quota "maximum length of a request or an origin response, including headers and query strings, but not
# including the body content": 20,480 bytes (current quotas page; reference §5.3 names requests only). As many header
# lines as fit, each as long as fits, are accepted (aiohttp's client would stop at 128 lines of 8,190 bytes).
MAX_ORIGIN_HEADER_BYTES = 20480

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
    connection_attempts: int = CONNECTION_ATTEMPTS
    connection_timeout: float = CONNECTION_TIMEOUT

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
                max_line_size=MAX_ORIGIN_HEADER_BYTES,
                max_field_size=MAX_ORIGIN_HEADER_BYTES,
                max_headers=MAX_ORIGIN_HEADER_BYTES // len("a:\r\n"),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        assert self._session is not None, "HttpOrigin.start() was not awaited"
        url, read_timeout, connect_timeout = request.url, request.read_timeout, request.connection_timeout
        where = f"{url.raw_host}:{url.port}"  # the name as configured (URL.host decodes IDNA, and may fail)
        timeout = _timeout(connect_timeout, read_timeout)
        headers = _one_spelling(request.headers)
        failure = ""
        for _ in range(request.connection_attempts):  # §5.2: a connection that fails or times out is tried again
            body = request.body
            data = io.BytesIO(body) if isinstance(body, bytes) and len(body) > LARGE_BODY else body
            try:
                response = await stack.enter_async_context(
                    self._session.request(
                        request.method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout
                    )
                )
                break
            except aiohttp.ClientConnectorDNSError as exc:
                raise OriginConnectionError(
                    f"DNS lookup for origin {url.raw_host!r} failed: {exc.os_error} (to reach a local stand-in for "
                    "this host name, map it to a URL in [resolve])"
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
            reason = f"cannot connect to origin {where} in {request.connection_attempts} attempt(s): {failure}"
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
            headers=as_received(response.raw_headers, response.headers),
            body=response.content.iter_chunked(CHUNK_SIZE),
        )


class Origins:
    """A distribution's origins. An S3 request goes to the folder origin standing for its bucket, by any of the
    bucket's host names (:func:`~edgeproxy.config.bucket_of`). A host name in ``resolve`` (``"host:port"`` or
    ``"host"``, see :func:`~edgeproxy.config.resolve_table`) is connected to at its local URL instead, while the
    event and the ``Host`` header keep the name the function chose; any other request goes over HTTP to its name, as
    CloudFront would send it.

    ``connection_settings`` are the configured HTTP origins' connection attempts and timeout by ``(host, port)``:
    they apply to every request for that host and port (a function that switches to another origin gets the
    defaults, as the event's ``origin`` does not carry them)."""

    def __init__(
        self,
        buckets: Mapping[str, Origin],
        *,
        resolve: Mapping[str, URL] | None = None,
        connection_settings: Mapping[tuple[str, int], tuple[int, float]] | None = None,
        http: Origin | None = None,
    ) -> None:
        self.http: Origin = http or HttpOrigin()
        self._buckets = dict(buckets)  # bucket name -> the origin answering for that bucket
        self._resolve = dict(resolve or {})
        settings = connection_settings or {}
        self._connection_settings = {(host.lower(), port): value for (host, port), value in settings.items()}

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, request: OriginRequest, stack: AsyncExitStack) -> OriginResponse:
        domain = request.domain_name.lower()
        if request.kind == "s3" and (bucket := bucket_of(domain)) in self._buckets:
            return await self._buckets[bucket].fetch(request, stack)
        settings = self._connection_settings.get((domain, request.port))
        if settings is not None and settings != (request.connection_attempts, request.connection_timeout):
            request = replace(request, connection_attempts=settings[0], connection_timeout=settings[1])
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


@functools.lru_cache(maxsize=64)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """The client's timeouts for an origin's settings: one object per pair of values (it is immutable), not one
    per request."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


def _one_spelling(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """The headers with every repeat of a name spelled as its first occurrence. aiohttp's client keeps repeated
    headers, but one repeated in another case (``X-A: 1``, ``x-a: 2``) replaces the earlier ones; header names are
    case-insensitive, so the spelling is what gives."""
    spellings: dict[str, str] = {}
    respelled = False
    for name, _ in headers.items():  # (keys() gives each name once)
        respelled |= spellings.setdefault(name.lower(), name) != name
    if not respelled:
        return headers
    return CIMultiDict((spellings[name.lower()], value) for name, value in headers.items())


def origin_headers(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """An origin response's headers as they may be passed on: end-to-end only, repeats kept."""
    return CIMultiDict(end_to_end(headers))
