"""Lambda@Edge event shapes: build them from wire values, and turn handler results back into wire values.

This is the only place that knows the JSON shape of a CloudFront event (reference/aws-behaviour.md §1). Events
are plain dicts, because that is what user handlers receive; the TypedDicts below are for readers and mypy.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, NotRequired, TypedDict

from multidict import CIMultiDict

from edgeproxy.config import CustomOrigin, DirectoryOrigin, Origin
from edgeproxy.headers import CLOUDFRONT_HEADERS, SET_TOWARD_ORIGIN, is_removed_toward_origin, title_case
from edgeproxy.origin import OriginRequest, RequestBody
from edgeproxy.policies import LEGACY, Policies, normalised_accept_encoding, select_cookies, select_query
from edgeproxy.triggers import Trigger

CLOUDFRONT_USER_AGENT = "Amazon CloudFront"


class HeaderEntry(TypedDict):
    key: NotRequired[str]
    value: str


Headers = dict[str, list[HeaderEntry]]


class Body(TypedDict):
    inputTruncated: bool
    action: str
    encoding: str
    data: str


class CfRequest(TypedDict):
    clientIp: str
    method: str
    uri: str
    querystring: str
    headers: Headers
    body: NotRequired[Body]
    origin: NotRequired[dict[str, Any]]


class CfResponse(TypedDict):
    status: str
    statusDescription: NotRequired[str]
    headers: NotRequired[Headers]
    body: NotRequired[str]
    bodyEncoding: NotRequired[str]


class CfConfig(TypedDict):
    distributionDomainName: str
    distributionId: str
    eventType: str
    requestId: str


class Cf(TypedDict):
    config: CfConfig
    request: CfRequest
    response: NotRequired[CfResponse]


class Record(TypedDict):
    cf: Cf


class Event(TypedDict):
    Records: list[Record]


# A generator of the proxy's own, not random's global one: a handler that seeds random (for a reproducible test)
# must get the same numbers whatever requests the proxy answered meanwhile.
_ids = random.Random()


def new_request_id() -> str:
    """A CloudFront request id: 56 characters of the base64url alphabet ending in ``==`` (§4.2)."""
    # random, not os.urandom: an id, not a secret, and one syscall less per request
    return base64.urlsafe_b64encode(_ids.getrandbits(320).to_bytes(40, "big")).decode("ascii")


def to_event_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    """Wire headers to the event shape: lower-case name -> one ``{key, value}`` per occurrence (§1.4)."""
    result: Headers = {}
    for name, value in headers:
        key = str(name)  # plain str, not multidict's istr: handlers get JSON-shaped data
        result.setdefault(key.lower(), []).append({"key": key, "value": value})
    return result


def wire_name(name: str, entry: Mapping[str, Any]) -> str:
    """The name a header entry of the map name ``name`` goes out under. §3.6: the map name decides which header it
    is; the entry's ``key`` only gives the spelling, and only when it is the same name case-insensitively (AWS's
    "override a response header" example copies an ``X-Amz-Meta-Last-Modified`` entry under ``last-modified`` and
    the viewer gets ``Last-Modified``). Otherwise, as for a missing ``key`` (§1.4), the map name title-cased."""
    key = entry.get("key")
    if isinstance(key, str) and key.isascii() and key.lower() == name.lower():
        return key
    return title_case(name)


def to_wire_headers(headers: Mapping[str, Any]) -> CIMultiDict[str]:
    """Event headers (already validated) to wire headers, each under its :func:`wire_name`."""
    wire: CIMultiDict[str] = CIMultiDict()
    for name, entries in headers.items():
        for entry in entries:
            wire.add(wire_name(name, entry), entry["value"])
    return wire


def request_record(
    *, client_ip: str, method: str, uri: str, querystring: str, headers: Iterable[tuple[str, str]]
) -> CfRequest:
    return {
        "clientIp": client_ip,
        "headers": to_event_headers(headers),
        "method": method,
        "querystring": querystring,
        "uri": uri,
    }


def body_record(data: bytes, limit: int) -> Body:
    """``request.body`` for an include-body association (§1.5): base64 of at most ``limit`` bytes, read-only."""
    return {
        "inputTruncated": len(data) > limit,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(data[:limit]).decode("ascii"),
    }


def origin_record(origin: Origin) -> dict[str, Any]:
    """``request.origin`` for a configured origin (§1.6): exactly one of ``custom`` / ``s3``."""
    custom_headers = to_event_headers((title_case(name), value) for name, value in origin.custom_headers)
    if isinstance(origin, CustomOrigin):
        return {
            "custom": {
                "customHeaders": custom_headers,
                "domainName": origin.domain_name,
                "keepaliveTimeout": _seconds(origin.keepalive_timeout),
                "path": origin.path,
                "port": origin.port,
                "protocol": origin.protocol,
                "readTimeout": _seconds(origin.read_timeout),
                "sslProtocols": ["TLSv1.2"],
            }
        }
    assert isinstance(origin, DirectoryOrigin)
    return {
        "s3": {
            "authMethod": "none",
            "customHeaders": custom_headers,
            "domainName": origin.domain_name,
            "path": "",
            "region": "us-east-1",
        }
    }


def _seconds(value: float) -> int | float:
    """Timeouts are whole seconds on CloudFront; a fractional one (handy in tests) is kept as it is."""
    return int(value) if value == int(value) else value


def response_record(*, status: int, reason: str | None, headers: Iterable[tuple[str, str]]) -> CfResponse:
    return {
        "headers": to_event_headers(headers),
        "status": str(status),
        "statusDescription": reason if reason is not None else reason_phrase(status),
    }


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def build_event(
    *,
    trigger: Trigger,
    request_id: str,
    domain_name: str,
    distribution_id: str,
    request: CfRequest,
    response: CfResponse | None = None,
) -> Event:
    cf: Cf = {
        "config": {
            "distributionDomainName": domain_name,
            "distributionId": distribution_id,
            "eventType": trigger,
            "requestId": request_id,
        },
        "request": request,
    }
    if response is not None:
        cf["response"] = response
    return {"Records": [{"cf": cf}]}


def body_bytes(response: Mapping[str, Any]) -> bytes | None:
    """The body a (validated) generated or replaced response carries, decoded; ``None`` when it sets none."""
    body = response.get("body")
    if body is None:
        return None
    if response.get("bodyEncoding") == "base64":
        return base64.b64decode(body, validate=True)
    return str(body).encode("utf-8")


# "Use managed origin request policies", Important: with these managed policies an S3 origin does not get the query
# parameters that change S3's response headers.
S3_WITHHELD_QUERY = ("response-content-type", "response-content-disposition", "response-content-encoding")
ALL_VIEWER_POLICIES = (
    "AllViewer",
    "AllViewerAndCloudFrontHeaders-2022-06",
    "AllViewerExceptHostHeader",
    "Elemental-MediaTailor-PersonalizedManifests",
)


def toward_origin(
    request: Mapping[str, Any],
    origin: Origin,
    *,
    client_ip: str,
    via: str,
    policies: Policies = LEGACY,
    added: Iterable[tuple[str, str]] = (),
) -> CfRequest:
    """The request as CloudFront sends it to the origin, which is what origin-request sees (§1.4, §4.1): the viewer
    headers, cookies and query strings the behavior's policies let through (all of them, less those never
    forwarded, for a behavior without policies), ``Host`` set to the origin unless forwarded, ``User-Agent: Amazon
    CloudFront`` unless forwarded, CloudFront's ``Via`` hop and the client address appended to ``X-Forwarded-For``
    (comma, no space); then ``added``: CloudFront's own headers (replacing a viewer's of the same name) and
    conditional headers of a revalidation. A viewer header named as one of the origin's custom headers is left out:
    the custom header replaces it."""
    viewer_headers: Mapping[str, list[HeaderEntry]] = request["headers"]
    added = list(added)
    # An origin custom header overwrites the viewer's header of the same name: "If a header is present, CloudFront
    # overwrites the header value before forwarding the request to the origin" (add-origin-custom-headers), and it
    # is then in request.origin's customHeaders only (a name may not be in both).
    replaced = {name.lower() for name, _ in added} | {name.lower() for name, _ in origin.custom_headers}
    querystring = request.get("querystring", "")
    host, user_agent = origin.domain_name, CLOUDFRONT_USER_AGENT
    if policies.legacy:
        headers = [
            (wire_name(name, entry), entry["value"])
            for name, entries in viewer_headers.items()
            if not is_removed_toward_origin(name) and name not in SET_TOWARD_ORIGIN and name not in replaced
            for entry in entries
        ]
    else:
        headers = []
        for name, entries in viewer_headers.items():
            skipped = name in ("cookie", "accept-encoding") or name in CLOUDFRONT_HEADERS or name in replaced
            if skipped or is_removed_toward_origin(name) or name in SET_TOWARD_ORIGIN:
                continue
            # A body's length is its framing, not a header a policy selects: without it the body went chunked.
            if name == "content-length" or policies.forwards_header(name):
                headers += [(wire_name(name, entry), entry["value"]) for entry in entries]
        cookie = select_cookies([entry["value"] for entry in viewer_headers.get("cookie", ())], policies.cookies)
        if cookie is not None:
            headers.append(("Cookie", cookie))
        encodings = [entry["value"] for entry in viewer_headers.get("accept-encoding", ())]
        if policies.compression:
            _, normal = normalised_accept_encoding(encodings, policies.cache)
            if normal is not None:
                headers.append(("Accept-Encoding", normal))
        elif policies.forwards_header("accept-encoding"):
            headers += [("Accept-Encoding", value) for value in encodings]
        if policies.forwards_header("host") and viewer_headers.get("host") and isinstance(origin, CustomOrigin):
            host = viewer_headers["host"][0]["value"]
        if policies.forwards_header("user-agent") and viewer_headers.get("user-agent"):
            user_agent = viewer_headers["user-agent"][0]["value"]
        querystring = select_query(querystring, policies.query_strings)
        orp = policies.origin_request
        if isinstance(origin, DirectoryOrigin) and orp is not None and orp.name in ALL_VIEWER_POLICIES and querystring:
            kept = (part for part in querystring.split("&") if part.partition("=")[0] not in S3_WITHHELD_QUERY)
            querystring = "&".join(kept)
    incoming_via = ", ".join(entry["value"] for entry in viewer_headers.get("via", ()))
    incoming_xff = ",".join(entry["value"] for entry in viewer_headers.get("x-forwarded-for", ()))
    headers += [
        ("Host", host),
        ("User-Agent", user_agent),
        ("Via", f"{incoming_via}, {via}" if incoming_via else via),
        ("X-Forwarded-For", f"{incoming_xff},{client_ip}" if incoming_xff else client_ip),
    ]
    headers += added
    result: CfRequest = {
        "clientIp": request["clientIp"],
        "headers": to_event_headers(headers),
        "method": request["method"],
        "origin": origin_record(origin),
        "querystring": querystring,
        "uri": request["uri"],
    }
    if "body" in request:
        result["body"] = request["body"]
    return result


def origin_request(
    request: Mapping[str, Any], *, method: str, request_id: str, body: RequestBody, content_length: int | None
) -> OriginRequest:
    """What goes to the origin for a (validated) origin-facing ``request``: its headers, then the origin's custom
    headers, CloudFront's ``X-Amz-Cf-Id``, and a ``Content-Length`` for a body in memory (set whenever the body is
    not empty, or the request had one)."""
    headers = to_wire_headers(request["headers"])
    kind, spec = next(iter(request["origin"].items()))
    headers.extend(to_wire_headers(spec.get("customHeaders", {})))
    headers["X-Amz-Cf-Id"] = request_id
    if content_length is not None and (content_length or "Content-Length" in headers):
        headers["Content-Length"] = str(content_length)
    path = spec.get("path", "") + request["uri"]
    query = request.get("querystring", "")
    if kind == "s3":
        return OriginRequest(method, "s3", spec["domainName"], "https", 443, path, query, headers, body)
    return OriginRequest(
        method,
        "custom",
        spec["domainName"],
        spec["protocol"],
        spec["port"],
        path,
        query,
        headers,
        body,
        read_timeout=float(spec.get("readTimeout", 30)),
        keepalive_timeout=float(spec.get("keepaliveTimeout", 5)),
    )
