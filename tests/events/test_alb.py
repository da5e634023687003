"""events/alb.py: the ALB event and result shapes, on their own (the proxy-level behaviour is in tests/test_alb.py)."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from edgeproxy.errors import AlbError
from edgeproxy.events.alb import (
    MAX_RESPONSE_BYTES,
    build_event,
    encode_body,
    is_alb_event,
    is_multi_value,
    is_text,
    query_pairs,
    read_result,
)
from edgeproxy.runtime.marshal import marshalled

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/0123456789abcdef"


def test_query_pairs_keep_raw_text() -> None:
    assert query_pairs("a=1&&b&c=&=x&d=e=f&a=%2B+") == [
        ("a", "1"),
        ("b", ""),
        ("c", ""),
        ("", "x"),
        ("d", "e=f"),
        ("a", "%2B+"),
    ]
    assert query_pairs("") == []


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/html", True),
        ("Text/CSV; charset=utf-8", True),
        ("application/json", True),
        ("application/json;charset=UTF-8", True),
        ("application/javascript", True),
        ("application/xml", True),
        ("application/vnd.api+json", False),  # not in the documented list (§7.3)
        ("application/octet-stream", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_is_text(content_type: str | None, text: bool) -> None:
    assert is_text(content_type) is text


def test_encode_body() -> None:
    assert encode_body(b"", content_type=None, content_encoding="gzip") == ("", False)
    assert encode_body(b"{}", content_type="application/json", content_encoding=None) == ("{}", False)
    assert encode_body(b"{}", content_type="application/json", content_encoding="br") == ("e30=", True)
    with pytest.raises(AlbError) as caught:
        encode_body(b"\xff", content_type="text/plain", content_encoding=None)
    assert (caught.value.status, caught.value.error_reason) == (400, "LambdaBadRequest")


@pytest.mark.parametrize("multi_value", [False, True])
def test_build_event_exactly_one_pair_of_fields(multi_value: bool) -> None:
    event = build_event(
        target_group_arn=ARN,
        method="GET",
        path="/a%20b",
        querystring="x=1&x=2",
        headers=[("Accept", "a"), ("ACCEPT", "b"), ("Content-Type", "text/plain")],
        body=b"hi",
        multi_value=multi_value,
    )
    assert is_alb_event(event)
    assert is_multi_value(event) is multi_value
    if multi_value:
        assert set(event) == {
            "requestContext",
            "httpMethod",
            "path",
            "multiValueQueryStringParameters",
            "multiValueHeaders",
            "body",
            "isBase64Encoded",
        }
        assert event["multiValueHeaders"]["accept"] == ["a", "b"]
    else:
        assert set(event) == {
            "requestContext",
            "httpMethod",
            "path",
            "queryStringParameters",
            "headers",
            "body",
            "isBase64Encoded",
        }
        assert event["headers"]["accept"] == "b"
    assert (event["body"], event["isBase64Encoded"]) == ("hi", False)


def test_is_alb_event() -> None:
    assert not is_alb_event({"Records": []})
    assert not is_alb_event({"requestContext": {"http": {}}})  # API Gateway / function URLs
    assert not is_alb_event("text")


def read(result: Any, multi_value: bool = False) -> Any:
    value, size = marshalled(result)  # what the load balancer receives: the JSON Lambda's runtime made of it
    return read_result(value, size=size, multi_value=multi_value, target="t.py:handler")


@pytest.mark.parametrize(
    ("description", "reason"),
    [("200 OK", "OK"), ("Fine", "Fine"), ("200", "OK"), ("", "OK"), ("2000 Odd", "2000 Odd")],
)
def test_status_description_to_reason(description: str, reason: str) -> None:
    assert read({"statusCode": 200, "statusDescription": description}).reason == reason


def test_result_is_what_lambda_would_serialise() -> None:
    response = read({"statusCode": 200, "multiValueHeaders": {"X-A": ("1", "2")}, "body": "d"}, multi_value=True)
    assert response.headers.getall("X-A") == ["1", "2"]  # a tuple is a JSON array
    assert response.payload["multiValueHeaders"] == {"X-A": ["1", "2"]}
    assert read({"statusCode": decimal.Decimal(200)}).status == 200  # Lambda serialises Decimal as a number...
    with pytest.raises(AlbError, match="must be a number"):
        read({"statusCode": decimal.Decimal("200.5")})  # ...which must be an integer


def test_ignored_field_is_reported() -> None:
    assert read({"statusCode": 200, "headers": {"a": "1"}}, multi_value=True).ignored == "headers"
    assert read({"statusCode": 200, "multiValueHeaders": {"a": ["1"]}}).ignored == "multiValueHeaders"
    response = read({"statusCode": 200, "headers": {"a": "1"}})
    assert (response.ignored, response.headers["a"]) == (None, "1")


def test_response_size_limits() -> None:
    overhead = len('{"statusCode": 200, "body": ""}')
    assert len(read({"statusCode": 200, "body": "x" * (MAX_RESPONSE_BYTES - overhead)}).body) > 0
    with pytest.raises(AlbError) as caught:
        read({"statusCode": 200, "body": "x" * (MAX_RESPONSE_BYTES - overhead + 1)})
    assert (caught.value.status, caught.value.error_reason) == (502, "LambdaResponseTooLarge")
    with pytest.raises(AlbError, match="response headers are"):
        read({"statusCode": 200, "headers": {f"x-{n}": "v" * 1000 for n in range(40)}})
