"""ALB → Lambda event shapes: build the request event from wire values, and read a target's result back into a wire
response (reference/aws-behaviour.md §7).

This is the only place that knows the JSON shape of ALB events and results. Events are plain dicts, because that is
what user handlers receive; the TypedDicts below are for readers and mypy. Everything a result can get wrong becomes
an :class:`~edgeproxy.errors.AlbError` carrying ALB's status and access-log ``error_reason``, and a precise reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, NotRequired, TypedDict

from multidict import CIMultiDict

from edgeproxy.errors import AlbError
from edgeproxy.headers import HOP_BY_HOP, forbidden_in_field, unpaired_surrogate

HEALTH_CHECK_USER_AGENT = "ELB-HealthChecker/2.0"
# §7.4: a response JSON over 1 MB is LambdaResponseTooLarge. "1 MB" is read as 1 MiB (§10 item 13: undocumented).
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RESPONSE_HEADER_BYTES = 32 * 1024  # §7.3: response header total
# §7.3: sent as text (not base64) when there is no Content-Encoding; everything else, or no type at all, is base64.
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})
RESULT_FIELDS = ("statusCode", "statusDescription", "headers", "multiValueHeaders", "body", "isBase64Encoded")

INVALID_RESPONSE = "LambdaInvalidResponse"
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Elb(TypedDict):
    targetGroupArn: str


class RequestContext(TypedDict):
    elb: Elb


class Event(TypedDict):
    """The request event. Exactly one of the single-value pair (``queryStringParameters`` + ``headers``) or the
    multi-value pair (``multiValueQueryStringParameters`` + ``multiValueHeaders``) is present (§7.2)."""

    requestContext: RequestContext
    httpMethod: str
    path: str
    queryStringParameters: NotRequired[dict[str, str]]
    multiValueQueryStringParameters: NotRequired[dict[str, list[str]]]
    headers: NotRequired[dict[str, str]]
    multiValueHeaders: NotRequired[dict[str, list[str]]]
    body: str
    isBase64Encoded: bool


class Result(TypedDict):
    """What a target returns (§7.4). Only ``statusCode`` is required in practice; ``headers`` is read in
    single-value mode and ``multiValueHeaders`` in multi-value mode."""

    statusCode: int
    statusDescription: NotRequired[str]
    headers: NotRequired[dict[str, str]]
    multiValueHeaders: NotRequired[dict[str, list[str]]]
    body: NotRequired[str]
    isBase64Encoded: NotRequired[bool]


def is_alb_event(event: Any) -> bool:
    """Whether an event came from an ALB: it has ``requestContext.elb`` (how Mangum and powertools tell)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(context, dict) and "elb" in context


def is_multi_value(event: Any) -> bool:
    """Whether an ALB event was built in multi-value mode: it carries ``multiValueHeaders`` (§7.2)."""
    return isinstance(event, dict) and "multiValueHeaders" in event


