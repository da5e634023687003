"""What the CloudFront and the ALB applications share: building the aiohttp application, reading the request
target, writing a response (noting on the exchange what went out), and the one log line of a refused or failed
request. Serving an application on a socket is :mod:`edgeproxy.listener`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from edgeproxy.errors import ViewerBodyTimeout
from edgeproxy.exchange import Body, Exchange, Observers, Outcome, Sent

log = logging.getLogger("edgeproxy")

OBSERVERS = web.AppKey("observers", Observers)  # the observers of an application (either service's)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application(handle: Handler, *, max_line_size: int, max_headers: int) -> web.Application:
    """An application whose every request goes to ``handle``. The parser accepts lines of up to ``max_line_size``
    bytes and up to ``max_headers`` header lines, so that the service's own limits, checked later, decide (with its
    own error page). ``auto_decompress`` is off: a body sent with Content-Encoding goes on as the viewer sent it."""
    app = web.Application(
        middlewares=[_every_target(handle)],
        handler_args={
            "max_line_size": max_line_size,
            "max_field_size": max_line_size,
            "max_headers": max_headers,
            "auto_decompress": False,
        },
    )
    app.router.add_route("*", "/{tail:.*}", handle, expect_handler=_expect)
    return app


async def _expect(request: web.Request) -> None:
    """``Expect: 100-continue`` gets its interim 100 (aiohttp's own handling); any other expectation is ignored and
    the request served, where aiohttp would answer its own 417 page (RFC 9110 §10.1.1 allows either; neither AWS
    service documents one)."""
    if request.version == (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # (aiohttp's own handler does this: the body has not started)


def _every_target(handle: Handler) -> Middleware:
    """aiohttp's router matches only a target that begins with ``/``: ``*`` (``OPTIONS *``), an authority
    (``CONNECT host:443``) or an absolute URL without a path (``GET http://host``) would get aiohttp's own 404 page.
    They go to ``handle`` too, which answers them as the service does."""

    @web.middleware
    async def every_target(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handle(request)
        return await handler(request)

    return every_target


def request_target(request: web.Request) -> tuple[str, str]:
    """The raw path and raw query string (without ``?``) of a request. An absolute-form target (RFC 9112 §3.2.2,
    ``GET http://host/path``) keeps only its path and query (``/`` for none): the configured origin or target answers
    either way. Any other target that is not a path (``*``, ``host:443``) is kept as it is: see
    :func:`is_path`."""
    raw_target = request.raw_path
    if not raw_target.startswith("/") and "://" in raw_target:
        raw_target = "/" + raw_target.split("://", 1)[1].partition("/")[2]
    path, _, query = raw_target.partition("?")
    return path, query


def is_path(uri: str) -> bool:
    """Whether a request's target (as :func:`request_target` gives it) is a path: the asterisk form (``OPTIONS *``)
    and the authority form (``CONNECT host:443``) are not, and neither service has anything to answer them with but
    a 400."""
    return uri.startswith("/")


def local_address(request: web.Request) -> tuple[str, int] | None:
    """The proxy's own address and port, as the viewer reached it."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return (str(sockname[0]), int(sockname[1])) if isinstance(sockname, tuple) else None


async def send(
    request: web.Request,
    response: web.StreamResponse,
    body: Body,
    exchange: Exchange,
    observers: Observers,
    *,
    empty: bool,
    internal_error: Callable[[], web.StreamResponse],
) -> web.StreamResponse:
    """Send ``response``'s status line and headers, then ``body`` (nothing when ``empty``), noting on the exchange
    when and what went out. The exchange is done, and its observers told, just before the last bytes go out: a
    recording has the exchange on disk before the viewer can see it whole.

    A viewer that goes away mid-response is nobody's error (nothing is logged above debug). A streamed body that
    breaks off (the origin closed early, or sent less than its Content-Length) ends the viewer's connection, as
    CloudFront does, rather than end the body as if it were whole. Any other exception is edgeproxy's bug (such as a
    head aiohttp refuses to write that validation let through): logged with its traceback, and the viewer gets
    ``internal_error()`` if nothing went out yet, else its connection is closed. Never aiohttp's own 500."""
    where = f"{exchange.id} {request.method} {request.raw_path}"
    if request.body_exists and isinstance(request.content.exception(), ViewerBodyTimeout):
        response.force_close()  # the rest of that body is not a next request: "Connection: close" (RFC 9110 §15.5.9)
    try:
        exchange.responded = time.time()
        await response.prepare(request)
        exchange.sent = Sent(response.status, response.reason, CIMultiDict(response.headers))
        if await _send_body(response, body, exchange, observers, empty=empty):
            await response.write_eof()
            return response
        log.warning("%s: origin response body cut short", where)
    except ConnectionError:  # aiohttp's ClientConnectionResetError is one too
        log.debug("%s: the viewer closed the connection", where)
        return response
    except Exception:
        log.exception("%s: internal error writing the response", where)
        if request.writer.output_size == 0:
            return internal_error()
    if request.transport is not None:
        request.transport.close()
    return response


async def _send_body(
    response: web.StreamResponse, body: Body, exchange: Exchange, observers: Observers, *, empty: bool
) -> bool:
    """Write ``body``; ``False`` if a streamed one broke off."""
    sent = bytearray() if observers.wants_bodies else None
    exchange.viewer_body = sent
    if empty or isinstance(body, bytes):
        data = b"" if empty or not isinstance(body, bytes) else body
        if sent is not None:
            sent += data
        _done(exchange, observers)
        if data:
            await response.write(data)
        return True
    pending = b""
    chunks = aiter(body)
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except aiohttp.ClientError as exc:
            log.debug("%s: origin body: %s: %s", exchange.id, type(exc).__name__, exc)
            return False
        if sent is not None:
            sent += chunk
        if pending:
            await response.write(pending)
        pending = chunk
    _done(exchange, observers)
    if pending:
        await response.write(pending)
    return True


def as_response(outcome: Outcome) -> web.Response:
    """An outcome whose body is in memory as a plain aiohttp response, for aiohttp to send (an error page, where
    the exchange's own way out failed or is not there)."""
    assert isinstance(outcome.body, bytes)
    return web.Response(status=outcome.status, reason=outcome.reason, headers=outcome.headers, body=outcome.body)


def _done(exchange: Exchange, observers: Observers) -> None:
    if observers.any:
        observers.exchange_done(exchange)


def client_port(request: web.Request) -> int | None:
    peername = request.transport.get_extra_info("peername") if request.transport is not None else None
    return int(peername[1]) if isinstance(peername, tuple) else None


def log_failure(exchange_id: str, request: web.Request, status: int, name: str, reason: str) -> None:
    """The one log line of a request the service answered with its own error: ``<id> GET /path -> 502 <name>:
    <reason>``, where ``name`` is CloudFront's X-Cache word or ALB's error reason."""
    log.warning("%s %s %s -> %d %s: %s", exchange_id, request.method, request.raw_path, status, name, reason)


def log_internal_error(exchange_id: str, request: web.Request) -> None:
    """A bug in edgeproxy itself: logged with its traceback; the viewer gets the service's own error page."""
    log.exception("%s %s %s: internal error", exchange_id, request.method, request.raw_path)
