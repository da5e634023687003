"""Redirects: answer old URLs with a permanent redirect at the edge, without contacting the origin.

Use case: a site that moved pages, or that wants one canonical URL per page for caching and SEO.
Trigger: viewer-request (the redirect is generated before the cache, so the origin never sees the old URL).
What it does: drops trailing slashes (``/docs/`` -> ``/docs``; ``/`` is left alone), then looks the path up in
``REDIRECTS``. If either changed the path, it returns a generated ``301 Moved Permanently`` (``308 Permanent
Redirect`` for methods other than GET and HEAD, so that browsers keep the method and body) whose ``Location`` is
the new path with the original query string, raw. Any other request is passed on unchanged.
"""

from __future__ import annotations

from typing import Any

# Old path -> new path. Keys have no trailing slash: it is removed before the lookup.
REDIRECTS: dict[str, str] = {
    "/old-page": "/new-page",
    "/about-us": "/about",
    "/blog/2019/hello-world": "/posts/hello-world",
}
CACHE_CONTROL = "max-age=3600"


def _normalise(uri: str) -> str:
    path = uri.rstrip("/") if len(uri) > 1 else uri
    # Collapse leading slashes and backslashes: "//evil.example/" must not become the protocol-relative
    # (off-site) Location "//evil.example".
    return "/" + path.lstrip("/\\")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    uri: str = request["uri"]
    path = _normalise(uri)
    target = REDIRECTS.get(path, path)
    if target == uri:
        return request

    querystring: str = request.get("querystring", "")
    location = f"{target}?{querystring}" if querystring else target
    status, description = ("301", "Moved Permanently")
    if request["method"] not in ("GET", "HEAD"):
        status, description = ("308", "Permanent Redirect")
    return {
        "status": status,
        "statusDescription": description,
        "headers": {
            "location": [{"key": "Location", "value": location}],
            "cache-control": [{"key": "Cache-Control", "value": CACHE_CONTROL}],
        },
    }
