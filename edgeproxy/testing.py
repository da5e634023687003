"""Testing edge functions from Python: realistic events, one validated invocation, and a proxy in the test's loop.

    from edgeproxy.testing import cloudfront_event, invoke

    def test_redirects_old_page() -> None:
        event = cloudfront_event("viewer-request", "/old-page")
        response = invoke("sample_functions/redirects.py:handler", event)
        assert response["status"] == "301"

:func:`cloudfront_event` and :func:`alb_event` build events with the same code the proxy uses, so they carry every
field a deployed function sees (``edgeproxy events TRIGGER`` prints the same events). :func:`invoke` runs a handler
with a Lambda context and its timeout, then applies AWS's validation: a result CloudFront would reject raises
:class:`~edgeproxy.errors.LambdaValidationError` naming the handler, the trigger and the rule it broke; a crash or
a timeout raises :class:`~edgeproxy.errors.LambdaExecutionError` (its ``handler_traceback`` holds the handler's own
frames); for ALB events, :class:`~edgeproxy.errors.AlbError`. :func:`start` runs the whole proxy (CloudFront or ALB
mode) on a free port and records every invocation; the ``edgeproxy`` pytest fixture is built on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from aiohttp import ClientResponse, ClientSession, web

from edgeproxy import alb, config, record, serving, viewer
from edgeproxy.cache import Cached, invalidation_problem
from edgeproxy.config import Association, Distribution, HandlerRef, Isolation, TargetGroup, ViewerResponseReadOnly
from edgeproxy.errors import EventArgumentError, FunctionError, ReplayMissError, ViewerError
from edgeproxy.events import alb as alb_events
from edgeproxy.events import cloudfront
from edgeproxy.events.cloudfront import Event
from edgeproxy.exchange import Exchange, Invocation, Observer
from edgeproxy.listener import Listener
from edgeproxy.rules import CONTROL_CHARACTER, HEADER_NAME, QUERYSTRING_FORBIDDEN, Strictness, validate
from edgeproxy.runtime import Runtime
from edgeproxy.runtime.marshal import copy_json
from edgeproxy.server import PIPELINE, Options, create_app, via_value
from edgeproxy.triggers import FACTS, ORIGIN_TRIGGERS, REQUEST_TRIGGERS, RESPONSE_TRIGGERS, Trigger

log = logging.getLogger("edgeproxy")

AINVOKE = "edgeproxy.testing.ainvoke()"  # how a ConfigError of ainvoke() names where the handler came from
CLIENT_IP = "203.0.113.10"  # TEST-NET-3: a documentation address
CLOUDFRONT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
ORIGIN_URL = "https://origin.example.com"
ALB_HOST = "edgeproxy-alb-123578498.us-east-1.elb.amazonaws.com"
ORIGIN_RESPONSE_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", "1024"),
    ("Date", "Mon, 23 Nov 2026 12:00:00 GMT"),
    ("Last-Modified", "Fri, 20 Nov 2026 09:30:00 GMT"),
    ("ETag", '"7f8a9b0c1d2e3f405162738495a6b7c8"'),
    ("Server", "nginx"),
)
HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]]
TIMEOUT_MEMORY = ("timeout", "memory")  # how invoke() names its limits in a ConfigError


def _pairs(headers: HeadersArg | None, argument: str = "headers") -> list[tuple[str, str]]:
    if headers is None:
        return []
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for name, value in pairs:
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise EventArgumentError(argument, name, "is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
        if not isinstance(value, str) or CONTROL_CHARACTER.search(value.replace("\t", " ")):
            raise EventArgumentError(argument, f"{name}: {value}", "a header value is text without control characters")
    return pairs


def _checked_uri(argument: str, uri: str) -> tuple[str, str]:
    """A request target (path, then an optional ``?query``) as it can arrive on the wire: (path, query)."""
    if not uri.startswith("/"):
        raise EventArgumentError(argument, uri, "a request path starts with '/' (and may end in ?query)")
    if match := QUERYSTRING_FORBIDDEN.search(uri):
        raise EventArgumentError(argument, uri, f"{match.group()!r} cannot be in a request target (percent-encode it)")
    path, _, querystring = uri.partition("?")
    return path, querystring


def _checked_client_ip(client_ip: str) -> str:
    try:
        ipaddress.ip_address(client_ip)
    except ValueError:
        raise EventArgumentError("client_ip", client_ip, "is not an IPv4 or IPv6 address") from None
    return client_ip  # as given: §1.3 shows an IPv6 address written out, not compressed


def _event_origin(origin: str) -> config.Origin:
    """``https://host[:port][/origin-path]`` (a custom origin) or ``s3://bucket`` (an S3 origin)."""
    if origin.startswith("s3://"):
        bucket = origin.removeprefix("s3://")
        if problem := config.bucket_name_problem(bucket):
            raise EventArgumentError("origin", origin, f"s3://BUCKET names an S3 bucket: {problem}")
        # An event needs only the bucket: no folder is read.
        return config.DirectoryOrigin(name=bucket, directory=Path(), bucket=bucket)
    try:
        return config.custom_origin_from_url("origin", origin)
    except ValueError:
        raise EventArgumentError(
            "origin", origin, "an origin is an http:// or https:// URL (its path is the origin path) or s3://BUCKET"
        ) from None


