"""One viewer request's whole story, and the observers that are told it.

An :class:`Exchange` is made for every request (CloudFront and ALB mode alike) and filled in as the request goes
through: the viewer's request, each handler :class:`Invocation`, the stages that were skipped and why, the origin
request as sent and the origin response as received, and what the viewer got (an :class:`Outcome`, or an error).
Errors are data on the exchange: the server renders them, the log and the testing API read them.

:class:`Observer` objects attached to a running proxy are told when a trigger finishes, when the origin answers and
when the exchange is done; that is how recording, the inspector and the testing API see traffic. With none attached
nothing is copied or captured for them.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from edgeproxy.errors import AlbError, ViewerError
from edgeproxy.triggers import REQUEST_TRIGGERS, Source

if TYPE_CHECKING:
    from aiohttp import StreamReader

    from edgeproxy.origin import OriginRequest, OriginResponse

log = logging.getLogger("edgeproxy")

Body = bytes | AsyncIterator[bytes]


class XCache(enum.StrEnum):
    """The word CloudFront puts in ``X-Cache: <word> from cloudfront`` (§4.2)."""

    HIT = "Hit"
    MISS = "Miss"
    REFRESH_HIT = "RefreshHit"
    ERROR = "Error"
    REDIRECT = "Redirect"
    LAMBDA_GENERATED = "LambdaGeneratedResponse"
    LAMBDA_VALIDATION_ERROR = "LambdaValidationError"
    LAMBDA_EXECUTION_ERROR = "LambdaExecutionError"
    LAMBDA_LIMIT_EXCEEDED = "LambdaLimitExceeded"

    @property
    def header(self) -> str:
        return f"{self.value} from cloudfront"


@dataclass(frozen=True)
class ViewerRequest:
    """A viewer's request as the proxy received it. ``uri`` and ``querystring`` are raw (still percent-encoded)."""

    client_ip: str
    method: str
    uri: str
    querystring: str
    headers: CIMultiDictProxy[str] | CIMultiDict[str]
    body: StreamReader | None
    http_version: str = "1.1"
    local_address: tuple[str, int] | None = None  # the proxy's own address and port, as the viewer reached it
    client_port: int | None = None  # the viewer's own port
    # The X-Edgeproxy-Viewer-* headers it sent (Location field -> value), taken off its headers before the pipeline:
    # where the simulated viewer is, for this request (edgeproxy.viewer).
    overrides: Mapping[str, str] = field(default_factory=dict)


class _AsGiven(enum.Enum):
    AS_GIVEN = "as given"


# An unchanged result kept by reference to the event (not to the request the pipeline goes on with): what an
# invocation recorded for observers returns when the event is kept as JSON (Invocation.result reads it from there).
AS_GIVEN = _AsGiven.AS_GIVEN


@dataclass(frozen=True)
class Invocation:
    """One handler invocation: the event it was given (as it was before the handler ran; ``None`` when no observer
    asked for events), what it returned, when it started (``time.time()``), how long it took, and the error the
    viewer got because of it, if any. ``changed`` is false when the result is the request or response the handler
    was given, as it was given."""

    request_id: str  # CloudFront's request id (the response's X-Amz-Cf-Id); in ALB mode the X-Amzn-Trace-Id
    trigger: Source  # a Lambda@Edge trigger, or "alb"
    handler: str
    given: Any  # the event, or the JSON it was sent to its environment as (bytes: parsed when first read)
    returned: Any  # the result, or AS_GIVEN: the event's request or response, unchanged
    duration: float  # seconds
    error: ViewerError | AlbError | None
    started: float = 0.0
    changed: bool = True

    @property
    def event(self) -> Any:
        """The event as the handler got it. An event sent to an environment of its own is kept as the JSON sent,
        and parsed only if an observer reads it."""
        if type(self.given) is bytes:
            object.__setattr__(self, "given", orjson.loads(self.given))  # frozen: parsed once, the same event
        return self.given

    @property
    def result(self) -> Any:
        """What the handler returned, as CloudFront received it."""
        if self.returned is AS_GIVEN:
            cf = self.event["Records"][0]["cf"]
            return cf["request"] if self.trigger in REQUEST_TRIGGERS else cf["response"]
        return self.returned


