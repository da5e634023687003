"""The viewer-facing socket: aiohttp's HTTP/1.1 server with the deadlines an edge applies to its viewers'
connections, and with one log line where aiohttp would log a traceback for what is not the proxy's fault.

* A request head must arrive whole within ``header_timeout`` of its first byte (60 s by default, as nginx's
  ``client_header_timeout`` and Node.js's ``headersTimeout``); a slower one (slowloris) has its connection closed,
  after the mode's :data:`HEAD_TIMEOUT_ANSWER` if it has one (the load balancer's 408).
* A keep-alive connection that sends no byte of a next request within ``idle_timeout`` is closed (aiohttp's own
  keep-alive timer, which also runs from the moment a connection is accepted).
* A request body that stops coming for ``idle_timeout`` is cut short: whatever reads it gets
  :class:`~edgeproxy.errors.ViewerBodyTimeout`, and the request is answered with a 408 and its connection closed (the
  load balancer's "HTTP 408: The client did not send data before the idle timeout period expired"; CloudFront
  documents nothing for it, and answers the same here).
* A request the HTTP parser rejects gets the mode's own error page (CloudFront's or the load balancer's, from the
  application's :data:`REJECT`) and one log line, not aiohttp's plain-text page and a traceback at ERROR.
* A viewer that goes away mid-response is not an error: nothing is logged.
* At the process's file-descriptor limit (``EMFILE``), asyncio stops accepting for a moment; it logs that as one
  warning line a minute instead of a traceback per attempt.

``edgeproxy serve``, ``edgeproxy alb`` and :func:`edgeproxy.testing.start` all serve through :class:`Listener`, so a
proxy under test behaves as the one on the command line (these deadlines, keep-alive, cancellation when a viewer goes
away). An application served by another runner (``aiohttp_client``, ``web.run_app``) answers the same, less these
protections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import StreamReader, web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest
from yarl import URL

from edgeproxy.errors import ViewerBodyTimeout

log = logging.getLogger("edgeproxy")

# What a mode answers a request it refuses before any routing: (status, reason for the log) -> its error page.
Reject = Callable[[int, str], web.StreamResponse]
REJECT: web.AppKey[Reject] = web.AppKey("reject")
# What a mode sends a viewer whose request head stalled past the header timeout, before closing (the whole message,
# bytes: there is no request to answer); a mode without one closes the connection silently.
HEAD_TIMEOUT_ANSWER: web.AppKey[Callable[[], bytes]] = web.AppKey("head_timeout_answer")
ACCEPT_OUT_OF_RESOURCES = "socket.accept() out of system resource"  # asyncio's message for EMFILE and the like
ACCEPT_WARNING_INTERVAL = 60.0


@dataclass(frozen=True)
class Timeouts:
    """How long a viewer's connection may take: ``header`` for a request head, from its first byte; ``idle`` between
    requests on a keep-alive connection (and before the first one), and between the bytes of a request body.
    Seconds. CloudFront documents neither for viewers: 60 s is nginx's and Node.js's header timeout, 75 s nginx's
    keep-alive timeout. An application can set its mode's own defaults in :data:`TIMEOUTS` (the ALB's idle timeout
    is 60 s)."""

    header: float = 60.0
    idle: float = 75.0


TIMEOUTS: web.AppKey[Timeouts] = web.AppKey("timeouts", Timeouts)


def _one_line(text: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ViewerProtocol(web_protocol.RequestHandler):
    """aiohttp's request handler with the header deadline and the quieter error handling described above."""

    __slots__ = (
        "_body",
        "_body_heard",
        "_body_timeout",
        "_body_timer",
        "_head_timeout_answer",
        "_head_timer",
        "_header_timeout",
        "_reject",
    )

    def __init__(
        self,
        manager: web.Server,
        *,
        header_timeout: float,
        body_timeout: float,
        reject: Reject | None,
        head_timeout_answer: Callable[[], bytes] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout_answer = head_timeout_answer
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timeout = body_timeout
        self._body: StreamReader | None = None  # the body of the request in hand, while it is still coming
        self._body_heard = 0.0  # when its last bytes came (the loop's clock)
        self._body_timer: asyncio.TimerHandle | None = None
        self._reject = reject

    def _waiting_for_a_request(self) -> bool:
        # aiohttp's start() waits on _waiter until the parser has a whole request head. On a new connection, uvloop
        # may deliver the first bytes before start() has run at all: no request yet, none parsed, is waiting too.
        if self._waiter is not None:
            return not self._waiter.done()
        return self._request_count == 0 and not self._messages

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        if self._body is not None and not self._body.is_eof():
            self._body_heard = self._loop.time()
        elif len(self._messages) > queued and not (body := self._messages[-1][1]).is_eof():
            self._body, self._body_heard = body, self._loop.time()  # a request whose body is still to come
            if self._body_timer is None:  # (one still armed for an earlier body watches this one from now)
                self._body_timer = self._loop.call_later(self._body_timeout, self._body_too_slow)
        if not self._waiting_for_a_request():
            if self._head_timer is not None:  # the head is whole: the request is in hand
                self._head_timer.cancel()
                self._head_timer = None
        elif data and self._head_timer is None:
            # The first bytes of a request head: it has header_timeout from now to arrive whole, instead of the idle
            # timeout (keep_alive() cancels aiohttp's keep-alive timer, which is armed again after the response).
            self.keep_alive(True)
            self._head_timer = self._loop.call_later(self._header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_a_request() and self.transport is not None:
            answered = "" if self._head_timeout_answer is None else "answered 408, "
            log.warning(
                "- %s: request head not received whole within %g s; %sconnection closed",
                _peer(self.transport),
                self._header_timeout,
                answered,
            )
            if self._head_timeout_answer is not None:
                self.transport.write(self._head_timeout_answer())
            self.force_close()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        body, self._body = self._body, None
        if body is None or body.is_eof() or body.exception() is not None:
            return
        quiet = self._loop.time() - self._body_heard
        if quiet < self._body_timeout:  # it came on since: watch it again for the rest of the time
            self._body = body
            self._body_timer = self._loop.call_later(self._body_timeout - quiet, self._body_too_slow)
            return
        body.set_exception(ViewerBodyTimeout(f"the viewer sent no byte of its request body for {quiet:.0f} s"))
        self.close()  # after the response: what the viewer sends next is not a request

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        self._body = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):  # the viewer went away mid-response: nobody's error, nothing to answer
            raise ConnectionError("the viewer closed the connection") from None
        if self._reject is None:
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, HttpProcessingError):
            reason = f"the HTTP parser rejected the request: {_one_line(message or exc.message or str(exc))}"
            log.warning("- %s -> %d Error: %s", request.remote, status, reason)
        else:  # an exception escaped the application: a bug of edgeproxy, with its traceback
            log.error("- %s -> 502 Error: internal error in edgeproxy", request.remote, exc_info=exc)
            status, reason = 502, "internal error in edgeproxy (see its log)"
        response = self._reject(status, reason)
        response.force_close()
        return response


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else "-"


