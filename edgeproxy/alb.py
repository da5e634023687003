"""The ALB facade: an aiohttp application that answers like an Application Load Balancer in front of one Lambda
target (reference/aws-behaviour.md §7), and the target group's health checker.

client request -> the load balancer's own checks (TRACE, WebSocket, header and body limits) -> event
(:mod:`edgeproxy.events.alb`) -> the target, through the same :class:`~edgeproxy.runtime.Runtime` as the CloudFront
mode -> validated result -> response with ``Server: awselb/2.0``. Every :class:`~edgeproxy.errors.AlbError` becomes
ALB's small HTML error page and one log line naming the precise reason; a handler's traceback never reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import HttpVersion10, web
from multidict import CIMultiDict

from edgeproxy import serving
from edgeproxy.config import TargetGroup
from edgeproxy.errors import AlbError, ConfigError, FunctionError, ViewerBodyTimeout
from edgeproxy.events import alb as alb_events
from edgeproxy.exchange import Exchange, Invocation, Observer, Observers, Outcome, ViewerRequest
from edgeproxy.headers import SET_BY_ALB
from edgeproxy.listener import HEAD_TIMEOUT_ANSWER, REJECT, TIMEOUTS, Timeouts
from edgeproxy.runtime import Function, Runtime
from edgeproxy.runtime.marshal import copy_json, json_bytes

log = logging.getLogger("edgeproxy")

SERVER = "awselb/2.0"
MAX_REQUEST_BODY_BYTES = 1024 * 1024  # §7.3: over 1 MB -> 413 LambdaRequestTooLarge, function not invoked
MAX_LINE_BYTES = 16 * 1024  # §7.3: request line and each header (aiohttp's parser answers 400 past them)
MAX_HEADER_BYTES = 64 * 1024  # §7.3: the whole request header -> 400
MAX_FORWARDED_FOR = 30  # §7.3: more addresses in X-Forwarded-For -> 463
# §7.7, request tracing: "If the HTTP headers are greater than 7 KB, the load balancer rewrites the X-Amzn-Trace-Id
# header with a Root field": the request's headers in all, as they came (each "Name: value\r\n").
MAX_TRACE_HEADER_BYTES = 7 * 1024
IDLE_TIMEOUT = 60.0  # the load balancer's connection idle timeout (attribute idle_timeout.timeout_seconds), by default
TRACE_ROOT = re.compile(r"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}")


def new_trace_id() -> str:
    """An X-Ray trace id: ``1-<8 hex: epoch seconds>-<24 hex>`` (§7.7)."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def header_bytes(raw_headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The size of a request's header lines, each ``Name: value`` with its CRLF."""
    return sum(len(name) + len(value) + 4 for name, value in raw_headers)


def trace_header(given: str | None, header_bytes: int = 0) -> str:
    """The ``X-Amzn-Trace-Id`` the load balancer forwards (§7.7), given the client's and the size of the request's
    headers (``header_bytes``). Absent, invalid (no valid ``Root``), or with headers over 7 KB: a new ``Root``. A
    valid ``Root``: ``Self=...;`` is inserted in front and every other field kept; an existing ``Self`` is updated in
    place instead."""
    if given is None or max(header_bytes, len(given.encode())) > MAX_TRACE_HEADER_BYTES:
        return f"Root={new_trace_id()}"
    fields = [part.strip() for part in given.split(";") if part.strip()]
    values = dict(part.partition("=")[::2] for part in fields)
    if not TRACE_ROOT.fullmatch(values.get("Root", "")):
        return f"Root={new_trace_id()}"
    own = f"Self={new_trace_id()}"
    if "Self" in values:
        return ";".join(own if part.startswith("Self=") else part for part in fields)
    return ";".join([own, *fields])


