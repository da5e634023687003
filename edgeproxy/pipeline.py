"""The stages of one CloudFront request, in order, and their skip rules (reference/aws-behaviour.md §2.1, §2.2,
§2.5, §5.6).

    viewer-request -> cache-lookup -> origin-request -> origin -> origin-response -> cache-store
        -> custom-error-response -> viewer-response

* a response returned at viewer-request goes straight to the viewer: nothing else runs (and nothing is cached);
* a cache hit skips origin-request, the origin and origin-response; viewer-response runs;
* a response returned at origin-request replaces the origin: origin-response is skipped, viewer-response runs, and
  the response is cached like the origin's;
* what is cached is the response after origin-response;
* a custom error page replaces an error response; viewer-response is then skipped, as it is for any status of 400
  or more.

Each stage is a small method over the request's :class:`_Flow`; a stage that does not apply records why in the
exchange's ``skipped``. CloudFront's own stages (the cache, the custom error responses) are not listed at all where
the behavior has no cache (its TTLs are 0) or the distribution no custom error responses. The pipeline fills in
the exchange's ``outcome``, or its ``error``; the server writes it.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import StreamReader
from multidict import CIMultiDict

from edgeproxy import cache, viewer
from edgeproxy.cache import Cache, CacheKey, Clock, Entry
from edgeproxy.config import ERROR_CACHING_MIN_TTL, Association, Behavior, Distribution
from edgeproxy.errors import FunctionError, OriginConnectionError, OriginTimeoutError, RequestRejected, ViewerError
from edgeproxy.events import cloudfront
from edgeproxy.exchange import AS_GIVEN, Body, Exchange, Invocation, Observers, Outcome, XCache, tee
from edgeproxy.headers import PRECONDITIONS, end_to_end, is_disallowed
from edgeproxy.origin import CHUNK_SIZE, Origin, OriginResponse, RequestBody, origin_headers
from edgeproxy.policies import Policies
from edgeproxy.rules import STRICT, Checked, Strictness, validate
from edgeproxy.runtime import Runtime
from edgeproxy.runtime.marshal import copy_json, json_bytes
from edgeproxy.triggers import FACTS, Trigger

log = logging.getLogger("edgeproxy")


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
    """One request's working state while the stages run (an error page's fetch has one of its own)."""

    exchange: Exchange
    behavior: Behavior
    body: _Body
    method: str
    skipped: dict[str, str]  # where skipped stages are noted: the exchange's, or an error page fetch's own
    request: dict[str, Any] = field(default_factory=dict)  # the event's request as the next trigger gets it
    viewer_side_request: dict[str, Any] = field(default_factory=dict)  # what viewer-response sees
    response: dict[str, Any] | None = None  # the event's response, once there is one
    response_body: Body = b""
    response_length: int | None = 0  # the Content-Length to send with it (None: chunked)
    # The headers that go to the viewer byte for byte (the origin's, or a cached object's) unless a trigger changed
    # the response.
    wire_headers: CIMultiDict[str] | None = None
    headers_changed: bool = False
    x_cache: XCache = XCache.MISS
    generated_at: Trigger | None = None
    # The cache: the request's key (None where nothing is looked up), the object served from it, and the expired one
    # being revalidated.
    key: CacheKey | None = None
    hit: Entry | None = None
    expired: Entry | None = None
    stale: bool = False  # the expired object stands in for a failing origin
    origin_failure: ViewerError | None = None  # the origin could not be reached, and a custom error page may stand in
    error_page: bool = False
    added_headers: list[tuple[str, str]] | None = None  # CloudFront's own headers for this viewer, once computed

    @property
    def policies(self) -> Policies:
        return self.behavior.policies

    @property
    def caching(self) -> bool:
        """Whether the behavior caches at all (a cache policy with a TTL above 0)."""
        return not self.policies.caching_disabled

    def skip(self, stage: str, reason: str) -> None:
        self.skipped[stage] = reason

    def set_body(self, data: bytes) -> None:
        """A response body a function generated or put in (framed by its own length, whatever Content-Length the
        function set)."""
        self.response_body, self.response_length = data, len(data)


Stage = Callable[[_Flow, AsyncExitStack], Awaitable[None]]
# The headers of a cached object that a 304 does not replace (RFC 9111 §3.2: the content's own).
KEPT_ON_REVALIDATION = ("Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Transfer-Encoding")


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
        clock: Clock | None = None,
    ) -> None:
        self.distribution = distribution
        self.runtime = runtime
        self.origin = origin
        self.via = via  # for an HTTP/1.1 viewer (via_for)
        self.strictness = strictness
        self.observers = observers if observers is not None else Observers()
        self.cache = Cache(distribution.cache_size, clock or time.monotonic)
        # CloudFront's order (§2.1, §2.5, §5.6).
        self.stages: tuple[tuple[str, Stage], ...] = (
            ("viewer-request", self._viewer_request),
            ("cache-lookup", self._cache_lookup),
            ("origin-request", self._origin_request),
            ("origin", self._origin),
            ("origin-response", self._origin_response),
            ("cache-store", self._cache_store),
            ("custom-error-response", self._custom_error_response),
            ("viewer-response", self._viewer_response),
        )
        if any(behavior.policies.cloudfront_headers for behavior in distribution.all_behaviors()):
            viewer.preload()  # ISO 3166's tables, now rather than in a request

    def via_for(self, http_version: str) -> str:
        """CloudFront's ``Via`` hop for a viewer of ``http_version``: it begins with the viewer's HTTP version (§4.2;
        AWS's sample origin-request event has ``2.0 <hash>.cloudfront.net (CloudFront)``), ``1.0`` for HTTP/1.0."""
        return self.via if http_version == "1.1" else f"{http_version} {self.via.partition(' ')[2]}"

    async def run(self, exchange: Exchange, behavior: Behavior, stack: AsyncExitStack) -> None:
        """Take ``exchange`` through the stages: its ``outcome`` is set, or its ``error``."""
        exchange.behavior = behavior.path_pattern
        body = _Body(exchange.viewer.body, capture=self.observers.wants_bodies)
        flow = _Flow(exchange, behavior, body, exchange.viewer.method, exchange.skipped)
        try:
            for name, stage in self.stages:
                if flow.generated_at == "viewer-request":  # §2.2: straight to the viewer, nothing else runs
                    if self._applies(flow, name):
                        flow.skip(name, "viewer-request generated a response")
                    continue
                if not self._applies(flow, name):
                    await stage(flow, stack)  # a no-op for this request: not one of its stages, not timed
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

    def _applies(self, flow: _Flow, stage: str) -> bool:
        """Whether a stage exists for this request at all (CloudFront's own stages only where there is a cache, or
        custom error responses)."""
        if stage in ("cache-lookup", "cache-store"):
            return flow.caching
        if stage == "custom-error-response":
            return bool(self.distribution.custom_error_responses)
        return True

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

    # --- the cache ------------------------------------------------------------------------------------------------

    def _added_headers(self, flow: _Flow) -> list[tuple[str, str]]:
        """CloudFront's own headers that the behavior's policies name, for this viewer (computed once)."""
        if flow.added_headers is None:
            names = flow.policies.cloudfront_headers
            if not names:
                flow.added_headers = []
            else:
                viewer_request = flow.exchange.viewer
                try:
                    place = viewer.location(viewer_request.overrides, self.distribution.viewer)
                except viewer.LocationError as error:
                    header = viewer.override_header(error.field)
                    raise RequestRejected(400, f"{header}: {error.problem}") from None
                flow.added_headers = viewer.cloudfront_headers(
                    names,
                    place=place,
                    user_agent=viewer_request.headers.get("User-Agent"),
                    client_ip=viewer_request.client_ip,
                    client_port=viewer_request.client_port,
                    http_version=viewer_request.http_version,
                    viewer_header_names=list(viewer_request.headers.keys()),
                )
        return flow.added_headers

    async def _cache_lookup(self, flow: _Flow, stack: AsyncExitStack) -> None:
        flow.viewer_side_request = _viewer_side(flow)
        if not flow.caching:
            return
        if flow.method not in flow.behavior.cached_methods:
            flow.skip("cache-lookup", f"{flow.method} responses are not cached")
            return
        request = flow.request
        headers = cloudfront.to_wire_headers(request["headers"])
        for name, value in self._added_headers(flow):
            headers.popall(name, None)
            headers.add(name, value)
        flow.key = cache.key_for(
            flow.method, request["uri"], request.get("querystring", ""), headers, flow.policies.cache
        )
        entry = self.cache.get(flow.key)
        if entry is None:
            return
        now = self.cache.now()
        if entry.fresh(now) or (entry.stale_until is not None and now < entry.stale_until):
            self._serve(flow, entry, XCache.HIT if entry.status < 400 else XCache.ERROR)
            flow.hit = entry
            return
        flow.expired = entry

    def _serve(self, flow: _Flow, entry: Entry, x_cache: XCache) -> None:
        """Answer from the cached ``entry``: its status, headers (with ``Age``) and body, as stored; a viewer's
        condition it meets gets a 304 instead (with cookies forwarded, CloudFront supports no conditions)."""
        headers = CIMultiDict(entry.headers)
        headers.popall("Age", None)
        headers["Age"] = str(entry.age(self.cache.now()))
        status, reason, body = entry.status, entry.reason, entry.body
        length: int | None = len(body)
        if status == 200 and not flow.policies.forwards_cookies and _viewer_condition_met(flow, entry):
            status, reason, body, length = 304, None, b"", None
            for name in ("Content-Length", "Content-Type", "Content-Encoding"):
                headers.popall(name, None)
        flow.wire_headers = headers
        flow.response = dict(cloudfront.response_record(status=status, reason=reason, headers=_visible(headers)))
        flow.response_body, flow.response_length = body, length
        flow.x_cache = x_cache
        flow.headers_changed = False

    async def _origin_request(self, flow: _Flow, stack: AsyncExitStack) -> None:
        if flow.hit is not None:
            flow.skip("origin-request", "cache hit")
            return
        added = list(self._added_headers(flow))
        entry = flow.expired
        if entry is not None and entry.revalidate:
            # §5.5: an expired object is revalidated with its validators (read-only at origin-request, §3.4).
            if entry.etag is not None:
                added.append(("If-None-Match", entry.etag))
            if entry.last_modified is not None:
                added.append(("If-Modified-Since", entry.last_modified))
        request = cloudfront.toward_origin(
            flow.request,
            flow.behavior.origin,
            client_ip=flow.exchange.viewer.client_ip,
            via=self.via_for(flow.exchange.viewer.http_version),
            policies=flow.policies,
            added=added,
        )
        flow.request = dict(request)
        await self._request_trigger(flow, "origin-request")

    async def _origin(self, flow: _Flow, stack: AsyncExitStack) -> None:
        if flow.hit is not None:
            flow.skip("origin", "cache hit")
            return
        if flow.generated_at is not None:
            flow.skip("origin", f"{flow.generated_at} generated a response")
            return
        exchange = flow.exchange
        primary = exchange.origin_request is None  # an error page's fetch is not the exchange's origin exchange
        capture = self.observers.wants_bodies and primary
        request = cloudfront.origin_request(
            flow.request,
            method=flow.method,
            request_id=exchange.id,
            body=flow.body.for_origin() if flow.body.sent else None,
            content_length=flow.body.buffered_length,
        )
        started_at = time.time()
        started = time.perf_counter()
        try:
            fetched = await self.origin.fetch(request, stack)
        except (OriginConnectionError, OriginTimeoutError) as error:
            if not primary or not self._stands_in(flow, error):
                raise
            return
        finally:
            if primary:
                exchange.origin_request = request
                exchange.origin_started = started_at
                exchange.origin_duration = time.perf_counter() - started
        if primary:
            exchange.origin_response = fetched
            if self.observers.any:
                self.observers.origin_done(exchange)
        flow.x_cache = XCache.MISS if fetched.status < 400 else XCache.ERROR
        flow.wire_headers = self._passed_on(flow, fetched.headers)
        flow.response = dict(
            cloudfront.response_record(
                status=fetched.status, reason=fetched.reason, headers=_visible(flow.wire_headers)
            )
        )
        flow.response_body, flow.response_length = fetched.body, _announced_length(fetched)
        if capture:
            exchange.origin_body = bytearray()
            if isinstance(fetched.body, bytes):
                exchange.origin_body += fetched.body
            else:
                flow.response_body = tee(fetched.body, exchange.origin_body)

    def _stands_in(self, flow: _Flow, error: ViewerError) -> bool:
        """An origin that cannot be reached is a 5xx from the origin (§5.2): an expired object is served instead if
        it may be, else a custom error page for its status. ``False``: the viewer gets CloudFront's error page."""
        entry = flow.expired
        if entry is not None and entry.may_serve_stale(self.cache.now()):
            self._serve_stale(flow, entry, error.status)
            flow.skip("origin-response", f"the origin failed ({error.reason}); the expired object is served")
            return True
        custom = self.distribution.custom_error_responses.get(error.status)
        if custom is not None and custom.response_page_path is not None:
            flow.origin_failure = error
            flow.response = {"status": str(error.status), "statusDescription": "", "headers": {}}
            flow.x_cache = XCache.ERROR
            flow.skip("origin-response", f"the origin failed: {error.reason}")
            return True
        return False

    def _serve_stale(self, flow: _Flow, entry: Entry, status: int) -> None:
        """§5.6: the expired object is served in place of the origin's 5xx (``status``), and keeps being served for
        the error caching minimum TTL of that status before the origin is tried again."""
        custom = self.distribution.custom_error_responses.get(status)
        minimum = custom.error_caching_min_ttl if custom is not None else ERROR_CACHING_MIN_TTL
        entry.stale_until = self.cache.now() + minimum
        self._serve(flow, entry, XCache.REFRESH_HIT)
        flow.stale = True

    def _passed_on(self, flow: _Flow, headers: CIMultiDict[str]) -> CIMultiDict[str]:
        """The origin's headers as CloudFront passes them on (§4.2): under policies, ``Set-Cookie`` only when cookies
        are forwarded, and ``Vary`` only for ``Accept-Encoding``, ``Cookie``, forwarded headers, and ``User-Agent``
        when device headers are."""
        policies = flow.policies
        if policies.legacy:
            return headers
        passed: CIMultiDict[str] = CIMultiDict()
        for name, value in headers.items():
            lower = name.lower()
            if lower == "set-cookie" and not policies.forwards_cookies:
                continue
            if lower == "vary":
                kept = [item.strip() for item in value.split(",") if _vary_kept(item.strip().lower(), policies)]
                if not kept:
                    continue
                value = ", ".join(kept)
            passed.add(name, value)
        return passed

    async def _origin_response(self, flow: _Flow, stack: AsyncExitStack) -> None:
        if flow.hit is not None:
            flow.skip("origin-response", "cache hit")
            return
        if flow.stale or flow.origin_failure is not None:
            return  # noted where the origin failed
        if flow.generated_at is not None:
            flow.skip("origin-response", f"{flow.generated_at} generated a response")
            return
        request_seen = {key: value for key, value in flow.request.items() if key != "body"}
        await self._response_trigger(flow, "origin-response", request_seen)

    async def _cache_store(self, flow: _Flow, stack: AsyncExitStack) -> None:
        """Store the response as origin-response left it (§2.5). A response generated at origin-request is stored
        too: the reference's §2.5 and checklist 7 infer it, and the guide documents it ("Generate HTTP responses in
        request triggers": later requests get the cached response without the function running); its TTL comes from
        its own headers by the same table, which the guide does not spell out."""
        if not flow.caching:
            return
        if flow.key is None:
            flow.skip("cache-store", f"{flow.method} responses are not cached")
            return
        if flow.hit is not None or flow.stale:
            flow.skip("cache-store", "served from the cache")
            return
        if flow.origin_failure is not None:
            flow.skip("cache-store", "the origin failed (CloudFront caches no error of its own)")
            return
        assert flow.response is not None
        status = int(flow.response["status"])
        headers = self._stored_headers(flow)
        expired = flow.expired
        now = self.cache.now()
        if expired is not None and status == 304 and flow.generated_at is None:
            self._refreshed(flow, expired, headers, now)
            return
        if expired is not None and status >= 500 and expired.may_serve_stale(now):
            flow.skip("cache-store", f"the origin answered {status}; the expired object is served")
            self._serve_stale(flow, expired, status)
            return
        if status >= 400:
            custom = self.distribution.custom_error_responses.get(status)
            minimum = custom.error_caching_min_ttl if custom is not None else ERROR_CACHING_MIN_TTL
            s3 = flow.exchange.origin_request is not None and flow.exchange.origin_request.kind == "s3"
            error_ttl = cache.error_ttl_for(status, headers, flow.policies.cache, minimum, s3=s3)
            if error_ttl is None:
                flow.skip("cache-store", f"status {status} is not cached")
                return
            freshness = cache.Freshness(error_ttl)
        elif status in (206, 304):
            flow.skip("cache-store", f"status {status} is not stored")
            return
        elif status in cache.CACHED_ONLY_WITH_CACHE_CONTROL and "Cache-Control" not in headers:
            flow.skip("cache-store", f"a {status} is cached only with a Cache-Control header")
            return
        else:
            found = cache.ttl_for(headers, flow.policies.cache)
            if found is None:
                flow.skip("cache-store", "the origin's Cache-Control says not to cache it")
                return
            freshness = found
        if flow.method == "HEAD":
            flow.skip("cache-store", "a HEAD response has no body to store")
            return
        vary_star = any(item.strip() == "*" for value in headers.getall("Vary", ()) for item in value.split(","))
        ttl = 0.0 if vary_star and flow.policies.cache.min_ttl == 0 else freshness.ttl
        if ttl <= 0 and not vary_star and headers.get("ETag") is None and headers.get("Last-Modified") is None:
            flow.skip("cache-store", "its TTL is 0 and it has no validator to revalidate it with")
            return
        assert flow.key is not None
        entry = Entry(
            key=flow.key,
            status=status,
            reason=flow.response.get("statusDescription"),
            headers=headers,
            body=b"",
            stored=now,
            ttl=ttl,
            max_ttl=flow.policies.cache.max_ttl,
            stale_if_error=freshness.stale_if_error,
            # §5.3 notes: no conditional requests with cookies forwarded, nor for Vary: * with a min TTL of 0.
            revalidate=not flow.policies.forwards_cookies and not vary_star,
            generated=flow.generated_at is not None,
            initial_age=_initial_age(headers),
        )
        self._store(flow, entry)

    def _stored_headers(self, flow: _Flow) -> CIMultiDict[str]:
        """The headers a cached object is stored with: as the viewer gets them now (after origin-response), less a
        ``Set-Cookie`` the origin said not to cache (``Cache-Control: no-cache="Set-Cookie"``).

        Every other ``Set-Cookie`` is kept, forwarded cookie or not: the current "Cache content based on cookies"
        (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Cookies.html) says that with all or an
        allow list of cookies forwarded CloudFront "caches the Set-Cookie headers with the object returned from the
        origin, and sends those Set-Cookie headers to viewers on all cache hits". The older guide's "caches only the
        whitelisted cookies" / "does not cache [cookies not in the viewer request]" is no longer documented. With
        no cookies forwarded there is no Set-Cookie to store (:meth:`_passed_on` removed it, as that page says)."""
        headers = _response_headers(flow)
        no_cache = cache.directives(headers).get("no-cache")
        if no_cache is not None and "set-cookie" in {name.strip().lower() for name in no_cache.split(",")}:
            headers.popall("Set-Cookie", None)
        return headers

    def _refreshed(self, flow: _Flow, entry: Entry, headers: CIMultiDict[str], now: float) -> None:
        """A 304 to a revalidation: the object is fresh again, with the 304's headers, and served (RefreshHit)."""
        entry.headers = cache.merged_headers(entry.headers, headers, KEPT_ON_REVALIDATION)
        found = cache.ttl_for(entry.headers, flow.policies.cache)
        entry.ttl = found.ttl if found is not None else 0.0
        entry.stored, entry.stale_until, entry.initial_age = now, None, _initial_age(headers)
        self.cache.put(entry)
        flow.skip("cache-store", "revalidated: the origin answered 304")
        self._serve(flow, entry, XCache.REFRESH_HIT)

    def _store(self, flow: _Flow, entry: Entry) -> None:
        """Put ``entry`` in the cache with the response's body: now if it is in memory, else as it streams to the
        viewer, once it has arrived whole (a body that outgrows the cache, or breaks off, is not stored)."""
        if flow.expired is not None:
            flow.x_cache = XCache.REFRESH_HIT if entry.status < 400 else XCache.ERROR
        body = flow.response_body
        if isinstance(body, bytes):
            entry.body = body
            if not self.cache.put(entry):
                flow.skip("cache-store", "larger than the cache")
            return
        announced = flow.response_length
        if announced is not None and not self.cache.fits(announced + entry.size):
            flow.skip("cache-store", "larger than the cache: streamed through")
            return
        flow.response_body = self._storing(body, entry, announced)

    async def _storing(self, body: AsyncIterator[bytes], entry: Entry, announced: int | None) -> AsyncIterator[bytes]:
        kept: bytearray | None = bytearray()
        async for chunk in body:
            if kept is not None:
                kept += chunk
                if not self.cache.fits(len(kept) + entry.size):
                    kept = None  # streams on, uncached
            yield chunk
        if kept is not None and (announced is None or len(kept) == announced):
            entry.body = bytes(kept)
            self.cache.put(entry)

    # --- custom error responses -----------------------------------------------------------------------------------

    async def _custom_error_response(self, flow: _Flow, stack: AsyncExitStack) -> None:
        responses = self.distribution.custom_error_responses
        if not responses:
            return
        assert flow.response is not None
        status = int(flow.response["status"])
        custom = responses.get(status)
        if custom is None or custom.response_page_path is None:
            if status >= 400:
                flow.skip("custom-error-response", f"no custom error page for status {status}")
            return
        if flow.generated_at is not None or (flow.hit is not None and flow.hit.generated):
            flow.skip("custom-error-response", f"the {status} response was generated by a function")
            return
        if not isinstance(flow.response_body, bytes):
            # The error's own body is not sent, but read: it is cached with the error (and the connection is free).
            async for _ in flow.response_body:
                pass
        page = await self._error_page(flow, custom.response_page_path, stack)
        assert page.response is not None
        page_status = int(page.response["status"])
        flow.error_page = True
        flow.x_cache = XCache.ERROR  # the log's result type stays Error whatever ResponseCode says (§5.6)
        flow.response = page.response
        flow.wire_headers, flow.headers_changed = page.wire_headers, page.headers_changed
        flow.response_body, flow.response_length = page.response_body, page.response_length
        if page_status < 400 and custom.response_code is not None:
            flow.response = {**page.response, "status": str(custom.response_code)}
            flow.response["statusDescription"] = cloudfront.reason_phrase(custom.response_code)
        elif page_status < 400:
            flow.response = {**page.response, "status": str(status)}
            flow.response["statusDescription"] = cloudfront.reason_phrase(status)
        # else: the page could not be fetched, and the viewer gets what its origin answered (§5.6)

    async def _error_page(self, flow: _Flow, path: str, stack: AsyncExitStack) -> _Flow:
        """Fetch a custom error page through the behavior its path matches, as CloudFront does: a GET, from that
        behavior's cache or its origin (with its origin triggers), never through viewer-request (§5.6). The viewer's
        preconditions are not the page's: it is fetched, and served, whole (a 304 would be a blank page)."""
        behavior = self.distribution.behavior_for(path)
        page = _Flow(flow.exchange, behavior, _Body(None), "GET", {})
        viewer_request = flow.exchange.viewer
        page.request = dict(
            cloudfront.request_record(
                client_ip=viewer_request.client_ip,
                method="GET",
                uri=path,
                querystring="",
                headers=(
                    (name, value)
                    for name, value in end_to_end(viewer_request.headers)
                    if not is_disallowed(name) and name.lower() not in PRECONDITIONS
                ),
            )
        )
        for _, stage in self.stages[1:6]:  # the cache lookup through the cache store
            await stage(page, stack)
        return page

    async def _viewer_response(self, flow: _Flow, stack: AsyncExitStack) -> None:
        assert flow.response is not None
        if flow.error_page:
            flow.skip("viewer-response", "a custom error page is returned")
            return
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
            replacement = base64.b64decode(data) if encoded else data.encode("utf-8")
            limit = FACTS[trigger].size_limit
            if len(replacement) > limit:
                # Restrictions on Lambda@Edge, "the include body option": a replacement "is truncated at 40 KB"
                # (viewer request), "at 1 MB" (origin request); as base64 "at 53.2 KB" / "1.33 MB", the same bytes
                # measured encoded: the decoded body is cut at the limit. (The team's reference had it rejected.)
                log.warning(
                    "%s %s at %s: request.body replacement is %d bytes; CloudFront truncates it: the origin gets %d",
                    flow.exchange.id,
                    self.runtime.load(association).ref,
                    trigger,
                    len(replacement),
                    limit,
                )
                replacement = replacement[:limit]
            flow.body.replace(replacement)

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
        if association.include_body and FACTS[trigger].include_body and flow.method not in ("GET", "HEAD"):
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
        # whole event as the handler got it; the one copy serves both). A handler in an environment of its own gets
        # the event as JSON and cannot touch this one: no copy; observers get the JSON it is sent as, encoded here
        # once (the environment's message embeds it as it is) and parsed only if one reads it.
        sent: Any = event
        event_in: Any = None
        if self.observers.any and function.isolated and (encoded := json_bytes(event)) is not None:
            event_in, sent = encoded, orjson.Fragment(encoded)
        elif self.observers.any:
            event_in = copy_json(event)
        if event_in is None or function.isolated:
            before = (request, response) if function.isolated else copy_json((request, response))
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
                        sent,
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
            if not changed:  # for observers: the event's own part (when it is kept as JSON, nothing more to keep)
                result = AS_GIVEN if type(event_in) is bytes else before[0] if response is None else before[1]
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
        return Outcome(
            status=int(response["status"]),
            reason=response.get("statusDescription"),
            headers=_response_headers(flow),
            body=flow.response_body,
            length=flow.response_length,
            x_cache=flow.x_cache,
            generated=flow.generated_at is not None and flow.hit is None and not flow.error_page,
        )


def _announced_length(fetched: OriginResponse) -> int | None:
    """The Content-Length to send with the origin's body: the origin's own (for HEAD and 304, the length of the body
    a GET would get, RFC 9110 §8.6), or that of a body in memory; ``None`` (chunked) when it streams without one."""
    announced = fetched.headers.get("Content-Length", "")
    if announced.isascii() and announced.isdigit():
        return int(announced)
    return len(fetched.body) if isinstance(fetched.body, bytes) else None


def _response_headers(flow: _Flow) -> CIMultiDict[str]:
    """The response's headers as they go on: the origin's (or the cached object's) byte for byte, unless a trigger
    changed them; then the event's, followed by those of the origin's that no function was shown (§3.3's disallowed
    ones, such as an API Gateway origin's ``X-Amzn-RequestId``): a function cannot have meant to remove what it
    could not see, and returning the response unchanged keeps them too."""
    assert flow.response is not None
    if not flow.headers_changed and flow.wire_headers is not None:
        return origin_headers(flow.wire_headers)
    headers = cloudfront.to_wire_headers(flow.response["headers"])
    if flow.wire_headers is not None:
        headers.extend((name, value) for name, value in flow.wire_headers.items() if is_disallowed(name))
    return origin_headers(headers)


def _visible(headers: CIMultiDict[str]) -> list[tuple[str, str]]:
    """The headers of a response as its event shows them (CloudFront's disallowed ones are not, §3.3)."""
    return [(name, value) for name, value in headers.items() if not is_disallowed(name)]


def _viewer_side(flow: _Flow) -> dict[str, Any]:
    """The request as viewer-response sees it: as viewer-request left it."""
    return {key: value for key, value in flow.request.items() if key not in ("body", "origin")}


def _vary_kept(name: str, policies: Policies) -> bool:
    """§4.2: which ``Vary`` values CloudFront passes on under policies."""
    if name in ("accept-encoding", "cookie", "*"):
        return True
    if name == "user-agent" and policies.device_headers:
        return True
    return policies.forwards_header(name)


def _initial_age(headers: CIMultiDict[str]) -> int:
    value = headers.get("Age", "")
    return int(value) if value.isascii() and value.isdigit() else 0


def _viewer_condition_met(flow: _Flow, entry: Entry) -> bool:
    """Whether the viewer's ``If-None-Match`` (against the object's ETag: without one, CloudFront ignores it) or
    ``If-Modified-Since`` (against its Last-Modified) says it has the cached object already."""
    headers = flow.viewer_side_request.get("headers", {})
    tags = [entry["value"] for entry in headers.get("if-none-match", ())]
    if tags:
        etag = entry.etag
        if etag is None:
            return False
        offered = {tag.strip().removeprefix("W/") for value in tags for tag in value.split(",")}
        return "*" in offered or etag.removeprefix("W/") in offered
    since = [entry["value"] for entry in headers.get("if-modified-since", ())]
    if since and entry.last_modified is not None:
        viewer_has, modified = cache.http_date(since[0]), cache.http_date(entry.last_modified)
        return viewer_has is not None and modified is not None and modified <= viewer_has
    return False