@dataclass
class Outcome:
    """What goes back to the viewer, before the service's own response headers are added. ``generated``: the
    response is CloudFront's own making (a function's generated response), so it carries ``Server: CloudFront``.
    ``length`` is the ``Content-Length`` to send: the length of a body in memory unless given; for a streamed one,
    the origin's own (``None``: chunked). For HEAD and 304 it is that of the body a GET would get (RFC 9110 §8.6)."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: Body
    x_cache: XCache | None = None  # CloudFront mode only
    generated: bool = False
    length: int | None = None

    def __post_init__(self) -> None:
        if self.length is None and isinstance(self.body, bytes):
            self.length = len(self.body)


@dataclass(frozen=True)
class Sent:
    """The status line and headers that went to the viewer, as they went (the service's own headers and the
    framing included)."""

    status: int
    reason: str
    headers: CIMultiDict[str]


@dataclass
class Exchange:
    """One viewer request, from arrival to the last byte of its response."""

    id: str  # CloudFront's request id; in ALB mode the trace id
    mode: Literal["cloudfront", "alb"]
    viewer: ViewerRequest
    started: float = field(default_factory=time.time)
    behavior: str | None = None  # the path pattern of the behavior that matched
    invocations: list[Invocation] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> why it did not run
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage -> when it ran (time.time())
    origin_request: OriginRequest | None = None
    origin_response: OriginResponse | None = None
    origin_started: float | None = None
    origin_duration: float | None = None  # seconds until the origin's response headers
    outcome: Outcome | None = None
    error: ViewerError | AlbError | None = None
    finished: float | None = None
    responded: float | None = None  # when the response's status line and headers went to the viewer
    sent: Sent | None = None  # what they were
    # Bodies, captured only when an observer wants them (Observer.wants_bodies): the viewer's request body, the body
    # sent to the origin, the origin's response body as received, and the body sent to the viewer.
    request_body: bytearray | None = None
    origin_request_body: bytearray | None = None
    origin_body: bytearray | None = None
    viewer_body: bytearray | None = None

    @property
    def status(self) -> int | None:
        """The status the viewer got (``None`` until there is an outcome or an error)."""
        if self.outcome is not None:
            return self.outcome.status
        return None if self.error is None else self.error.status

    @property
    def x_cache(self) -> XCache | None:
        """The ``X-Cache`` word of the response (CloudFront mode)."""
        if self.outcome is not None:
            return self.outcome.x_cache
        if isinstance(self.error, ViewerError):
            return XCache(self.error.x_cache)
        return None


class Observer:
    """Told about every exchange of the proxy it is attached to. Override what you need; each method is called on
    the event loop and must not block. ``wants_bodies``: capture the bodies (``Exchange.*_body``) for it (read when
    the observer is attached)."""

    wants_bodies = False

    def trigger_done(self, exchange: Exchange, invocation: Invocation) -> None:
        """A handler invocation finished (its error, if any, is on ``invocation``)."""

    def origin_done(self, exchange: Exchange) -> None:
        """The origin answered (its response headers are in; the body may still be streaming)."""

    def exchange_done(self, exchange: Exchange) -> None:
        """The viewer's response was sent (or failed); the exchange is complete."""


class Observers:
    """The observers attached to one running proxy. Attaching and detaching may happen at any time."""

    def __init__(self, *observers: Observer) -> None:
        self._attached: tuple[Observer, ...] = ()
        self.any = False  # whether any observer is attached (read on every request: an attribute, not a call)
        self.wants_bodies = False  # whether any attached observer wants the bodies captured
        self._set(observers)

    def attach(self, observer: Observer) -> None:
        self._set((*self._attached, observer))

    def detach(self, observer: Observer) -> None:
        self._set(tuple(attached for attached in self._attached if attached is not observer))

    def _set(self, observers: tuple[Observer, ...]) -> None:
        self._attached = observers
        self.any = bool(observers)
        self.wants_bodies = any(observer.wants_bodies for observer in observers)
        # Each method is called only on the observers that override it (most want only exchange_done).
        self._trigger_done = _overriding(observers, "trigger_done")
        self._origin_done = _overriding(observers, "origin_done")
        self._exchange_done = _overriding(observers, "exchange_done")

    def __bool__(self) -> bool:
        return bool(self._attached)

    def trigger_done(self, exchange: Exchange, invocation: Invocation) -> None:
        for method in self._trigger_done:
            self._safely(method, exchange, invocation)

    def origin_done(self, exchange: Exchange) -> None:
        for method in self._origin_done:
            self._safely(method, exchange)

    def exchange_done(self, exchange: Exchange) -> None:
        exchange.finished = time.time()
        for method in self._exchange_done:
            self._safely(method, exchange)

    @staticmethod
    def _safely(method: Any, *args: Any) -> None:
        # An observer's bug must not fail the viewer's request, nor hide the other observers.
        try:
            method(*args)
        except Exception:
            log.exception("observer %r failed", method)


def _overriding(observers: tuple[Observer, ...], name: str) -> tuple[Any, ...]:
    """The bound ``name`` methods of the observers whose class overrides :class:`Observer`'s."""
    base = getattr(Observer, name)
    return tuple(getattr(observer, name) for observer in observers if getattr(type(observer), name, base) is not base)


async def tee(body: AsyncIterator[bytes], sink: bytearray) -> AsyncIterator[bytes]:
    """``body``'s chunks, passed on as they come, with a copy of each appended to ``sink``."""
    async for chunk in body:
        sink += chunk
        yield chunk