def _applies(trigger: Trigger, argument: str, value: object, triggers: tuple[Trigger, ...]) -> None:
    if value is not None and trigger not in triggers:
        raise EventArgumentError(argument, value, f"applies to {' and '.join(triggers)} events, not to {trigger}")


def cloudfront_event(
    trigger: Trigger,
    uri: str = "/",
    *,
    method: str = "GET",
    headers: HeadersArg | None = None,
    client_ip: str = CLIENT_IP,
    origin: str | None = None,
    body: bytes | str | None = None,
    status: int | None = None,
    response_headers: HeadersArg | None = None,
    country: str | None = None,
) -> Event:
    """A Lambda@Edge event for ``trigger``, as the proxy would build it for this viewer request.

    ``uri`` may carry a query string (``/search?q=1``). ``headers`` are the viewer's (``Host``, ``User-Agent`` and
    ``Accept`` are filled in unless given); at origin triggers they become what CloudFront sends the origin, which
    is ``origin``: an http(s) URL (``https://origin.example.com`` by default) or an S3 bucket, ``s3://my-bucket``.
    ``body`` adds ``request.body`` as an include-body association would (request triggers; not for ``GET`` or
    ``HEAD``). ``status`` (200 by default) and ``response_headers`` (sample ones by default) make the origin's
    response at response triggers. ``country`` adds ``CloudFront-Viewer-Country`` (an ISO 3166-1 alpha-2 code) as
    CloudFront does at origin triggers when a cache or origin request policy names it.

    An argument CloudFront could not send in such an event (a path without ``/``, a status outside 200-599 or, at
    viewer-response, of 400 or more, a body on a GET, an argument of another trigger...) raises
    :class:`~edgeproxy.errors.EventArgumentError` (a ``ValueError``) naming it.
    """
    path, querystring = _checked_uri("uri", uri)
    method = method.upper()
    if method not in CLOUDFRONT_METHODS:  # §5.3
        raise EventArgumentError("method", method, f"CloudFront accepts only {', '.join(CLOUDFRONT_METHODS)}")
    _applies(trigger, "origin", origin, ORIGIN_TRIGGERS)
    _applies(trigger, "body", body, REQUEST_TRIGGERS)
    _applies(trigger, "status", status, RESPONSE_TRIGGERS)
    _applies(trigger, "response_headers", response_headers, RESPONSE_TRIGGERS)
    _applies(trigger, "country", country, ORIGIN_TRIGGERS)  # §2.5: added after viewer-request
    added: list[tuple[str, str]] = []
    if country is not None:
        try:
            place = viewer.location({"country": country})
        except viewer.LocationError as error:
            raise EventArgumentError("country", country, error.problem) from None
        added = viewer.cloudfront_headers(
            ["cloudfront-viewer-country"],
            place=place,
            user_agent=None,
            client_ip=client_ip,
            client_port=None,
            http_version="1.1",
            viewer_header_names=[],
        )
    if body is not None and method in ("GET", "HEAD"):
        raise EventArgumentError("body", body, f"a {method} request has no body (CloudFront answers 403 to one)")
    if status is not None and not 200 <= status <= 599:
        raise EventArgumentError("status", status, "an origin's response status is from 200 to 599")
    if status is not None and status >= 400 and trigger == "viewer-response":  # §2.1
        raise EventArgumentError("status", status, "viewer-response does not run for statuses of 400 and above")
    event_origin = _event_origin(origin or ORIGIN_URL)
    distribution = Distribution(default_behavior=config.Behavior(path_pattern="*", origin=event_origin))
    given = _pairs(headers)
    named = {name.lower() for name, _ in given}
    defaults = [("Host", distribution.domain_name), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]
    viewer_headers = [(name, value) for name, value in defaults if name.lower() not in named] + given
    client_ip = _checked_client_ip(client_ip)
    request: dict[str, Any] = dict(
        cloudfront.request_record(
            client_ip=client_ip, method=method, uri=path, querystring=querystring, headers=viewer_headers
        )
    )
    facts = FACTS[trigger]
    if body is not None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        request["body"] = dict(cloudfront.body_record(data, facts.size_limit))
    if facts.location == "origin":
        request = dict(
            cloudfront.toward_origin(
                request, event_origin, client_ip=client_ip, via=via_value(distribution), added=added
            )
        )
    response = None
    if not facts.is_request:
        origin_headers = ORIGIN_RESPONSE_HEADERS if response_headers is None else response_headers
        response = cloudfront.response_record(
            status=status or 200, reason=None, headers=_pairs(origin_headers, "response_headers")
        )
    return cloudfront.build_event(
        trigger=trigger,
        request_id=cloudfront.new_request_id(),
        domain_name=distribution.domain_name,
        distribution_id=distribution.id,
        request=request,  # type: ignore[arg-type]
        response=response,
    )


