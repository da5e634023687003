"""The ordered trigger sequence of one viewer request, and its skip rules (reference/aws-behaviour.md §2.1, §2.2).

viewer-request -> [origin-request -> origin -> origin-response] -> viewer-response

* a response returned at viewer-request goes straight to the viewer: nothing else runs;
* a response returned at origin-request replaces the origin: origin-response is skipped, viewer-response runs;
* viewer-response is skipped when the response status is 400 or more.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy

from edgeproxy.config import Association, Behavior, Distribution, Origin, Trigger
from edgeproxy.errors import ViewerError
from edgeproxy.events import cloudfront
from edgeproxy.origin import CHUNK_SIZE, OriginClient, OriginResponse, RequestBody, origin_headers
from edgeproxy.rules import (
    STRICT,
    Checked,
    Strictness,
    copy_json,
    is_disallowed,
    size_limit,
    validate,
)
from edgeproxy.runtime import Invocation, Observer, Runtime
from edgeproxy.wire import HOP_BY_HOP, end_to_end

log = logging.getLogger("edgeproxy")

# §4.1: never forwarded to the origin, whatever the configuration.
REMOVED_TOWARD_ORIGIN = (
    frozenset(
        {
            "expect",
            "proxy-authenticate",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
            "x-forwarded-proto",
            "x-http-method-override",
            "x-real-ip",
        }
    )
    | HOP_BY_HOP
)
CLOUDFRONT_USER_AGENT = "Amazon CloudFront"


@dataclass(frozen=True)
class ViewerRequest:
    """A viewer's request as CloudFront received it. ``uri`` and ``querystring`` are raw (still percent-encoded)."""

    request_id: str
    client_ip: str
    method: str
    uri: str
    querystring: str
    headers: CIMultiDictProxy[str] | CIMultiDict[str]
    body: StreamReader | None
    http_version: str = "1.1"


@dataclass(frozen=True)
class Content:
    """A response body and the ``Content-Length`` the proxy sends with it: the length of the bytes when a function
    generated or replaced them, the origin's own ``Content-Length`` while the origin's body streams through (``None``
    when the origin sent none: chunked). Framing is the proxy's, whatever ``Content-Length`` a function set."""

    body: bytes | AsyncIterator[bytes]
    length: int | None

    @classmethod
    def of(cls, data: bytes) -> Content:
        return cls(data, len(data))

    @classmethod
    def from_origin(cls, fetched: OriginResponse) -> Content:
        # For HEAD (and 304) this is the length of the body a GET would get (RFC 9110 §8.6), not of what is sent.
        announced = fetched.headers.get("Content-Length", "")
        if announced.isascii() and announced.isdigit():
            return cls(fetched.body, int(announced))
        return cls(fetched.body, len(fetched.body) if isinstance(fetched.body, bytes) else None)


