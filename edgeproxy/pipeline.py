"""The stages of one CloudFront request, in order, and their skip rules (reference/aws-behaviour.md §2.1, §2.2).

    viewer-request -> origin-request -> origin -> origin-response -> viewer-response

* a response returned at viewer-request goes straight to the viewer: nothing else runs;
* a response returned at origin-request replaces the origin: origin-response is skipped, viewer-response runs;
* viewer-response is skipped when the response status is 400 or more.

Each stage is a small method over the request's :class:`_Flow`; a stage that does not apply records why in the
exchange's ``skipped``. The pipeline fills in the exchange's ``outcome``, or its ``error``; the server writes it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import StreamReader

from edgeproxy.config import Association, Behavior, Distribution
from edgeproxy.errors import FunctionError, ViewerError
from edgeproxy.events import cloudfront
from edgeproxy.exchange import Body, Exchange, Invocation, Observers, Outcome, XCache, tee
from edgeproxy.headers import end_to_end, is_disallowed
from edgeproxy.origin import CHUNK_SIZE, Origin, OriginResponse, RequestBody, origin_headers
from edgeproxy.rules import STRICT, Checked, Strictness, validate
from edgeproxy.runtime import Runtime
from edgeproxy.runtime.marshal import copy_json
from edgeproxy.triggers import FACTS, Trigger


class _Body:
    """The request body on its way from the viewer to the origin. It streams, except for what include-body
    associations see: its first bytes, up to the trigger's limit (§1.5: 40 KB or 1 MB), kept in memory while the rest
    streams on behind them; or the body a function replaced it with. With ``capture``, the viewer's body is also
    kept as it arrives (for observers that want bodies)."""

    def __init__(self, stream: StreamReader | None, *, capture: bool = False) -> None:
        self._stream = stream
        self._head = bytearray()  # what has been read from the stream so far
        self._complete = stream is None  # the whole body is in _head
        self._replaced: bytes | None = None
        self.viewer: bytearray | None = bytearray() if capture else None
        self._sending = False  # the origin is reading the body (through _captured) right now

    async def head(self, limit: int) -> bytes:
        """The body's first ``limit + 1`` bytes, or all of it if shorter (the extra byte tells a truncation)."""
        if self._replaced is not None:
            return self._replaced[: limit + 1]
        while not self._complete and len(self._head) <= limit:
            assert self._stream is not None
            chunk = await self._stream.read(limit + 1 - len(self._head))
            if not chunk:
                self._complete = True
            self._head += chunk
            if self.viewer is not None:
                self.viewer += chunk
        return bytes(self._head[: limit + 1])

    def replace(self, data: bytes) -> None:
        self._replaced = data

    @property
    def replacement(self) -> bytes | None:
        """The body a function put in instead of the viewer's, if one did."""
        return self._replaced

    @property
    def sent(self) -> bool:
        """Whether the origin gets a body: the viewer sent one, or a function put one in."""
        return self._stream is not None or bool(self._replaced)

    @property
    def buffered_length(self) -> int | None:
        """The body's length once it is all in memory (read whole for include-body, or replaced); None while it
        streams."""
        if self._replaced is not None:
            return len(self._replaced)
        return len(self._head) if self._complete else None

    def for_origin(self) -> RequestBody:
        if self._replaced is not None:
            return self._replaced
        if self._complete:
            return bytes(self._head)
        assert self._stream is not None
        if not self._head and self.viewer is None:
            return self._stream
        rest: AsyncIterator[bytes] = self._stream.iter_chunked(CHUNK_SIZE)
        if self.viewer is not None:
            rest = self._captured(rest, self.viewer)
        return _prepend(bytes(self._head), rest)

    async def _captured(self, rest: AsyncIterator[bytes], sink: bytearray) -> AsyncIterator[bytes]:
        self._sending = True
        try:
            async for chunk in tee(rest, sink):
                yield chunk
        finally:
            self._sending = False

    async def capture_rest(self) -> None:
        """Read what the viewer sent that nothing read: the origin was not contacted, got a replacement, or answered
        without reading it all (a folder origin refusing a POST). A body still being sent to the origin is left to
        that (it is captured as it goes)."""
        unread = self._stream is not None and not self._stream.at_eof()
        if self.viewer is not None and unread and not self._sending:
            assert self._stream is not None
            self.viewer += await self._stream.read()


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