def alb_event(
    path: str = "/",
    *,
    method: str = "GET",
    headers: HeadersArg | None = None,
    body: bytes | str = b"",
    multi_value_headers: bool = False,
    client_ip: str = CLIENT_IP,
    target_group_arn: str = config.DEFAULT_TARGET_GROUP_ARN,
    health_check: bool = False,
) -> alb_events.Event:
    """An ALB target-group event, as the ALB facade would build it for this request (§7.1).

    ``path`` may carry a raw query string (``/p%20q?a=1&a=2``: nothing is decoded). ``headers`` are the client's
    (``Host``, ``User-Agent`` and ``Accept`` are filled in unless given); the load balancer's ``X-Amzn-Trace-Id``,
    ``X-Forwarded-For``, ``-Port`` and ``-Proto`` are added. ``multi_value_headers`` picks the target group's mode.
    ``health_check`` gives the health checker's event instead."""
    raw_path, querystring = _checked_uri("path", path)
    if not HEADER_NAME.fullmatch(method):
        raise EventArgumentError("method", method, "an HTTP method is a token (letters, digits and !#$%&'*+-.^_`|~)")
    if health_check:
        return alb_events.health_check_event(
            target_group_arn=target_group_arn, path=path, multi_value=multi_value_headers
        )
    data = body.encode("utf-8") if isinstance(body, str) else body
    given = _pairs(headers)
    named = {name.lower() for name, _ in given}
    defaults = [("Host", ALB_HOST), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]
    if data:
        defaults.append(("Content-Length", str(len(data))))
    client_headers = [(name, value) for name, value in defaults if name.lower() not in named] + given
    return alb_events.build_event(
        target_group_arn=target_group_arn,
        method=method.upper(),
        path=raw_path,
        querystring=querystring,
        headers=alb.forwarded_headers(
            client_headers,
            client_ip=_checked_client_ip(client_ip),
            port=80,
            proto="http",
            trace=alb.trace_header(
                {name.lower(): value for name, value in given}.get("x-amzn-trace-id"),
                alb.header_bytes((name.encode(), value.encode()) for name, value in client_headers),
            ),
        ),
        body=data,
        multi_value=multi_value_headers,
    )


