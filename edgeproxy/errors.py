"""A shallow error tree.

Every error that can reach a viewer carries the HTTP status CloudFront answers with, the word CloudFront puts in
``X-Cache`` (``<word> from cloudfront``), the terse message CloudFront shows on its error page, and a precise
``reason`` for the log: which handler, which trigger, which header or field, which limit
(reference/aws-behaviour.md §3.1, §3.2).
"""

from __future__ import annotations

from typing import Any, Literal


class EdgeProxyError(Exception):
    """Root of everything edgeproxy raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole, whatever the subclass's __init__ takes (a replay's forked process sends its error back).
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[EdgeProxyError], args: tuple[Any, ...], state: dict[str, Any]) -> EdgeProxyError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(EdgeProxyError):
    """A configuration problem found at start-up: names the file, the key path and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class EventArgumentError(EdgeProxyError, ValueError):
    """An argument the sample-event builders (``cloudfront_event``, ``alb_event``, ``edgeproxy events``) cannot make
    an event of, because CloudFront or ALB would never send one like it: names the ``argument`` and the problem."""

    def __init__(self, argument: str, value: object, problem: str) -> None:
        self.argument = argument
        self.value = value
        self.problem = problem
        super().__init__(f"{argument} {self.shown}: {problem}")

    @property
    def shown(self) -> str:
        """The value as the message shows it (a long body cut short)."""
        text = repr(self.value)
        return text if len(text) <= 60 else text[:56] + "...'"


class HandlerLoadError(EdgeProxyError):
    """A handler reference that cannot be resolved to a callable."""


FunctionErrorKind = Literal["unhandled", "timeout", "out_of_memory", "init_error", "bad_result", "throttled"]


class FunctionError(EdgeProxyError):
    """A function's invocation failed, in Lambda's own terms and whatever invoked it: the handler raised
    (``unhandled``), ran past its timeout (``timeout``), outgrew its memory (``out_of_memory``), failed to load
    (``init_error``), returned what the runtime cannot marshal (``bad_result``), or could not run because the function
    is at its concurrency limit (``throttled``). Each caller maps it to what its service answers:
    :meth:`ViewerError.of` for CloudFront, :meth:`AlbError.of` for an ALB."""

    def __init__(self, kind: FunctionErrorKind, reason: str, *, handler_traceback: str | None = None) -> None:
        self.kind = kind
        self.reason = reason
        self.handler_traceback = handler_traceback  # the crash, cut to the handler's own frames
        super().__init__(reason)


class ViewerError(EdgeProxyError):
    """An error CloudFront answers the viewer with, instead of the origin's response.

    ``status`` and ``x_cache`` are what the viewer sees; ``message`` is CloudFront's own terse line on the error
    page; ``reason`` is edgeproxy's precise explanation, logged and (opt-in) sent in a debug header.
    """

    status: int = 502
    x_cache: str = "Error"
    message: str = "The request could not be satisfied."

    def __init__(self, reason: str, *, message: str | None = None) -> None:
        self.reason = reason
        if message is not None:
            self.message = message
        super().__init__(reason)

    @staticmethod
    def of(error: FunctionError) -> ViewerError:
        """CloudFront's answer to a failed invocation (§3.1): 503 LambdaLimitExceeded for a throttled function,
        503 LambdaExecutionError for everything else (a timeout included: §3.1 prefers it to LambdaLimitExceeded)."""
        if error.kind == "throttled":
            return LambdaLimitExceeded(error.reason)
        return LambdaExecutionError(error.reason, handler_traceback=error.handler_traceback)


class LambdaValidationError(ViewerError):
    """A handler returned something CloudFront rejects (§3.1: 502)."""

    status = 502
    x_cache = "LambdaValidationError"
    message = "The Lambda function result failed validation."


