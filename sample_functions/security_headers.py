"""Security headers: add HSTS, CSP and the other standard security headers to every response.

Use case: a site behind CloudFront whose origin (often an S3 bucket) cannot set response headers itself.
Trigger: viewer-response (runs on every response below 400, cached or not) or origin-response (runs once per origin
fetch, before the response is cached, and also on origin errors such as 404 and 503).
What it does: sets Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, Referrer-Policy and
Content-Security-Policy on the response, replacing any value the origin sent, and returns the response. The body
is not touched.
"""

from __future__ import annotations

from typing import Any

SECURITY_HEADERS: dict[str, str] = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = event["Records"][0]["cf"]["response"]
    headers = response.setdefault("headers", {})
    for name, value in SECURITY_HEADERS.items():
        headers[name.lower()] = [{"key": name, "value": value}]
    return response