async def ainvoke(
    handler: HandlerRef,
    event: Event | alb_events.Event | Mapping[str, Any],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 -- the function's configured Lambda timeout
    memory: int = 128,
    lenient: bool = False,
    viewer_response_read_only: ViewerResponseReadOnly = "current",
    base_dir: Path | None = None,
    isolation: Isolation | None = None,
) -> dict[str, Any]:
    """Run ``handler`` (a ``file.py:function``, ``file.mjs:handler`` or ``module.function`` reference, resolved
    from ``base_dir`` or the working directory, or a Python callable) on an event and return its result, validated
    as AWS validates it. A reference runs in an execution environment of its own (a Python or Node.js process),
    unless ``isolation="thread"`` (Python: in this process); a callable always runs in this process.

    For a Lambda@Edge event the trigger is its ``config.eventType``; the result comes back with missing header
    ``key`` fields filled in, as CloudFront does, and a broken rule raises
    :class:`~edgeproxy.errors.LambdaValidationError` (a crash or timeout
    :class:`~edgeproxy.errors.LambdaExecutionError`). ``lenient`` logs violations instead of raising;
    ``viewer_response_read_only="2021"`` applies the older, wider read-only list (§10.5).

    For an ALB event (one with ``requestContext.elb``) the target group's mode is the event's (multi-value when it has
    ``multiValueHeaders``); anything the load balancer would answer 502 for raises :class:`~edgeproxy.errors.AlbError`
    with its ``error_reason`` (``LambdaInvalidResponse``, ``LambdaUnhandled``, ...).

    The handler gets a copy of ``event`` (so the same event can be used again), and each call is a cold start: a
    referenced module is imported afresh. A reference that cannot be loaded raises
    :class:`~edgeproxy.errors.ConfigError`."""
    copied: Any = copy_json(event)
    runtime = Runtime(max_threads=2, isolation=isolation)
    try:
        association = Association(
            handler,
            (base_dir or Path.cwd()).resolve(),
            AINVOKE,
            "handler",
            timeout=timeout,
            memory=memory,
        )
        function = runtime.load(association, edge=not alb_events.is_alb_event(copied))
        if alb_events.is_alb_event(copied):
            group = TargetGroup(target=association, multi_value_headers=alb_events.is_multi_value(copied))
            response = await alb.Target(group=group, runtime=runtime, function=function).respond(copied)
            if response.ignored is not None:
                log.warning(
                    "%s returned '%s', which the load balancer ignores in this mode", function.ref, response.ignored
                )
            return response.payload
        trigger = _trigger_of(copied)
        config.check_limits(trigger, timeout=timeout, memory=memory, source="invoke", keys=TIMEOUT_MEMORY)
        cf = copied["Records"][0]["cf"]
        before = copy_json((cf["request"], cf.get("response")))
        try:
            result = await runtime.invoke(function, copied, trigger=trigger, seconds=timeout, memory=memory)
        except FunctionError as exc:
            raise ViewerError.of(exc) from None
        strictness = Strictness(lenient=lenient, legacy_viewer_response_read_only=viewer_response_read_only == "2021")
        return validate(trigger, before, result, strictness, handler=function.ref).value
    finally:
        runtime.close()


def _trigger_of(event: Any) -> Trigger:
    try:
        event_type = event["Records"][0]["cf"]["config"]["eventType"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            "neither a Lambda@Edge event (no Records[0].cf.config.eventType) nor an ALB event (no requestContext.elb)"
        ) from None
    if event_type not in config.TRIGGERS:
        raise ValueError(f"not a Lambda@Edge event type: {event_type!r}")
    cf = event["Records"][0]["cf"]
    parts = ("request", "response") if event_type in RESPONSE_TRIGGERS else ("request",)
    for part in parts:
        if not isinstance(cf.get(part), dict) or not isinstance(cf[part].get("headers", {}), dict):
            raise ValueError(f"a {event_type} event's Records[0].cf.{part} is an object with a headers object")
    return cast(Trigger, event_type)


def invoke(
    handler: HandlerRef,
    event: Event | alb_events.Event | Mapping[str, Any],
    *,
    timeout: float | None = None,
    memory: int = 128,
    lenient: bool = False,
    viewer_response_read_only: ViewerResponseReadOnly = "current",
    base_dir: Path | None = None,
    isolation: Isolation | None = None,
) -> dict[str, Any]:
    """:func:`ainvoke` for synchronous code; also callable from inside a running event loop (it then runs on a
    loop of its own in a helper thread)."""
    running = ainvoke(
        handler,
        event,
        timeout=timeout,
        memory=memory,
        lenient=lenient,
        viewer_response_read_only=viewer_response_read_only,
        base_dir=base_dir,
        isolation=isolation,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(running)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, running).result()


class _Recorder(Observer):
    """Keeps every handler invocation of a proxy, in order (what :attr:`EdgeProxy.invocations` shows)."""

    def __init__(self) -> None:
        self.invocations: list[Invocation] = []

    def trigger_done(self, exchange: Exchange, invocation: Invocation) -> None:
        self.invocations.append(invocation)


