"""CloudFront's rules for what a Lambda@Edge function may return, per trigger.

Each check yields :class:`Violation` values: CloudFront's terse message (what the error page says, §3.2) plus a
precise ``detail`` naming the header, field or limit. :func:`check_result` decides whether a result is a request or
a response, fills in missing header ``key`` values, and returns every violation it found; the pipeline decides
whether they are fatal (strict, the default) or warnings (lenient). A result whose shape is unusable raises at once
whatever the strictness, because there is nothing to let through.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgeproxy.errors import LambdaValidationError
from edgeproxy.events.cloudfront import wire_name
from edgeproxy.headers import forbidden_in_field, is_disallowed, unpaired_surrogate
from edgeproxy.runtime.marshal import copy_json
from edgeproxy.triggers import FACTS, LEGACY_VIEWER_RESPONSE_READ_ONLY, Trigger

log = logging.getLogger("edgeproxy")

URI_AND_QUERY_LIMIT = 8192  # §3.5

MSG_NOT_OBJECT = "The Lambda function returned invalid JSON: The JSON output must be an object type."
MSG_NOT_PARSABLE = "The Lambda function returned invalid json: The json output is not parsable."
_FAILED = "The Lambda function result failed validation: "
_BAD_HEADERS = "The Lambda function returned an invalid entry in the headers object: "
MSG_READ_ONLY = _FAILED + "The function tried to add, delete, or change a read-only header."
MSG_BLACKLISTED = _FAILED + "The function tried to add a blacklisted header."
MSG_BODY = _FAILED + "The body is not a string, is not an object, or exceeds the maximum size."
MSG_HEADER_ARRAY = _BAD_HEADERS + "Each header entry in the headers object must be an array."
MSG_HEADER_VALUE = _BAD_HEADERS + "The value of each header value must be of string or array of string type."
MSG_INVALID = "The Lambda function result failed validation."
MSG_URI = "Lambda function invalid URI format."

QUERYSTRING_FORBIDDEN = re.compile(r"[\x00-\x20\x7f#]")
URI_FORBIDDEN = re.compile(r"[\x00-\x20\x7f#?]")
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
DNS_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.1: a token


@dataclass(frozen=True)
class Violation:
    """One broken rule: CloudFront's message for the error page and the precise reason for the developer."""

    message: str
    detail: str

    def error(self) -> LambdaValidationError:
        return LambdaValidationError(self.detail, message=self.message)


@dataclass(frozen=True)
class Strictness:
    """Which reading of the rules to apply where the reference records a conflict (§10)."""

    lenient: bool = False
    legacy_viewer_response_read_only: bool = False

    def read_only(self, trigger: Trigger) -> frozenset[str]:
        if trigger == "viewer-response" and self.legacy_viewer_response_read_only:
            return LEGACY_VIEWER_RESPONSE_READ_ONLY
        return FACTS[trigger].read_only


STRICT = Strictness()


@dataclass(frozen=True)
class Checked:
    """A validated result: whether it is a request or a response, the (key-filled) object, and what it broke."""

    kind: Literal["request", "response"]
    value: dict[str, Any]
    violations: tuple[Violation, ...]
    changed: bool = True


HeaderValues = dict[str, tuple[str, ...]]


def header_values(headers: Mapping[str, Any]) -> HeaderValues:
    """A snapshot of an event's header map (lower-case map name -> values) to compare a result against. The rules
    judge a header by its map name (§3.6), lower-cased: an upper-case map name (a violation of its own, let through
    when lenient) is still the same header."""
    values: HeaderValues = {}
    for name, entries in headers.items():
        values[name.lower()] = values.get(name.lower(), ()) + tuple(entry["value"] for entry in entries)
    return values


@dataclass(frozen=True)
class Snapshot:
    """What a trigger's event held before the handler ran (handlers mutate the event in place)."""

    client_ip: str
    method: str
    request_headers: HeaderValues
    origin: Any = None
    response_status: str | None = None
    response_description: str | None = None
    response_headers: HeaderValues | None = None

    @classmethod
    def of(cls, request: Mapping[str, Any], response: Mapping[str, Any] | None) -> Snapshot:
        return cls(
            client_ip=request.get("clientIp", ""),
            method=request.get("method", ""),
            request_headers=header_values(request.get("headers", {})),
            origin=copy_json(request.get("origin")),
            response_status=None if response is None else response["status"],
            response_description=None if response is None else response.get("statusDescription"),
            response_headers=None if response is None else header_values(response.get("headers", {})),
        )