@dataclass
class Target:
    """The target group's one Lambda function, loaded and kept warm by the shared runtime."""

    group: TargetGroup
    runtime: Runtime
    function: Function
    observers: Observers = field(default_factory=Observers)

    async def respond(self, event: alb_events.Event, exchange: Exchange | None = None) -> alb_events.TargetResponse:
        """Invoke and validate: the target's response as wire values, or an :class:`AlbError` (a crash or a timeout
        is 502 ``LambdaUnhandled``, §7.5). The invocation is recorded on ``exchange``, and told to the observers."""
        # For observers, the event as the target got it: the JSON an environment is sent (encoded once, parsed only
        # if one reads it; see Pipeline._invoke), or a copy for one in the proxy's process (it may change the event).
        sent: Any = event
        event_in: Any = None
        if exchange is not None and self.observers.any:
            if self.function.isolated and (encoded := json_bytes(event)) is not None:
                event_in, sent = encoded, orjson.Fragment(encoded)
            else:
                event_in = copy_json(event)
        started_at = time.time()
        started = time.perf_counter()
        result: Any = None
        error: AlbError | None = None
        try:
            try:
                returned = await self.runtime.invoke_result(
                    self.function,
                    sent,
                    trigger="alb",
                    seconds=self.group.target.timeout,
                    memory=self.group.target.memory,
                )
            except FunctionError as exc:
                raise AlbError.of(exc) from None
            finally:
                duration = time.perf_counter() - started
            result = returned.value
            return alb_events.read_result(
                result, size=returned.size, multi_value=self.group.multi_value_headers, target=self.function.ref
            )
        except AlbError as exc:
            error = exc
            raise
        finally:
            if exchange is not None:
                invocation = Invocation(
                    exchange.id, "alb", self.function.ref, event_in, result, duration, error, started_at
                )
                exchange.invocations.append(invocation)
                if self.observers.any:
                    self.observers.trigger_done(exchange, invocation)


TARGET = web.AppKey("alb_target", Target)


class HealthChecker:
    """ALB's health checks of the target (§7.6), on the configured interval, with the target's health in the log.

    The target starts ``initial``; one passing check makes it ``healthy``. ``unhealthy_threshold`` consecutive
    failures (an unmatched status, an error, an invalid response, or no answer within ``timeout``) make it
    ``unhealthy``; ``healthy_threshold`` consecutive passes make it ``healthy`` again. As on AWS with a single target,
    requests are routed whatever its health (ALB fails open).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.settings = target.group.health_check
        self.state = "initial"
        self.checks = 0
        self._passes = 0
        self._failures = 0
        self._running = False

    async def probe(self) -> str | None:
        """One health check: ``None`` when it passes, otherwise why it failed."""
        event = alb_events.health_check_event(
            target_group_arn=self.target.group.arn,
            path=self.settings.path,
            multi_value=self.target.group.multi_value_headers,
        )
        try:
            async with asyncio.timeout(self.settings.timeout):
                response = await self.target.respond(event)
        except TimeoutError:
            return f"no response within the health check timeout ({self.settings.timeout:g} s)"
        except AlbError as error:
            return f"{error.error_reason}: {error.reason}"
        if not self.settings.matches(response.status):
            return f"status {response.status} does not match the success codes {self.settings.matcher!r}"
        return None

    def record(self, failure: str | None) -> None:
        """Count one check's outcome and log the target's health when it changes."""
        self.checks += 1
        name = self.target.function.ref
        if failure is None:
            self._passes += 1
            self._failures = 0
            if self.state == "initial" or (
                self.state == "unhealthy" and self._passes >= self.settings.healthy_threshold
            ):
                log.info("health: target %s is healthy (was %s): %d passing check(s)", name, self.state, self._passes)
                self.state = "healthy"
            return
        self._failures += 1
        self._passes = 0
        log.warning("health: check of target %s failed (%d in a row): %s", name, self._failures, failure)
        if self.state != "unhealthy" and self._failures >= self.settings.unhealthy_threshold:
            log.warning(
                "health: target %s is unhealthy (was %s) after %d failed checks", name, self.state, self._failures
            )
            self.state = "unhealthy"

    async def run(self) -> None:
        """Check now, then every ``interval`` seconds (start to start), until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        self._running = True
        while self._running:
            started = loop.time()
            try:
                failure = await self.probe()
            except Exception as exc:  # never let one odd check stop the checker
                log.exception("health: check of target %s failed inside edgeproxy", self.target.function.ref)
                failure = f"internal error: {exc}"
            self.record(failure)
            if self._running:
                await asyncio.sleep(max(0.0, self.settings.interval - (loop.time() - started)))

    def stop(self) -> None:
        """End :meth:`run` after the current check. (Cancel its task too: the flag covers a cancellation that an
        ``asyncio.wait_for`` finishing at the same moment swallows, which Python 3.11 can do.)"""
        self._running = False


HEALTH = web.AppKey("alb_health", HealthChecker)