class EdgeProxy:
    """A running edgeproxy (see :func:`start`): its ``url``, a ``client`` whose relative URLs go to it, and every
    handler ``invocation`` it made, in order."""

    def __init__(
        self, listener: Listener, origin: Listener | None, recorder: _Recorder, session: record.Session | None = None
    ) -> None:
        self.url = listener.url
        self.invocations: list[Invocation] = recorder.invocations
        self.client = ClientSession(base_url=listener.url, auto_decompress=False)
        self.recording = session  # its path and the record mode in effect, when serving with a recording
        self._app = listener.runner.app
        self._pipeline = self._app.get(PIPELINE)
        self._listeners = [listener] if origin is None else [listener, origin]

    def observe(self, observer: Observer) -> None:
        """Attach ``observer``: it is told about every exchange from now on (see :class:`edgeproxy.Observer`)."""
        self._app[serving.OBSERVERS].attach(observer)

    @property
    def cache(self) -> list[Cached]:
        """What the edge cache holds now, least recently used first: each entry's key, status, age and TTL (in
        seconds), whether it is fresh, and its size (empty in ALB mode)."""
        return self._pipeline.cache.listing() if self._pipeline is not None else []

    def invalidate(self, *paths: str) -> int:
        """Invalidate ``paths`` as CloudFront does (``/images/a.jpg``, ``/images/*``: exact paths, or a ``*`` at the
        end; every header and cookie variant goes); how many cached objects were removed. A path CloudFront would
        refuse raises ``ValueError``."""
        for path in paths:
            if problem := invalidation_problem(path):
                raise ValueError(problem)
        return self._pipeline.cache.invalidate(paths) if self._pipeline is not None else 0

    @property
    def replay_misses(self) -> list[ReplayMissError]:
        """Origin requests the recording did not hold (record mode ``none``), each with the nearest recorded one."""
        replay = self.recording.replay if self.recording is not None else None
        return list(replay.misses) if replay is not None else []

    def invocations_for(self, response: ClientResponse) -> list[Invocation]:
        """The invocations made for the request ``response`` answers (matched by its ``X-Amz-Cf-Id``)."""
        request_id = response.headers.get("X-Amz-Cf-Id")
        return [invocation for invocation in self.invocations if invocation.request_id == request_id]

    @property
    def errors(self) -> list[Invocation]:
        """The invocations that ended in a CloudFront error (crash, timeout or a result that failed validation)."""
        return [invocation for invocation in self.invocations if invocation.error is not None]

    async def close(self) -> None:
        await self.client.close()
        for listener in self._listeners:
            await listener.close()
        if self.recording is not None:
            self.recording.close()


# What the ``edgeproxy`` pytest fixture is: ``await edgeproxy(**start_arguments)`` -> EdgeProxy.
EdgeProxyFactory = Callable[..., Awaitable[EdgeProxy]]