@dataclass
class Outcome:
    """What goes back to the viewer (before CloudFront's own response headers are added). ``length`` is the
    ``Content-Length`` to send (``None``: chunked); any ``Content-Length`` in ``headers`` is ignored."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes | AsyncIterator[bytes]
    length: int | None
    x_cache: str
    generated: bool = False


class _Body:
    """The request body on its way from the viewer to the origin. It streams, except for what include-body
    associations see: its first bytes, up to the trigger's limit (§1.5: 40 KB or 1 MB), kept in memory while the rest
    streams on behind them; or the body a function replaced it with."""

    def __init__(self, stream: StreamReader | None) -> None:
        self._stream = stream
        self._head = bytearray()  # what has been read from the stream so far
        self._complete = stream is None  # the whole body is in _head
        self._replaced: bytes | None = None

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
        return bytes(self._head[: limit + 1])

    def replace(self, data: bytes) -> None:
        self._replaced = data

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
        if not self._head:
            return self._stream
        return self._rest(bytes(self._head))

    async def _rest(self, head: bytes) -> AsyncIterator[bytes]:
        assert self._stream is not None
        self._head = bytearray()  # no second copy while the rest streams
        yield head
        async for chunk in self._stream.iter_chunked(CHUNK_SIZE):
            yield chunk


def toward_origin(request: dict[str, Any], origin: Origin, *, client_ip: str, via: str) -> dict[str, Any]:
    """The request as CloudFront sends it to the origin, which is what origin-request sees (§1.4, §4.1): viewer
    headers less those never forwarded, ``Host`` set to the origin, ``User-Agent: Amazon CloudFront``, CloudFront's
    ``Via`` hop and the client address appended to ``X-Forwarded-For`` (comma, no space)."""
    headers = [
        (cloudfront.wire_name(name, entry), entry["value"])
        for name, entries in request["headers"].items()
        if name not in REMOVED_TOWARD_ORIGIN
        and not name.startswith("x-edge-")
        and name not in ("host", "user-agent", "via", "x-forwarded-for")
        for entry in entries
    ]
    incoming_via = ", ".join(entry["value"] for entry in request["headers"].get("via", ()))
    incoming_xff = ",".join(entry["value"] for entry in request["headers"].get("x-forwarded-for", ()))
    headers += [
        ("Host", origin.domain_name),
        ("User-Agent", CLOUDFRONT_USER_AGENT),
        ("Via", f"{incoming_via}, {via}" if incoming_via else via),
        ("X-Forwarded-For", f"{incoming_xff},{client_ip}" if incoming_xff else client_ip),
    ]
    result: dict[str, Any] = {
        "clientIp": request["clientIp"],
        "headers": cloudfront.to_event_headers(headers),
        "method": request["method"],
        "origin": cloudfront.origin_record(origin),
        "querystring": request.get("querystring", ""),
        "uri": request["uri"],
    }
    if "body" in request:
        result["body"] = request["body"]
    return result


def _kept_description_of_other_status(result: dict[str, Any], given: dict[str, Any] | None) -> bool:
    return (
        given is not None
        and str(result.get("status")) != given.get("status")
        and result.get("statusDescription") == given.get("statusDescription")
    )


class Pipeline:
    """Runs one distribution's behaviors for each viewer request."""

    def __init__(
        self,
        distribution: Distribution,
        runtime: Runtime,
        origins: OriginClient,
        *,
        via: str,
        strictness: Strictness = STRICT,
        observer: Observer | None = None,
    ) -> None:
        self.distribution = distribution
        self.observer = observer
        self.runtime = runtime
        self.origins = origins
        self.via = via
        self.strictness = strictness

    async def run(self, viewer: ViewerRequest, behavior: Behavior, stack: AsyncExitStack) -> Outcome:
        body = _Body(viewer.body)
        request: dict[str, Any] = dict(
            cloudfront.request_record(
                client_ip=viewer.client_ip,
                method=viewer.method,
                uri=viewer.uri,
                querystring=viewer.querystring,
                headers=((name, value) for name, value in end_to_end(viewer.headers) if not is_disallowed(name)),
            )
        )
        if association := behavior.functions.get("viewer-request"):
            checked = await self._trigger(viewer, "viewer-request", association, request, None, body)
            if checked.kind == "response":
                return self._generated(checked.value)
            request = checked.value

        viewer_side_request = {key: value for key, value in request.items() if key not in ("body", "origin")}
        origin_request = toward_origin(request, behavior.origin, client_ip=viewer.client_ip, via=self.via)
        response, content, x_cache = await self._origin_side(viewer, behavior, origin_request, body, stack)

        if (association := behavior.functions.get("viewer-response")) and int(response["status"]) < 400:
            checked = await self._trigger(viewer, "viewer-response", association, viewer_side_request, response, body)
            response = checked.value
            content = self._replaced(response, content)
        return self._outcome(response, content, x_cache)

    async def _origin_side(
        self,
        viewer: ViewerRequest,
        behavior: Behavior,
        request: dict[str, Any],
        body: _Body,
        stack: AsyncExitStack,
    ) -> tuple[dict[str, Any], Content, str]:
        """origin-request, the origin (unless replaced by a generated response), origin-response."""
        if association := behavior.functions.get("origin-request"):
            checked = await self._trigger(viewer, "origin-request", association, request, None, body)
            if checked.kind == "response":
                generated = checked.value
                return generated, Content.of(cloudfront.body_bytes(generated) or b""), "LambdaGeneratedResponse"
            request = checked.value

        headers = cloudfront.to_wire_headers(request["headers"])
        spec = next(iter(request["origin"].values()))
        headers.extend(cloudfront.to_wire_headers(spec.get("customHeaders", {})))
        headers["X-Amz-Cf-Id"] = viewer.request_id
        if (length := body.buffered_length) is not None and (length or "Content-Length" in headers):
            headers["Content-Length"] = str(length)
        fetched = await self.origins.fetch(
            origin=request["origin"],
            method=viewer.method,
            uri=request["uri"],
            querystring=request.get("querystring", ""),
            headers=headers,
            body=body.for_origin() if viewer.body is not None or body.buffered_length else None,
            stack=stack,
        )
        x_cache = "Miss" if fetched.status < 400 else "Error"
        wire_headers = origin_headers(fetched.headers)
        response: dict[str, Any] = {"_wire": wire_headers}
        response.update(
            cloudfront.response_record(
                status=fetched.status,
                reason=fetched.reason,
                headers=((name, value) for name, value in fetched.headers.items() if not is_disallowed(name)),
            )
        )
        content = Content.from_origin(fetched)
        if association := behavior.functions.get("origin-response"):
            request_seen = {key: value for key, value in request.items() if key != "body"}
            checked = await self._trigger(viewer, "origin-response", association, request_seen, response, body)
            response = checked.value
            content = self._replaced(response, content)
        return response, content, x_cache

    async def _trigger(
        self,
        viewer: ViewerRequest,
        trigger: Trigger,
        association: Association,
        request: dict[str, Any],
        response: dict[str, Any] | None,
        body: _Body,
    ) -> Checked:
        """Invoke the function associated with ``trigger`` and validate what it returns."""
        function = self.runtime.load(association)
        request = dict(request)
        # §1.3: request.body only for associations with Include Body, and for methods that carry a body.
        carries_body = viewer.method not in ("GET", "HEAD")
        if association.include_body and carries_body and trigger in ("viewer-request", "origin-request"):
            request["body"] = await self._body_for_event(trigger, body)
        else:
            request.pop("body", None)
        event_response = None if response is None else {k: v for k, v in response.items() if k != "_wire"}
        event = cloudfront.build_event(
            trigger=trigger,
            request_id=viewer.request_id,
            domain_name=self.distribution.domain_name,
            distribution_id=self.distribution.id,
            request=request,  # type: ignore[arg-type]
            response=event_response,  # type: ignore[arg-type]
        )
        before = copy_json((request, event_response))  # handlers mutate the event in place
        event_in = copy_json(event) if self.observer is not None else None
        started = time.perf_counter()
        result: Any = None
        error: ViewerError | None = None
        try:
            try:
                result = await self.runtime.invoke(
                    function, event, trigger=trigger, seconds=association.timeout, memory=association.memory
                )
            finally:
                duration = time.perf_counter() - started
            checked = validate(trigger, before, result, self.strictness, handler=function.ref)
            result = checked.value  # recorded as CloudFront received it: JSON, with missing keys filled in
        except ViewerError as exc:
            error = exc
            raise
        finally:
            if self.observer is not None:
                self.observer(
                    Invocation(
                        request_id=viewer.request_id,
                        trigger=trigger,
                        handler=function.ref,
                        event=event_in,
                        result=result,
                        duration=duration,
                        error=error,
                    )
                )
        if response is not None and not checked.changed:
            return replace(checked, value=response)  # keeps the origin's wire headers as they came
        if response is not None and _kept_description_of_other_status(checked.value, before[1]):
            # The origin's reason phrase belongs to the origin's status: a new status without a new
            # statusDescription gets its standard phrase (not "200 Internal Server Error").
            checked.value.pop("statusDescription", None)
        if checked.kind == "request":
            await self._apply_request_body(checked.value, body)
        return checked

    async def _body_for_event(self, trigger: Trigger, body: _Body) -> dict[str, Any]:
        """``request.body`` for include-body associations: base64, truncated at the trigger's limit (§1.5)."""
        limit = size_limit(trigger)
        return dict(cloudfront.body_record(await body.head(limit), limit))

    @staticmethod
    async def _apply_request_body(request: dict[str, Any], body: _Body) -> None:
        spec = request.get("body")
        if not isinstance(spec, dict) or spec.get("action") != "replace":
            return  # read-only: the origin gets the full original body whatever the handler did
        data = spec.get("data", "")
        body.replace(base64.b64decode(data) if spec.get("encoding", "base64") == "base64" else data.encode("utf-8"))

    @staticmethod
    def _replaced(response: dict[str, Any], current: Content) -> Content:
        replaced = cloudfront.body_bytes(response)
        return current if replaced is None else Content.of(replaced)

    def _generated(self, response: dict[str, Any]) -> Outcome:
        return self._outcome(response, Content.of(cloudfront.body_bytes(response) or b""), "LambdaGeneratedResponse")

    @staticmethod
    def _outcome(response: dict[str, Any], content: Content, x_cache: str) -> Outcome:
        wire = response.get("_wire")
        headers = (
            wire if isinstance(wire, CIMultiDict) else origin_headers(cloudfront.to_wire_headers(response["headers"]))
        )
        return Outcome(
            status=int(response["status"]),
            reason=response.get("statusDescription"),
            headers=headers,
            body=content.body,
            length=content.length,
            x_cache=x_cache,
            generated=x_cache == "LambdaGeneratedResponse",
        )