class LambdaExecutionError(ViewerError):
    """A handler raised, could not be loaded, or ran past its timeout (§3.1: 503)."""

    status = 503
    x_cache = "LambdaExecutionError"
    message = (
        "The Lambda function associated with the CloudFront distribution is invalid or doesn't have "
        "the required permissions."
    )

    def __init__(self, reason: str, *, message: str | None = None, handler_traceback: str | None = None) -> None:
        super().__init__(reason, message=message)
        self.handler_traceback = handler_traceback  # the crash, cut to the handler's own frames


class LambdaLimitExceeded(ViewerError):
    """The function could not run: Lambda throttled it (§3.1: 503; the CloudFront guide's "HTTP 503 status code
    (Lambda limit exceeded)" page: concurrent executions over Lambda's quota)."""

    status = 503
    x_cache = "LambdaLimitExceeded"
    # The page's reason line; its next sentence, "We can't connect to the server ... at this time.", is on every
    # error page (server.error_page), as on the pages observed from CloudFront (lambda-runtime-facts §7).
    message = "The Lambda function associated with the CloudFront distribution was throttled."


class OriginConnectionError(ViewerError):
    """The origin could not be reached (§5.2: 502)."""

    status = 502
    x_cache = "Error"
    message = "CloudFront wasn't able to connect to the origin."


class ReplayMissError(OriginConnectionError):
    """Replaying a recording, an origin request that it does not hold (record mode ``none``): CloudFront's 502, as
    for an origin it cannot reach. ``request`` names the request; ``reason`` adds the nearest recorded one and what
    differed."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(reason)
        self.request = request


class OriginTimeoutError(ViewerError):
    """The origin did not answer within its read timeout (§5.2: 504)."""

    status = 504
    x_cache = "Error"
    message = (
        "CloudFront attempted to establish a connection with the origin, but either the attempt failed or the "
        "origin closed the connection."
    )


class RequestRejected(ViewerError):
    """CloudFront refuses the viewer's request before any function runs (method not allowed: 403, too large: 413)."""

    x_cache = "Error"

    def __init__(self, status: int, reason: str, *, message: str | None = None) -> None:
        self.status = status
        super().__init__(reason, message=message)


class ViewerBodyTimeout(EdgeProxyError, TimeoutError):
    """What reading a viewer's request body raises when the body stopped coming for the idle timeout (listener.py):
    each service answers it with a 408. (A TimeoutError: aiohttp's server, reading what is left of a body after the
    response, takes it as the timeout it is.)"""


class AlbError(EdgeProxyError):
    """An error an Application Load Balancer answers the client with instead of its Lambda target's response.

    ``status`` is what the client sees (§7.5: 502 for anything wrong with the function or its response, 413 for a
    request body over 1 MB); ``error_reason`` is the ALB access-log name (``LambdaInvalidResponse``,
    ``LambdaUnhandled``, ``LambdaResponseTooLarge``, ``LambdaRequestTooLarge``, ...), or ``None`` when the load balancer
    refuses the request itself (``TRACE``, too many ``X-Forwarded-For`` addresses); ``reason`` is edgeproxy's precise
    explanation for the log: which handler, which field, which limit.
    """

    def __init__(
        self, status: int, error_reason: str | None, reason: str, *, handler_traceback: str | None = None
    ) -> None:
        self.status = status
        self.error_reason = error_reason
        self.reason = reason
        self.handler_traceback = handler_traceback  # a crash of the target, cut to the handler's own frames
        super().__init__(reason)

    @classmethod
    def of(cls, error: FunctionError) -> AlbError:
        """The load balancer's answer to a failed invocation (§7.5): 502 ``LambdaThrottling`` for a throttled function,
        502 ``LambdaUnhandled`` otherwise. A timeout has no code of its own there; Lambda reports it to the invoker as
        an unhandled function error (Sandbox.Timedout), so it is LambdaUnhandled too (inferred), and so is a result
        the runtime cannot marshal (Runtime.MarshalError is a function error)."""
        name = "LambdaThrottling" if error.kind == "throttled" else "LambdaUnhandled"
        return cls(502, name, error.reason, handler_traceback=error.handler_traceback)