def query_pairs(querystring: str) -> list[tuple[str, str]]:
    """A raw query string's parameters in order. Keys and values stay exactly as received: percent-encoding and ``+``
    are kept (§7.1). A parameter without ``=`` has the value ``""``."""
    pairs = []
    for part in querystring.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def is_text(content_type: str | None) -> bool:
    """Whether a body of this Content-Type goes into the event as text (§7.3). The media type alone is matched;
    parameters such as ``; charset=utf-8`` are ignored (§7.3: inferred)."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES


def encode_body(body: bytes, *, content_type: str | None, content_encoding: str | None) -> tuple[str, bool]:
    """``(body, isBase64Encoded)`` for a request body (§7.3): text as is for the text types without a
    Content-Encoding, base64 for anything else (including no Content-Type); ``("", False)`` when empty."""
    if not body:
        return "", False
    if content_encoding is None and is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError as exc:
            # §7.3: non-UTF-8 bodies are LambdaBadRequest; the status is not documented (§10 item 13), 400 is ours.
            raise AlbError(400, "LambdaBadRequest", f"a {content_type} body that is not UTF-8 ({exc})") from None
    return base64.b64encode(body).decode("ascii"), True


def build_event(
    *,
    target_group_arn: str,
    method: str,
    path: str,
    querystring: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    multi_value: bool,
) -> Event:
    """The request event for one request (§7.1, §7.2). ``path`` and ``querystring`` are raw (still
    percent-encoded); ``headers`` are the ones the load balancer forwards, its own included, in order. Names become
    lower case; in single-value mode the last of repeated headers or query parameters wins."""
    lowered = [(name.lower(), value) for name, value in headers]
    last = dict(lowered)
    text, is_base64 = encode_body(
        body, content_type=last.get("content-type"), content_encoding=last.get("content-encoding")
    )
    context: RequestContext = {"elb": {"targetGroupArn": target_group_arn}}
    if multi_value:
        return {
            "requestContext": context,
            "httpMethod": method,
            "path": path,
            "multiValueQueryStringParameters": _grouped(query_pairs(querystring)),
            "multiValueHeaders": _grouped(lowered),
            "body": text,
            "isBase64Encoded": is_base64,
        }
    return {
        "requestContext": context,
        "httpMethod": method,
        "path": path,
        "queryStringParameters": dict(query_pairs(querystring)),
        "headers": last,
        "body": text,
        "isBase64Encoded": is_base64,
    }


def health_check_event(*, target_group_arn: str, path: str, multi_value: bool) -> Event:
    """The event of ALB's health checker (§7.6): a GET with its user agent as the only header, no forwarding headers,
    an empty query and an empty body."""
    return build_event(
        target_group_arn=target_group_arn,
        method="GET",
        path=path,
        querystring="",
        headers=[("user-agent", HEALTH_CHECK_USER_AGENT)],
        body=b"",
        multi_value=multi_value,
    )


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


@dataclass
class TargetResponse:
    """A target's validated result, as wire values. ``payload`` is the result as the ALB received it (the JSON
    Lambda sent); ``ignored`` names a header field present in the result but dropped in this mode."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    body: bytes
    payload: dict[str, Any]
    ignored: str | None = None


def _invalid(target: str, problem: str) -> AlbError:
    return AlbError(502, INVALID_RESPONSE, f"{target} returned an invalid response: {problem}")


