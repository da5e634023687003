"""Every named header set, and the helpers that apply them to wire headers.

The per-trigger read-only lists are facts of a trigger and live in :mod:`edgeproxy.triggers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 §7.6.1: connection-specific headers an intermediary must not forward, plus every header the
# Connection header names.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# §3.3, current list: not shown to functions, and a function adding one is a 502. The X-Amz-Cf- and X-Edge-
# prefixes are in DISALLOWED_PREFIXES.
DISALLOWED = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")

# §4.1: never forwarded to the origin, whatever the configuration.
REMOVED_TOWARD_ORIGIN = (
    frozenset(
        {
            "expect",
            "proxy-authenticate",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
            "x-forwarded-proto",
            "x-http-method-override",
            "x-real-ip",
        }
    )
    | HOP_BY_HOP
)
REMOVED_TOWARD_ORIGIN_PREFIXES = ("x-edge-",)
# §4.1: CloudFront sets these on the way to the origin, from the viewer's values or its own.
SET_TOWARD_ORIGIN = frozenset({"host", "user-agent", "via", "x-forwarded-for"})

# §7.7: the headers an Application Load Balancer sets itself; the client's values are replaced or appended to.
SET_BY_ALB = frozenset({"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"})

# RFC 9110 §13.1: the viewer's preconditions, which are about the resource it asked for. A custom error page standing in
# for that resource is fetched without them and served whole ("Generating custom error responses",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/GeneratingCustomErrorResponses.html: the viewer
# gets the page).
PRECONDITIONS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range"})

# aiohttp's client adds these when missing; an origin must see only what the viewer or the function sent.
CLIENT_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def is_disallowed(name: str) -> bool:
    """Whether a header is on CloudFront's disallowed list (§3.3)."""
    lower = name.lower()
    return lower in DISALLOWED or lower.startswith(DISALLOWED_PREFIXES)


def is_removed_toward_origin(name: str) -> bool:
    """Whether CloudFront drops a header on its way to the origin (§4.1); ``name`` is lower case."""
    return name in REMOVED_TOWARD_ORIGIN or name.startswith(REMOVED_TOWARD_ORIGIN_PREFIXES)


# What no header value or reason phrase can carry: the control characters other than tab (RFC 9110 §5.5, RFC 9112
# §4; aiohttp refuses them when it writes the head, so a result holding one must be rejected before that).
FORBIDDEN_IN_FIELD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def forbidden_in_field(text: str) -> str | None:
    """The first character that cannot go in a header value or reason phrase, as ``repr`` shows it, or ``None``."""
    match = FORBIDDEN_IN_FIELD.search(text)
    return None if match is None else repr(match.group())


def unpaired_surrogate(value: Any, where: str = "the result") -> str | None:
    """Where JSON-shaped ``value`` holds a string with an unpaired surrogate (``"\\ud800"`` parses from JSON, but no
    UTF-8 message can carry it), or ``None``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unpaired_surrogate(key, f"a key in {where}") or unpaired_surrogate(item, f"{where}[{key!r}]")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := unpaired_surrogate(item, f"{where}[{index}]"):
                return found
    return None


def connection_named(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names listed in ``Connection`` (lower case), which are hop-by-hop for this message."""
    return frozenset(
        token.strip().lower()
        for value in headers.getall("Connection", ())
        for token in value.split(",")
        if token.strip()
    )


def end_to_end(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> Iterable[tuple[str, str]]:
    """The headers of a message without its hop-by-hop ones, in order, repeats kept."""
    named = connection_named(headers)
    for name, value in headers.items():
        lower = name.lower()
        if lower not in HOP_BY_HOP and lower not in named:
            yield name, value


# Header-name sequences seen on the wire -> their names decoded, or None when aiohttp's parsed headers already spell
# them all as sent (the common case). Clients send the same names request after request: one look-up each time.
_SPELLINGS: dict[tuple[bytes, ...], list[str] | None] = {}
_SPELLINGS_KEPT = 512


def as_received(
    raw: tuple[tuple[bytes, bytes], ...], parsed: CIMultiDict[str] | CIMultiDictProxy[str]
) -> CIMultiDict[str]:
    """Headers as they came on the wire: names spelled as sent (aiohttp's ``parsed`` headers respell the ones it
    knows, ``ETag`` as ``Etag``), in order, repeats kept, values as aiohttp decoded them. ``raw`` and ``parsed``
    are the same message's ``raw_headers`` and ``headers``."""
    if len(raw) != len(parsed):  # not expected: the two come from one parse; decode the wire's own then
        return CIMultiDict((n.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape")) for n, v in raw)
    names = tuple(name for name, _ in raw)
    if names not in _SPELLINGS:
        if len(_SPELLINGS) >= _SPELLINGS_KEPT:
            _SPELLINGS.clear()
        decoded = [name.decode("utf-8", "surrogateescape") for name in names]
        _SPELLINGS[names] = None if decoded == list(parsed.keys()) else decoded
    spelled = _SPELLINGS[names]
    if spelled is None:
        return CIMultiDict(parsed)
    return CIMultiDict(zip(spelled, parsed.values(), strict=True))


def title_case(name: str) -> str:
    """``user-agent`` -> ``User-Agent``: how Lambda@Edge fills a missing ``key`` (§1.4)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


# §4.1 and "Add CloudFront request headers": the headers CloudFront itself adds toward the origin when a cache or
# origin request policy names them, in the spelling it sends (lower-case name -> spelling). Live traffic spells the
# HTTP version header "CloudFront-Viewer-HTTP-Version" where the guide writes "-Http-Version"; names are
# case-insensitive, and the live spelling is the one sent.
CLOUDFRONT_HEADERS = {
    name.lower(): name
    for name in (
        "CloudFront-Forwarded-Proto",
        "CloudFront-Is-Android-Viewer",
        "CloudFront-Is-Desktop-Viewer",
        "CloudFront-Is-IOS-Viewer",
        "CloudFront-Is-Mobile-Viewer",
        "CloudFront-Is-SmartTV-Viewer",
        "CloudFront-Is-Tablet-Viewer",
        "CloudFront-Viewer-Address",
        "CloudFront-Viewer-ASN",
        "CloudFront-Viewer-City",
        "CloudFront-Viewer-Country",
        "CloudFront-Viewer-Country-Name",
        "CloudFront-Viewer-Country-Region",
        "CloudFront-Viewer-Country-Region-Name",
        "CloudFront-Viewer-Header-Count",
        "CloudFront-Viewer-Header-Order",
        "CloudFront-Viewer-HTTP-Version",
        "CloudFront-Viewer-JA3-Fingerprint",
        "CloudFront-Viewer-JA4-Fingerprint",
        "CloudFront-Viewer-Latitude",
        "CloudFront-Viewer-Longitude",
        "CloudFront-Viewer-Metro-Code",
        "CloudFront-Viewer-Postal-Code",
        "CloudFront-Viewer-Time-Zone",
        "CloudFront-Viewer-TLS",
    )
}
# Allowed in an origin request policy, never in a cache key ("Add CloudFront request headers"; JA4, added in 2024,
# is documented for origin request policies like JA3).
ORIGIN_REQUEST_POLICY_ONLY = frozenset(
    {
        "cloudfront-viewer-address",
        "cloudfront-viewer-asn",
        "cloudfront-viewer-ja3-fingerprint",
        "cloudfront-viewer-ja4-fingerprint",
        "cloudfront-viewer-tls",
    }
)
DEVICE_HEADERS = frozenset(name for name in CLOUDFRONT_HEADERS if name.startswith("cloudfront-is-"))
