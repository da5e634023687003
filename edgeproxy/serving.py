"""What the CloudFront and the ALB applications share: building the aiohttp application, reading the request
target, the one log line of a refused or failed request, and serving an application on a host and port.

``edgeproxy serve``, ``edgeproxy alb`` and :func:`edgeproxy.testing.start` all serve through :class:`Listener`, so
a proxy under test behaves as the one on the command line (keep-alive, cancellation when a viewer goes away).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.exchange import Body, Exchange, Observers, Sent

log = logging.getLogger("edgeproxy")

OBSERVERS = web.AppKey("observers", Observers)  # the observers of an application (either service's)
KEEPALIVE_TIMEOUT = 75.0  # seconds an idle viewer connection stays open (aiohttp's run_app default)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application(handle: Handler, *, max_line_size: int, max_headers: int) -> web.Application:
    """An application whose every request goes to ``handle``. The parser accepts lines of up to ``max_line_size``
    bytes and up to ``max_headers`` header lines, so that the service's own limits, checked later, decide (with its
    own error page). ``auto_decompress`` is off: a body sent with Content-Encoding goes on as the viewer sent it."""
    app = web.Application(
        handler_args={
            "max_line_size": max_line_size,
            "max_field_size": max_line_size,
            "max_headers": max_headers,
            "auto_decompress": False,
        }
    )
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def request_target(request: web.Request) -> tuple[str, str]:
    """The raw path and raw query string (without ``?``) of a request. An absolute-form target (RFC 9112 §3.2.2,
    ``GET http://host/path``) keeps only its path and query: the configured origin or target answers either way."""
    raw_target = request.raw_path
    if not raw_target.startswith("/"):
        raw_target = "/" + raw_target.split("://", 1)[-1].partition("/")[2]
    path, _, query = raw_target.partition("?")
    return path, query


def local_address(request: web.Request) -> tuple[str, int] | None:
    """The proxy's own address and port, as the viewer reached it."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return (str(sockname[0]), int(sockname[1])) if isinstance(sockname, tuple) else None


async def start_response(response: web.StreamResponse, request: web.Request, exchange: Exchange) -> None:
    """Send the status line and headers, and note on the exchange when, and what went out."""
    exchange.responded = time.time()
    await response.prepare(request)
    exchange.sent = Sent(response.status, response.reason, CIMultiDict(response.headers))


async def send_body(
    response: web.StreamResponse, body: Body, exchange: Exchange, observers: Observers, *, empty: bool = False
) -> None:
    """Write ``body`` (nothing when ``empty``) and end the response. The exchange is done, and its observers told,
    just before the last bytes go out: a recording has the exchange on disk before the viewer can see it whole."""
    sent = bytearray() if observers.wants_bodies else None
    exchange.viewer_body = sent
    if isinstance(body, bytes):
        if sent is not None and not empty:
            sent += body
        _done(exchange, observers)
        if body and not empty:
            await response.write(body)
    else:
        pending = b""
        async for chunk in body:
            if sent is not None:
                sent += chunk
            if pending:
                await response.write(pending)
            pending = chunk
        _done(exchange, observers)
        if pending:
            await response.write(pending)
    await response.write_eof()


def _done(exchange: Exchange, observers: Observers) -> None:
    if observers:
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


@dataclass
class Listener:
    """An application served on a host and port (see :meth:`start`)."""

    runner: web.AppRunner
    url: URL

    @classmethod
    async def start(cls, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> Listener:
        """Serve ``app`` on ``host``:``port`` (a free port for 0). A viewer that goes away cancels its request's
        handling, as when CloudFront's viewer disconnects; idle connections close after ``KEEPALIVE_TIMEOUT``."""
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return cls(runner, URL.build(scheme="http", host=host, port=runner.addresses[0][1]))

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve_until_stopped(app: web.Application, host: str, port: int) -> None:
    """The command line's server: print its URL, serve until SIGTERM (or Ctrl-C, as KeyboardInterrupt), then
    close cleanly."""
    listener = await Listener.start(app, host, port)
    try:
        print(f"edgeproxy listening on {listener.url}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await listener.close()