@dataclass
class _Flow:
    """One request's working state while the stages run."""

    exchange: Exchange
    behavior: Behavior
    body: _Body
    request: dict[str, Any] = field(default_factory=dict)  # the event's request as the next trigger gets it
    viewer_side_request: dict[str, Any] = field(default_factory=dict)  # what viewer-response sees
    response: dict[str, Any] | None = None  # the event's response, once there is one
    response_body: Body = b""
    response_length: int | None = 0  # the Content-Length to send with it (None: chunked)
    # The origin's own headers go to the viewer as they came, byte for byte, unless a trigger changed the response.
    headers_changed: bool = False
    x_cache: XCache = XCache.MISS
    generated_at: Trigger | None = None

    def skip(self, stage: str, reason: str) -> None:
        self.exchange.skipped[stage] = reason

    def set_body(self, data: bytes) -> None:
        """A response body a function generated or put in (framed by its own length, whatever Content-Length the
        function set)."""
        self.response_body, self.response_length = data, len(data)


Stage = Callable[[_Flow, AsyncExitStack], Awaitable[None]]


class Pipeline:
    """Runs one distribution's behaviors for each viewer request."""

    def __init__(
        self,
        distribution: Distribution,
        runtime: Runtime,
        origin: Origin,
        *,
        via: str,
        strictness: Strictness = STRICT,
        observers: Observers | None = None,
    ) -> None:
        self.distribution = distribution
        self.runtime = runtime
        self.origin = origin
        self.via = via
        self.strictness = strictness
        self.observers = observers if observers is not None else Observers()
        # CloudFront's order (§2.1). The cache lookup will go between viewer-request and origin-request; the cache
        # store and the custom error responses between origin-response and viewer-response.
        self.stages: tuple[tuple[str, Stage], ...] = (
            ("viewer-request", self._viewer_request),
            ("origin-request", self._origin_request),
            ("origin", self._origin),
            ("origin-response", self._origin_response),
            ("viewer-response", self._viewer_response),
        )

    async def run(self, exchange: Exchange, behavior: Behavior, stack: AsyncExitStack) -> None:
        """Take ``exchange`` through the stages: its ``outcome`` is set, or its ``error``."""
        exchange.behavior = behavior.path_pattern
        body = _Body(exchange.viewer.body, capture=self.observers.wants_bodies)
        flow = _Flow(exchange, behavior, body)
        try:
            for name, stage in self.stages:
                if flow.generated_at == "viewer-request":  # §2.2: straight to the viewer, nothing else runs
                    flow.skip(name, "viewer-request generated a response")
                    continue
                started = time.time()
                try:
                    await stage(flow, stack)
                finally:
                    exchange.stages[name] = (started, time.time())
        except ViewerError as error:
            exchange.error = error
        else:
            exchange.outcome = self._outcome(flow)
        if body.viewer is not None:
            await body.capture_rest()
            exchange.request_body = body.viewer
            if exchange.origin_request is not None:
                replacement = body.replacement
                exchange.origin_request_body = body.viewer if replacement is None else bytearray(replacement)

    async def _viewer_request(self, flow: _Flow, stack: AsyncExitStack) -> None:
        viewer = flow.exchange.viewer
        flow.request = dict(
            cloudfront.request_record(
                client_ip=viewer.client_ip,
                method=viewer.method,
                uri=viewer.uri,
                querystring=viewer.querystring,
                headers=((name, value) for name, value in end_to_end(viewer.headers) if not is_disallowed(name)),
            )
        )
        await self._request_trigger(flow, "viewer-request")

    async def _origin_request(self, flow: _Flow, stack: AsyncExitStack) -> None:
        flow.viewer_side_request = {key: value for key, value in flow.request.items() if key not in ("body", "origin")}
        request = cloudfront.toward_origin(
            flow.request, flow.behavior.origin, client_ip=flow.exchange.viewer.client_ip, via=self.via
        )
        flow.request = dict(request)
        await self._request_trigger(flow, "origin-request")

    async def _origin(self, flow: _Flow, stack: AsyncExitStack) -> None:
        if flow.generated_at is not None:
            flow.skip("origin", f"{flow.generated_at} generated a response")
            return
        exchange = flow.exchange
        capture = self.observers.wants_bodies
        request = cloudfront.origin_request(
            flow.request,
            method=exchange.viewer.method,
            request_id=exchange.id,
            body=flow.body.for_origin() if flow.body.sent else None,
            content_length=flow.body.buffered_length,
        )
        exchange.origin_request = request
        exchange.origin_started = time.time()
        started = time.perf_counter()
        fetched = await self.origin.fetch(request, stack)
        exchange.origin_duration = time.perf_counter() - started
        exchange.origin_response = fetched
        if self.observers.any:
            self.observers.origin_done(exchange)
        flow.x_cache = XCache.MISS if fetched.status < 400 else XCache.ERROR
        flow.response = dict(
            cloudfront.response_record(
                status=fetched.status,
                reason=fetched.reason,
                headers=((name, value) for name, value in fetched.headers.items() if not is_disallowed(name)),
            )
        )
        flow.response_body, flow.response_length = fetched.body, _announced_length(fetched)
        if capture:
            exchange.origin_body = bytearray()
            if isinstance(fetched.body, bytes):
                exchange.origin_body += fetched.body
            else:
                flow.response_body = tee(fetched.body, exchange.origin_body)

    async def _origin_response(self, flow: _Flow, stack: AsyncExitStack) -> None:
        if flow.generated_at is not None:
            flow.skip("origin-response", f"{flow.generated_at} generated a response")
            return
        request_seen = {key: value for key, value in flow.request.items() if key != "body"}
        await self._response_trigger(flow, "origin-response", request_seen)

    async def _viewer_response(self, flow: _Flow, stack: AsyncExitStack) -> None:
        assert flow.response is not None
        status = int(flow.response["status"])
        if status >= 400:  # §2.1: also when origin-response made it 400 or more
            flow.skip("viewer-response", f"the response status is {status} (400 or more)")
            return
        await self._response_trigger(flow, "viewer-response", flow.viewer_side_request)

    async def _request_trigger(self, flow: _Flow, trigger: Trigger) -> None:
        association = flow.behavior.functions.get(trigger)
        if association is None:
            flow.skip(trigger, "no function is associated")
            return
        checked = await self._invoke(flow, trigger, association, flow.request, None)
        if checked.kind == "response":
            flow.generated_at = trigger
            flow.x_cache = XCache.LAMBDA_GENERATED
            flow.response = checked.value
            flow.set_body(cloudfront.body_bytes(checked.value) or b"")
            flow.headers_changed = True
            return
        flow.request = checked.value
        spec = checked.value.get("body")
        if isinstance(spec, dict) and spec.get("action") == "replace":
            # §1.5: read-only (the default) leaves the origin the full original body whatever the handler did.
            data = spec.get("data", "")
            encoded = spec.get("encoding", "base64") == "base64"
            flow.body.replace(base64.b64decode(data) if encoded else data.encode("utf-8"))

    async def _response_trigger(self, flow: _Flow, trigger: Trigger, request: dict[str, Any]) -> None:
        association = flow.behavior.functions.get(trigger)
        if association is None:
            flow.skip(trigger, "no function is associated")
            return
        checked = await self._invoke(flow, trigger, association, request, flow.response)
        flow.response = checked.value
        if not checked.changed:
            return  # the response goes on as it was, the origin's headers as they came
        flow.headers_changed = True
        replaced = cloudfront.body_bytes(checked.value)
        if replaced is not None:
            flow.set_body(replaced)

    async def _invoke(
        self,
        flow: _Flow,
        trigger: Trigger,
        association: Association,
        request: dict[str, Any],
        response: dict[str, Any] | None,
    ) -> Checked:
        """Invoke the function associated with ``trigger``, validate what it returns, and record the invocation."""
        exchange = flow.exchange
        function = self.runtime.load(association)
        request = dict(request)
        # §1.3: request.body only for associations with Include Body, and for methods that carry a body.
        if association.include_body and FACTS[trigger].include_body and exchange.viewer.method not in ("GET", "HEAD"):
            limit = FACTS[trigger].size_limit
            request["body"] = dict(cloudfront.body_record(await flow.body.head(limit), limit))
        else:
            request.pop("body", None)
        event = cloudfront.build_event(
            trigger=trigger,
            request_id=exchange.id,
            domain_name=self.distribution.domain_name,
            distribution_id=self.distribution.id,
            request=request,  # type: ignore[arg-type]
            response=response,  # type: ignore[arg-type]
        )
        # Handlers mutate the event in place: what it was before, to compare the result with (and, for observers, the
        # whole event as the handler got it; the one copy serves both).
        event_in = copy_json(event) if self.observers.any else None
        if event_in is None:
            before = copy_json((request, response))
        else:
            cf = event_in["Records"][0]["cf"]
            before = (cf["request"], cf.get("response"))
        started_at = time.time()
        started = time.perf_counter()
        result: Any = None
        error: ViewerError | None = None
        changed = True
        try:
            try:
                returned = (
                    await self.runtime.invoke_result(
                        function,
                        event,
                        trigger=trigger,
                        seconds=association.timeout,
                        memory=association.memory,
                        unchanged=before[0] if response is None else before[1],
                    )
                ).value
            except FunctionError as exc:
                raise ViewerError.of(exc) from None
            finally:
                duration = time.perf_counter() - started
            result = returned
            checked = validate(trigger, before, returned, self.strictness, handler=function.ref)
            # Recorded as CloudFront received it (JSON, missing keys filled in), and as it was then: the next trigger's
            # handler gets the same object and may change it in place. A result unchanged is what the event held.
            changed = checked.changed
            if not changed:
                result = before[0] if response is None else before[1]
            else:
                result = copy_json(checked.value) if self.observers.any else checked.value
        except ViewerError as exc:
            error = exc
            raise
        finally:
            invocation = Invocation(
                exchange.id, trigger, function.ref, event_in, result, duration, error, started_at, changed
            )
            exchange.invocations.append(invocation)
            if self.observers.any:
                self.observers.trigger_done(exchange, invocation)
        return checked

    def _outcome(self, flow: _Flow) -> Outcome:
        response = flow.response
        assert response is not None
        origin_response = flow.exchange.origin_response
        if flow.headers_changed or origin_response is None:
            headers = origin_headers(cloudfront.to_wire_headers(response["headers"]))
        else:
            headers = origin_headers(origin_response.headers)
        return Outcome(
            status=int(response["status"]),
            reason=response.get("statusDescription"),
            headers=headers,
            body=flow.response_body,
            length=flow.response_length,
            x_cache=flow.x_cache,
            generated=flow.generated_at is not None,
        )


def _announced_length(fetched: OriginResponse) -> int | None:
    """The Content-Length to send with the origin's body: the origin's own (for HEAD and 304, the length of the body
    a GET would get, RFC 9110 §8.6), or that of a body in memory; ``None`` (chunked) when it streams without one."""
    announced = fetched.headers.get("Content-Length", "")
    if announced.isascii() and announced.isdigit():
        return int(announced)
    return len(fetched.body) if isinstance(fetched.body, bytes) else None
