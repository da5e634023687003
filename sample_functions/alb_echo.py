"""Echo: answer every request with what the load balancer told the function about it, as JSON.

Use case: see exactly what an ALB sends a Lambda target (and debug a handler's assumptions about it): the raw path,
the query parameters before and after URL-decoding, the headers the load balancer added, the body and how it was
encoded. Works in both header modes, and answers ALB's health checks.
Target: an ALB target group, single-value or multi-value headers.
What it does: reads the event the way a framework would (multi-value mode when ``multiValueHeaders`` is present),
and answers in the same mode: ``headers`` in single-value mode, ``multiValueHeaders`` in multi-value mode (the
other field would be ignored by the load balancer). A ``GET`` from ``ELB-HealthChecker/2.0`` gets ``200 ok``.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_plus

HEALTH_CHECKER = "ELB-HealthChecker/2.0"


def _multi(event: dict[str, Any]) -> dict[str, list[str]]:
    """The headers as name -> every value, in either mode."""
    if "multiValueHeaders" in event:
        return dict(event["multiValueHeaders"])
    return {name: [value] for name, value in event.get("headers", {}).items()}


def _query(event: dict[str, Any]) -> dict[str, list[str]]:
    if "multiValueQueryStringParameters" in event:
        return dict(event["multiValueQueryStringParameters"])
    return {key: [value] for key, value in event.get("queryStringParameters", {}).items()}


def _respond(event: dict[str, Any], status: int, content_type: str, body: str) -> dict[str, Any]:
    headers = {"Content-Type": content_type, "Cache-Control": "no-store"}
    response: dict[str, Any] = {
        "statusCode": status,
        "statusDescription": f"{status} {HTTPStatus(status).phrase}",
        "isBase64Encoded": False,
        "body": body,
    }
    if "multiValueHeaders" in event:
        response["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    else:
        response["headers"] = headers
    return response


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = _multi(event)
    if headers.get("user-agent") == [HEALTH_CHECKER]:
        return _respond(event, 200, "text/plain; charset=utf-8", "ok\n")
    query = _query(event)
    body: str = event.get("body", "")
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    echo = {
        "mode": "multi-value" if "multiValueHeaders" in event else "single-value",
        "method": event["httpMethod"],
        "path": event["path"],
        "query": query,
        "decoded_query": {unquote_plus(k): [unquote_plus(v) for v in values] for k, values in query.items()},
        "headers": headers,
        "body_base64_encoded": event.get("isBase64Encoded", False),
        "body_bytes": len(raw),
        "body_text": raw.decode("utf-8", errors="replace"),
        "target_group_arn": event["requestContext"]["elb"]["targetGroupArn"],
        "request_id": context.aws_request_id,
    }
    return _respond(event, 200, "application/json", json.dumps(echo, indent=2) + "\n")