class ViewerSite(web.BaseSite):
    """A TCP site whose connections are :class:`ViewerProtocol`: the proxy's listening socket."""

    __slots__ = ("_bound_port", "_host", "_port", "_reuse_port", "_timeouts")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        header_timeout: float | None = None,
        idle_timeout: float | None = None,
        reuse_port: bool = False,
    ) -> None:
        """``header_timeout`` and ``idle_timeout`` in seconds; ``None``: the application's :data:`TIMEOUTS`, or
        :class:`Timeouts`' defaults. ``reuse_port``: listen with ``SO_REUSEPORT``, so that the kernel spreads the
        port's connections over every process listening on it (``serve --workers``)."""
        super().__init__(runner)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        defaults = runner.app.get(TIMEOUTS, Timeouts())
        self._timeouts = Timeouts(
            header=defaults.header if header_timeout is None else header_timeout,
            idle=defaults.idle if idle_timeout is None else idle_timeout,
        )
        self._bound_port: int | None = None

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    @property
    def port(self) -> int:
        """The port listened on (the one chosen when 0 was asked for, once started)."""
        return self._port if self._bound_port is None else self._bound_port

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self.port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        _warn_once_at_the_fd_limit(loop)
        runner = self._runner
        server = runner.server
        assert isinstance(runner, web.AppRunner)
        assert server is not None
        reject = runner.app.get(REJECT)
        head_timeout_answer = runner.app.get(HEAD_TIMEOUT_ANSWER)
        # What aiohttp's Server passes its handlers (the application's handler_args, the runner's options), with the
        # idle timeout as aiohttp's keep-alive timeout.
        kwargs = {**server._kwargs, "keepalive_timeout": self._timeouts.idle}

        def connection() -> ViewerProtocol:
            timeouts = self._timeouts
            return ViewerProtocol(
                server,
                loop=loop,
                header_timeout=timeouts.header,
                body_timeout=timeouts.idle,
                reject=reject,
                head_timeout_answer=head_timeout_answer,
                **kwargs,
            )

        self._server = await loop.create_server(
            connection, self._host, self._port, backlog=self._backlog, reuse_port=self._reuse_port or None
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


def _warn_once_at_the_fd_limit(loop: asyncio.AbstractEventLoop) -> None:
    """Have ``loop`` log asyncio's accept failures at the fd limit as one warning line a minute, without traceback.
    (asyncio then stops accepting for a second; Python 3.11 logs every one of up to 100 attempts per wake-up.)"""
    previous = loop.get_exception_handler()
    if getattr(previous, "edgeproxy", False):
        return
    warned_at: float | None = None

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal warned_at
        if context.get("message") != ACCEPT_OUT_OF_RESOURCES:
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = loop.time()
        if warned_at is None or now - warned_at >= ACCEPT_WARNING_INTERVAL:
            warned_at = now
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            log.warning(
                "cannot accept connections: %s (the open-file limit is %d); accepting again in a moment",
                context.get("exception"),
                soft,
            )

    handler.edgeproxy = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


@dataclass
class Listener:
    """An application served on a host and port (see :meth:`start`)."""

    runner: web.AppRunner
    url: URL

    @classmethod
    async def start(
        cls,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        header_timeout: float | None = None,
        idle_timeout: float | None = None,
        reuse_port: bool = False,
    ) -> Listener:
        """Serve ``app`` on ``host``:``port`` (a free port for 0) through a :class:`ViewerSite` with these timeouts
        (``None``: the application's), with ``SO_REUSEPORT`` if ``reuse_port``. A viewer that goes away cancels its
        request's handling, as when CloudFront's viewer disconnects."""
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        try:
            site = ViewerSite(
                runner, host, port, header_timeout=header_timeout, idle_timeout=idle_timeout, reuse_port=reuse_port
            )
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        return cls(runner, URL.build(scheme="http", host=host, port=site.port))

    async def close(self) -> None:
        await self.runner.cleanup()


INSPECTOR_OFF = "edgeproxy inspector: off (--admin-port PORT serves it, and the admin API)"


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    header_timeout: float | None = None,
    idle_timeout: float | None = None,
    admin: web.Application | None = None,
    admin_port: int = 0,
    reuse_port: bool = False,
    announce: Callable[[URL, URL | None], None] | None = None,
) -> None:
    """The command line's server: print its URL, serve until SIGTERM (or Ctrl-C, as KeyboardInterrupt), then
    close cleanly (requests in flight are answered first). ``admin``: an admin application
    (:func:`edgeproxy.admin.admin_app`) served on the same host at ``admin_port``, whose URL (the inspector's) is
    printed on the next line (without one, how to enable it). ``announce``: called with the two URLs once listening,
    instead of printing them (a worker of ``serve --workers`` tells its parent); ``reuse_port``: listen with
    ``SO_REUSEPORT``."""
    listener = await Listener.start(
        app, host, port, header_timeout=header_timeout, idle_timeout=idle_timeout, reuse_port=reuse_port
    )
    control = None
    try:
        if admin is not None:
            control = await Listener.start(admin, host, admin_port)
        if announce is not None:
            announce(listener.url, None if control is None else control.url)
        else:
            print(f"edgeproxy listening on {listener.url}", flush=True)
            if control is not None:
                print(f"edgeproxy inspector on {control.url}", flush=True)  # also the admin API: /cache, /invalidations
            else:
                print(INSPECTOR_OFF, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        if control is not None:
            await control.close()
        await listener.close()