def error_page(status: int) -> bytes:
    """ALB's own error page: a small nginx-style HTML page (§7.5)."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _error_outcome(status: int) -> Outcome:
    headers = CIMultiDict({"Server": SERVER, "Date": formatdate(usegmt=True), "Content-Type": "text/html"})
    return Outcome(status, None, headers, error_page(status), generated=True)


def _raw_error(status: int) -> bytes:
    """The load balancer's error response as bytes on the wire (for a connection with no request to answer)."""
    body = error_page(status)
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: {SERVER}\r\nDate: {formatdate(usegmt=True)}\r\n"
    head += f"Content-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def _check_request(request: web.Request, path: str, size: int) -> None:
    """What the load balancer refuses before any invocation (§7.3); ``size`` is that of its header lines."""
    if request.version < HttpVersion10:  # aiohttp parses "GET /" as HTTP/0.9, which has no headers, no Host
        raise AlbError(400, None, "an HTTP/0.9 request")
    if not serving.is_path(path):
        raise AlbError(400, None, f"the request target {request.raw_path!r} is not a path")
    if request.method == "TRACE":
        raise AlbError(405, None, "the load balancer does not allow TRACE")
    if "websocket" in request.headers.get("Upgrade", "").lower():
        raise AlbError(400, "LambdaWebsocketNotSupported", "a WebSocket upgrade to a Lambda target")
    if size > MAX_HEADER_BYTES:
        raise AlbError(400, None, f"the request headers are {size} bytes (limit {MAX_HEADER_BYTES})")
    for name, value in request.raw_headers:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            # §7.3: non-UTF-8 headers are LambdaBadRequest; the status is not documented (§10 item 13), 400 is ours.
            raise AlbError(400, "LambdaBadRequest", f"header {name.decode('latin-1')!r} is not UTF-8") from None
    forwarded = [part for value in request.headers.getall("X-Forwarded-For", ()) for part in value.split(",")]
    if len(forwarded) > MAX_FORWARDED_FOR:
        raise AlbError(463, None, f"X-Forwarded-For has {len(forwarded)} addresses (limit {MAX_FORWARDED_FOR})")


async def _read_body(request: web.Request) -> bytes:
    """The whole request body; over 1 MB is a 413 before the function is invoked (§7.3)."""
    if request.content_length is not None and request.content_length > MAX_REQUEST_BODY_BYTES:
        raise AlbError(
            413,
            "LambdaRequestTooLarge",
            f"the request body is {request.content_length} bytes (limit {MAX_REQUEST_BODY_BYTES})",
        )
    chunks = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > MAX_REQUEST_BODY_BYTES:
                raise AlbError(
                    413, "LambdaRequestTooLarge", f"the request body is over {MAX_REQUEST_BODY_BYTES} bytes (chunked)"
                )
            chunks.append(chunk)
    except ViewerBodyTimeout as stalled:
        # "HTTP 408: Request timeout. The client did not send data before the idle timeout period expired."
        # (load-balancer-troubleshooting.html#http-408-issues)
        raise AlbError(408, None, str(stalled)) from None
    return b"".join(chunks)


def _forwarded_headers(request: web.Request, trace: str) -> list[tuple[str, str]]:
    local = serving.local_address(request)
    return forwarded_headers(
        request.headers.items(),
        client_ip=request.remote or "127.0.0.1",
        port=local[1] if local is not None else (request.url.port or 80),
        proto=request.scheme,
        trace=trace,
    )


def forwarded_headers(
    headers: Iterable[tuple[str, str]], *, client_ip: str, port: int, proto: str, trace: str
) -> list[tuple[str, str]]:
    """The client's headers, then the ones the load balancer sets (§7.7): the trace id, ``X-Forwarded-For``
    appended with ``", "``, the listener port and the client's protocol."""
    received = list(headers)
    given = ", ".join(value.strip() for name, value in received if name.lower() == "x-forwarded-for" and value.strip())
    forwarded = [(name, value) for name, value in received if name.lower() not in SET_BY_ALB]
    forwarded += [
        ("x-amzn-trace-id", trace),
        ("x-forwarded-for", f"{given}, {client_ip}" if given else client_ip),
        ("x-forwarded-port", str(port)),
        ("x-forwarded-proto", proto),
    ]
    return forwarded


def _outcome(response: alb_events.TargetResponse) -> Outcome:
    headers: CIMultiDict[str] = CIMultiDict({"Server": SERVER, "Date": formatdate(usegmt=True)})
    # The function's own Server or Date replaces the load balancer's (inferred: as for instance targets).
    for name in {name.lower() for name in response.headers} & {"server", "date"}:
        del headers[name]
    headers.extend(response.headers)
    return Outcome(status=response.status, reason=response.reason, headers=headers, body=response.body)


async def _write(
    request: web.Request, exchange: Exchange, outcome: Outcome, observers: Observers
) -> web.StreamResponse:
    out = web.StreamResponse(status=outcome.status, reason=outcome.reason or None, headers=outcome.headers)
    out.content_length = outcome.length  # §7.4: computed by the load balancer
    return await serving.send(
        request,
        out,
        outcome.body,
        exchange,
        observers,
        # RFC 9110 §6.4.1: no content after HEAD, 204 or 304, whatever body the function returned (as for CloudFront).
        empty=request.method == "HEAD" or outcome.status in (204, 304),
        internal_error=lambda: serving.as_response(_error_outcome(502)),
    )