async def start(
    *,
    config_file: str | Path | None = None,
    origin: str | Path | web.Application | None = None,
    viewer_request: HandlerRef | None = None,
    origin_request: HandlerRef | None = None,
    origin_response: HandlerRef | None = None,
    viewer_response: HandlerRef | None = None,
    include_body: bool = False,
    timeouts: Mapping[Trigger, float] | None = None,
    lenient: bool = False,
    viewer_response_read_only: ViewerResponseReadOnly | None = None,
    alb_target: HandlerRef | None = None,
    multi_value_headers: bool = False,
    target_group_arn: str = config.DEFAULT_TARGET_GROUP_ARN,
    target_timeout: float | None = None,
    debug_headers: bool = False,
    recording: str | Path | record.Recording | None = None,
    record_mode: str = "once",
    match_on: Iterable[str] = (),
    redact: Iterable[str] = (),
    default_redactions: bool = True,
    header_timeout: float | None = None,
    idle_timeout: float | None = None,
    isolation: Isolation | None = None,
    idle_reclaim: float | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    cache_policy: str | Mapping[str, Any] | None = None,
    origin_request_policy: str | Mapping[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    keep_invocations: bool = True,
) -> EdgeProxy:
    """Start edgeproxy in the running event loop, on a free port unless ``port`` is given, from one of:

    * ``config_file``: an ``edgeproxy.toml`` (a CloudFront distribution, or an ALB target group with ``[alb]``);
    * ``origin`` — an http(s) URL, a folder served like S3, or an :class:`aiohttp.web.Application` that is served as
      the origin on a free port — plus a handler per trigger (``viewer_request`` ... ``viewer_response``: a
      reference or a callable), ``include_body`` for the request triggers and per-trigger ``timeouts`` in seconds;
    * ``alb_target``: ALB mode, a load balancer in front of that one function, with ``multi_value_headers``,
      ``target_group_arn`` and the function's ``target_timeout`` in seconds (Lambda's 3 s by default).

    ``lenient`` logs rule violations instead of answering 502; ``viewer_response_read_only`` overrides the config's
    read-only list at viewer-response (``"current"`` or ``"2021"``); ``debug_headers`` adds ``X-Edgeproxy-Error`` with
    the precise reason to CloudFront error pages.

    ``recording`` serves with a HAR recording in vcrpy's ``record_mode`` (``once``, ``new_episodes``, ``none`` or
    ``all``): see :mod:`edgeproxy.record.session`. ``match_on`` names what identifies an origin request (method,
    host, path and query by default); ``redact`` adds header, cookie or query-parameter names to keep out of the
    file, and ``default_redactions=False`` turns off the default ones (credentials headers, origin custom headers).

    ``cache_policy`` and ``origin_request_policy`` (with ``origin``) are the default behavior's policies, as a
    config names them (a managed name or id, or an inline table as a mapping); ``clock`` replaces the edge cache's
    monotonic clock (a test advances its own instead of sleeping). ``keep_invocations=False`` keeps none: for a
    proxy that runs long (a replay of a day of traffic), :attr:`EdgeProxy.invocations` stays empty.

    ``header_timeout`` and ``idle_timeout`` are the viewer connection timeouts of ``edgeproxy serve
    --header-timeout/--idle-timeout``, in seconds (by default 60, and 75 or, in ALB mode, 60).

    Handler references run in execution environments of their own (``isolation="process"``); ``isolation="thread"``
    runs Python ones in this process (a debugger's breakpoints work in them), as it always runs callables.
    ``idle_reclaim`` is how long (seconds) an idle environment is kept (10 minutes by default).

    Call :meth:`EdgeProxy.close` when done (the pytest fixture does)."""
    if sum(given is not None for given in (config_file, origin, alb_target)) != 1:
        raise ValueError("give one of config_file, origin (a URL, a folder or an aiohttp Application) or alb_target")
    recorder = _Recorder()
    origin_listener = None
    loaded: Distribution | TargetGroup
    if config_file is not None:
        loaded = config.load_any(Path(config_file))
    elif alb_target is not None:
        association = Association(
            alb_target, Path.cwd(), "edgeproxy.testing.start()", "alb_target", timeout=target_timeout
        )
        loaded = TargetGroup(target=association, multi_value_headers=multi_value_headers, arn=target_group_arn)
    else:
        if isinstance(origin, web.Application):
            origin_listener = await Listener.start(origin)
            origin = str(origin_listener.url)
        given: dict[Trigger, HandlerRef | None] = {
            "viewer-request": viewer_request,
            "origin-request": origin_request,
            "origin-response": origin_response,
            "viewer-response": viewer_response,
        }
        functions = {trigger: handler for trigger, handler in given.items() if handler is not None}
        try:
            loaded = config.from_flags(
                str(origin),
                functions,
                include_body=include_body,
                timeouts=timeouts,
                cache_policy=cache_policy,
                origin_request_policy=origin_request_policy,
                source="edgeproxy.testing.start()",
            )
        except BaseException:  # the origin it started for them is closed
            if origin_listener is not None:
                await origin_listener.close()
            raise
    session = None
    try:
        if isinstance(loaded, Distribution) and viewer_response_read_only is not None:
            loaded = dataclasses.replace(loaded, viewer_response_read_only=viewer_response_read_only)
        loaded = config.with_environments(loaded, isolation=isolation, idle_reclaim=idle_reclaim)
        if recording is not None:
            read, path = (
                (recording, recording.path) if isinstance(recording, record.Recording) else (None, Path(recording))
            )
            settings = record.Settings(
                path,
                record.record_mode(record_mode),
                record.match_on(match_on),
                tuple(redact),
                default_redactions,
                read,
            )
            session = record.open_for(loaded, settings)
        observers: tuple[Observer, ...] = (
            *((recorder,) if keep_invocations else ()),
            *(session.observers if session else ()),
        )
        if isinstance(loaded, TargetGroup):
            app = alb.create_app(loaded, observers=observers)
        else:
            options = Options(
                strictness=Strictness(lenient=lenient), debug_headers=debug_headers, observers=observers, clock=clock
            )
            app = create_app(loaded, options, origin=session.origin if session else None)
        listener = await Listener.start(app, host, port, header_timeout=header_timeout, idle_timeout=idle_timeout)
    except BaseException:
        if session is not None:
            session.close()
        if origin_listener is not None:
            await origin_listener.close()
        raise
    return EdgeProxy(listener, origin_listener, recorder, session)
