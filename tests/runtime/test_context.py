"""runtime/context.py: the handler's context, from plain data."""

from __future__ import annotations

import time

from edgeproxy.runtime.context import ContextData, LambdaContext


def make(*, edge: bool, timeout: float = 5) -> ContextData:
    return ContextData.make(
        name="auth", edge=edge, version="7", memory=256, aws_request_id="rid", log_stream="stream", timeout=timeout
    )


def test_at_the_edge_a_function_is_a_regional_replica_of_a_numbered_version() -> None:
    data = make(edge=True)
    assert (data.function_name, data.function_version) == ("us-east-1.auth", "7")
    assert data.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:auth:7"
    assert data.log_group_name == "/aws/lambda/us-east-1.auth"


def test_behind_an_alb_it_is_the_function_itself_unqualified() -> None:
    data = make(edge=False)
    assert (data.function_name, data.function_version) == ("auth", "$LATEST")
    assert data.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:auth"
    assert data.log_group_name == "/aws/lambda/auth"


def test_the_context_object_has_the_python_runtimes_fields_and_counts_down() -> None:
    context = LambdaContext(make(edge=True, timeout=2))
    # As Lambda's Python runtime has them: the memory size a string, an empty identity, no client context.
    assert (context.aws_request_id, context.memory_limit_in_mb, context.log_stream_name) == ("rid", "256", "stream")
    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == (None, None)
    assert context.client_context is None
    first = context.get_remaining_time_in_millis()
    assert 1000 < first <= 2000
    time.sleep(0.02)
    assert context.get_remaining_time_in_millis() < first
    assert LambdaContext(make(edge=True, timeout=0)).get_remaining_time_in_millis() == 0