async def handle(request: web.Request) -> web.StreamResponse:
    """The one client-facing route."""
    target = request.app[TARGET]
    observers = target.observers
    group = target.group
    size = header_bytes(request.raw_headers)
    trace = trace_header(request.headers.get("X-Amzn-Trace-Id"), size)
    path, querystring = serving.request_target(request)
    viewer = ViewerRequest(
        client_ip=request.remote or "127.0.0.1",
        method=request.method,
        uri=path,
        querystring=querystring,
        headers=request.headers,
        body=None,  # read whole: the event carries it
        http_version=f"{request.version.major}.{request.version.minor}",
        local_address=serving.local_address(request),
        client_port=serving.client_port(request),
    )
    exchange = Exchange(trace, "alb", viewer)
    try:
        try:
            _check_request(request, path, size)
            body = await _read_body(request)
            if observers.wants_bodies:
                exchange.request_body = bytearray(body)
            event = alb_events.build_event(
                target_group_arn=group.arn,
                method=request.method,
                path=path,
                querystring=querystring,
                headers=_forwarded_headers(request, trace),
                body=body,
                multi_value=group.multi_value_headers,
            )
            response = await target.respond(event, exchange)
        except AlbError as error:
            exchange.error = error
            serving.log_failure(trace, request, error.status, error.error_reason or "-", error.reason)
            return await _write(request, exchange, _error_outcome(error.status), observers)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            serving.log_internal_error(trace, request)
            exchange.error = AlbError(502, None, "internal error in edgeproxy (see its log)")
            return await _write(request, exchange, _error_outcome(502), observers)
        if response.ignored is not None:
            mode = "enabled" if group.multi_value_headers else "disabled"
            log.warning(
                "%s %s %s: %s returned '%s', which the load balancer ignores with multi-value headers %s",
                trace,
                request.method,
                request.raw_path,
                target.function.ref,
                response.ignored,
                mode,
            )
        exchange.outcome = _outcome(response)
        return await _write(request, exchange, exchange.outcome, observers)
    finally:
        if observers.any and exchange.finished is None:  # not told yet: the response did not get out whole
            observers.exchange_done(exchange)


def create_app(
    group: TargetGroup,
    *,
    runtime: Runtime | None = None,
    reload: bool = False,
    observers: Iterable[Observer] = (),
) -> web.Application:
    """The aiohttp application answering as a load balancer in front of ``group``'s function. Loads the function now,
    so that a missing handler stops start-up with a :class:`~edgeproxy.errors.ConfigError`; starts the health checker
    when the group enables health checks, and the source watcher when ``reload``. ``observers`` are attached from the
    start (more may attach later, to ``app[serving.OBSERVERS]``)."""
    own_runtime = runtime is None
    runtime = runtime or Runtime(idle_reclaim=group.idle_reclaim)
    try:
        function = runtime.load(group.target, edge=False)
    except ConfigError:
        if own_runtime:
            runtime.close()
        raise
    target = Target(group=group, runtime=runtime, function=function, observers=Observers(*observers))
    checker = HealthChecker(target)
    # §7.3 limits lines and the header's total size, not the number of headers: as many as fit in 64 K get through.
    app = serving.application(handle, max_line_size=MAX_LINE_BYTES, max_headers=MAX_HEADER_BYTES // len("a:\r\n"))
    app[TARGET] = target
    app[HEALTH] = checker
    app[serving.OBSERVERS] = target.observers
    app[REJECT] = lambda status, reason: serving.as_response(_error_outcome(status))  # the parser refused it
    app[TIMEOUTS] = Timeouts(idle=IDLE_TIMEOUT)
    # "HTTP 408: The client did not send data before the idle timeout period expired": a stalled head too.
    app[HEAD_TIMEOUT_ANSWER] = lambda: _raw_error(408)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        tasks = []
        if reload:
            tasks.append(asyncio.create_task(runtime.watch()))
        if group.health_check.enabled:
            tasks.append(asyncio.create_task(checker.run()))
        mode = "multi-value" if group.multi_value_headers else "single-value"
        checks = "on" if group.health_check.enabled else "off"
        log.info(
            "ALB target group %s -> %s (%s headers, health checks %s)", group.arn, target.function.ref, mode, checks
        )
        yield
        checker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runtime.close()

    app.cleanup_ctx.append(lifecycle)
    return app