def _invalid(detail: str, message: str = MSG_INVALID) -> LambdaValidationError:
    return LambdaValidationError(detail, message=message)


def check_result(trigger: Trigger, before: Snapshot, result: Any, strictness: Strictness = STRICT) -> Checked:
    """Validate what a handler returned at ``trigger``. Raises for an unusable shape; returns the rest."""
    if not isinstance(result, dict):
        kind = "None" if result is None else type(result).__name__
        raise _invalid(f"the handler returned {kind}, not an object", MSG_NOT_OBJECT)
    if "Records" in result:
        raise _invalid(
            "the handler returned the whole event; return event['Records'][0]['cf']['request'] "
            "(or ['response']) instead"
        )
    is_request_trigger = FACTS[trigger].is_request
    if is_request_trigger and "status" not in result:
        violations = tuple(_check_request(trigger, before, result, strictness))
        return Checked("request", result, violations)
    if not is_request_trigger and "status" not in result:
        raise _invalid("a response trigger must return a response object with a 'status'")
    violations = tuple(_check_response(trigger, before, result, strictness))
    return Checked("response", result, violations)


def validate(
    trigger: Trigger,
    before: tuple[dict[str, Any], dict[str, Any] | None],
    result: Any,
    strictness: Strictness = STRICT,
    *,
    handler: str,
) -> Checked:
    """CloudFront's whole check of what ``handler`` returned at ``trigger`` (the JSON the runtime received), given a
    copy of the event's request and response as they were before it ran (handlers mutate the event in place; see
    :func:`~edgeproxy.runtime.marshal.copy_json`).

    A result equal to what the handler was given breaks no rule. Otherwise an unusable shape, or in strict mode
    any violation, raises :class:`LambdaValidationError` naming the handler, the trigger and the rule; in lenient
    mode each violation is logged as a warning and the result goes through."""
    before_request, before_response = before
    given = before_request if before_response is None else before_response
    if type(result) is dict and result == given:  # a plain dict: no user-defined __eq__ runs here
        return Checked("request" if before_response is None else "response", result, (), changed=False)
    if where := unpaired_surrogate(result):  # valid JSON ("\\ud800"), but not text any message could carry
        raise LambdaValidationError(
            f"{handler} at {trigger}: {where} holds an unpaired surrogate (not valid Unicode text)",
            message=MSG_NOT_PARSABLE,
        )
    try:
        checked = check_result(trigger, Snapshot.of(before_request, before_response), result, strictness)
    except LambdaValidationError as exc:
        raise LambdaValidationError(f"{handler} at {trigger}: {exc.reason}", message=exc.message) from None
    for violation in checked.violations:
        if not strictness.lenient:
            raise LambdaValidationError(f"{handler} at {trigger}: {violation.detail}", message=violation.message)
        log.warning("lenient: %s at %s: %s", handler, trigger, violation.detail)
    return checked


def _check_headers_shape(field: str, headers: Any) -> list[Violation]:
    """Header maps: lower-case names -> lists of ``{key?, value}`` with string values. Raises for an unusable shape;
    returns upper-case map names, which §3.6 leaves undocumented (rejected when strict).

    Every entry comes back with the ``key`` it goes out under (:func:`~edgeproxy.events.cloudfront.wire_name`): a
    missing one is filled in from the map name, title-cased (§1.4), and so is one that names another header (§3.6:
    the map name decides which header it is, as AWS's "override a response header" example shows)."""
    mismatches: list[Violation] = []
    if not isinstance(headers, dict):
        raise _invalid(f"{field} must be an object of header lists, not {type(headers).__name__}", MSG_HEADER_ARRAY)
    for name, entries in headers.items():
        if not isinstance(entries, list):
            raise _invalid(f"{field}[{name!r}] must be an array of {{key, value}} objects", MSG_HEADER_ARRAY)
        if not HEADER_NAME.fullmatch(name):
            raise _invalid(f"{field}[{name!r}] is not a valid header name")
        if name != name.lower():
            mismatches.append(Violation(MSG_INVALID, f"{field}[{name!r}]: header map names must be lower case"))
        for index, entry in enumerate(entries):
            where = f"{field}[{name!r}][{index}]"
            if not isinstance(entry, dict) or "value" not in entry:
                raise _invalid(f"{where} must be an object with a 'value'", MSG_HEADER_VALUE)
            if not isinstance(entry["value"], str):
                raise _invalid(f"{where}.value must be a string, not {type(entry['value']).__name__}", MSG_HEADER_VALUE)
            if forbidden := forbidden_in_field(entry["value"]):
                raise _invalid(f"{where}.value contains {forbidden} (a control character)", MSG_HEADER_VALUE)
            key = entry.get("key")
            if key is not None and not isinstance(key, str):
                raise _invalid(f"{where}.key {key!r} is not a valid header name")
            entry["key"] = wire_name(name, entry)
    return mismatches


