"""The ``context`` a handler gets, built from plain data so that any executor (a thread here, a child process
elsewhere) can make it."""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class ContextData(NamedTuple):
    """What the Python Lambda runtime's context object exposes, as plain values (a tuple: one is made per
    invocation). ``deadline`` is a ``time.monotonic()`` instant in this process."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    @classmethod
    def make(
        cls, *, name: str, edge: bool, version: str, memory: int, aws_request_id: str, log_stream: str, timeout: float
    ) -> ContextData:
        """At the edge, a function runs as a regional replica named ``us-east-1.<name>`` of a numbered version; behind
        an ALB, it is the function itself, invoked unqualified (``$LATEST``)."""
        function_name, function_version, arn, log_group = _names(name, edge, version)
        deadline = time.monotonic() + timeout
        return cls(function_name, function_version, arn, memory, aws_request_id, log_group, log_stream, deadline)


@functools.lru_cache(maxsize=1024)
def _names(name: str, edge: bool, version: str) -> tuple[str, str, str, str]:
    """A function's name, version, ARN and log group as its context gives them (the same for every invocation)."""
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    function_name = f"{REGION}.{name}" if edge else name
    if edge:
        return function_name, version, f"{arn}:{version}", f"/aws/lambda/{function_name}"
    return function_name, "$LATEST", arn, f"/aws/lambda/{function_name}"


class CognitoIdentity:
    """``context.identity``: present, and empty, when the invocation came through no Mobile SDK (as at the edge)."""

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The ``context`` argument, with the fields of the Python Lambda runtime's context object. As there,
    ``memory_limit_in_mb`` is a string (the runtime reads it from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``) and
    ``identity`` an empty identity (lambda-runtime-facts §5)."""

    def __init__(self, data: ContextData) -> None:
        self.function_name = data.function_name
        self.function_version = data.function_version
        self.invoked_function_arn = data.invoked_function_arn
        self.memory_limit_in_mb = str(data.memory_limit_in_mb)
        self.aws_request_id = data.aws_request_id
        self.log_group_name = data.log_group_name
        self.log_stream_name = data.log_stream_name
        self.identity = CognitoIdentity()
        self.client_context = None
        self._deadline = data.deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
