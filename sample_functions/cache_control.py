"""Cache-Control defaults: cache fingerprinted assets for a year, revalidate HTML, keep errors briefly.

Use case: an origin (an S3 bucket, a framework's dev server) that sends no ``Cache-Control``, so that browsers
and CloudFront fall back to heuristics and default TTLs.
Trigger: origin-response (before the response is cached, so CloudFront's TTLs follow the header too).
What it does: leaves a response that already has ``Cache-Control`` alone. Otherwise sets, in this order:
``public, max-age=10`` on errors (status 400 and up, so a fixed page shows up quickly);
``public, max-age=31536000, immutable`` under ``/assets/`` or on fingerprinted file names (``app.3f9a1c2b.js``);
``no-cache`` on HTML (browsers revalidate and pick up new asset names at once);
``public, max-age=300`` on anything else.
"""

from __future__ import annotations

import re
from typing import Any

ERROR = "public, max-age=10"
IMMUTABLE = "public, max-age=31536000, immutable"
HTML = "no-cache"
DEFAULT = "public, max-age=300"
IMMUTABLE_PREFIXES = ("/assets/",)
FINGERPRINTED = re.compile(r"\.[0-9a-f]{8,}\.[A-Za-z0-9]+$")


def _policy(request: dict[str, Any], response: dict[str, Any]) -> str:
    if int(response["status"]) >= 400:
        return ERROR
    uri: str = request["uri"]
    if uri.startswith(IMMUTABLE_PREFIXES) or FINGERPRINTED.search(uri):
        return IMMUTABLE
    content_type = response["headers"].get("content-type", [{"value": ""}])[0]["value"]
    if content_type.split(";")[0].strip().lower() == "text/html":
        return HTML
    return DEFAULT


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cf = event["Records"][0]["cf"]
    response: dict[str, Any] = cf["response"]
    headers = response.setdefault("headers", {})
    if "cache-control" not in headers:
        headers["cache-control"] = [{"key": "Cache-Control", "value": _policy(cf["request"], response)}]
    return response