def read_result(value: Any, *, size: int | None, multi_value: bool, target: str) -> TargetResponse:
    """Validate a target's result as the load balancer does (§7.4) and turn it into a wire response. ``value`` is
    the JSON the load balancer received from Lambda, ``size`` its length in bytes.

    ``target`` names the handler in error reasons. Raises :class:`AlbError` (502) for a result over 1 MB
    (``LambdaResponseTooLarge``) and for a malformed one (``LambdaInvalidResponse``): ``statusCode`` missing or not
    a number, JSON ``null`` in any known field, a header value that is not a string, a ``body`` that is not a string,
    undecodable base64, and so on.
    """
    if size is not None and size > MAX_RESPONSE_BYTES:
        raise AlbError(
            502, "LambdaResponseTooLarge", f"{target} returned {size} bytes of JSON (limit {MAX_RESPONSE_BYTES})"
        )
    if where := unpaired_surrogate(value):  # valid JSON ("\\ud800"), but not text a response could carry
        raise _invalid(target, f"{where} holds an unpaired surrogate (not valid Unicode text)")
    if not isinstance(value, dict):
        raise _invalid(target, f"the result is {_json_kind(value)}, not an object")
    for name in RESULT_FIELDS:
        # §7.4: a JSON null in a known field breaks the response (body, headers, statusDescription... observed).
        if name in value and value[name] is None:
            raise _invalid(target, f"'{name}' is null")
    if "statusCode" not in value:
        raise _invalid(target, "'statusCode' is missing")
    status = value["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool):
        raise _invalid(target, f"'statusCode' must be a number, got {json.dumps(status)}")
    if not 200 <= status <= 599:
        # §7.4: what ALB does with out-of-range codes is undocumented; a final HTTP response needs 200-599.
        raise _invalid(target, f"'statusCode' {status} is not a final HTTP status (200-599)")
    is_base64 = value.get("isBase64Encoded", False)
    if not isinstance(is_base64, bool):
        raise _invalid(target, f"'isBase64Encoded' must be true or false, got {json.dumps(is_base64)}")
    return TargetResponse(
        status=status,
        reason=_reason(value, status, target),
        headers=_headers(value, multi_value, target),
        body=_body(value.get("body", ""), is_base64, target),
        payload=value,
        ignored=_ignored_field(value, multi_value),
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def _reason(value: dict[str, Any], status: int, target: str) -> str:
    """The reason phrase: ``statusDescription`` (``"200 OK"`` gives ``OK``), else the standard phrase (§7.4)."""
    description = value.get("statusDescription", "")
    if not isinstance(description, str):
        raise _invalid(target, f"'statusDescription' must be a string, got {json.dumps(description)}")
    if forbidden := forbidden_in_field(description):
        raise _invalid(target, f"'statusDescription' contains {forbidden} (a control character)")
    code = str(status)
    if description == code or description.startswith(f"{code} "):
        description = description[len(code) :]
    description = description.strip()
    if description:
        return description
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _ignored_field(value: dict[str, Any], multi_value: bool) -> str | None:
    """The header field of the other mode, if the result has one. §7.2 ([unclear], §10 item 10): a ``headers`` map
    returned in multi-value mode is ignored, per most reports (not a 502); a ``multiValueHeaders`` map returned in
    single-value mode is ignored too (inferred from the one capture)."""
    other = "headers" if multi_value else "multiValueHeaders"
    return other if other in value else None


def _headers(value: dict[str, Any], multi_value: bool, target: str) -> CIMultiDict[str]:
    """The response headers of this mode's field, as wire headers. Content-Length is the load balancer's to compute
    and hop-by-hop headers are ignored (§7.4). Several values of a multi-value header become several lines."""
    field = "multiValueHeaders" if multi_value else "headers"
    given = value.get(field, {})
    if not isinstance(given, dict):
        raise _invalid(target, f"'{field}' must be an object, got {_json_kind(given)}")
    wire: CIMultiDict[str] = CIMultiDict()
    size = 0
    for name, entry in given.items():
        if multi_value and not isinstance(entry, list):
            raise _invalid(target, f"multiValueHeaders[{name!r}] must be an array of strings, got {_json_kind(entry)}")
        for item in entry if multi_value else [entry]:
            if not isinstance(item, str):
                raise _invalid(target, f"header {name!r} has a value that is not a string: {json.dumps(item)}")
            if not TOKEN.fullmatch(name):
                raise _invalid(target, f"{name!r} is not a valid header name")
            if forbidden := forbidden_in_field(item):
                raise _invalid(target, f"header {name!r} has {forbidden} (a control character) in its value")
            size += len(name) + len(item) + 4
            lower = name.lower()
            if lower in HOP_BY_HOP or lower == "content-length":
                continue
            wire.add(name, item)
    if size > MAX_RESPONSE_HEADER_BYTES:
        # §7.3 gives the 32 K limit; that passing it is a 502 like the other response faults is inferred.
        raise _invalid(target, f"the response headers are {size} bytes (limit {MAX_RESPONSE_HEADER_BYTES})")
    return wire


def _body(body: Any, is_base64: bool, target: str) -> bytes:
    if not isinstance(body, str):
        raise _invalid(target, f"'body' must be a string, got {_json_kind(body)}")
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(target, "'isBase64Encoded' is true but 'body' is not valid base64") from None
    return body.encode("utf-8")