def _check_header_rules(
    trigger: Trigger, field: str, before: HeaderValues, after: HeaderValues, strictness: Strictness
) -> Iterator[Violation]:
    read_only = strictness.read_only(trigger)
    for name in after.keys() - before.keys():
        if is_disallowed(name):
            yield Violation(MSG_BLACKLISTED, f"{field}: added disallowed header {name!r}")
        elif trigger == "viewer-request" and name == "cloudfront-viewer-country":
            yield Violation(MSG_BLACKLISTED, f"{field}: added 'cloudfront-viewer-country' at viewer-request")
    for name in read_only & (before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        action = "added" if old is None else "deleted" if new is None else "changed"
        yield Violation(MSG_READ_ONLY, f"{field}: {action} read-only header {name!r}")


def _check_request(
    trigger: Trigger, before: Snapshot, request: dict[str, Any], strictness: Strictness
) -> Iterator[Violation]:
    for name in ("uri", "headers"):
        if name not in request:
            raise _invalid(f"the returned request has no {name!r}")
    yield from _check_headers_shape("request.headers", request["headers"])
    for name, original in (("clientIp", before.client_ip), ("method", before.method)):
        if request.get(name, original) != original:
            yield Violation(MSG_INVALID, f"request.{name} is read-only (changed {original!r} to {request[name]!r})")
    uri, querystring = request["uri"], request.get("querystring", "")
    # What could not go on a request line as it is (not strings, a uri not a path, spaces, control characters, '#', a
    # '?' in the uri) is refused whatever the strictness: sent, the origin would get a request line that says
    # something else, or that it cannot parse. The docs name the querystring's characters; the uri's are the same
    # on the request line ("We recommend that you use percent encoding for the URI and query string").
    if not isinstance(uri, str):
        raise _invalid(f"request.uri must be a string starting with '/', got {uri!r}", MSG_URI)
    if not isinstance(querystring, str):
        raise _invalid(f"request.querystring must be a string, got {type(querystring).__name__}", MSG_URI)
    if not uri.startswith("/"):
        raise _invalid(f"request.uri must be a string starting with '/', got {uri!r}", MSG_URI)
    if match := URI_FORBIDDEN.search(uri):
        raise _invalid(f"request.uri contains {match.group()!r} (no spaces, control characters, '#' or '?')", MSG_URI)
    if match := QUERYSTRING_FORBIDDEN.search(querystring):
        raise _invalid(
            f"request.querystring contains {match.group()!r} (no spaces, control characters or '#')", MSG_URI
        )
    if len(uri) + len(querystring) >= URI_AND_QUERY_LIMIT:
        yield Violation(
            MSG_URI,
            f"request.uri + querystring is {len(uri) + len(querystring)} characters (must be < {URI_AND_QUERY_LIMIT})",
        )
    yield from _check_header_rules(
        trigger, "request.headers", before.request_headers, header_values(request["headers"]), strictness
    )
    if "body" in request:
        yield from _check_request_body(request["body"])
    if trigger == "origin-request" and request.get("origin") != before.origin:
        yield from _check_origin(request.get("origin"), request["headers"])


def _check_request_body(body: Any) -> Iterator[Violation]:
    if not isinstance(body, dict):
        yield Violation(MSG_BODY, "request.body must be an object")
        return
    action, encoding, data = body.get("action", "read-only"), body.get("encoding", "base64"), body.get("data", "")
    if action not in ("read-only", "replace"):
        yield Violation(MSG_BODY, f"request.body.action must be 'read-only' or 'replace', got {action!r}")
    if action != "replace":
        return
    if encoding not in ("base64", "text"):
        yield Violation(MSG_BODY, f"request.body.encoding must be 'base64' or 'text', got {encoding!r}")
        return
    if not isinstance(data, str):  # nothing to send, whatever the strictness
        raise _invalid(f"request.body.data must be a string, got {type(data).__name__}", MSG_BODY)
    if encoding == "base64":
        try:
            base64.b64decode(data, validate=True)
        except ValueError:  # binascii.Error, or a str that is not ASCII
            raise _invalid("request.body.data is not valid base64", MSG_BODY) from None
    # A replacement over the trigger's size is not an error: "the body is truncated" at it (the pipeline cuts it).


def _check_origin(origin: Any, request_headers: Mapping[str, Any]) -> Iterator[Violation]:
    """An origin rewrite (§1.6). What no request could be sent to raises whatever the strictness; values outside
    CloudFront's ranges are violations."""
    if not isinstance(origin, dict) or len(origin) != 1 or next(iter(origin)) not in ("custom", "s3"):
        raise _invalid("request.origin must hold exactly one of 'custom' or 's3'")
    kind, spec = next(iter(origin.items()))
    field = f"request.origin.{kind}"
    if not isinstance(spec, dict):
        raise _invalid(f"{field} must be an object")
    custom_headers = spec.get("customHeaders", {})
    yield from _check_headers_shape(f"{field}.customHeaders", custom_headers)
    for name in custom_headers:
        if is_disallowed(name):
            yield Violation(MSG_BLACKLISTED, f"{field}.customHeaders: disallowed header {name!r}")
        if name in request_headers:
            yield Violation(MSG_INVALID, f"{field}.customHeaders: {name!r} is also in request.headers")
    domain = spec.get("domainName")
    path = spec.get("path", "")
    path_rule = f"{field}.path must be '' or start with '/', not end with '/', <= 255 characters"
    if not isinstance(path, str):
        raise _invalid(path_rule)
    if path and (not path.startswith("/") or path.endswith("/") or len(path) > 255):
        yield Violation(MSG_INVALID, path_rule)
    if kind == "custom":
        if not isinstance(domain, str) or len(domain) > 253 or not all(map(DNS_LABEL.fullmatch, domain.split("."))):
            raise _invalid(f"{field}.domainName must be a DNS name (no ':'), 1-253 characters")
        if _is_non_loopback_ip(domain):
            yield Violation(MSG_INVALID, f"{field}.domainName must be a DNS name, not an IP address")
        port = spec.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise _invalid(f"{field}.port must be 80, 443 or 1024-65535, got {port!r}")
        if not (port in (80, 443) or 1024 <= port <= 65535):
            yield Violation(MSG_INVALID, f"{field}.port must be 80, 443 or 1024-65535, got {port!r}")
        if spec.get("protocol") not in ("http", "https"):
            raise _invalid(f"{field}.protocol must be 'http' or 'https', got {spec.get('protocol')!r}")
        for name, low, high in (("readTimeout", 4, 60), ("keepaliveTimeout", 1, 60)):
            value = spec.get(name)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise _invalid(f"{field}.{name} must be {low}-{high} seconds, got {value!r}")
            if value is not None and not low <= value <= high:
                yield Violation(MSG_INVALID, f"{field}.{name} must be {low}-{high} seconds, got {value!r}")
        protocols = spec.get("sslProtocols", [])
        allowed = ("TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3")  # a tuple: items may be unhashable
        if not isinstance(protocols, list) or not all(protocol in allowed for protocol in protocols):
            yield Violation(MSG_INVALID, f"{field}.sslProtocols may hold only TLSv1.2, TLSv1.1, TLSv1, SSLv3")
    else:
        if not isinstance(domain, str) or not domain:
            raise _invalid(f"{field}.domainName must be lower case, 1-128 characters")
        if len(domain) > 128 or domain != domain.lower():
            yield Violation(MSG_INVALID, f"{field}.domainName must be lower case, 1-128 characters")
        auth = spec.get("authMethod", "none")
        if auth not in ("origin-access-identity", "none"):
            yield Violation(MSG_INVALID, f"{field}.authMethod must be 'origin-access-identity' or 'none'")
        if auth == "origin-access-identity" and not spec.get("region"):
            yield Violation(MSG_INVALID, f"{field}.region is required with authMethod 'origin-access-identity'")


def _is_non_loopback_ip(domain: str) -> bool:
    # CloudFront refuses IP addresses as origin domain names (§1.6). Loopback stays allowed so that handlers can
    # switch between local origins in development.
    try:
        return not ipaddress.ip_address(domain.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_response(
    trigger: Trigger, before: Snapshot, response: dict[str, Any], strictness: Strictness
) -> Iterator[Violation]:
    status = response["status"]
    # §2.3: the field table says a string, but AWS's own examples ("update error statuses to 200 / 302") set a JSON
    # number and work: a JSON integer is taken like its digit string. Not a bool, and not 200.0, which Python
    # sends as "200.0" (a JavaScript function cannot send it): nothing AWS shows settles a fraction part.
    if isinstance(status, int) and not isinstance(status, bool):
        if not 200 <= status <= 599:
            raise _invalid(f"response.status must be from 200 to 599, got the number {status}")
        status = str(status)
    # Three digits (RFC 9110 §15) before int(): int() of 4,300 digits or more raises ValueError in Python 3.11.
    three_digits = isinstance(status, str) and status.isascii() and status.isdigit() and len(status) == 3
    if not three_digits or not 200 <= int(status) <= 599:
        raise _invalid(f"response.status must be a string from '200' to '599', got {repr(status)[:40]}")
    response["status"] = status
    description = response.get("statusDescription")
    # Nothing that could go on the wire, whatever the strictness: a status line with a non-text or multi-line
    # reason, a Content-Length that is not a number.
    if description is not None and not isinstance(description, str):
        raise _invalid("response.statusDescription must be a string")
    if description is not None and (forbidden := forbidden_in_field(description)):
        raise _invalid(f"response.statusDescription contains {forbidden} (a control character)")
    headers = response.setdefault("headers", {})
    yield from _check_headers_shape("response.headers", headers)
    for entry in headers.get("content-length", ()):
        if not (entry["value"].isascii() and entry["value"].isdigit()):
            raise _invalid(f"response.headers['content-length'] must be a number, got {entry['value']!r}")
    if trigger == "viewer-response" and before.response_status is not None and status != before.response_status:
        response["status"] = before.response_status  # even when lenient: the status cannot change (§1.8)
        yield Violation(MSG_INVALID, f"viewer-response cannot change the status ({before.response_status} -> {status})")
    changed_status = before.response_status is not None and response["status"] != before.response_status
    if changed_status and response.get("statusDescription") == before.response_description:
        # The origin's reason phrase belongs to the origin's status: a new status without a new statusDescription
        # gets its standard phrase (not "200 Internal Server Error").
        response.pop("statusDescription", None)
    if trigger == "viewer-request" and status == "204" and response.get("body"):
        yield Violation(MSG_BODY, "a 204 generated at viewer-request cannot have a body")
    yield from _check_response_body(trigger, response)
    generated = before.response_headers is None
    yield from _check_header_rules(
        trigger,
        "response.headers",
        {} if generated else before.response_headers or {},
        header_values(headers),
        strictness,
    )


def _check_response_body(trigger: Trigger, response: dict[str, Any]) -> Iterator[Violation]:
    body = response.get("body")
    encoding = response.get("bodyEncoding", "text")
    if encoding not in ("text", "base64"):
        yield Violation(MSG_BODY, f"response.bodyEncoding must be 'text' or 'base64', got {encoding!r}")
        return
    if body is not None and not isinstance(body, str):
        yield Violation(MSG_BODY, f"response.body must be a string, got {type(body).__name__}")
        return
    if body is not None and encoding == "base64":
        try:
            base64.b64decode(body, validate=True)
        except ValueError:  # binascii.Error, or a str that is not ASCII
            raise _invalid("response.body is not valid base64 (bodyEncoding is 'base64')", MSG_BODY) from None
    # §2.3: the limit counts headers and body together, so headers alone can exceed it.
    size = len((body or "").encode("utf-8")) + sum(
        len(entry["key"]) + len(entry["value"]) for name, entries in response["headers"].items() for entry in entries
    )
    limit = FACTS[trigger].size_limit
    if size > limit:
        yield Violation(MSG_BODY, f"response headers + body are {size} bytes (limit {limit} at {trigger})")
